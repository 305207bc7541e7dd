"""One-time codes by e-mail through an SMTP relay.

The stdlib ``smtplib`` is blocking, so each send runs in a worker thread with
a socket timeout; the event loop serving other calls never waits on a mail
server.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from ivr.contacts import Contact, mask_email
from voiceprints.clock import system_clock
from ivr.otp import messages
from ivr.otp.senders.base import DeliveryErrorKind, DeliveryResult, Notice

log = logging.getLogger(__name__)


class SmtpConfig(BaseModel):
    host: str
    # 587 is the submission port (RFC 6409) where STARTTLS and AUTH are expected.
    port: int = Field(587, ge=1, le=65535)
    from_address: str
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = True
    # Trust anchors for a private relay's certificate; system store otherwise.
    ca_file: Path | None = None
    # Per socket operation. A healthy relay answers in well under a second;
    # 10 s rides out a slow one without leaving the caller in silence long.
    timeout_s: float = Field(10.0, gt=0)


class SmtpOtpSender:
    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    async def send(self, destination: Contact, code: str, language: str, *, valid_for_s: int) -> DeliveryResult:
        return await self._mail(destination, "code", messages.email_subject(language),
                                messages.email_body(code, language, valid_for_s), language)

    async def notify(self, destination: Contact, notice: Notice, language: str) -> DeliveryResult:
        return await self._mail(destination, "notice", notice.subject, notice.body, language)

    async def _mail(self, destination: Contact, what: str, subject: str, body: str, language: str) -> DeliveryResult:
        if not destination.email:
            return DeliveryResult.failed(DeliveryErrorKind.INVALID_DESTINATION, "the customer has no e-mail address")
        masked = mask_email(destination.email)
        mail = self._compose(destination.email, subject, body, language)
        # The socket timeout bounds each step; this bounds the whole dialogue
        # (connect, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA).
        deadline = self._config.timeout_s * 3
        try:
            await asyncio.wait_for(asyncio.to_thread(self._deliver, mail), timeout=deadline)
        except Exception as exc:  # noqa: BLE001  every failure becomes a DeliveryResult
            result = self._classify(exc, masked)
            log.warning("e-mail %s to %s not sent: %s", what, masked, result.message)
            return result
        log.info("e-mail %s sent to %s (%s)", what, masked, mail["Message-ID"])
        return DeliveryResult.delivered(mail["Message-ID"], f"e-mail accepted by {self._server} for {masked}")

    @property
    def _server(self) -> str:
        return f"{self._config.host}:{self._config.port}"

    def _compose(self, to: str, subject: str, body: str, language: str) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._config.from_address
        mail["To"] = to
        mail["Subject"] = subject
        mail["Date"] = format_datetime(system_clock())
        mail["Message-ID"] = make_msgid(domain=self._config.from_address.rpartition("@")[2] or None)
        # Mail clients must not thread or auto-forward these.
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(body)
        # After set_content, which replaces all Content-* headers.
        mail["Content-Language"] = language[:2]
        return mail

    def _deliver(self, mail: EmailMessage) -> None:
        config = self._config
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
            if config.starttls:
                context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
                smtp.starttls(context=context)
            if config.username:
                password = config.password.get_secret_value() if config.password else ""
                smtp.login(config.username, password)
            smtp.send_message(mail)

    def _classify(self, exc: BaseException, masked: str) -> DeliveryResult:
        # Messages are built here, not copied from the exception: server
        # replies can quote the recipient address in full.
        server = self._server
        if _timed_out(exc):
            return DeliveryResult.failed(DeliveryErrorKind.TIMEOUT, f"SMTP server {server} did not answer in time")
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = sorted({reply[0] for reply in exc.recipients.values()})
            return DeliveryResult.failed(
                DeliveryErrorKind.INVALID_DESTINATION, f"SMTP server {server} refused recipient {masked} ({codes})"
            )
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return DeliveryResult.failed(
                DeliveryErrorKind.REJECTED,
                f"SMTP server {server} refused the login ({exc.smtp_code}): check the SMTP username and password",
            )
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return DeliveryResult.failed(
                DeliveryErrorKind.REJECTED, f"SMTP server {server} does not offer STARTTLS or AUTH as configured"
            )
        if isinstance(exc, ssl.SSLError):
            return DeliveryResult.failed(
                DeliveryErrorKind.REJECTED,
                f"TLS with SMTP server {server} failed ({exc.reason}): check its certificate or ca_file",
            )
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return DeliveryResult.failed(DeliveryErrorKind.UNREACHABLE, f"SMTP server {server} closed the connection")
        if isinstance(exc, smtplib.SMTPResponseException):
            kind = DeliveryErrorKind.UNREACHABLE if 400 <= exc.smtp_code < 500 else DeliveryErrorKind.REJECTED
            return DeliveryResult.failed(kind, f"SMTP server {server} refused the message ({exc.smtp_code})")
        if isinstance(exc, OSError):
            return DeliveryResult.failed(
                DeliveryErrorKind.UNREACHABLE, f"cannot connect to SMTP server {server} ({type(exc).__name__})"
            )
        return DeliveryResult.failed(
            DeliveryErrorKind.REJECTED, f"SMTP delivery to {server} failed ({type(exc).__name__})"
        )


def _timed_out(exc: BaseException | None) -> bool:
    # smtplib turns a socket timeout while reading a reply into
    # SMTPServerDisconnected; the timeout survives only as its context.
    while exc is not None:
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
