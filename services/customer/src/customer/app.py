from fastapi import FastAPI
from shared.config import ServiceSettings
from shared.events import topics
from shared.runtime import ServiceRuntime
from shared.web import create_app as create_service_app

from customer.api import router
from customer.handlers import HANDLERS
from customer.models import messaging
from customer.settings import CustomerSettings

CONSUMED_TOPICS = [topics.APPROVAL_EVENTS, topics.MISA_EVENTS, topics.REFERENCE_EVENTS]


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or CustomerSettings()
    runtime = ServiceRuntime(
        settings,
        tables=messaging,
        topics=CONSUMED_TOPICS,
        consumes=[("events", lambda _rt: HANDLERS)],
    )
    return create_service_app(title="IMS customer service", runtime=runtime, routers=[router])
