"""A real SMTP server for the tests, in a process of its own: aiosmtpd, storing what it
accepts in a Maildir. `HoldingMailbox` also keeps each DATA waiting while a hold file
exists (a send caught in the middle)."""

from __future__ import annotations

import asyncio
import mailbox
import os
import socket
import subprocess
import sys
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.handlers import Mailbox

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HoldingMailbox(Mailbox):
    """Mailbox that answers RCPT TO only once `<maildir>.hold` is gone: a sender held
    there is in the middle of its SMTP session, before the message is handed over."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        hold = str(self.mail_dir).rstrip("/") + ".hold"
        Path(hold + ".seen").touch()  # a send is in progress
        while os.path.exists(hold):
            await asyncio.sleep(0.05)
        envelope.rcpt_tos.append(address)
        return "250 OK"


class RefusingMailbox(Mailbox):
    """Mailbox whose every recipient is unknown (550 at RCPT TO): a mail refused for good."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 No such user here"


class SMTPServer:
    def __init__(
        self, folder: Path, port: int | None = None, holding: bool = False, refusing=False
    ):
        self.folder = Path(folder)
        self.maildir = self.folder / "maildir"
        self.port = port or free_port()
        self.holding = holding
        self.refusing = refusing
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def hold_file(self) -> Path:
        return Path(str(self.maildir) + ".hold")

    def start(self, timeout: float = 15) -> SMTPServer:
        handler = "aiosmtpd.handlers.Mailbox"
        if self.holding:
            handler = "tests.smtp.HoldingMailbox"
        elif self.refusing:
            handler = "tests.smtp.RefusingMailbox"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = open(self.folder / "smtp.log", "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}"]
            + ["-c", handler, str(self.maildir)],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError((self.folder / "smtp.log").read_text()) from None
                time.sleep(0.05)
        raise TimeoutError("the SMTP server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def messages(self) -> list:
        if not self.maildir.exists():
            return []
        box = mailbox.Maildir(str(self.maildir), create=False)
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(box.get_bytes(key)) for key in sorted(box.keys())]

    def wait_for(self, count: int, timeout: float, each=None) -> list:
        """Wait until `count` emails arrived (calling `each()` between looks); all of
        them. Fails past the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            if each is not None:
                each()
            got = self.messages()
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(got)} emails of {count} after {timeout} s")
            time.sleep(0.1)
