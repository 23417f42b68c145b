"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the e-mail tests."""

from __future__ import annotations

import email
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from tests.live import free_port


class Mailbox:
    """An aiosmtpd handler that keeps what it receives, and can refuse a recipient with a
    given answer (a number of times, or always)."""

    def __init__(self):
        self.received: list[tuple[list[str], bytes]] = []
        self.refuse: dict[str, tuple[str, int | None]] = {}
        self.asked: dict[str, int] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        address = address.lower()
        self.asked[address] = self.asked.get(address, 0) + 1
        answer, times = self.refuse.get(address, ("", 0))
        if answer and (times is None or times > 0):
            if times is not None:
                self.refuse[address] = (answer, times - 1)
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"

    def raw(self, address: str) -> list[bytes]:
        return [data for rcpt, data in self.received if address in rcpt]

    def to(self, address: str) -> list[EmailMessage]:
        return [email.message_from_bytes(data, policy=policy.default)
                for data in self.raw(address)]


@contextmanager
def smtp_server():
    """A Mailbox listening on a free port of 127.0.0.1 (`.port`)."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def mailbox():
    """A local SMTP server for one test (import this fixture into the test module)."""
    with smtp_server() as box:
        yield box
