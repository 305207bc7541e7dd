"""Calling the (blocking) Twilio client from asyncio, and reading its failures.

Every Twilio request runs in a worker thread under two limits: the HTTP
client's socket timeout (so the thread itself ends) and an ``asyncio``
deadline (so the call flow never waits longer than it was told).
"""

from __future__ import annotations

import asyncio
from typing import Callable, TypeVar

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ivr.otp.senders.base import DeliveryErrorKind

T = TypeVar("T")

# Twilio error codes that mean "this number or address cannot get the code"
# (https://www.twilio.com/docs/api/errors): 21211 invalid To number,
# 21214 To number cannot be reached, 21217 number does not appear valid,
# 21407 not a supported destination, 21612 cannot route to this number,
# 21614 To is not a mobile number, 60200 invalid parameter (Verify: To),
# 60205 SMS not supported by a landline.
INVALID_DESTINATION_CODES = frozenset({21211, 21214, 21217, 21407, 21612, 21614, 60200, 60205})

# Long enough for Twilio's p99 API latency across regions; short enough that
# a caller on hold hears a fallback soon.
DEFAULT_TIMEOUT_S = 10.0


def twilio_client(account_sid: str, auth_token: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Client:
    """A Twilio REST client whose every request gives up after ``timeout_s``."""
    return Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout_s))


class TwilioCallFailed(Exception):
    """A Twilio request failed; ``kind`` classifies it, the message is safe to log."""

    def __init__(self, kind: DeliveryErrorKind, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.code = code


async def call_twilio(request: Callable[[], T], *, what: str, timeout_s: float) -> T:
    """Run ``request`` in a thread; raise :class:`TwilioCallFailed` for any failure."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(request), timeout=timeout_s)
    except TwilioRestException as exc:
        raise _classify_rest(exc, what) from None
    except (asyncio.TimeoutError, requests.exceptions.Timeout):
        raise TwilioCallFailed(DeliveryErrorKind.TIMEOUT, f"Twilio did not answer {what} within {timeout_s:g} s") from None
    except requests.exceptions.ConnectionError:
        raise TwilioCallFailed(DeliveryErrorKind.UNREACHABLE, f"cannot connect to Twilio for {what}") from None
    except (TwilioException, requests.exceptions.RequestException, ValueError) as exc:
        # Malformed responses and the like; the exception text is not
        # copied because it may quote the request.
        raise TwilioCallFailed(
            DeliveryErrorKind.REJECTED, f"unexpected Twilio failure during {what} ({type(exc).__name__})"
        ) from None


def _classify_rest(exc: TwilioRestException, what: str) -> TwilioCallFailed:
    # Twilio's own message often repeats the full phone number; only the
    # status and the error code (which has a public help page) are kept.
    status, code = exc.status, exc.code
    reference = f"HTTP {status}" + (f", Twilio error {code} (https://www.twilio.com/docs/errors/{code})" if code else "")
    if status >= 500:
        kind = DeliveryErrorKind.UNREACHABLE
        text = f"Twilio failed {what}: {reference}"
    elif status in (401, 403):
        kind = DeliveryErrorKind.REJECTED
        text = f"Twilio refused the credentials for {what}: {reference}; check the account SID and auth token"
    elif code in INVALID_DESTINATION_CODES:
        kind = DeliveryErrorKind.INVALID_DESTINATION
        text = f"Twilio cannot deliver {what} to this destination: {reference}"
    else:
        kind = DeliveryErrorKind.REJECTED
        text = f"Twilio refused {what}: {reference}"
    return TwilioCallFailed(kind, text, status=status, code=code)
