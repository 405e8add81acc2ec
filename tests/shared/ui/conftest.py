"""A tiny FastAPI app built on the UI kit: a protected page and a counter changed by POST."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.responses import Response

from shared.auth.verify import TokenVerifier
from shared.config import ServiceSettings
from shared.errors import install_error_handlers
from shared.ui import CsrfForm, UiKit, UiSettings, UiUser, flash, get_kit, require_ui_roles
from shared.ui.assets import AppAssets
from shared.ui.signin import sign_in_providers
from tests.shared.ui.client import UiClient

HOME = """{% extends "kit/base.html" %}
{% block content %}<h1>{{ t('demo.hello', name=name) }}</h1><p id="value">{{ name }}</p>
<p id="when">{{ t.dt(when) }}</p><p id="count">{{ count }}</p>
<form method="post" action="/ui/counter" data-confirm="{{ t('demo.sure') }}">
{{ kit.csrf(csrf_field, csrf_token) }}<button>+1</button></form>{% endblock %}
"""
MESSAGES = {
    "vi": {"app.title": "Ứng dụng thử", "demo.hello": "Xin chào {name}", "demo.sure": "Chắc chưa?"},
    "en": {"app.title": "Demo app", "demo.hello": "Hello {name}", "demo.sure": "Sure?"},
}
#: The demo's upload route accepts a multipart body of at most this many bytes.
UPLOAD_LIMIT = 4096
ASSET_JS = '"use strict";\n'
CsUser = Annotated[UiUser, Depends(require_ui_roles("cs"))]


class DemoUiSettings(ServiceSettings, UiSettings):
    pass


def build_demo_app(tmp: Path, public_key: Path, **settings: Any) -> FastAPI:
    (tmp / "templates" / "demo").mkdir(parents=True, exist_ok=True)
    (tmp / "templates" / "demo" / "home.html").write_text(HOME)
    (tmp / "messages").mkdir(exist_ok=True)
    for lang, messages in MESSAGES.items():
        (tmp / "messages" / f"{lang}.json").write_text(json.dumps(messages))
    config = DemoUiSettings(jwt_public_key_file=str(public_key), **settings)
    app = FastAPI()
    install_error_handlers(app)
    app.state.token_verifier = TokenVerifier.from_settings(
        issuer=config.jwt_issuer,
        audience=config.jwt_audience,
        public_key=None,
        public_key_file=str(public_key),
        jwks_url=None,
    )
    app.state.counter = 0
    app.state.uploads = []
    router = APIRouter()

    @router.get("/ui/")
    async def home(request: Request, user: CsUser, name: str = "") -> Response:
        context = {
            "name": name or user.name,
            "when": datetime(2025, 7, 1, 1, 5, tzinfo=UTC),
            "count": app.state.counter,
        }
        return get_kit(request).render(request, "demo/home.html", context)

    @router.post("/ui/counter")
    async def counter(request: Request, user: CsUser, form: CsrfForm) -> Response:
        kit = get_kit(request)
        if form.get("confirmed") != "1":
            return kit.confirm_page(
                request,
                action="/ui/counter",
                fields={"note": "x"},
                question="Sure?",
                confirm_label="OK",
                cancel_url="/ui/",
            )
        app.state.counter += 1
        return kit.redirect(request, "/ui/", flash("success", "demo.hello", name="counter"))

    @router.post("/ui/upload")
    async def upload(request: Request, user: CsUser) -> dict[str, Any]:
        form = await get_kit(request).check_csrf(request, upload_limit_bytes=UPLOAD_LIMIT)
        file = form.get("file")
        assert file is not None and not isinstance(file, str)
        content = await file.read()
        await form.close()
        app.state.uploads.append(content)
        return {"size": len(content), "kind": form.get("kind")}

    @app.get("/api/thing")
    async def api_thing() -> dict[str, str]:
        return {"ok": "yes"}

    kit = UiKit(
        app_id="demo",
        settings=config,
        title_key="app.title",
        template_dirs=[tmp / "templates"],
        catalog_dirs=[tmp / "messages"],
        providers=sign_in_providers(config),
    )
    (tmp / "assets").mkdir(exist_ok=True)
    (tmp / "assets" / "page.js").write_text(ASSET_JS)
    (tmp / "assets" / "notes.txt").write_text("not served")
    app.state.assets = AppAssets("demo", tmp / "assets")
    kit.install(app, [router, app.state.assets.router()])
    return app


@pytest.fixture
def demo_app(tmp_path: Path, dev_keys: tuple[Path, Path]) -> FastAPI:
    return build_demo_app(tmp_path, dev_keys[1])


@pytest.fixture
async def ui(demo_app: FastAPI) -> AsyncIterator[UiClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=demo_app), base_url="http://test"
    ) as client:
        yield UiClient(client)
