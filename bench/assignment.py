"""Automatic assignment under a burst (issue 23): `--conversations` new conversations
(500) arriving over `--seconds` (10) across two `python wsgi.py` processes that share
PostgreSQL and Redis, with `--agents` agents (10) online, half on each process.

    .venv/bin/python bench/assignment.py [--conversations 500 --seconds 10 --agents 10]

Runs the burst twice on fresh databases: with automatic assignment on (the default)
and off (the team's setting), and prints for each: acked conversations, ack p50/p99,
how long until every conversation had its assignee, and the CPU milliseconds per
conversation of both servers and of PostgreSQL's backends (from /proc). Then checks
the promise: every conversation has exactly one assignee and one `assigned` line, and
the agents' counts are within one of even. Each agent's capacity is set (by the
admins' own PATCH /api/staff) to hold an even share, as a team expecting such a burst
would; at the default of 10 the rest would wait in the queue.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import psycopg2
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from bench.run import cpu_of, cpu_since  # noqa: E402
from tests.live import LiveServer  # noqa: E402
from tests.rawclient import RawClient  # noqa: E402

DATABASE = "bench_assign"
REDIS_URL = "redis://127.0.0.1:6379/3"  # its own Redis database: the tests use 0
PASSWORD = "bench-password-1"


def accounts(url: str, agents: int, customers: int) -> None:
    """An admin, the agents and the customers, in bulk (one cheap hash for all: logins
    are not what is measured)."""
    from werkzeug.security import generate_password_hash

    digest = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    rows = [("admin@bench.example", "Admin", "admin")]
    rows += [(f"agent{n}@bench.example", f"Agent {n}", "agent") for n in range(agents)]
    rows += [(f"c{n}@bench.example", f"Customer {n}", "customer") for n in range(customers)]
    with closing(psycopg2.connect(url)) as conn, conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO users (email, name, role, password_hash, created_at) "
            "VALUES (%s, %s, %s, %s, now())",
            [(e, n, r, digest) for e, n, r in rows],
        )


def backends() -> list[int]:
    with closing(psycopg2.connect(f"{common.PG}/postgres")) as conn, conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (DATABASE,))
        return [row[0] for row in cur.fetchall()]


def burst(args, auto_assign: bool) -> dict:
    url = common.fresh_database(DATABASE)
    redis.Redis.from_url(REDIS_URL).flushdb()
    accounts(url, args.agents, args.conversations)
    servers = [LiveServer(url, "eventlet", REDIS_URL=REDIS_URL).start() for _ in range(2)]
    try:
        admin = servers[0].login("admin@bench.example", PASSWORD)["access_token"]
        headers = {"Authorization": f"Bearer {admin}"}
        staff = requests.get(servers[0].url + "/api/staff", headers=headers, timeout=10).json()
        share = -(-args.conversations // args.agents)  # an even share, rounded up
        for member in staff["staff"]:
            if member["role"] == "agent":
                answer = requests.patch(
                    f"{servers[0].url}/api/staff/{member['id']}",
                    json={"capacity": share},
                    headers=headers,
                    timeout=10,
                )
                assert answer.status_code == 200, answer.text
        if not auto_assign:
            setting = RawClient(servers[0].url, admin)
            saved = setting.call("save_team_settings", {"auto_assign": False})
            assert saved["ok"], saved
            setting.close()
            time.sleep(6)  # the other process's copy of the settings refreshes every 5 s
        agents = []
        for n in range(args.agents):
            server = servers[n % 2]
            token = server.login(f"agent{n}@bench.example", PASSWORD)["access_token"]
            agents.append(RawClient(server.url, token))
        customers = []
        for n in range(args.conversations):
            server = servers[n % 2]
            token = server.login(f"c{n}@bench.example", PASSWORD)["access_token"]
            customers.append(RawClient(server.url, token))

        acks: list[tuple[float, dict]] = [None] * len(customers)
        pids = [s.process.pid for s in servers]
        before_servers, before_pg = cpu_of(pids), cpu_of(backends())
        started = time.monotonic()
        gap = args.seconds / len(customers)

        def send(n: int) -> None:
            t = time.monotonic()
            answer = customers[n].call("send_message", {"body": f"help {n}"}, timeout=30)
            acks[n] = (time.monotonic() - t, answer)

        threads = []
        for n in range(len(customers)):
            delay = started + n * gap - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            thread = threading.Thread(target=send, args=(n,))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        sent_in = time.monotonic() - started

        def unassigned() -> int:
            with closing(psycopg2.connect(url)) as conn, conn, conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM chat_rooms WHERE assignee_id IS NULL")
                return cur.fetchone()[0]

        deadline = time.monotonic() + 30
        while auto_assign and unassigned() and time.monotonic() < deadline:
            time.sleep(0.05)
        all_assigned_at = time.monotonic() - started
        server_cpu = cpu_since(before_servers, cpu_of(pids))
        pg_cpu = cpu_since(before_pg, cpu_of(backends()))
        with closing(psycopg2.connect(url)) as conn, conn, conn.cursor() as cur:
            cur.execute("SELECT id, assignee_id FROM chat_rooms")
            rooms = cur.fetchall()
            cur.execute("SELECT room_id FROM room_events WHERE kind = 'assigned'")
            lines = Counter(row[0] for row in cur.fetchall())
        for client in agents + customers:
            client.close()
    finally:
        for server in servers:
            server.close()
    ok = [wait for wait, answer in acks if answer.get("ok")]
    waits = sorted(wait for wait, _ in acks)
    spread = Counter(assignee for _, assignee in rooms if assignee is not None)
    return {
        "auto_assign": auto_assign,
        "acked": len(ok),
        "sent_in": sent_in,
        "ack_p50": statistics.median(waits) * 1000,
        "ack_p99": waits[int(len(waits) * 0.99) - 1] * 1000,
        "all_assigned_at": all_assigned_at if auto_assign else None,
        "server_ms": server_cpu * 1000 / len(customers),
        "pg_ms": pg_cpu * 1000 / len(customers),
        "rooms": len(rooms),
        "unassigned": sum(1 for _, a in rooms if a is None),
        "lines_not_one": sum(1 for room_id, _ in rooms if lines[room_id] != 1),
        "spread": (min(spread.values()), max(spread.values())) if spread else None,
        "agents_used": len(spread),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--agents", type=int, default=10)
    args = parser.parse_args()
    results = [burst(args, auto_assign=True), burst(args, auto_assign=False)]
    print(
        "| automatic assignment | acked | sent in | ack p50 / p99 | every room assigned after "
        "| server CPU ms / conversation | PostgreSQL CPU ms / conversation | unassigned "
        "| rooms without exactly one line | spread (min-max per agent) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        assigned = f"{r['all_assigned_at']:.1f} s" if r["all_assigned_at"] is not None else "-"
        spread = (
            f"{r['spread'][0]}-{r['spread'][1]} ({r['agents_used']} agents)" if r["spread"] else "-"
        )
        print(
            f"| {'on' if r['auto_assign'] else 'off'} | {r['acked']}/{r['rooms']} "
            f"| {r['sent_in']:.1f} s "
            f"| {r['ack_p50']:.0f} / {r['ack_p99']:.0f} ms | {assigned} | {r['server_ms']:.2f} "
            f"| {r['pg_ms']:.2f} | {r['unassigned']} | "
            f"{r['lines_not_one'] if r['auto_assign'] else '-'} | {spread} |"
        )
    on = results[0]
    assert on["unassigned"] == 0 and on["lines_not_one"] == 0, on
    assert on["spread"][1] - on["spread"][0] <= 1, on


if __name__ == "__main__":
    main()
