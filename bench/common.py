"""What the bench scripts share: PostgreSQL databases built by the migrations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
PG = "postgresql://postgres@127.0.0.1:5432"


def fresh_database(name: str) -> str:
    """Drop and recreate database `name` on 127.0.0.1:5432, migrate it; its URL."""
    conn = psycopg2.connect(f"{PG}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    url = f"{PG}/{name}"
    migrate(url)
    return url


def migrate(database_url: str) -> None:
    """`flask db upgrade` on that database."""
    env = {**os.environ, "DATABASE_URL": database_url, "APP_CONFIG": "testing"}
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
