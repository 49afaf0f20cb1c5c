"""A real SMTP server for the tests (aiosmtpd) that keeps every message with its envelope; the stack's own
SMTP sink, which keeps them in a Maildir."""

from __future__ import annotations

import email
import smtplib
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from pathlib import Path

from aiosmtpd.controller import Controller

from heartrisk.config import BIN
from tests.support.servers import free_port, stop


class Mailbox:
    """aiosmtpd handler keeping every message with its envelope recipients."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], Message]] = []
        self.port = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.received.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """An SMTP server on a free loopback port; ``box.port`` says where."""
    box = Mailbox()
    box.port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def plain_text(message: Message) -> str:
    """The text/plain part of a message, decoded."""
    return next(p.get_payload(decode=True).decode() for p in message.walk() if p.get_content_type() == "text/plain")


@contextmanager
def smtp_sink(mail_dir: Path) -> Iterator[int]:
    """``heartrisk smtp-sink`` (the stack's own SMTP server, keeping mail in a Maildir) on a free port, once it
    answers; yields the port."""
    port = free_port()
    command = [str(BIN / "heartrisk"), "smtp-sink", "--port", str(port), "--mail-dir", str(mail_dir)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                smtplib.SMTP("127.0.0.1", port, timeout=5).quit()
                break
            except OSError:
                assert time.monotonic() < deadline, "the SMTP sink did not answer"
                time.sleep(0.3)
        yield port
    finally:
        stop(proc)
