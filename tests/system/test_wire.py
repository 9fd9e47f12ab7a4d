"""The lean socket stack: packets in orjson (with the standard library for what orjson
cannot hold), and no compression of WebSocket frames, under both servers."""

from __future__ import annotations

import pytest
import websocket

from tests.live import LiveServer


@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_websocket_frames_are_not_compressed(database_url, users, mode):
    server = LiveServer(database_url, mode)
    try:
        server.start()
        account = users.make("customer")
        token = server.login(account.email, account.password)["access_token"]
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
            header=["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"],
            timeout=10,
        )
        try:
            headers = {k.lower(): v for k, v in ws.getheaders().items()}
            assert "sec-websocket-extensions" not in headers, headers
            assert ws.recv().startswith("0{")  # Engine.IO's open packet: the socket works
            ws.send(f'40/chat,{{"token":"{token}"}}')
            frames = [ws.recv(), ws.recv()]  # the namespace's CONNECT and the presence note
            assert any(f.startswith("40/chat,") for f in frames), frames
        finally:
            ws.close()
    finally:
        server.close()
