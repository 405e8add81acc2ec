from fastapi import FastAPI

from approval.api import router
from approval.handlers import build_handlers
from approval.metrics import pending_reviews
from approval.models import messaging
from approval.settings import ApprovalSettings
from approval.ui import install_ui
from shared.config import ServiceSettings
from shared.events import topics
from shared.runtime import ServiceRuntime
from shared.web import create_app as create_service_app


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ApprovalSettings()
    assert isinstance(settings, ApprovalSettings)
    runtime = ServiceRuntime(
        settings,
        tables=messaging,
        topics=[topics.CUSTOMER_EVENTS, topics.REFERENCE_EVENTS],
        consumes=[("events", lambda _rt: build_handlers(settings))],
        metric_sources=[pending_reviews],
    )
    app = create_service_app(title="IMS approval service", runtime=runtime, routers=[router])
    install_ui(app, settings)  # the CS web UI at /ui/
    return app
