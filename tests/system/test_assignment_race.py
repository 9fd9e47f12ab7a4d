"""Automatic assignment across two processes (issue 23): 50 conversations arriving at
once on two `python wsgi.py` servers sharing PostgreSQL and Redis, seven agents
online on both. Every conversation gets exactly one assignee, written once, and the
spread is even within one."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import redis
from sqlalchemy import func, select

from tests.conftest import ON_POSTGRES, REDIS_URL
from tests.live import LiveServer, wait_for

pytestmark = pytest.mark.skipif(
    not (ON_POSTGRES and REDIS_URL),
    reason="needs PostgreSQL and Redis: set TEST_DATABASE_URL and REDIS_URL",
)

AGENTS = 7
CONVERSATIONS = 50


@pytest.fixture
def pair(database_url):
    """Servers A and B as shipped (defaults), sharing the database and a clean Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    for pattern in ("chat:*", "LIMITS*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
    servers = [
        LiveServer(database_url, mode, REDIS_URL=REDIS_URL) for mode in ("eventlet", "gevent")
    ]
    try:
        yield [s.start() for s in servers]
    finally:
        for s in servers:
            s.close()


def test_fifty_conversations_at_once_on_two_processes_are_each_assigned_once(app, pair, users):
    from app.extensions import db
    from app.models import ChatRoom, RoomEvent

    a, b = pair
    agents = [users.make("agent", name=f"Agent {n}") for n in range(AGENTS)]
    for n, agent in enumerate(agents):  # each agent online on one of the two processes
        server = a if n % 2 else b  # (the servers sign their own tokens: a login each)
        server.client(server.login(agent.email, agent.password)["access_token"])
    customers = [users.make("customer") for _ in range(CONVERSATIONS)]
    tabs = []
    for n, customer in enumerate(customers):
        server = a if n % 2 else b
        tabs.append(server.client(server.login(customer.email, customer.password)["access_token"]))

    start = threading.Barrier(len(tabs))
    acks = [None] * len(tabs)

    def send(n: int) -> None:
        start.wait()
        acks[n] = tabs[n].call("send_message", {"body": f"help {n}"}, namespace="/chat", timeout=30)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(tabs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(ack and ack["ok"] for ack in acks), [ack for ack in acks if not (ack and ack["ok"])]

    def assigned() -> list[tuple[int, int | None]]:
        with app.app_context():
            rows = db.session.execute(select(ChatRoom.id, ChatRoom.assignee_id)).all()
            db.session.rollback()
            return [tuple(row) for row in rows]

    # a send that found its process assigning leaves its room to the once-a-second look
    assert wait_for(lambda: all(agent for _, agent in assigned()), timeout=20), assigned()
    rooms = assigned()
    assert len(rooms) == CONVERSATIONS
    with app.app_context():
        lines = Counter(
            db.session.scalars(select(RoomEvent.room_id).where(RoomEvent.kind == "assigned")).all()
        )
        waiting = db.session.scalar(
            select(func.count()).select_from(ChatRoom).where(ChatRoom.queued_at.is_not(None))
        )
    assert all(lines[room_id] == 1 for room_id, _ in rooms), lines  # given once, never twice
    assert waiting == 0
    spread = Counter(agent for _, agent in rooms)
    assert set(spread) == {agent.id for agent in agents}
    assert max(spread.values()) - min(spread.values()) <= 1, spread  # 50 / 7: 7 or 8 each
