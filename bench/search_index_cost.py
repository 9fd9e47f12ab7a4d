"""Benchmark: what the message-text search's GIN index costs PostgreSQL on every send.

Makes a fresh PostgreSQL database (`search_index_cost` on 127.0.0.1:5432) with the
migrations, then for each variant of the index on `messages.body` (none, the defaults,
a larger pending list, no fast update) sends `--sends` messages through
`services.messages.send_message`, in-process, into 50 rooms. The variants take turns
for `--rounds` rounds; each line gives the database backends' CPU (from /proc) per send.

    python bench/search_index_cost.py            # about 3 minutes
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import common  # noqa: E402

INDEX = (
    "CREATE INDEX ix_messages_body_fts ON messages"
    " USING gin (to_tsvector('simple'::regconfig, body))"
)
VARIANTS = {
    "none": None,
    "GIN, defaults (the migration's)": "",
    "GIN, gin_pending_list_limit = 32 MB": " WITH (gin_pending_list_limit = 32768)",
    "GIN, fastupdate = off": " WITH (fastupdate = off)",
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
    args = parser.parse_args()
    url = common.fresh_database("search_index_cost")
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
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / TICK

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
        results: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for round_ in range(args.rounds):
            for name, options in VARIANTS.items():
                db.session.execute(text("DROP INDEX IF EXISTS ix_messages_body_fts"))
                if options is not None:
                    db.session.execute(text(INDEX + options))
                db.session.commit()
                db.session.execute(text("CHECKPOINT"))
                db.session.commit()
                before = backend_cpu()
                for i in range(args.sends):
                    body = f"{BODIES[i % len(BODIES)]} ({round_}-{i})"
                    send_message(customers[i % len(customers)], {"body": body})
                per_send = (backend_cpu() - before) / args.sends * 1000
                results[name].append(per_send)
                print(f"round {round_ + 1}: {name}: {per_send:.3f} ms", flush=True)
    print("| index on messages.body | PostgreSQL CPU ms per send, median |")
    print("| --- | --- |")
    for name, figures in results.items():
        print(f"| {name} | {statistics.median(figures):.2f} |")


if __name__ == "__main__":
    main()
