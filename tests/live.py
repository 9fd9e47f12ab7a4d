"""Helpers for tests that run `python wsgi.py` as a real server process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests
import socketio

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class LiveServer:
    """One `python wsgi.py` process, configured as the operator's contract says."""

    def __init__(
        self, database_url: str, async_mode: str = "eventlet", port=None, cpus=None, **env
    ):
        self.cpus = cpus  # the CPUs the process may run on (sched_setaffinity), or any
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "APP_CONFIG": "production",
            "DATABASE_URL": database_url,
            "SECRET_KEY": "live-test-secret-key-0123456789abcdef",
            "JWT_SECRET_KEY": "live-test-jwt-secret-key-0123456789",
            "ASYNC_MODE": async_mode,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "REGISTER_RATE_LIMIT_ADDRESS": "10000/60",  # every test user signs up from here
            "LOGIN_RATE_LIMIT_ADDRESS": "10000/60",
            **{k: str(v) for k, v in env.items()},
        }
        if "REDIS_URL" not in env:
            self.env.pop("REDIS_URL", None)
        # Its job queue is its own (kept across a restart of this server), unless the
        # test names one that several processes share.
        self.env.setdefault(
            "JOBS_SQLITE_PATH", os.path.join(tempfile.mkdtemp(prefix="chat-jobs-"), "jobs.sqlite3")
        )
        self.env.setdefault("CHAT_JOBS_NAME", f"test-{self.port}")
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
        self.process: subprocess.Popen | None = None
        self.clients: list[socketio.Client] = []

    def start(self, timeout: float = 30) -> LiveServer:
        self.process = subprocess.Popen(
            [sys.executable, "wsgi.py"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, self.cpus)) if self.cpus else None,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server did not become healthy:\n{self.output()[-3000:]}")

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait_exit(self, timeout: float = 20) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        for sio in self.clients:
            with contextlib.suppress(Exception):  # a dead server's client may fail to say bye
                sio.disconnect()
        self.clients.clear()
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def close(self) -> None:
        self.stop()
        self.log.close()
        os.unlink(self.log.name)

    # --- accounts and clients -------------------------------------------------

    def register_and_login(self, email: str, name: str) -> dict:
        password = "correct horse battery"
        r = requests.post(
            self.url + "/api/auth/register",
            json={"email": email, "password": password, "name": name},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return self.login(email, password)

    def login(self, email: str, password: str) -> dict:
        r = requests.post(
            self.url + "/api/auth/login", json={"email": email, "password": password}, timeout=10
        )
        assert r.status_code == 200, r.text
        return r.json()

    def client(self, token: str, reconnection: bool = False, **kwargs) -> socketio.Client:
        """A connected python-socketio client that records what it hears."""
        sio = socketio.Client(
            reconnection=reconnection, reconnection_delay=0.2, reconnection_delay_max=1
        )
        sio.heard = []
        sio.heard_lock = threading.Lock()

        def record(name):
            def handler(data=None):
                with sio.heard_lock:
                    sio.heard.append((name, data))

            return handler

        for name in (
            "new_message",
            "room_created",
            "room_updated",
            "typing",
            "read",
            "presence",
            "session_expired",
        ):
            sio.on(name, record(name), namespace="/chat")
        sio.connect(
            self.url, namespaces=["/chat"], auth={"token": token}, wait_timeout=10, **kwargs
        )
        self.clients.append(sio)
        return sio


def heard(sio, name: str) -> list:
    with sio.heard_lock:
        return [data for n, data in sio.heard if n == name]
