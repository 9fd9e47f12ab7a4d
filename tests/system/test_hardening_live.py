"""Hardening that needs a real server process."""

from __future__ import annotations

import subprocess
import sys

import pytest
import socketio as sio_module

from tests.conftest import ROOT
from tests.live import LiveServer


def test_the_refusal_names_the_cap(database_url, users):
    server = LiveServer(database_url, CHAT_MAX_SOCKETS_PER_USER=1)
    try:
        server.start()
        account = users.make("customer")
        token = server.login(account.email, account.password)["access_token"]
        server.client(token)
        second = sio_module.Client(reconnection=False)
        errors = []
        second.on("connect_error", errors.append, namespace="/chat")
        with pytest.raises(sio_module.exceptions.ConnectionError):
            second.connect(server.url, namespaces=["/chat"], auth={"token": token}, wait_timeout=10)
        assert errors and errors[0]["message"] == "too_many_connections"
        assert "1 connections open" in errors[0]["data"]["message"]
    finally:
        server.close()


@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_a_second_server_cannot_share_the_port(database_url, mode):
    first = LiveServer(database_url, mode)
    try:
        first.start()
        second = subprocess.run(
            [sys.executable, "wsgi.py"],
            cwd=ROOT,
            env=first.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode != 0
        assert "another process is using it" in second.stderr
    finally:
        first.close()
