"""A real SMTP server on loopback (aiosmtpd) that keeps and parses what it receives."""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
import socket
from typing import Iterator

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """aiosmtpd handler: parses every accepted message; refuses one address."""

    refused = "nobody@example.com"

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001
        if address == self.refused:
            return "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"

    def latest_code(self, digits: int = 6) -> str:
        """The one-time code in the newest message that has one, as a person reading their e-mail would."""
        for message in reversed(self.messages):
            match = re.search(rf"\b\d{{{digits}}}\b", message.get_body(("plain",)).get_content())
            if match:
                return match.group(0)
        raise AssertionError(f"no {digits}-digit code in any of {len(self.messages)} e-mail(s)")

    def notices(self, to: str | None = None) -> list[str]:
        """Bodies of the security notices received (not codes), optionally only those sent to ``to``."""
        return [m.get_body(("plain",)).get_content() for m, (_, rcpt) in zip(self.messages, self.envelopes)
                if m["Subject"] in ("Security notice", "Aviso de seguridad") and (to is None or to in rcpt)]


@contextlib.contextmanager
def running_mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()
