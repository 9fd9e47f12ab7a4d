"""A soak: `python wsgi.py` for `--minutes` at half its capacity, sockets coming and going.

    python bench/soak.py                      # 10 minutes, gevent
    python bench/soak.py --minutes 2 --mode eventlet

Builds a fresh database (bench_soak), starts the server with CHAT_STATS_EVERY=60 (a
`stats` line a minute on its output: RSS, open file descriptors, pool checkouts, the
registry's size, the sockets connected), measures the capacity (closed loop, 5 s),
then offers half of it while one socket in ten is closed and another opened every
second. Every minute it prints the server's stats beside the sockets the generator
holds; at the end, each figure's first and last minute. Nothing should grow, and the
registry should hold exactly the sockets that are connected.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from tests.live import LiveServer  # noqa: E402
from tests.rawclient import RawClient, Refused  # noqa: E402

STATS = re.compile(r"^stats (.*)$", re.M)


def accounts(server: LiveServer, n: int) -> list[str]:
    tokens = []
    for i in range(n):
        email = f"soak{i}-{int(time.time())}@example.com"
        tokens.append(server.register_and_login(email, f"Soak {i}")["access_token"])
    return tokens


def capacity(url: str, tokens: list[str], seconds: float = 5.0) -> float:
    clients = [RawClient(url, t) for t in tokens[:20]]
    done, count = threading.Event(), [0]

    def run(i, client):
        n = 0
        while not done.is_set():
            n += 1
            try:
                if client.call("send_message", {"body": "cap", "client_id": f"cap-{i}-{n}"})["ok"]:
                    count[0] += 1
            except (TimeoutError, ConnectionError):
                return

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    done.set()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    return count[0] / seconds


def last_stats(server: LiveServer) -> dict[str, str]:
    found = STATS.findall(server.output())
    return dict(kv.split("=", 1) for kv in found[-1].split()) if found else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--mode", default="gevent", choices=["gevent", "eventlet"])
    parser.add_argument("--sockets", type=int, default=100)
    args = parser.parse_args()

    url = common.fresh_database("bench_soak")
    server = LiveServer(url, args.mode, CHAT_STATS_EVERY=60, CHAT_RATE_LIMIT="1000000/10").start()
    try:
        tokens = accounts(server, args.sockets)
        rate = capacity(server.url, tokens) / 2
        print(f"capacity measured; offering {rate:.0f} msg/s for {args.minutes} minutes")
        sockets: list[RawClient | None] = [None] * len(tokens)
        lock = threading.Lock()
        acked, failed = [0], [0]
        stop = threading.Event()

        def open_socket(i: int) -> None:
            try:
                client = RawClient(server.url, tokens[i])
            except Refused:
                failed[0] += 1
                return
            with lock:
                sockets[i] = client

        def churn() -> None:  # one socket in ten replaced every second
            while not stop.wait(1.0):
                for i in random.sample(range(len(tokens)), len(tokens) // 10):
                    with lock:
                        old, sockets[i] = sockets[i], None
                    if old is not None:
                        old.close()
                    open_socket(i)

        def answered(ack: dict) -> None:
            if ack.get("ok"):
                acked[0] += 1
            else:
                failed[0] += 1

        for i in range(len(tokens)):
            open_socket(i)
        threading.Thread(target=churn, daemon=True).start()
        started, n, next_report = time.monotonic(), 0, 60.0
        rows = []
        while time.monotonic() - started < args.minutes * 60:
            elapsed = time.monotonic() - started
            while n < int(elapsed * rate):
                with lock:
                    live = [s for s in sockets if s is not None and s.connected]
                if live:
                    live[n % len(live)].emit(
                        "send_message", {"body": f"soak {n}", "client_id": f"soak-{n}"}, answered
                    )
                n += 1
            if elapsed >= next_report:
                next_report += 60
                with lock:
                    held = sum(1 for s in sockets if s is not None and s.connected)
                time.sleep(0.5)  # let the server's minute line land
                stats = last_stats(server)
                rows.append((round(elapsed / 60), held, stats))
                print(f"minute {rows[-1][0]}: generator holds {held} sockets; server {stats}")
            time.sleep(0.002)
        stop.set()
        print(f"sent {n}, acked ok {acked[0]}, failed {failed[0]}")
        print("| minute | sockets held | " + " | ".join(rows[0][2]) + " |")
        print("| --- | --- | " + " | ".join("---" for _ in rows[0][2]) + " |")
        for minute, held, stats in rows:
            print(f"| {minute} | {held} | " + " | ".join(stats.values()) + " |")
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
    finally:
        server.close()


if __name__ == "__main__":
    main()
