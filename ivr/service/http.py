"""Health, readiness and Prometheus metrics over HTTP, inside the worker's own event loop.

``/healthz``: the process is alive (for a supervisor's restart decision).
``/readyz``: it can take calls now (store answering, model loaded, each
transport's own checks); 503 with the reasons otherwise, so a load balancer
or an admin's ``curl`` says *what* is wrong.  ``/metrics``: Prometheus text
format. Transports may add their own routes (e.g. a carrier's webhooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Awaitable, Callable, Sequence

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[dict[str, str | None]]]
"""Returns ``{check: None}`` for each passing check and ``{check: "why not"}`` for each failing one."""


# The largest WebSocket message accepted (uvicorn's default is 16 MiB): a
# transport's messages are a few hundred bytes; each checks its own bound too.
WS_MAX_BYTES = 64 * 1024


def build_app(readiness: ReadinessCheck, metrics: Callable[[], bytes],  # type: ignore[no-untyped-def]
              routers: Sequence[Any] = ()):
    from fastapi import FastAPI, Response
    from fastapi.responses import JSONResponse
    from prometheus_client import CONTENT_TYPE_LATEST

    app = FastAPI(title="voiceauth worker", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = await readiness()
        failing = {name: why for name, why in checks.items() if why}
        body = {"ready": not failing, "checks": {name: why or "ok" for name, why in checks.items()}}
        return JSONResponse(body, status_code=503 if failing else 200)

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(metrics(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app


class HttpEndpoint:
    """uvicorn serving the app in the current loop; the worker, not uvicorn, owns the signals."""

    def __init__(self, app, host: str, port: int) -> None:  # type: ignore[no-untyped-def]
        import uvicorn

        class _Embedded(uvicorn.Server):
            def capture_signals(self):  # type: ignore[no-untyped-def, override]
                return contextlib.nullcontext()

        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off", log_level="warning",
            ws_max_size=WS_MAX_BYTES
        )
        self._server = _Embedded(config)
        self._host, self._port = host, port
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return self._server.servers[0].sockets[0].getsockname()[1]

    async def start(self, timeout: float = 10.0) -> None:
        self._task = asyncio.create_task(self._serve(), name="http")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._server.started:
            if self._task.done():
                error = None if self._task.cancelled() else self._task.exception()
                self._task = None
                raise RuntimeError(f"HTTP endpoint could not listen on {self._host}:{self._port}: {error!r}")
            if loop.time() > deadline:
                raise RuntimeError(f"HTTP endpoint not listening within {timeout} s")
            await asyncio.sleep(0.02)

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit as exc:
            # uvicorn exits (SystemExit would escape the event loop) when it cannot bind.
            raise RuntimeError(f"uvicorn stopped with exit status {exc.code} (see its error above)") from None

    async def close(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(self._task, 5.0)
        except (asyncio.TimeoutError, RuntimeError):
            self._task.cancel()
        self._task = None
