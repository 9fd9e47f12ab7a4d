"""What one refused send costs the server: its CPU per `rate_limited` ("busy") answer.

    .venv/bin/python bench/refusal_cost.py --mode gevent
    .venv/bin/python bench/refusal_cost.py --mode eventlet --rates 1000 2000 4000

Under a flood a process refuses most sends (app/serving.py, Admission), and what a
refusal costs is what the flood takes from the sends it serves (issue 8: 3x capacity,
two refusals per message served). Builds a fresh database (bench_refusal) with 20
customers, starts `python wsgi.py` on one core (this process, the clients, on the
other), and makes every send a refusal: one send is held in flight behind its room's
row lock, which the script holds, and the server admits one send at a time
(CHAT_SENDS_ALWAYS_ADMITTED=1). Then for each rate it writes sends for 10 s, spread
over the 20 sockets without waiting for answers, and prints the server's CPU (user and
system) per answer. Every answer must be the busy one.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fresh_database  # noqa: E402
from tests.live import LiveServer, wait_for  # noqa: E402
from tests.rawclient import RawClient  # noqa: E402

JWT_SECRET_KEY = "bench-refusal-jwt-secret-not-for-production-0123456789abcdef"
CUSTOMERS = 20


def customer_tokens(database_url: str, n: int) -> list[str]:
    os.environ.update(DATABASE_URL=database_url, JWT_SECRET_KEY=JWT_SECRET_KEY)
    from app import create_app
    from app.services.tokens import start_session
    from app.services.users import register_user

    app = create_app("testing")
    tokens = []
    with app.app_context():
        for i in range(n):
            user = register_user(
                {"email": f"r{i}@example.com", "name": f"Refused {i}", "password": "x" * 12}
            )
            tokens.append(start_session(user)["access_token"])
    return tokens


def cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process `pid`."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["eventlet", "gevent"], default="gevent")
    parser.add_argument("--rates", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    url = fresh_database("bench_refusal")
    tokens = customer_tokens(url, CUSTOMERS)
    cores = sorted(os.sched_getaffinity(0))
    server = LiveServer(
        url,
        args.mode,
        cpus={cores[0]},
        JWT_SECRET_KEY=JWT_SECRET_KEY,
        CHAT_SENDS_ALWAYS_ADMITTED=1,
        CHAT_SHED_AFTER=0.001,
        CHAT_RATE_LIMIT="100000000/10",
    )
    server.start()
    os.sched_setaffinity(0, set(cores[1:]) or set(cores))
    clients = [RawClient(server.url, t) for t in tokens]
    lock = psycopg2.connect(url)
    answers: list[dict] = []
    counted = threading.Lock()

    def answered(ack: dict) -> None:
        with counted:
            answers.append(ack)

    try:
        room = clients[0].call("send_message", {"body": "mine", "client_id": "room"})
        with lock.cursor() as cur:
            cur.execute(
                "SELECT id FROM chat_rooms WHERE id = %s FOR UPDATE",
                (room["message"]["room_id"],),
            )
        clients[0].emit("send_message", {"body": "held", "client_id": "held"})
        time.sleep(0.5)  # the held send is in flight: every other one is refused
        print(f"{args.mode}: {CUSTOMERS} sockets, the server on core {cores[0]}")
        print("| sends/s | answers | server CPU us per refusal | user | system |")
        print("| --- | --- | --- | --- | --- |")
        n = 0
        for rate in args.rates:
            before, count_before = cpu(server.process.pid), len(answers)
            start, sent = time.monotonic(), 0
            while (elapsed := time.monotonic() - start) < args.seconds:
                while sent < int(elapsed * rate):
                    client = clients[sent % CUSTOMERS]
                    payload = {"body": "refuse me", "client_id": f"x-{n}"}
                    client.emit("send_message", payload, answered)
                    sent, n = sent + 1, n + 1
                time.sleep(0.002)
            wait_for(lambda c=count_before, s=sent: len(answers) - c >= s, timeout=10)
            after = cpu(server.process.pid)
            got = len(answers) - count_before
            if any(a.get("ok") or a["error"]["code"] != "rate_limited" for a in answers):
                raise SystemExit("a send was not refused: the bench measured something else")
            user, system = ((a - b) / got * 1e6 for a, b in zip(after, before, strict=True))
            print(f"| {rate} | {got} | {user + system:.0f} | {user:.0f} | {system:.0f} |")
    finally:
        lock.rollback()
        lock.close()
        for c in clients:
            c.close()
        server.close()


if __name__ == "__main__":
    main()
