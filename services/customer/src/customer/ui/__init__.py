"""The salesperson web UI at /ui/ (issue 7), built on the shared UI kit (shared.ui):
the customer list, the customer page and, through `form_hook`, the customer form."""

from pathlib import Path

from fastapi import FastAPI

from customer.settings import CustomerSettings
from customer.ui.detail_routes import router as detail_router
from customer.ui.form_hook import extra_routers
from customer.ui.list_routes import router as list_router
from shared.ui import UiKit
from shared.ui.signin import sign_in_providers

HERE = Path(__file__).parent


def install_ui(app: FastAPI, settings: CustomerSettings) -> UiKit:
    kit = UiKit(
        app_id="customer",
        settings=settings,
        title_key="app.title",
        template_dirs=[HERE / "templates"],
        catalog_dirs=[HERE / "messages"],
        providers=sign_in_providers(settings),
    )
    kit.install(app, [list_router, detail_router, *extra_routers()])
    return kit
