"""Engine.IO's heartbeat as `python wsgi.py` runs it (both modes): every socket is pinged
each interval, a client that answers stays connected, and a client that went silent is
closed once its pong is overdue and is announced offline to the admins.

The server runs with a 1 s interval and a 1 s timeout (SOCKETIO_PING_INTERVAL and
SOCKETIO_PING_TIMEOUT) so the test takes seconds, not the default 45.
"""

from __future__ import annotations

import time

import pytest

from tests.live import LiveServer, heard, wait_for
from tests.rawclient import RawClient

MODES = ["eventlet", "gevent"]
INTERVAL = 1.0
TIMEOUT = 1.0


@pytest.fixture(params=MODES)
def live(request, database_url, users):
    server = LiveServer(
        database_url,
        request.param,
        SOCKETIO_PING_INTERVAL=INTERVAL,
        SOCKETIO_PING_TIMEOUT=TIMEOUT,
    )
    try:
        yield server.start()
    finally:
        server.close()


def customer_token(live, users, name: str) -> tuple[int, str]:
    customer = users.make("customer", name=name)
    return customer.id, live.login(customer.email, customer.password)["access_token"]


def test_idle_sockets_are_pinged_every_interval_and_stay(live, users):
    clients = [RawClient(live.url, customer_token(live, users, f"Idle {i}")[1]) for i in range(4)]
    try:
        time.sleep(5.6 * INTERVAL)
        for client in clients:
            assert client.connected
            # One ping an interval after each pong: 5 in 5.6 s on a quiet machine; a
            # loaded one stretches each round trip, so at least 3.
            assert 3 <= client.pings <= 7, client.pings
        # A socket that idled through several pings still gets what is sent to it.
        answer = clients[0].call("list_rooms", {})
        assert answer["ok"] is True, answer
    finally:
        for client in clients:
            client.close()


def test_a_silent_client_is_closed_once_its_pong_is_overdue(live, users):
    admin = users.make("admin", name="Heartbeat Admin")
    admin_socket = live.client(live.login(admin.email, admin.password)["access_token"])
    silent_id, silent_token = customer_token(live, users, "Silent")
    _, talking_token = customer_token(live, users, "Talking")
    talking = RawClient(live.url, talking_token)
    opened = time.monotonic()
    silent = RawClient(live.url, silent_token, answer_pings=False)
    try:
        assert wait_for(
            lambda: {"user_id": silent_id, "online": True} in heard(admin_socket, "presence"),
            timeout=5,
        )
        assert wait_for(lambda: not silent.connected, timeout=10 * (INTERVAL + TIMEOUT))
        # It was pinged, did not answer, and was closed after the interval plus the
        # timeout (the service task looks at each socket within another TIMEOUT).
        assert silent.pings >= 1
        waited = silent.closed_at - opened
        assert INTERVAL + TIMEOUT - 0.3 <= waited <= INTERVAL + 3 * TIMEOUT + 2, waited
        # The server forgot it: the admins hear that the customer went offline.
        assert wait_for(
            lambda: {"user_id": silent_id, "online": False} in heard(admin_socket, "presence"),
            timeout=5,
        )
        # The client that answers its pings is untouched.
        assert talking.connected
        assert talking.call("list_rooms", {})["ok"] is True
    finally:
        silent.close()
        talking.close()
