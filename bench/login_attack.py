"""Benchmark: does a password-guessing attack slow down everybody else's socket?

Starts `python wsgi.py` itself (both ASYNC_MODEs, PostgreSQL), then, for each mode:

1. quiet: one admin socket asks `history` back to back for `--seconds`; its ack
   latency is the baseline;
2. attack, unthrottled: `--attackers` threads post wrong passwords for an account in a
   loop (the login limits raised out of the way, so every attempt hashes), while the
   admin socket measures again;
3. attack, throttled: the same with the default login limits (attempts past the
   limit are answered 429 without hashing).

It prints the admin's ack p50 / p95 / max and the login attempts per second. Bounded:
every phase lasts `--seconds`, every request has a timeout.

    python bench/login_attack.py --database-url postgresql://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402
from tests.live import LiveServer  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(server: LiveServer, admin_token: str, room_id: int, seconds: float) -> list[float]:
    sio = server.client(admin_token, transports=["websocket"])
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        ack = sio.call("history", {"room_id": room_id, "limit": 1}, namespace="/chat", timeout=10)
        assert ack["ok"], ack
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(0.01)
    sio.disconnect()
    return latencies


def attack(url: str, email: str, seconds: float, counts) -> None:
    """One attacker, in a process of its own: the measuring socket must not share a
    GIL with the attackers, or the figure would be the load generator's own stall."""
    session = requests.Session()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            body = {"email": email, "password": "guess-guess"}
            session.post(f"{url}/api/auth/login", json=body, timeout=10)
            with counts.get_lock():
                counts.value += 1
        except requests.RequestException:
            pass


def run_mode(mode: str, database_url: str, seconds: float, attackers: int) -> list[str]:
    rows = []
    for label, limits in (
        ("unthrottled", {"LOGIN_RATE_LIMIT_ACCOUNT": "100000/60"}),
        ("throttled", {}),
    ):
        server = LiveServer(database_url, mode, CHAT_EVENT_RATE_LIMIT="100000/10", **limits)
        server.start()
        try:
            stamp = f"{mode}-{label}-{int(time.time())}"
            customer = server.register_and_login(f"cust-{stamp}@example.com", "Bench Customer")
            sio = server.client(customer["access_token"], transports=["websocket"])
            room_id = sio.call("send_message", {"body": "hi"}, namespace="/chat")["message"][
                "room_id"
            ]
            sio.disconnect()
            victim = server.register_and_login(f"victim-{stamp}@example.com", "Victim")["user"]
            admin = create_admin(server, database_url, stamp)
            token = server.login(admin, "admin-bench-password")["access_token"]
            if label == "unthrottled":
                quiet = measure(server, token, room_id, seconds)
                rows.append(row(mode, "quiet", quiet, 0, seconds))
            spawn = multiprocessing.get_context("spawn")
            counts = spawn.Value("i", 0)
            target = (server.url, victim["email"], seconds + 1, counts)
            procs = [spawn.Process(target=attack, args=target) for _ in range(attackers)]
            for p in procs:
                p.start()
            time.sleep(1.0)  # the attackers are up and looping
            loud = measure(server, token, room_id, seconds)
            for p in procs:
                p.join(timeout=30)
            attempts = counts.value
            rows.append(row(mode, f"{attackers} attackers, {label}", loud, attempts, seconds + 1))
        finally:
            server.close()
    return rows


def create_admin(server: LiveServer, database_url: str, stamp: str) -> str:
    email = f"admin-{stamp}@example.com"
    env = {**server.env, "DATABASE_URL": database_url}
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "create-admin"]
        + ["--email", email, "--name", "Bench Admin", "--password", "admin-bench-password"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return email


def row(mode: str, phase: str, latencies: list[float], attempts: int, seconds: float) -> str:
    return (
        f"| {mode} | {phase} | {len(latencies)} | {statistics.median(latencies):.1f} | "
        f"{percentile(latencies, 95):.1f} | {max(latencies):.1f} | {attempts / seconds:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--attackers", type=int, default=4)
    parser.add_argument("--modes", default="eventlet,gevent")
    args = parser.parse_args()
    common.migrate(args.database_url)
    print("| mode | phase | acks | ack p50 ms | p95 ms | max ms | login attempts/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for mode in args.modes.split(","):
        for line in run_mode(mode, args.database_url, args.seconds, args.attackers):
            print(line, flush=True)


if __name__ == "__main__":
    main()
