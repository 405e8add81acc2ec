from fastapi import FastAPI

from misa_sync.api import router
from misa_sync.handlers import HANDLERS
from misa_sync.misa_client import MisaClient
from misa_sync.models import messaging
from misa_sync.settings import MisaSyncSettings
from misa_sync.sync_worker import SyncWorker
from shared.config import ServiceSettings
from shared.events import topics
from shared.runtime import ServiceRuntime
from shared.web import create_app as create_service_app


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or MisaSyncSettings()
    assert isinstance(settings, MisaSyncSettings)
    client = MisaClient(
        settings.misa_base_url,
        settings.misa_app_id,
        settings.misa_access_code.get_secret_value(),
        settings.misa_org_company_code,
        timeout_s=settings.misa_timeout_s,
    )

    def sync_worker(runtime: ServiceRuntime) -> SyncWorker:
        return SyncWorker(sessionmaker=runtime.sessionmaker, client=client, settings=settings)

    runtime = ServiceRuntime(
        settings,
        tables=messaging,
        topics=[topics.CUSTOMER_EVENTS],
        consumes=[("events", lambda _rt: HANDLERS)],
        workers=[("misa-sync", lambda rt: sync_worker(rt).run())],
    )
    return create_service_app(title="IMS misa_sync service", runtime=runtime, routers=[router])
