"""Jobs that must survive a crash: Huey does the queueing, the delays and the retries.

The queue is Huey's: in Redis with REDIS_URL (several processes, several machines),
else in a SQLite file (the embedded default needs no new service). The truth of what
is due stays in the database (services/notify.py): a job lost with a killed process is
found again by the sweep, every minute and at each start.

Who runs the jobs: `python wsgi.py` itself by default (`run_in_process`, a background
task of the server), or `flask --app wsgi worker` (Huey's own consumer) with
CHAT_JOBS_IN_PROCESS=0 in the web processes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from huey import RedisHuey, SqliteHuey, crontab
from huey.api import Huey

# An email that cannot be handed over is tried again after 5, 10, 20 … seconds, for
# about an hour and a half in all; the sweep then keeps finding it every minute.
RETRIES = 10
RETRY_DELAY = 5
RETRY_BACKOFF = 2
RUNNER_IDLE = 0.5  # seconds between looks at the queue when it is empty
SETTINGS_EVERY = 5.0  # seconds between refreshes of the team's settings in the server
SWEEP_EVERY = 15.0  # seconds between the server's own sweeps (Huey's consumer: a minute)
# seconds between looks for conversations waiting for automatic assignment (one indexed
# EXISTS when none wait): a send that found its process already assigning leaves its
# room to this look
ASSIGN_EVERY = 1.0
SWEPT_AGAIN = 60.0  # seconds before a sweep queues another check of the same room


@dataclass
class Jobs:
    huey: Huey
    check_room: object  # Huey's task: check_room.schedule(args=(room_id,), delay=…)
    sweep: object
    alert_agents: object
    auto_reply: object
    send_invite: object = None
    release_if_gone: object = None


def init_jobs(app: Flask) -> Jobs:
    config = app.config
    if config["REDIS_URL"]:
        # results=False: no job's return value is ever read; kept, they would pile up.
        huey = RedisHuey(config["CHAT_JOBS_NAME"], url=config["REDIS_URL"], results=False)
    else:
        huey = SqliteHuey(
            config["CHAT_JOBS_NAME"], filename=config["JOBS_SQLITE_PATH"], results=False
        )

    @huey.task(retries=RETRIES, retry_delay=RETRY_DELAY, retry_backoff=RETRY_BACKOFF)
    def check_room(room_id: int) -> str:
        from .services import notify

        with app.app_context():
            return notify.check_room(room_id).result

    @huey.task(retries=RETRIES, retry_delay=RETRY_DELAY, retry_backoff=RETRY_BACKOFF)
    def alert_agents(room_ids: list[int]) -> str:
        from .services import alerts

        with app.app_context():
            return alerts.alert_agents(room_ids)

    @huey.task(retries=RETRIES, retry_delay=RETRY_DELAY, retry_backoff=RETRY_BACKOFF)
    def auto_reply(room_id: int, message_id: int) -> str:
        from .services import availability

        with app.app_context():
            return availability.auto_reply(room_id, message_id)

    @huey.task(retries=RETRIES, retry_delay=RETRY_DELAY, retry_backoff=RETRY_BACKOFF)
    def send_invite(invitation_id: int, url: str, language: str) -> str:
        from .services import team

        with app.app_context():
            return team.send_invite(invitation_id, url, language)

    @huey.task(retries=RETRIES, retry_delay=RETRY_DELAY, retry_backoff=RETRY_BACKOFF)
    def release_if_gone(member_id: int) -> str:
        from .services import assignment

        with app.app_context():
            return assignment.release_if_gone(member_id)

    jobs = Jobs(huey, check_room, None, alert_agents, auto_reply, send_invite, release_if_gone)

    @huey.periodic_task(crontab(minute="*"))
    def sweep() -> int:
        return sweep_now(app, jobs)

    @huey.on_startup()
    def sweep_at_start() -> None:  # Huey's consumer: each worker, as it starts
        sweep_now(app, jobs)

    jobs.sweep = sweep
    app.extensions["chat_jobs"] = jobs
    return jobs


def sweep_now(app: Flask, jobs: Jobs) -> int:
    """Queue a check for every room the database says may owe its customer an email,
    and one alert job for the rooms whose customers may be waiting for an agent."""
    from .services import alerts, assignment, notify

    with app.app_context():
        rooms = notify.sweep()
        waiting = alerts.due_rooms()
        assignment.sweep_queue()
    # A room this process queued a check for within the minute is left to that job and
    # its retries (a room SMTP keeps refusing would otherwise gain a job every sweep).
    recent = app.extensions.setdefault("chat_swept", {})
    now = time.monotonic()
    for room_id in rooms:
        if now - recent.get(room_id, -SWEPT_AGAIN) >= SWEPT_AGAIN:
            recent[room_id] = now
            jobs.check_room(room_id)
    if len(recent) > 10_000:
        recent.clear()
    if waiting:
        jobs.alert_agents(waiting)
    return len(rooms) + len(waiting)


def run_pending(jobs: Jobs, now: datetime | None = None) -> int:
    """Move the scheduled jobs that are due to the queue, and run every queued job
    here. The number run. (Huey's consumer does the same in `flask worker`.)"""
    huey = jobs.huey
    for task in huey.read_schedule(now):
        huey.enqueue(task)
    ran = 0
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
        ran += 1
    return ran


def run_in_process(app: Flask) -> None:
    """The server's own job runner (a background task): the sweep at once and every
    SWEEP_EVERY seconds, and the queue every RUNNER_IDLE seconds."""
    from .extensions import socketio
    from .services import assignment, availability

    jobs = app.extensions["chat_jobs"]
    last_sweep = last_settings = last_assign = 0.0
    while True:
        try:
            if time.monotonic() - last_assign >= ASSIGN_EVERY:
                last_assign = time.monotonic()
                with app.app_context():
                    assignment.assign_if_waiting()
            if time.monotonic() - last_settings >= SETTINGS_EVERY:
                last_settings = time.monotonic()
                with app.app_context():
                    availability.load()  # the send path's copy of hours and away text
                    availability.refresh_reply_minutes()
            if time.monotonic() - last_sweep >= SWEEP_EVERY:
                last_sweep = time.monotonic()
                sweep_now(app, jobs)
            run_pending(jobs)
        except Exception:
            app.logger.exception("jobs: the runner's turn failed")
        socketio.sleep(RUNNER_IDLE)


def start_in_process(app: Flask) -> None:
    """Start the runner once per process, when CHAT_JOBS_IN_PROCESS says so."""
    from .extensions import socketio

    if app.config["CHAT_JOBS_IN_PROCESS"] and not app.extensions.get("chat_jobs_runner"):
        app.extensions["chat_jobs_runner"] = socketio.start_background_task(run_in_process, app)
