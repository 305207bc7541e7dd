"""Settings of the SIP endpoint transport (``VOICEAUTH_SIP__*``); see docs/sip.md."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, SecretStr, model_validator

_FLOW = re.compile(r"^[a-z]{1,20}$")
_PREFIX = re.compile(r"^[A-Za-z0-9*#+._-]{1,32}$")


class SipSettings(BaseModel):
    """A SIP user agent (pyVoIP) that registers to the PBX and answers the calls it is dialled with.

    Off unless ``enabled``; needs a registrar and credentials then.
    """

    enabled: bool = False
    # The PBX or trunk the endpoint registers to (pyVoIP sends every request
    # and response there: it must be the one that dials us).
    registrar: str = "127.0.0.1"
    registrar_port: int = Field(5060, ge=1, le=65535)
    # Digest credentials of the endpoint's account on the PBX. Never logged.
    username: str = ""
    password: SecretStr = SecretStr("")
    # Where the endpoint listens (SIP over UDP) and the address it puts in
    # its Contact and SDP: the PBX must reach it there. Loopback by default.
    bind: str = "127.0.0.1"
    port: int = Field(5062, ge=1, le=65535)
    # RTP ports of calls (one per call): the range bounds the concurrent calls too.
    rtp_port_low: int = Field(20000, ge=1024, le=65535)
    rtp_port_high: int = Field(20999, ge=1024, le=65535)
    # The registration lifetime asked for; pyVoIP renews it 5 s before it
    # ends, and a lost registration (PBX restarted) is redone within this time.
    register_expires_s: int = Field(120, ge=10, le=3600)
    # How long one REGISTER exchange may take before it counts as failed.
    register_timeout_s: float = Field(5.0, gt=0, le=60)
    # Dialled number (request-URI user part) -> flow: the longest matching
    # prefix wins; digits after it are the claimed account (none: the flow
    # asks on the keypad). E.g. {"81": "verify"}: 814711 verifies account 4711.
    routes: dict[str, str] = Field(default_factory=lambda: {"verify": "verify", "enroll": "enroll",
                                                            "optout": "optout"})
    # SIP headers the PBX may add (Asterisk: PJSIP_HEADER(add,...) in a Dial
    # pre-dial handler): the claimed account, the prompt language, and the
    # id the result is kept under (else the SIP Call-ID).
    account_header: str = "X-VoiceAuth-Account"
    language_header: str = "X-VoiceAuth-Language"
    call_id_header: str = "X-VoiceAuth-Call-Id"
    # Calls beyond this many at once are refused with 486 Busy Here.
    max_calls: int = Field(50, ge=1)
    # The result goes to this URL as a signed JSON POST (empty: no webhook).
    webhook_url: str = ""
    # HMAC-SHA256 key of the webhook's X-VoiceAuth-Signature. Never logged.
    webhook_secret: SecretStr = SecretStr("")
    # Deliveries are retried on network errors, 408, 429 and 5xx, this many
    # times in all, waiting 0.5 s, 1 s, 2 s ... (at most 30 s) in between.
    webhook_attempts: int = Field(5, ge=1, le=20)
    webhook_timeout_s: float = Field(5.0, gt=0, le=60)
    # Bearer token of GET /calls/{call_id}/result; empty: anyone who can reach
    # the HTTP endpoint (loopback by default) may read results.
    result_token: SecretStr = SecretStr("")
    # How long a call's result stays readable.
    result_ttl_s: float = Field(3600.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> "SipSettings":
        if self.rtp_port_low > self.rtp_port_high:
            raise ValueError("VOICEAUTH_SIP__RTP_PORT_LOW must not be above VOICEAUTH_SIP__RTP_PORT_HIGH")
        for prefix, flow in self.routes.items():
            if not _PREFIX.match(prefix) or not _FLOW.match(flow):
                raise ValueError(f"VOICEAUTH_SIP__ROUTES entry {prefix!r}: {flow!r} is not "
                                 "<dialled prefix>: <flow name>")
        if self.enabled and not (self.username and self.password.get_secret_value()):
            raise ValueError("VOICEAUTH_SIP__USERNAME and VOICEAUTH_SIP__PASSWORD are needed: the endpoint "
                             "registers to the PBX with them")
        if self.webhook_url:
            if not self.webhook_url.startswith(("http://", "https://")):
                raise ValueError("VOICEAUTH_SIP__WEBHOOK_URL must be an http(s) URL")
            if not self.webhook_secret.get_secret_value():
                raise ValueError("VOICEAUTH_SIP__WEBHOOK_SECRET is needed to sign the webhook")
        return self
