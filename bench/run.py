"""`make bench`: the project's own benchmark, closed and open loads on PostgreSQL.

Starts `python wsgi.py` (each ASYNC_MODE in turn) on a fresh database, connects
`--customers` customers and one admin over WebSockets (python-socketio clients), and
drives two loads, each for `--seconds`:

- closed: every customer sends its next message when the last one is acked;
- open: the customers together send `--rate` messages a second, whatever the acks do.

For each it prints acked msg/s, ack p50/p99, delivery p50/p99 (send to the admin
hearing it), failures, and the server's and PostgreSQL's CPU milliseconds per acked
message, read from /proc (the server process, and every backend of the database).
Bounded: every wait has a timeout, and the run stops by itself. The generator shares
the machine (and Python's speed): for comparisons with other servers use the kit's
side-by-side script (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from tests.live import LiveServer  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432"
DATABASE = "bench_make"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_of(pids) -> dict[int, float]:
    """CPU seconds (user + system) of each process still alive."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            seconds[pid] = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        except (FileNotFoundError, IndexError, ValueError):
            pass
    return seconds


def cpu_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two readings; a process that appeared in between counts whole."""
    return sum(spent - before.get(pid, 0.0) for pid, spent in after.items())


def backend_pids() -> list[int]:
    with psycopg2.connect(f"{PG}/postgres") as conn, conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (DATABASE,))
        return [row[0] for row in cur.fetchall()]


def fresh_database() -> str:
    return common.fresh_database(DATABASE)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Load:
    def __init__(self, server: LiveServer, customers: int):
        run = uuid.uuid4().hex[:6]
        self.sent: dict[str, float] = {}
        self.acks: list[float] = []
        self.deliveries: list[float] = []
        self.failures = 0
        self.lock = threading.Lock()
        admin_email = f"admin-{run}@example.com"
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "create-admin", "--email"]
            + [admin_email, "--name", "Bench Admin", "--password", "bench-admin-password"],
            cwd=ROOT,
            env=server.env,
            check=True,
            capture_output=True,
        )
        admin = server.client(
            server.login(admin_email, "bench-admin-password")["access_token"],
            transports=["websocket"],
        )
        admin.on("new_message", self.heard, namespace="/chat")
        self.sockets = []
        for n in range(customers):
            tokens = server.register_and_login(f"c{n}-{run}@example.com", f"Customer {n}")
            self.sockets.append(server.client(tokens["access_token"], transports=["websocket"]))

    def heard(self, message):
        with self.lock:
            sent = self.sent.get(message.get("client_id") or "")
            if sent is not None:
                self.deliveries.append(time.perf_counter() - sent)

    def send(self, sock) -> None:
        client_id = uuid.uuid4().hex
        started = time.perf_counter()
        with self.lock:
            self.sent[client_id] = started
        try:
            ack = sock.call(
                "send_message", {"body": "bench", "client_id": client_id}, namespace="/chat"
            )
            ok = ack.get("ok") is True
        except Exception:
            ok = False
        with self.lock:
            if ok:
                self.acks.append(time.perf_counter() - started)
            else:
                self.failures += 1

    def closed(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds

        def loop(sock):
            while time.monotonic() < deadline:
                self.send(sock)

        threads = [threading.Thread(target=loop, args=(s,)) for s in self.sockets]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 30)

    def open(self, seconds: float, rate: float) -> None:
        interval, n, started = 1 / rate, 0, time.monotonic()
        threads = []
        while time.monotonic() - started < seconds:
            sock = self.sockets[n % len(self.sockets)]
            thread = threading.Thread(target=self.send, args=(sock,))
            thread.start()
            threads.append(thread)
            n += 1
            time.sleep(max(0.0, started + n * interval - time.monotonic()))
        for t in threads:
            t.join(timeout=30)


def measure(server: LiveServer, customers: int, kind: str, seconds: float, rate: float):
    load = Load(server, customers)
    server_pid = server.process.pid
    cpu0, pg0, t0 = cpu_of([server_pid]), cpu_of(backend_pids()), time.monotonic()
    if kind == "closed":
        load.closed(seconds)
    else:
        load.open(seconds, rate)
    time.sleep(0.5)  # the last deliveries
    elapsed = time.monotonic() - t0
    acked = len(load.acks)
    server_ms = cpu_since(cpu0, cpu_of([server_pid])) * 1000 / max(acked, 1)
    pg_ms = cpu_since(pg0, cpu_of(backend_pids())) * 1000 / max(acked, 1)
    for sock in load.sockets:
        sock.disconnect()
    ms = [a * 1000 for a in load.acks]
    delivered = [d * 1000 for d in load.deliveries]
    return (
        f"| {kind} | {acked / elapsed:.0f} | {statistics.median(ms) if ms else 0:.1f} / "
        f"{percentile(ms, 99):.1f} | {statistics.median(delivered) if delivered else 0:.1f} / "
        f"{percentile(delivered, 99):.1f} | {load.failures} | {server_ms:.2f} | {pg_ms:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=100, help="open load, msg/s")
    parser.add_argument("--modes", default="gevent,eventlet")
    args = parser.parse_args()
    url = fresh_database()
    print("| mode | load | acked msg/s | ack p50 / p99 ms | delivery p50 / p99 ms |", end="")
    print(" failed | server CPU ms/msg | PostgreSQL CPU ms/msg |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode in args.modes.split(","):
        server = LiveServer(
            url, mode, CHAT_RATE_LIMIT="1000000/1", CHAT_EVENT_RATE_LIMIT="1000000/1"
        )
        server.start()
        try:
            for kind in ("closed", "open"):
                row = measure(server, args.customers, kind, args.seconds, args.rate)
                print(f"| {mode} {row}", flush=True)
        finally:
            server.close()


if __name__ == "__main__":
    main()
