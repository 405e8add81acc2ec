import asyncio

from fastapi import FastAPI

from reference.admin_api import router as admin_router
from reference.api import router
from reference.conversion_api import router as conversion_router
from reference.models import messaging
from reference.search_api import router as search_router
from reference.settings import ReferenceSettings
from reference.snapshot import announce_snapshot
from reference.unit_search import unit_index
from shared.config import ServiceSettings
from shared.logging import get_logger
from shared.runtime import ServiceRuntime
from shared.web import create_app as create_service_app

log = get_logger(__name__)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ReferenceSettings()

    # Reference consumes nothing; it publishes its changes (and, at each start, a snapshot
    # of every list) through the outbox.
    async def snapshot(rt: ServiceRuntime) -> None:
        backoff = 1.0
        while True:  # new replicas depend on it: retry until it is recorded
            try:
                await announce_snapshot(rt.sessionmaker)
                return
            except Exception as exc:
                log.warning("reference_snapshot_failed", error_type=type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    async def warm_search_index(_: ServiceRuntime) -> None:
        # Built off the event loop at start-up, so no user waits for the first search.
        await asyncio.to_thread(unit_index)

    runtime = ServiceRuntime(
        settings,
        tables=messaging,
        workers=[("reference-snapshot", snapshot), ("search-index", warm_search_index)],
    )
    return create_service_app(
        title="IMS reference service",
        runtime=runtime,
        routers=[router, conversion_router, search_router, admin_router],
    )
