"""Benchmark: what an index costs PostgreSQL on every send.

Makes a fresh PostgreSQL database (`index_cost` on 127.0.0.1:5432) with the
migrations, then for each variant of one index sends `--sends` messages through
`services.messages.send_message`, in-process, into 50 rooms. The variants take turns
for `--rounds` rounds; each line gives the database backends' CPU (from /proc) per send
and the share of the rooms' row updates that were HOT (no new index entries).

    python bench/index_cost.py --index body       # the message-text search's GIN index
    python bench/index_cost.py --index activity   # the rooms' activity-time index

Each takes about 3 minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

# Per index: its name, the statement that makes it, and the variants (None: no index;
# else what follows the CREATE statement).
INDEXES = {
    "body": (
        "ix_messages_body_fts",
        "CREATE INDEX ix_messages_body_fts ON messages"
        " USING gin (to_tsvector('simple'::regconfig, body))",
        {
            "none": None,
            "GIN, defaults (the migration's)": "",
            "GIN, gin_pending_list_limit = 32 MB": " WITH (gin_pending_list_limit = 32768)",
            "GIN, fastupdate = off": " WITH (fastupdate = off)",
        },
    ),
    "activity": (
        "ix_chat_rooms_activity",
        "CREATE INDEX ix_chat_rooms_activity ON chat_rooms (last_activity_at, id)",
        {"none": None, "(last_activity_at, id)": ""},
    ),
}
BODIES = [
    "Hi! My order #4471 arrived today but the lid of the teapot is cracked.",
    "Do you ship to Norway? The checkout only lists EU countries.",
    "Under Settings, then Account, you can change it; we send a confirmation link.",
    "Thanks, that worked. One more question about the invoice for last month.",
]
TICK = os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--index", choices=sorted(INDEXES), default="body")
    args = parser.parse_args()
    index_name, create, variants = INDEXES[args.index]
    url = common.fresh_database("index_cost")
    os.environ["DATABASE_URL"] = url
    os.environ["CHAT_RATE_LIMIT"] = "1000000000/1"
    from sqlalchemy import text

    from app import create_app
    from app.extensions import db
    from app.services.messages import send_message
    from app.services.users import register_user

    def backend_cpu() -> float:
        pids = db.session.scalars(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).all()
        db.session.commit()  # pg_stat_activity is a snapshot per transaction
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / TICK

    def room_updates() -> tuple[int, int]:
        """chat_rooms' row updates so far, and how many of them were HOT. A backend
        reports its counts when it ends (or once a second at most), so the pool's
        connections are closed first."""
        db.session.commit()
        db.engine.dispose()
        time.sleep(1.5)
        row = db.session.execute(
            text(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
                " WHERE relname = 'chat_rooms'"
            )
        ).one()
        db.session.commit()
        return row[0], row[1]

    def hot_share(before: tuple[int, int], after: tuple[int, int]) -> str:
        updated, hot = after[0] - before[0], after[1] - before[1]
        return f"{hot / updated:.0%}" if updated else "none"

    app = create_app("testing")
    with app.app_context():
        customers = [
            register_user(
                {"email": f"c{i}@example.com", "password": "password-123", "name": f"C {i}"}
            )
            for i in range(50)
        ]
        for customer in customers:
            send_message(customer, {"body": "first"})
        results: dict[str, list[float]] = {name: [] for name in variants}
        for round_ in range(args.rounds):
            for name, options in variants.items():
                db.session.execute(text(f"DROP INDEX IF EXISTS {index_name}"))
                if options is not None:
                    db.session.execute(text(create + options))
                db.session.commit()
                db.session.execute(text("CHECKPOINT"))
                db.session.commit()
                updates = room_updates()
                before = backend_cpu()
                for i in range(args.sends):
                    body = f"{BODIES[i % len(BODIES)]} ({round_}-{i})"
                    send_message(customers[i % len(customers)], {"body": body})
                per_send = (backend_cpu() - before) / args.sends * 1000
                results[name].append(per_send)
                hot = hot_share(updates, room_updates())
                print(
                    f"round {round_ + 1}: {name}: {per_send:.3f} ms, {hot} of room updates HOT",
                    flush=True,
                )
    print(f"| {index_name} | PostgreSQL CPU ms per send, median |")
    print("| --- | --- |")
    for name, figures in results.items():
        print(f"| {name} | {statistics.median(figures):.2f} |")


if __name__ == "__main__":
    main()
