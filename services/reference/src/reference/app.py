from fastapi import FastAPI
from shared.config import ServiceSettings
from shared.runtime import ServiceRuntime
from shared.web import create_app as create_service_app

from reference.api import router
from reference.conversion_api import router as conversion_router
from reference.models import messaging
from reference.settings import ReferenceSettings
from reference.snapshot import announce_snapshot


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ReferenceSettings()

    # Reference consumes nothing; it publishes its changes (and, at each start, a snapshot
    # of every list) through the outbox.
    async def snapshot(rt: ServiceRuntime) -> None:
        await announce_snapshot(rt.sessionmaker)

    runtime = ServiceRuntime(settings, tables=messaging, workers=[("reference-snapshot", snapshot)])
    return create_service_app(
        title="IMS reference service", runtime=runtime, routers=[router, conversion_router]
    )
