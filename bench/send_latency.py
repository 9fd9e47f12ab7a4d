"""Benchmark: acknowledgement and delivery latency of `send_message`, and throughput.

Starts nothing itself: point it at a running server (`python wsgi.py`, any
ASYNC_MODE, any database) whose rate limit allows the load, for example

    CHAT_RATE_LIMIT=100000/10 APP_CONFIG=production SECRET_KEY=... JWT_SECRET_KEY=... \\
        DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bench python wsgi.py
    python bench/send_latency.py --url http://127.0.0.1:5000 --admin-email a@x --admin-password ...

It registers `--customers` fresh customers, connects each over a WebSocket, and has
each send `--messages` messages one after another (each waits for its ack), while one
admin socket listens. It reports the ack latency (send to ack), the delivery latency
(send to the admin hearing it), and messages per second. Bounded: every wait has a
timeout and the run stops by itself.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid

import requests
import socketio


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def login(url: str, email: str, password: str) -> str:
    r = requests.post(
        f"{url}/api/auth/login", json={"email": email, "password": password}, timeout=10
    )
    r.raise_for_status()
    return r.json()["access_token"]


def connect(url: str, token: str) -> socketio.Client:
    sio = socketio.Client(reconnection=False)
    sio.connect(
        url, namespaces=["/chat"], auth={"token": token}, transports=["websocket"], wait_timeout=10
    )
    return sio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--admin-email", required=True)
    parser.add_argument("--admin-password", required=True)
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--messages", type=int, default=50)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    sent_at: dict[str, float] = {}
    delivered: dict[str, float] = {}
    lock = threading.Lock()

    admin = connect(args.url, login(args.url, args.admin_email, args.admin_password))

    def on_message(message):
        with lock:
            if message.get("client_id") in sent_at:
                delivered[message["client_id"]] = time.perf_counter()

    admin.on("new_message", on_message, namespace="/chat")

    customers = []
    for i in range(args.customers):
        email = f"bench-{run}-{i}@example.com"
        requests.post(
            f"{args.url}/api/auth/register",
            json={"email": email, "password": "bench-password", "name": f"Bench {i}"},
            timeout=10,
        ).raise_for_status()
        customers.append(connect(args.url, login(args.url, email, "bench-password")))

    acks: list[float] = []
    failures = []

    def customer_loop(k: int, sio: socketio.Client) -> None:
        for n in range(args.messages):
            client_id = f"{run}-{k}-{n}"
            start = time.perf_counter()
            with lock:
                sent_at[client_id] = start
            ack = sio.call(
                "send_message",
                {"body": f"benchmark {n}", "client_id": client_id},
                namespace="/chat",
                timeout=30,
            )
            elapsed = time.perf_counter() - start
            with lock:
                (acks.append(elapsed) if ack.get("ok") else failures.append(ack))

    began = time.perf_counter()
    threads = [threading.Thread(target=customer_loop, args=(k, s)) for k, s in enumerate(customers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - began
    deadline = time.monotonic() + 10
    while len(delivered) < len(acks) and time.monotonic() < deadline:
        time.sleep(0.05)

    delivery = [delivered[c] - sent_at[c] for c in delivered]
    total = args.customers * args.messages
    print(f"{args.customers} customers x {args.messages} messages = {total} sends in {wall:.2f} s")
    print(f"throughput: {len(acks) / wall:.0f} acknowledged messages/s; failures: {len(failures)}")
    for name, values in (("ack", acks), ("delivery to admin", delivery)):
        if values:
            ms = [v * 1000 for v in values]
            print(
                f"{name} latency ms: p50 {percentile(ms, 50):.1f}  p95 {percentile(ms, 95):.1f}"
                f"  p99 {percentile(ms, 99):.1f}  max {max(ms):.1f}  mean {statistics.mean(ms):.1f}"
            )
    print(f"delivered to the admin: {len(delivered)} of {len(acks)}")
    for sio in [*customers, admin]:
        sio.disconnect()


if __name__ == "__main__":
    main()
