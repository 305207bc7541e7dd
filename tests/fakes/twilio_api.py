"""A loopback stand-in for the parts of Twilio's REST API the IVR uses.

It speaks Twilio's wire format (form-encoded POSTs, HTTP Basic auth, JSON
resources and Twilio's JSON error shape) so that the real ``twilio`` client
does its own request building, authentication and error handling against
it. Failures are switchable: a Twilio error response, a 5xx, or a slow
answer for timeouts.

    with FakeTwilio() as twilio:
        client = twilio.client()          # real twilio.rest.Client
        client.messages.create(to=..., from_=..., body=...)
        twilio.messages[-1]["Body"]
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "f" * 32
VERIFY_SERVICE_SID = "VA" + "0" * 31 + "2"

_E164 = re.compile(r"\+[1-9]\d{6,14}")
# The slowest a "slow" answer may take: bounds every test that uses it.
MAX_DELAY_S = 5.0


@dataclass
class Failure:
    """Answer the next matching requests with this Twilio error instead of succeeding."""

    status: int
    code: int
    message: str


@dataclass
class Verification:
    sid: str
    to: str
    channel: str
    locale: str | None
    code: str
    status: str = "pending"
    checks: int = 0
    sends: int = 1


@dataclass
class _State:
    messages: list[dict[str, str]] = field(default_factory=list)
    calls: list[dict[str, str]] = field(default_factory=list)
    verifications: dict[str, Verification] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, Content-Type
    failure: Failure | None = None
    delay_s: float = 0.0
    max_checks: int = 5
    max_sends: int = 5


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _rfc2822_now() -> str:
    return format_datetime(datetime.now(timezone.utc), usegmt=False)


def _iso_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class FakeTwilio:
    def __init__(
        self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN, service_sid: str = VERIFY_SERVICE_SID
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.service_sid = service_sid
        self._state = _State()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # --- lifecycle -----------------------------------------------------------
    def __enter__(self) -> FakeTwilio:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=MAX_DELAY_S + 1)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def client(self, *, auth_token: str | None = None, timeout_s: float = 5.0) -> Client:
        """A real ``twilio.rest.Client`` whose requests go to this server."""
        http = LoopbackHttpClient(self.base_url, timeout=timeout_s)
        return Client(self.account_sid, auth_token or self.auth_token, http_client=http)

    # --- inspection and failure switches --------------------------------------
    @property
    def messages(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._state.messages)

    @property
    def calls(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._state.calls)

    @property
    def requests(self) -> list[tuple[str, str, str | None]]:
        with self._lock:
            return list(self._state.requests)

    def verification(self, sid: str) -> Verification:
        with self._lock:
            return self._state.verifications[sid]

    def code_sent_to(self, to: str) -> str:
        """The code Verify "sent" to ``to``: what the customer would read on their phone."""
        with self._lock:
            pending = [v for v in self._state.verifications.values() if v.to == to and v.status == "pending"]
        assert pending, f"no pending verification for {to}"
        return pending[-1].code

    def fail_with(self, status: int, code: int, message: str) -> None:
        with self._lock:
            self._state.failure = Failure(status, code, message)

    def answer_slowly(self, delay_s: float) -> None:
        with self._lock:
            self._state.delay_s = min(delay_s, MAX_DELAY_S)

    def heal(self) -> None:
        with self._lock:
            self._state.failure = None
            self._state.delay_s = 0.0

    # --- the API -------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # quiet: the access log would hold request paths only, but test output stays clean

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                status, body = fake._dispatch("POST", self.path, self.headers.get("Authorization"), form,
                                              self.headers.get("Content-Type"))
                self._reply(status, body)

            def do_GET(self) -> None:
                status, body = _error(405, 20004, "Method not allowed")
                self._reply(status, body)

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.send_header("Twilio-Request-Id", _sid("RQ"))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

        return Handler

    def _authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return secrets.compare_digest(user, self.account_sid) and secrets.compare_digest(password, self.auth_token)

    def _dispatch(
        self, method: str, path: str, auth: str | None, form: dict[str, str], content_type: str | None
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._state.requests.append((method, path, content_type))
            delay = self._state.delay_s
        if delay:
            time.sleep(delay)
        if not self._authorised(auth):
            return _error(401, 20003, "Authenticate")
        if content_type != "application/x-www-form-urlencoded":
            return _error(400, 20001, "Content-Type must be application/x-www-form-urlencoded")
        with self._lock:
            failure = self._state.failure
        if failure:
            return _error(failure.status, failure.code, failure.message)
        routes = [
            (rf"/2010-04-01/Accounts/{self.account_sid}/Messages\.json", self._create_message),
            (rf"/2010-04-01/Accounts/{self.account_sid}/Calls\.json", self._create_call),
            (rf"/v2/Services/{self.service_sid}/Verifications", self._create_verification),
            (rf"/v2/Services/{self.service_sid}/VerificationCheck", self._check_verification),
        ]
        for pattern, handler in routes:
            if re.fullmatch(pattern, path.split("?")[0]):
                return handler(form)
        return _error(404, 20404, f"The requested resource {path} was not found")

    def _create_message(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        to = form.get("To")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not _E164.fullmatch(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return _error(400, 21603, "A 'From' phone number is required.")
        if not form.get("Body"):
            return _error(400, 21602, "Message body is required.")
        sid = _sid("SM")
        now = _rfc2822_now()
        with self._lock:
            self._state.messages.append(dict(form, Sid=sid))
        return 201, {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
            "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }

    def _create_call(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        to = form.get("To")
        if not to or not _E164.fullmatch(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not form.get("From"):
            return _error(400, 21213, "No 'From' number is specified")
        if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
            return _error(400, 21205, "Url parameter is required.")
        sid = _sid("CA")
        now = _rfc2822_now()
        with self._lock:
            self._state.calls.append(dict(form, Sid=sid))
        return 201, {
            "account_sid": self.account_sid,
            "answered_by": None,
            "api_version": "2010-04-01",
            "caller_name": None,
            "date_created": now,
            "date_updated": now,
            "direction": "outbound-api",
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": form["From"],
            "from_formatted": form["From"],
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "start_time": None,
            "status": "queued",
            "to": to,
            "to_formatted": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json",
        }

    def _verification_json(self, v: Verification, *, check: bool = False) -> dict[str, Any]:
        now = _iso_now()
        body: dict[str, Any] = {
            "sid": v.sid,
            "service_sid": self.service_sid,
            "account_sid": self.account_sid,
            "to": v.to,
            "channel": v.channel,
            "status": v.status,
            "valid": v.status == "approved",
            "amount": None,
            "payee": None,
            "date_created": now,
            "date_updated": now,
        }
        if check:
            body["sna_attempts_error_codes"] = []
        else:
            body.update(
                lookup={"carrier": None},
                send_code_attempts=[{"time": now, "channel": v.channel, "attempt_sid": _sid("VL")}] * v.sends,
                sna=None,
                url=f"https://verify.twilio.com/v2/Services/{self.service_sid}/Verifications/{v.sid}",
            )
        return body

    def _create_verification(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        to, channel = form.get("To"), form.get("Channel")
        if not to or channel not in ("sms", "call", "email", "whatsapp"):
            return _error(400, 60200, "Invalid parameter")
        if channel in ("sms", "call") and not _E164.fullmatch(to):
            return _error(400, 60200, "Invalid parameter `To`")
        with self._lock:
            pending = [v for v in self._state.verifications.values() if v.to == to and v.status == "pending"]
            if pending:
                v = pending[-1]
                if v.sends >= self._state.max_sends:
                    return _error(429, 60203, "Max send attempts reached")
                v.sends += 1
            else:
                v = Verification(_sid("VE"), to, channel, form.get("Locale"), "".join(
                    secrets.choice("0123456789") for _ in range(6)))
                self._state.verifications[v.sid] = v
            return 201, self._verification_json(v)

    def _check_verification(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        code = form.get("Code")
        if not code or not 4 <= len(code) <= 10:
            return _error(400, 60200, "Invalid parameter: Code")
        with self._lock:
            if "VerificationSid" in form:
                v = self._state.verifications.get(form["VerificationSid"])
            else:
                matches = [x for x in self._state.verifications.values() if x.to == form.get("To")]
                v = matches[-1] if matches else None
            # Verify forgets approved, expired and exhausted verifications.
            if v is None or v.status != "pending":
                return _error(404, 20404, "The requested resource /Services/VerificationCheck was not found")
            if v.checks >= self._state.max_checks:
                return _error(429, 60202, "Max check attempts reached")
            v.checks += 1
            if secrets.compare_digest(code, v.code):
                v.status = "approved"
            return 200, self._verification_json(v, check=True)


class LoopbackHttpClient(TwilioHttpClient):
    """The stock Twilio HTTP client, with Twilio's hosts swapped for the loopback server.

    Everything else (headers, auth, form encoding, timeouts, response
    handling) is the library's own code.
    """

    _HOSTS = re.compile(r"^https://[a-z0-9.-]+\.twilio\.com")

    def __init__(self, base_url: str, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        return super().request(method, self._HOSTS.sub(self._base_url, url), *args, **kwargs)
