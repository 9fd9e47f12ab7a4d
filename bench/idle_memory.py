"""Server memory per idle socket: one `python wsgi.py`, 200 idle sockets, then 1,000.

    .venv/bin/python bench/idle_memory.py --mode gevent
    .venv/bin/python bench/idle_memory.py --mode eventlet --repeat   # twice, fresh processes

The figure of the performance issue ("memory per idle socket <= 50 KB, idle-200 against
idle-1000, same process"): builds a fresh database (bench_idle) with 1,000 customers
(`flask seed-scale`: one shared password hash, each customer with a room, as a returning
customer has), mints their access tokens in-process (`start_session`, no scrypt), starts
the server, connects 200 idle WebSockets (tests/rawclient.py, the token in the auth
payload), waits until the server's RSS has not moved for `--quiet` seconds and reads
VmRSS from /proc/PID/status; then connects 800 more to the *same* process, waits again
and reads it again. (RSS at 1,000 - RSS at 200) / 800 is the figure; sign-up and
process start-up are outside it.

The sockets are held by this process: RawClient keeps one reader thread per socket,
which blocks in recv() and costs nothing while idle (a ping every 25 s); connecting
uses `--connect-concurrency` threads, as the kit's load generator does (25). Measured:
about 2 ms of this process's CPU per connect against 5-7 ms of the server's, and none
while the sockets idle, so one client process does not hold the figure back.
`--env NAME=VALUE` hands the server more settings (say GEVENT_TRACK_GREENLET_TREE=0).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scale import fresh_database  # noqa: E402  (common.fresh_database + seed-scale)
from tests.live import LiveServer  # noqa: E402
from tests.rawclient import RawClient  # noqa: E402

DATABASE = "bench_idle"
SECRET_KEY = "bench-idle-memory-secret-key-not-for-production-0123456789abcdef"
JWT_SECRET_KEY = "bench-idle-memory-jwt-secret-not-for-production-0123456789abcdef"
TOKEN_SECONDS = "86400"  # no socket may outlive its token during a run


def customer_tokens(database_url: str, n: int) -> list[str]:
    """An access token for each of `n` customers made by seed-scale (a login each)."""
    os.environ.update(
        DATABASE_URL=database_url,
        JWT_SECRET_KEY=JWT_SECRET_KEY,
        JWT_ACCESS_TOKEN_EXPIRES=TOKEN_SECONDS,
    )
    from sqlalchemy import select

    from app import create_app
    from app.extensions import db
    from app.models import User
    from app.services.tokens import start_session

    app = create_app("testing")  # signs with JWT_SECRET_KEY, as the server will check
    with app.app_context():
        users = db.session.scalars(
            select(User).where(User.role == "customer").order_by(User.id).limit(n)
        ).all()
        tokens = [start_session(user)["access_token"] for user in users]
        db.session.remove()
        db.engine.dispose()
    return tokens


def status_kb(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def wait_quiet(pid: int, quiet: float, timeout: float = 120.0, every: float = 0.25) -> int:
    """VmRSS (KB) once it has not changed for `quiet` seconds (or at `timeout`)."""
    deadline = time.monotonic() + timeout
    last, since = status_kb(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(every)
        now = status_kb(pid)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    print(f"  (RSS still moving after {timeout:.0f} s; taking {last} KB)")
    return last


def connect(url: str, tokens: list[str], concurrency: int) -> tuple[list[RawClient], float]:
    """Open one idle socket per token; the sockets and the wall time it took."""
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        clients = list(pool.map(lambda token: RawClient(url, token), tokens))
    return clients, time.perf_counter() - started


def one_run(url: str, tokens: list[str], args, after_reading=None) -> dict:
    """One fresh server: the two readings. `after_reading(pid, sockets)`, if given, runs
    after each (a profiler's hook)."""
    server = LiveServer(
        url,
        args.mode,
        SECRET_KEY=SECRET_KEY,
        JWT_SECRET_KEY=JWT_SECRET_KEY,
        JWT_ACCESS_TOKEN_EXPIRES=TOKEN_SECONDS,
        **dict(pair.split("=", 1) for pair in args.env),
    )
    clients: list[RawClient] = []
    try:
        server.start()  # inside the try: a server that never got healthy is stopped too
        pid = server.process.pid
        first, rest = tokens[: args.first], tokens[args.first : args.total]
        held, first_s = connect(server.url, first, args.connect_concurrency)
        clients += held
        rss_first = wait_quiet(pid, args.quiet)
        if after_reading:
            after_reading(pid, len(clients))
        held, rest_s = connect(server.url, rest, args.connect_concurrency)
        clients += held
        rss_total = wait_quiet(pid, args.quiet)
        if after_reading:
            after_reading(pid, len(clients))
        alive = sum(c.connected for c in clients)
        if alive != args.total:
            raise RuntimeError(f"only {alive} of {args.total} sockets are still connected")
        return {
            "rss_first": rss_first,
            "rss_total": rss_total,
            "kb_per_socket": (rss_total - rss_first) / (args.total - args.first),
            "first_s": first_s,
            "rest_s": rest_s,
            "client_rss": status_kb(os.getpid()),
            "client_threads": threading.active_count(),
        }
    finally:
        for client in clients:
            client.close()
        server.close()


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="gevent", choices=["gevent", "eventlet"])
    parser.add_argument("--repeat", action="store_true", help="two runs, fresh processes")
    parser.add_argument("--first", type=int, default=200, help="sockets of the first reading")
    parser.add_argument("--total", type=int, default=1000, help="sockets of the second")
    parser.add_argument("--quiet", type=float, default=3.0, help="seconds of unchanged RSS")
    parser.add_argument("--connect-concurrency", type=int, default=25)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="more environment for the server (repeatable), e.g. MALLOC_ARENA_MAX=2",
    )
    return parser.parse_args(argv)


def main() -> None:
    args = arguments()
    url = fresh_database(DATABASE, {"rooms": args.total, "messages": 0, "big_room": 0})
    tokens = customer_tokens(url, args.total)
    print(f"mode {args.mode}: {len(tokens)} customers, server from {ROOT}")
    for run in range(1, 3 if args.repeat else 2):
        r = one_run(url, tokens, args)
        print(
            f"run {run} {args.mode}: RSS at {args.first} {r['rss_first'] / 1024:.1f} MB, "
            f"at {args.total} {r['rss_total'] / 1024:.1f} MB, "
            f"{r['kb_per_socket']:.1f} KB per extra socket; connect "
            f"{args.first} in {r['first_s']:.2f} s, {args.total - args.first} more in "
            f"{r['rest_s']:.2f} s (client: {r['client_rss'] / 1024:.0f} MB RSS, "
            f"{r['client_threads']} threads)",
            flush=True,
        )


if __name__ == "__main__":
    main()
