from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from misa_sync.api import router
from misa_sync.handlers import build_handlers
from misa_sync.metrics import circuit_state, links_by_state
from misa_sync.mirror import Mirror
from misa_sync.misa_client import MisaClient
from misa_sync.models import messaging
from misa_sync.reconciliation import ReconciliationJob
from misa_sync.settings import MisaSyncSettings
from misa_sync.sync_worker import Pause, SyncWorker, mapping_options
from shared.config import ServiceSettings
from shared.events import topics
from shared.runtime import ServiceRuntime
from shared.web import create_app as create_service_app


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or MisaSyncSettings()
    assert isinstance(settings, MisaSyncSettings)
    # One client per process: its rate limit and circuit breaker cover every caller.
    client = MisaClient.from_settings(settings)
    handlers = build_handlers(mapping_options(settings))
    # The worker's pause, shared with the API: a manual retry resumes the worker.
    pause = Pause()

    def sync_worker(runtime: ServiceRuntime) -> SyncWorker:
        return SyncWorker(
            sessionmaker=runtime.sessionmaker,
            client=client,
            settings=settings,
            mirror=Mirror(runtime.sessionmaker, client),
            pause=pause,
        )

    runtime = ServiceRuntime(
        settings,
        tables=messaging,
        topics=[topics.CUSTOMER_EVENTS],
        consumes=[("events", lambda _rt: handlers)],
        workers=[
            ("misa-sync", lambda rt: sync_worker(rt).run()),
            # Started with the runtime, once `reconciliation` below exists.
            ("misa-reconciliation", lambda _rt: reconciliation.run()),
        ],
        metric_sources=[links_by_state, lambda _rt: circuit_state(client)],
    )
    misa_mirror = Mirror(runtime.sessionmaker, client)
    # One job per process for the worker and the API; runs are serialised across replicas.
    reconciliation = ReconciliationJob(
        sessionmaker=runtime.sessionmaker, mirror=misa_mirror, settings=settings
    )

    @asynccontextmanager
    async def close_client(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()

    app = create_service_app(
        title="IMS misa_sync service",
        runtime=runtime,
        routers=[router],
        extra_lifespan=close_client,
    )
    app.state.misa_settings = settings
    app.state.misa_pause = pause
    app.state.misa_mirror = misa_mirror
    app.state.misa_reconciliation = reconciliation
    return app
