"""The Twilio transport: signed webhooks, one Media Stream per call, the result as TwiML.

A call's path (docs/twilio.md):

1. Twilio requests the voice webhook ``POST /twilio/voice?flow=verify&lang=es``
   (signed with the account's auth token). The answer is TwiML: a
   ``<Connect action="/twilio/continue"><Stream url="wss://…/twilio/stream">``
   whose ``<Parameter>``s carry the flow, language, claimed account and a
   single-use stream token.
2. Twilio opens the WebSocket; the stream is served only if its ``start``
   message carries a token this worker issued for that very call, unused
   and unexpired. The flow runs on it like on any other line (limits,
   lease, audit from the guard).
3. The flow ends: the worker closes the stream; Twilio requests the action
   URL, which answers with a ``<Redirect>`` to the admin's
   ``VOICEAUTH_TWILIO__RESULT_URL`` carrying the ``VOICEAUTH_*`` values.

Every HTTP request must carry a valid ``X-Twilio-Signature`` (the ``twilio``
library's ``RequestValidator``), else 403. ``POST /twilio/status`` takes the
call status callback (a finished call ends its stream at once), and
``GET /twilio/calls/{CallSid}/result`` gives the result to Studio or Flex
with a bearer token.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Callable
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, Response, WebSocket
from fastapi.responses import JSONResponse

from ivr.call import CallInfo, FlowResult, Result
from ivr.transports.base import Calls, TransportEnv
from ivr.transports.results import ResultNotReadable
from ivr.transports.twilio import wire
from ivr.transports.twilio.prompts import PromptFrames
from ivr.transports.twilio.session import POLICY, MediaStreamSession, StreamClosed, decode
from ivr.transports.twilio.state import Announcement, CallResults, StreamTokens
from ivr.transports.twilio.twiml import connect_stream, continue_with_result, result_parameters

log = logging.getLogger("ivr.transports.twilio")

# Webhook bodies are a few hundred bytes of form fields.
MAX_BODY_BYTES = 64 * 1024
# How caller ID arrives when the number is withheld (Twilio's documented
# placeholders for anonymous, restricted and unknown callers).
WITHHELD = frozenset({"", "anonymous", "restricted", "unknown", "private", "unavailable",
                      "+266696687", "+86282452253", "+7378742833"})
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# After a stream closes, Twilio asks the action URL within a second or two.
# At shutdown the worker waits for the actions of results kept less than this
# long ago (at most this long, at most the shutdown grace) before the HTTP
# endpoint goes; an older result's action is not coming (the caller hung up,
# the call went elsewhere), and waiting for it once kept an idle worker 10 s.
ACTION_WAIT_S = 10.0
_FLOW = re.compile(r"^[a-z]{1,20}$")
_ACCOUNT = re.compile(r"^[0-9]{1,32}$")
_SID = re.compile(r"^[A-Za-z]{2}[0-9a-fA-F]{32}$")
# Audio a flow that is busy (scoring) may leave unread before the oldest is dropped.
MAX_BUFFERED_S = 30.0


class TwilioTransport:
    name = "twilio"

    def __init__(self, env: TransportEnv, *, clock: Callable[[], float] = time.monotonic) -> None:
        from twilio.request_validator import RequestValidator

        self._env = env
        self._cfg = env.settings.twilio
        self._clock = clock
        self._validator = RequestValidator(self._cfg.auth_token.get_secret_value())
        self.tokens = StreamTokens(self._cfg.stream_token_ttl_s, clock=clock)
        self.results = CallResults(self._cfg.result_ttl_s, clock=clock)
        self._prompts = PromptFrames(env.prompts)
        self._sessions: dict[str, MediaStreamSession] = {}
        self._calls: Calls | None = None
        self._closing = False
        self.active_streams = 0
        self.refused_streams = 0
        self.forged_requests = 0

    # -- Transport ---------------------------------------------------------------

    async def start(self, calls: Calls) -> None:
        self._calls = calls
        self._env.metrics.count_from("rejected_twilio", lambda: self.refused_streams)
        self._env.metrics.count_from("forged_twilio", lambda: self.forged_requests)

    async def close(self) -> None:
        self._closing = True
        for session in list(self._sessions.values()):
            await session.close(1001, "worker shutting down")
        deadline = self._clock() + min(ACTION_WAIT_S, self._env.settings.service.shutdown_grace_s)
        while self.results.awaiting_since(self._clock() - ACTION_WAIT_S) and self._clock() < deadline:
            await asyncio.sleep(0.05)

    def health(self) -> dict[str, str | None]:
        return {}

    def describe(self) -> str:
        return f"Twilio webhooks at {self._cfg.public_url}/twilio/voice"

    @property
    def stream_url(self) -> str:
        return "ws" + self._cfg.public_url.removeprefix("http") + "/twilio/stream"

    def http_routes(self) -> APIRouter:
        router = APIRouter(prefix="/twilio")

        @router.post("/voice")
        async def voice(request: Request) -> Response:
            return self._voice(request.query_params, await self._signed(request))

        @router.post("/continue")
        async def continue_call(request: Request) -> Response:
            return self._continue(await self._signed(request))

        @router.post("/status")
        async def status(request: Request) -> Response:
            self._status(await self._signed(request))
            return Response(status_code=204)

        @router.get("/calls/{call_sid}/result")
        async def result(call_sid: str, request: Request) -> Response:
            return JSONResponse(self._result(call_sid, request.headers.get("authorization", "")))

        @router.websocket("/stream")
        async def stream(websocket: WebSocket) -> None:
            await self._serve_stream(websocket)

        return router

    # -- HTTP --------------------------------------------------------------------

    async def _signed(self, request: Request) -> dict[str, str]:
        """The form fields of a request Twilio signed; 403 for anything else."""
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            raise HTTPException(413, "request too large")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, "request too large")
        params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        url = self._cfg.public_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        signature = request.headers.get("x-twilio-signature", "")
        peer = request.client.host if request.client else "?"
        if not signature or not self._validator.validate(url, params, signature):
            self.forged_requests += 1
            log.warning("Twilio webhook %s from %s: refused: %s", request.url.path, peer,
                        "no X-Twilio-Signature" if not signature else "signature does not match "
                        "(check VOICEAUTH_TWILIO__AUTH_TOKEN and __PUBLIC_URL)")
            raise HTTPException(403, "invalid signature")
        if self._cfg.account_sid and params.get("AccountSid") != self._cfg.account_sid:
            self.forged_requests += 1
            log.warning("Twilio webhook %s from %s: refused: account %s is not %s", request.url.path, peer,
                        params.get("AccountSid"), self._cfg.account_sid)
            raise HTTPException(403, "wrong account")
        return params

    def _voice(self, query: Any, params: dict[str, str]) -> Response:
        call_sid, called = params.get("CallSid", ""), params.get("To", "")
        flow = (query.get("flow") or "verify").strip().lower()
        account = query.get("account") or ""
        claim = query.get("claim") or ""
        problems = [why for bad, why in (
            (not _SID.match(call_sid), "CallSid"), (not _FLOW.match(flow), "flow"),
            (bool(account) and not _ACCOUNT.match(account), "account (digits only)"),
            (claim not in ("", "dtmf", "callerid"), "claim (dtmf or callerid)")) if bad]
        if problems:
            raise HTTPException(400, f"bad {', '.join(problems)}")
        if flow not in self._calls.flow_names:
            # Refused here, where the admin's webhook URL is wrong, not by a stream that closes at once.
            raise HTTPException(400, f"unknown flow {flow!r} in the webhook URL; use one of "
                                     f"{', '.join(self._calls.flow_names)}")
        language = self._env.language(query.get("lang"))
        announcement = Announcement(call_sid, params.get("AccountSid", ""), flow, language,
                                    _caller(params.get("From")), called, account or None, claim or None)
        token = self.tokens.issue(announcement)
        parameters = {"token": token, "flow": flow, "language": language}
        if account:
            parameters["account"] = account
        twiml = connect_stream(self.stream_url, f"{self._cfg.public_url}/twilio/continue", parameters)
        log.debug("Twilio call %s: stream announced (flow %s, language %s)", call_sid, flow, language)
        return Response(twiml, media_type="application/xml")

    def _continue(self, params: dict[str, str]) -> Response:
        call_sid = params.get("CallSid", "")
        result = self.results.get(call_sid)
        self.results.continued(call_sid)
        if result is None:
            result = FlowResult(Result.ERROR, reason="no result from the worker (the Twilio stream ended "
                                                     "without one: see the worker log)")
            log.warning("Twilio call %s: continued without a result", call_sid)
        twiml = continue_with_result(self._cfg.result_url, self._cfg.result_method, result)
        return Response(twiml, media_type="application/xml")

    def _status(self, params: dict[str, str]) -> None:
        call_sid, status = params.get("CallSid", ""), params.get("CallStatus", "")
        if status in FINAL_STATUSES:
            self.tokens.revoke_call(call_sid)
            self.results.continued(call_sid)  # the call is over: no action request is coming
            session = self._sessions.get(call_sid)
            if session is not None:
                session.hang_up_now()

    def _result(self, call_sid: str, authorization: str) -> dict[str, str]:
        token = self._cfg.result_token.get_secret_value()
        if not token:
            raise HTTPException(404, "the result API is off (VOICEAUTH_TWILIO__RESULT_TOKEN)")
        try:
            result = self.results.readable(call_sid, token=token, authorization=authorization)
        except ResultNotReadable as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return {"CallSid": call_sid, **result_parameters(result)}

    # -- Media Streams -----------------------------------------------------------------

    def _keep(self, call_sid: str, result: FlowResult, awaiting_action: bool) -> None:
        self.results.put(call_sid, result, awaiting_action=awaiting_action)

    async def _serve_stream(self, websocket: WebSocket) -> None:
        peer = f"{websocket.client.host}:{websocket.client.port}" if websocket.client else "?"
        if self._calls is None or self._closing or self.active_streams >= self._cfg.max_calls:
            self.refused_streams += 1
            log.warning("Twilio stream from %s: refused: %s", peer, "shutting down" if self._closing
                        else f"already {self.active_streams} streams (VOICEAUTH_TWILIO__MAX_CALLS)")
            await websocket.close(code=1013)
            return
        self.active_streams += 1
        try:
            await websocket.accept()
            try:
                start = await self._await_start(websocket)
                announcement = self._admit(start)
            except StreamClosed as exc:
                self.refused_streams += 1
                log.warning("Twilio stream from %s: refused: %s", peer, exc)
                try:
                    await websocket.close(code=exc.code, reason=str(exc)[:120])
                except Exception:  # noqa: BLE001 - the peer is gone already
                    pass
                return
            await self._run(websocket, start, announcement)
        finally:
            self.active_streams -= 1

    async def _await_start(self, websocket: Any) -> wire.Start:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._cfg.start_timeout_s
        connected = False
        while True:
            try:
                raw = await asyncio.wait_for(websocket.receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise StreamClosed(f"no 'start' message within {self._cfg.start_timeout_s:g} s") from None
            message = decode(raw)
            if message is None:
                raise StreamClosed("closed before its 'start' message")
            if isinstance(message, wire.Start):
                return message
            if isinstance(message, wire.Connected) and not connected:
                connected = True
                continue
            raise StreamClosed(f"'{getattr(message, 'event', type(message).__name__.lower())}' before 'start'")

    def _admit(self, start: wire.Start) -> Announcement:
        token = start.parameters.get("token", "")
        announcement = self.tokens.claim(token) if token else None
        if announcement is None:
            raise StreamClosed("unknown, used or expired stream token (streams are opened only by the "
                               "voice webhook's TwiML)", POLICY)
        if announcement.call_sid != start.call_sid:
            raise StreamClosed(f"stream token of call {announcement.call_sid} used by call {start.call_sid}")
        if announcement.account_sid and start.account_sid != announcement.account_sid:
            raise StreamClosed("stream of another account")
        return announcement

    async def _run(self, websocket: Any, start: wire.Start, announcement: Announcement) -> None:
        assert self._calls is not None
        trunk = f"twilio:{announcement.called or 'unknown'}"
        params = {"mode": announcement.flow, "channel": trunk}
        if announcement.account:
            params["account"] = announcement.account
        if announcement.claim:
            params["claim"] = announcement.claim
        info = CallInfo(call_id=start.call_sid, caller_id=announcement.caller, language=announcement.language,
                        params=params, trunk=trunk)
        session = MediaStreamSession(
            websocket, info, start.stream_sid, prompts=self._prompts, keep_result=self._keep,
            idle_timeout=self._cfg.idle_timeout_s, max_call_s=self._env.settings.service.max_call_s,
            max_buffered_frames=int(MAX_BUFFERED_S / wire.FRAME_SECONDS))
        self._sessions[start.call_sid] = session
        try:
            if await self._calls.run(announcement.flow, session, via="twilio") is None:
                # Studio, Flex or a back end asking for this call's result learns why there is none.
                self._keep(start.call_sid, FlowResult(Result.HUNGUP, reason="the caller hung up before a result"),
                           False)
        finally:
            self._sessions.pop(start.call_sid, None)
            await session.close()


def _caller(number: str | None) -> str | None:
    if number is None or number.strip().lower() in WITHHELD:
        return None
    return number.strip()
