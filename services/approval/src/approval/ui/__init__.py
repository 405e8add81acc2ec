"""The CS web UI at /ui/, built on the shared UI kit (shared.ui)."""

from pathlib import Path

from fastapi import FastAPI

from approval.settings import ApprovalSettings
from approval.ui.attachments import AttachmentProxy
from approval.ui.routes import router
from shared.ui import UiKit
from shared.ui.signin import sign_in_providers

HERE = Path(__file__).parent


def install_ui(app: FastAPI, settings: ApprovalSettings) -> UiKit:
    kit = UiKit(
        app_id="approval",
        settings=settings,
        title_key="app.title",
        template_dirs=[HERE / "templates"],
        catalog_dirs=[HERE / "messages"],
        providers=sign_in_providers(settings),
    )
    app.state.attachment_proxy = AttachmentProxy(settings.customer_service_url)
    kit.install(app, [router])
    return kit
