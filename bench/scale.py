"""Benchmark: do the hot paths stay as fast with 10,000 rooms and 1,000,000 messages?

For each size, a fresh PostgreSQL database is built by the migrations and filled by
`flask seed-scale`; then, in-process (Flask-SocketIO's test client, so no network and
no other load), each operation runs `--repeat` times and its median is printed:

    admin connect | first list_rooms page | next page (cursor) | q search (a name; a
    word in one message; a word in every message) | a customer's history | a send into
    room 1 (the big room)

    python bench/scale.py                 # 10 rooms against 10,000 rooms (about 2 minutes)

Drops and recreates the databases scale_small and scale_large on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.cli import FAMILY_NAMES, FIRST_NAMES  # noqa: E402
from bench import common  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432"
# Customer 7 of `seed-scale` (its names: app/cli.py), in both databases.
F, L = len(FIRST_NAMES), len(FAMILY_NAMES)
SEARCHED = f"{FIRST_NAMES[7 % F]} {FAMILY_NAMES[(7 // F) % L]}".lower()

SIZES = {
    "small": {"rooms": 10, "messages": 1_000, "big_room": 100},
    "large": {"rooms": 10_000, "messages": 1_000_000, "big_room": 100_000},
}


def fresh_database(name: str, size: dict) -> str:
    url = common.fresh_database(name)
    env = {**os.environ, "DATABASE_URL": url, "APP_CONFIG": "testing"}
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    seed = ["seed-scale", "--rooms", str(size["rooms"]), "--messages", str(size["messages"])]
    seed += ["--big-room", str(size["big_room"])]
    subprocess.run([*flask, *seed], cwd=ROOT, env=env, check=True, capture_output=True)
    # The bulk insert's dirty pages (a million rows, and their full-text index) would
    # otherwise be written out by the checkpointer while the operations are timed.
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CHECKPOINT")
    conn.close()
    return url


def median_ms(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(url: str, repeat: int) -> dict[str, float]:
    os.environ["DATABASE_URL"] = url
    os.environ["CHAT_RATE_LIMIT"] = "1000000/1"
    os.environ["CHAT_EVENT_RATE_LIMIT"] = "1000000/1"
    os.environ["CHAT_MAX_SOCKETS_PER_USER"] = "100000"
    from app import create_app
    from app.extensions import db, socketio
    from app.models import ChatRoom, User
    from app.services.tokens import start_session
    from app.services.users import register_user

    app = create_app("testing")
    with app.app_context():
        admin = register_user(
            {"email": "scale-admin@example.com", "password": "scale-password", "name": "A"},
            role="admin",
        )
        admin_token = start_session(admin)["access_token"]
        room2 = db.session.get(ChatRoom, 2)
        customer_token = start_session(db.session.get(User, room2.customer_id))["access_token"]

    def client(token):
        return socketio.test_client(app, namespace="/chat", auth={"token": token})

    def call(sock, event, payload):
        ack = sock.emit(event, payload, namespace="/chat", callback=True)
        assert ack["ok"], ack
        return ack

    admin_sock, customer_sock = client(admin_token), client(customer_token)
    first = call(admin_sock, "list_rooms", {"limit": 5})  # 10 rooms still have a page 2
    # One message with a word no other has, in both databases: the text search's
    # selective case. Every seeded message holds "scale": its worst case.
    call(admin_sock, "send_message", {"room_id": 5, "body": "Parcel zebra4417 is on its way"})
    opened = []

    def connect_admin():
        opened.append(client(admin_token))

    figures = {
        "admin connect": median_ms(connect_admin, repeat),
        "first list_rooms page": median_ms(
            lambda: call(admin_sock, "list_rooms", {"limit": 10}),
            repeat,  # 10 rooms either way
        ),
        "next page (cursor)": median_ms(
            lambda: call(admin_sock, "list_rooms", {"limit": 5, "before": first["next"]}),
            repeat,
        ),
        "q search, a name": median_ms(  # one customer's name: the same single match either way
            lambda: call(admin_sock, "list_rooms", {"q": SEARCHED, "limit": 50}), repeat
        ),
        "q search, a word in one message": median_ms(
            lambda: call(admin_sock, "list_rooms", {"q": "zebra4417", "limit": 50}), repeat
        ),
        "q search, a word in every message": median_ms(
            lambda: call(admin_sock, "list_rooms", {"q": "scale", "limit": 50}), repeat
        ),
        "customer history": median_ms(
            lambda: call(customer_sock, "history", {"room_id": 2}), repeat
        ),
        "send into room 1": median_ms(
            lambda: call(admin_sock, "send_message", {"room_id": 1, "body": "scale reply"}),
            repeat,
        ),
    }
    for sock in [admin_sock, customer_sock, *opened]:
        sock.disconnect(namespace="/chat")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--size", choices=sorted(SIZES), help="measure one size (a subprocess)")
    args = parser.parse_args()
    if args.size:  # one size per process: each needs an app of its own
        url = fresh_database(f"scale_{args.size}", SIZES[args.size])
        for name, ms in measure(url, args.repeat).items():
            print(f"{name}\t{ms:.2f}")
        return
    results = {}
    for size in ("small", "large"):
        out = subprocess.run(
            [sys.executable, __file__, "--size", size, "--repeat", str(args.repeat)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[size] = dict(line.split("\t") for line in out.strip().splitlines())
    print("| operation | 10 rooms, ms | 10,000 rooms / 1 M messages, ms | ratio |")
    print("| --- | --- | --- | --- |")
    for name, small in results["small"].items():
        large = results["large"][name]
        ratio = float(large) / float(small)
        print(f"| {name} | {float(small):.2f} | {float(large):.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
