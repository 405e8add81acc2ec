"""The FastAPI application every service is built from: errors, correlation ids, health."""

import functools
import hmac
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics
from shared.errors import (
    PROBLEM_SCHEMA,
    ProblemError,
    install_error_handlers,
    problem_response,
)
from shared.events.asyncapi import build_document
from shared.logging import CORRELATION_HEADER, bind_correlation_id, get_logger
from shared.runtime import ServiceRuntime
from shared.tracing import instrument_app, setup_tracing

log = get_logger("http")
#: /readyz's body, ready or not.
_READY: dict[str, Any] = {
    "schema": {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
}
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _has_nul(scope: Scope) -> bool:
    """NUL in the path or query string (raw or %00): PostgreSQL could not even compare it."""
    raw = (scope.get("raw_path") or b"") + b"?" + (scope.get("query_string") or b"")
    return b"\x00" in raw or b"%00" in raw.lower() or "\x00" in scope.get("path", "")


class CorrelationIdMiddleware:
    """Binds a correlation id per request (the caller's, if well-formed) and logs the request."""

    def __init__(self, app: ASGIApp, service: str = "ims") -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        if _has_nul(scope):
            await problem_response(
                ProblemError(400, "Bad Request", "The URL contains a NUL character.", "invalid-url")
            )(scope, receive, send)
            return
        incoming = (
            dict(scope.get("headers") or []).get(CORRELATION_HEADER.encode(), b"").decode("latin-1")
        )
        cid = bind_correlation_id(incoming if _SAFE_ID.match(incoming) else None)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append(
                    (CORRELATION_HEADER.encode(), cid.encode())
                )
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            method = str(scope.get("method"))
            label = method if method in metrics.HTTP_METHODS else "other"
            # The template (/api/v1/customers/{customer_id}), never the raw path: bounded
            # label values, and no ids in the metrics.
            route = getattr(scope.get("route"), "path", None) or "(unmatched)"
            metrics.HTTP_REQUESTS.labels(self.service, label, route, str(status)).inc()
            metrics.HTTP_DURATION.labels(self.service, label, route).observe(elapsed)
            path = scope.get("path", "")
            if path not in ("/healthz", "/readyz", "/metrics"):
                log.info(
                    "http_request",
                    method=scope.get("method"),
                    path=path,
                    status=status,
                    duration_ms=round(elapsed * 1000, 1),
                )


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session on the service's database; endpoints open their own transaction."""
    runtime: ServiceRuntime = request.app.state.runtime
    async with runtime.sessionmaker() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(db_session)]


def create_app(
    *,
    title: str,
    runtime: ServiceRuntime,
    routers: Sequence[APIRouter],
    extra_lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            if extra_lifespan is not None:
                async with extra_lifespan(app):
                    yield
            else:
                yield
        finally:
            await runtime.stop()

    setup_tracing(runtime.settings.service_name)
    app = FastAPI(title=title, lifespan=lifespan)
    app.state.runtime = runtime
    app.state.token_verifier = runtime.verifier
    install_error_handlers(app)
    app.add_middleware(CorrelationIdMiddleware, service=runtime.settings.service_name)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        response_model=None,
        responses={
            200: {"description": "Every check is ok.", "content": {"application/json": _READY}},
            503: {"description": "A check is not ok.", "content": {"application/json": _READY}},
        },
    )
    async def readyz() -> JSONResponse:
        checks: dict[str, Any] = await runtime.readiness()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        """Prometheus scrapes here; with a metrics token set, only with that bearer token."""
        secret = runtime.settings.metrics_token
        token = secret.get_secret_value() if secret is not None else None
        if token is None and runtime.settings.env == "prod":
            raise ProblemError(404, "Not Found", "Set a metrics token to enable /metrics.")
        if token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                raise ProblemError(
                    401, "Unauthorized", "The metrics token is missing or wrong.", "unauthorized"
                )
        body = await metrics.exposition(runtime.metric_refreshers)
        return Response(body, media_type=metrics.CONTENT_TYPE_LATEST)

    @app.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi() -> JSONResponse:
        """The event contract (CONTRACT.md §8) as AsyncAPI 3, like /openapi.json for REST."""
        return JSONResponse(asyncapi_document())

    for router in routers:
        app.include_router(router)
    _register_problem_schema(app)
    instrument_app(app)
    return app


@functools.cache
def asyncapi_document() -> dict[str, Any]:
    return build_document()


def _register_problem_schema(app: FastAPI) -> None:
    """The `Problem` schema the routes' error responses refer to (shared.errors
    .problem_responses), added to the document FastAPI generates."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        return document

    app.openapi = openapi  # type: ignore[method-assign]
