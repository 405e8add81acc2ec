from fastapi import FastAPI

from customer.api import router
from customer.attachments_api import router as attachments_router
from customer.handlers import HANDLERS
from customer.models import messaging, ref_items
from customer.settings import CustomerSettings
from customer.ui import install_ui
from shared.config import ServiceSettings
from shared.events import topics
from shared.replica import replica_readiness
from shared.runtime import ServiceRuntime
from shared.web import create_app as create_service_app

CONSUMED_TOPICS = [topics.APPROVAL_EVENTS, topics.MISA_EVENTS, topics.REFERENCE_EVENTS]


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or CustomerSettings()
    assert isinstance(settings, CustomerSettings)

    async def replica_check(rt: ServiceRuntime) -> str:
        # Ready once reference's lists are here, and all of them: right after a first
        # start the snapshot arrives item by item, and a half-filled replica would call
        # valid codes unknown.
        caught_up = rt.caught_up_with(topics.REFERENCE_EVENTS)
        if caught_up != "ok":
            return caught_up
        async with rt.sessionmaker() as session:
            return await replica_readiness(session, ref_items)

    runtime = ServiceRuntime(
        settings,
        tables=messaging,
        topics=CONSUMED_TOPICS,
        consumes=[("events", lambda _rt: HANDLERS)],
        readiness_checks=[("reference_replica", replica_check)],
    )
    app = create_service_app(
        title="IMS customer service", runtime=runtime, routers=[router, attachments_router]
    )
    install_ui(app, settings)  # the salesperson web UI at /ui/
    return app
