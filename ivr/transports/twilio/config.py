"""Settings of the Twilio transport (``VOICEAUTH_TWILIO__*``); see docs/twilio.md."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, model_validator


def _absolute(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"{what} must be an absolute http(s) URL, got {url!r}")
    return url


class TwilioSettings(BaseModel):
    """Twilio Programmable Voice: webhooks and Media Streams on the worker's HTTP endpoint.

    On when both ``auth_token`` and ``public_url`` are set, unless ``enabled`` says otherwise.
    """

    # Empty (default): on when the auth token and public URL are set, as
    # before this switch existed. false: off even when configured (a worker
    # kept for Asterisk calls); true: on, and refused at start without them.
    enabled: bool | None = None

    # The account's auth token: every webhook must carry a valid
    # X-Twilio-Signature made with it, else 403. Never logged.
    auth_token: SecretStr = SecretStr("")
    # How Twilio reaches this worker, e.g. https://voice.example.com: the
    # reverse proxy (TLS) in front of the HTTP endpoint. Signatures are made
    # over this URL, and streams connect to its wss:// form.
    public_url: str = ""
    # Where the call continues after the flow: the result goes there as
    # VOICEAUTH_* parameters of a TwiML <Redirect> (your TwiML app, a Studio
    # flow's webhook with FlowEvent=return, ...).
    result_url: str = ""
    result_method: Literal["POST", "GET"] = "POST"
    # Only calls of this account (AC...) are served; empty: any the token signs for.
    account_sid: str = ""
    # Bearer token for GET /twilio/calls/{CallSid}/result (Studio, Flex);
    # empty: that endpoint answers 404.
    result_token: SecretStr = SecretStr("")
    # Streams beyond this many at once are closed at once (the call goes on
    # with VOICEAUTH_RESULT=ERROR), instead of slowing every call.
    max_calls: int = Field(50, ge=1)
    # A webhook's stream token is good once, for this long: Twilio opens the
    # stream within a second of reading the TwiML.
    stream_token_ttl_s: float = Field(30.0, gt=0)
    # The stream's start message must come this soon after the socket opens.
    start_timeout_s: float = Field(5.0, gt=0)
    # Twilio sends a media message every 20 ms while the call is up: a
    # minute without one means the call is gone.
    idle_timeout_s: float = Field(60.0, gt=0)
    # How long a call's result stays readable (GET .../result, the <Connect> action).
    result_ttl_s: float = Field(3600.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> "TwilioSettings":
        if self.enabled is False:
            return self
        token, public = bool(self.auth_token.get_secret_value()), bool(self.public_url)
        if self.enabled and not (token and public):
            raise ValueError("VOICEAUTH_TWILIO__ENABLED=true needs VOICEAUTH_TWILIO__AUTH_TOKEN and "
                             "VOICEAUTH_TWILIO__PUBLIC_URL")
        if token != public:
            raise ValueError("set both VOICEAUTH_TWILIO__AUTH_TOKEN and VOICEAUTH_TWILIO__PUBLIC_URL "
                             "(or neither: Twilio off)")
        self.enabled = token and public
        if self.enabled:
            self.public_url = _absolute(self.public_url, "VOICEAUTH_TWILIO__PUBLIC_URL").rstrip("/")
            if not self.result_url:
                raise ValueError("VOICEAUTH_TWILIO__RESULT_URL is needed: where the call continues after the flow")
            self.result_url = _absolute(self.result_url, "VOICEAUTH_TWILIO__RESULT_URL")
        return self
