"""One background task per process: close sockets whose token expired, and (with
Redis) keep this process's heartbeat alive and reap the sockets of dead processes."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from flask import Flask

from ..extensions import socketio
from ..registry import current_registry
from ..services.availability import load as load_team_settings
from ..services.availability import refresh_reply_minutes
from ..services.expiry import end_revoked_sockets, expire_due_sockets
from ..services.presence import announce_arrival, announce_departure

INTERVAL = 0.5  # seconds: a socket outlives its token by at most this much
HEARTBEAT_EVERY = 5.0
REVOKED_EVERY = 1.0  # seconds: a session ended by another process closes its sockets here
FILES_EVERY = 300.0  # seconds: unsent uploads past their day, and half-written files
ORPHANS_EVERY = 86400.0  # seconds: the whole store listed for bytes no row names
SETTINGS_EVERY = 5.0  # seconds: the team's hours and away text read again
SKEW = timedelta(seconds=5)  # the clocks of this process and the database's writers


def start(app: Flask) -> None:
    """Start the tasks the first time a socket connects (not for CLI commands)."""
    if app.extensions.get("chat_housekeeping") is None:
        app.extensions["chat_housekeeping"] = socketio.start_background_task(_loop, app)
        socketio.start_background_task(_files_loop, app)
        from ..jobs import start_in_process

        start_in_process(app)  # `flask run`: no serve() started it


def _files_loop(app: Flask) -> None:
    """A task of its own: a store that is slow or down never holds up the sockets'
    housekeeping above."""
    socketio.sleep(30)  # a first sweep soon after start
    last_orphans = 0.0
    while True:
        try:
            with app.app_context():
                sweep_files(app)
                if time.monotonic() - last_orphans >= ORPHANS_EVERY or not last_orphans:
                    last_orphans = time.monotonic()
                    from ..services.attachments import sweep_orphans

                    sweep_orphans(time.time() - 3600)
        except Exception:
            app.logger.exception("file housekeeping failed")
        socketio.sleep(FILES_EVERY)


def _loop(app: Flask) -> None:
    last_heartbeat = last_stats = last_revoked = time.monotonic()
    last_settings = 0.0
    revoked_since = datetime.now(UTC) - SKEW
    stats_every = app.config["CHAT_STATS_EVERY"]
    while True:
        socketio.sleep(INTERVAL)
        try:
            with app.app_context():
                expire_due_sockets()
                if time.monotonic() - last_settings >= SETTINGS_EVERY:
                    # Every web process's copy of the team's hours and away text, also
                    # where the jobs run elsewhere (CHAT_JOBS_IN_PROCESS=0).
                    last_settings = time.monotonic()
                    load_team_settings()
                    refresh_reply_minutes()
                if time.monotonic() - last_revoked >= REVOKED_EVERY:
                    last_revoked = time.monotonic()
                    checked_at = datetime.now(UTC)
                    end_revoked_sockets(revoked_since)
                    revoked_since = checked_at - SKEW
                if time.monotonic() - last_heartbeat >= HEARTBEAT_EVERY:
                    last_heartbeat = time.monotonic()
                    beat_and_reap()
                if stats_every and time.monotonic() - last_stats >= stats_every:
                    last_stats = time.monotonic()
                    print(stats_line(app), flush=True)
        except Exception:
            app.logger.exception("socket housekeeping failed")


def stats_line(app: Flask) -> str:
    """`stats key=value …`: what must stay flat while the process runs (bench/soak.py)."""
    rss_kb = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    pool = app.extensions["chat_engine"].pool
    namespace = socketio.server.manager.rooms.get("/chat", {}).get(None, {})
    admission = app.extensions["chat_admission"]
    figures = {
        "rss_kb": rss_kb,
        "fds": len(os.listdir("/proc/self/fd")),
        "pool_checked_out": pool.checkedout() if hasattr(pool, "checkedout") else 0,
        "registry": len(current_registry().local_connections()),
        "sockets": len(namespace),
        "sends_in_flight": admission.in_flight,
        "shed": admission.shed,
    }
    return "stats " + " ".join(f"{k}={v}" for k, v in figures.items())


def sweep_files(app: Flask) -> None:
    """Uploads never sent within a day go (rows and bytes); so do files a process that
    died mid-upload left half-written in the folder store (older than an hour)."""
    from ..concurrency import off_the_loop
    from ..services.attachments import sweep, sweep_incoming

    sweep()
    an_hour_ago = time.time() - 3600
    off_the_loop(sweep_incoming, an_hour_ago, app.config["UPLOAD_SCRATCH_DIR"])
    off_the_loop(app.extensions["chat_attachment_store"].sweep_partial, an_hour_ago)


def beat_and_reap() -> None:
    registry = current_registry()
    if not hasattr(registry, "reap_dead_servers"):
        return  # one process, in memory: nobody else to watch
    for conn, change in registry.heartbeat():  # back after a stall: online again
        announce_arrival(conn, change)
    for conn, change in registry.reap_dead_servers():
        announce_departure(conn, change)
