"""The server-rendered UI kit: templates, language, session, CSRF, flashes, error pages.

A service builds one `UiKit` and calls `install(app, routers)`; its routes then use the
dependencies below (`require_ui_roles`, `CsrfForm`) and `get_kit(request).render(...)`.
Everything the kit answers under its prefix is HTML in the user's language, errors
included; the JSON API beside it keeps its problem+json.
"""

import hashlib
import posixpath
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import urlencode, urlsplit

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Message

from shared.errors import ProblemError
from shared.logging import get_logger
from shared.ui.flash import Flash, Level, decode_flashes, encode_flashes
from shared.ui.i18n import LANG_COOKIE, LANGS, Catalog, Lang, Translator, as_lang
from shared.ui.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    SecurityHeadersMiddleware,
    csrf_token,
    csrf_valid,
    same_origin,
)
from shared.ui.session import SessionState, UiUser, read_session
from shared.ui.settings import UiSettings

log = get_logger(__name__)

#: The largest UI form accepted (a reject reason of 2,000 characters fits many times).
MAX_FORM_BYTES = 64 * 1024
KIT_DIR = Path(__file__).parent
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


class UiError(Exception):
    """An answer the UI shows as a page of its own (403, 404, 409, …)."""

    def __init__(self, status: int, message_key: str, **params: Any) -> None:
        super().__init__(message_key)
        self.status = status
        self.message_key = message_key
        self.params = params


class SignInProvider(Protocol):
    """A way to sign in: a section of the sign-in page and the routes behind it, which end
    with `UiKit.start_session(response, token, …)` for a token the service's verifier
    accepts (the company's OIDC provider; the demo sign-in in dev and test; ADR 11)."""

    #: Template of the provider's section on the sign-in page; it sees `ctx`.
    template: str

    def context(self, request: Request) -> dict[str, Any]: ...

    def router(self, kit: "UiKit") -> APIRouter: ...


class SignInRequired(Exception):
    def __init__(self, reason_key: str | None = None) -> None:
        super().__init__(reason_key)
        self.reason_key = reason_key


def ui_not_found() -> UiError:
    return UiError(404, "error.not_found")


class UiKit:
    def __init__(
        self,
        *,
        app_id: str,
        settings: UiSettings,
        title_key: str,
        template_dirs: Sequence[Path] = (),
        catalog_dirs: Sequence[Path] = (),
        providers: Sequence[SignInProvider] = (),
        prefix: str = "/ui",
        home_path: str | None = None,
    ) -> None:
        self.app_id = app_id
        self.title_key = title_key
        self.prefix = prefix.rstrip("/")
        self.home_path = home_path or self.prefix + "/"
        self.secret = settings.ui_secret.get_secret_value()
        # Only the local stack runs on plain http; any deployed environment gets Secure.
        self.secure_cookies = settings.env != "dev"
        self.session_cookie = f"ims_{app_id}_session"
        self.presession_cookie = f"ims_{app_id}_pre"
        self.flash_cookie = f"ims_{app_id}_flash"
        self.catalog = Catalog(*catalog_dirs)
        self.jinja = jinja2.Environment(
            loader=jinja2.FileSystemLoader([*template_dirs, KIT_DIR / "templates"]),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # The kit's macros, available to every template without an import.
        self.jinja.globals["kit"] = self.jinja.get_template("kit/macros.html").make_module()
        self._static_versions = {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:10]
            for p in (KIT_DIR / "static").iterdir()
            if p.is_file()
        }
        self.providers = list(providers)

    # --- wiring -------------------------------------------------------------------------

    def install(self, app: FastAPI, routers: Sequence[APIRouter]) -> None:
        app.state.ui_kit = self
        app.add_middleware(SecurityHeadersMiddleware, prefix=self.prefix)
        app.mount(
            f"{self.prefix}/static", StaticFiles(directory=KIT_DIR / "static"), name="ui-static"
        )
        app.include_router(self._own_router())
        for provider in self.providers:
            app.include_router(provider.router(self))
        for router in routers:
            app.include_router(router)
        self._wrap_error_handlers(app)

    def _own_router(self) -> APIRouter:
        """The sign-in page, sign-out and the language switch."""
        router = APIRouter(include_in_schema=False)

        @router.get(self.prefix)
        async def prefix_only() -> Response:
            return RedirectResponse(self.home_path, status_code=307)

        @router.get(f"{self.prefix}/sign-in")
        async def sign_in_page(request: Request, next: str | None = None) -> Response:
            state = await self.session(request)
            sections = [(p.template, p.context(request)) for p in self.providers]
            return self.render(
                request,
                "kit/sign_in.html",
                {"sections": sections, "next": self.safe_next(next), "signed_in": state.user},
            )

        @router.post(f"{self.prefix}/sign-out")
        async def sign_out(request: Request, _: CsrfForm) -> Response:
            response = self.redirect(request, self.sign_in_path(), flash("info", "auth.signed_out"))
            self.end_session(response)
            return response

        @router.get(f"{self.prefix}/lang/{{code}}")
        async def switch_language(code: str, next: str | None = None) -> Response:
            # A display preference, not data: a GET link is enough; `next` stays local.
            response = RedirectResponse(self.safe_next(next), status_code=303)
            if code in LANGS:
                response.set_cookie(
                    LANG_COOKIE,
                    code,
                    max_age=365 * 24 * 3600,
                    path="/",
                    httponly=True,
                    secure=self.secure_cookies,
                    samesite="lax",
                )
            return response

        return router

    def _wrap_error_handlers(self, app: FastAPI) -> None:
        """Under the prefix errors become pages; elsewhere the API's handlers still answer."""
        for exc_type in (ProblemError, StarletteHTTPException, RequestValidationError, Exception):
            original = app.exception_handlers.get(exc_type)
            app.add_exception_handler(exc_type, self._page_or(original))
        app.add_exception_handler(UiError, self._on_ui_error)
        app.add_exception_handler(SignInRequired, self._on_sign_in_required)

    def _page_or(self, original: Any) -> ExceptionHandler:
        async def handle(request: Request, exc: Exception) -> Response:
            if self.owns(request.url.path):
                return self._error_for(request, exc)
            if original is None:
                raise exc
            response: Response = await original(request, exc)
            return response

        return handle

    def owns(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def _error_for(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, ProblemError | StarletteHTTPException):
            status = exc.status if isinstance(exc, ProblemError) else exc.status_code
        elif isinstance(exc, RequestValidationError):
            status = 400
        else:
            log.exception("ui_unhandled_error", error_type=type(exc).__name__)
            status = 500
        key = {
            400: "error.bad_request",
            403: "error.forbidden",
            404: "error.not_found",
            405: "error.method_not_allowed",
            409: "error.conflict",
        }.get(status, "error.unexpected")
        return self.error_page(request, status, key)

    async def _on_ui_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, UiError)
        return self.error_page(request, exc.status, exc.message_key, **exc.params)

    async def _on_sign_in_required(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        # Back to the page itself after sign-in, not to a live-search fragment of it.
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "partial"])
        target = request.url.path + (f"?{query}" if query else "")
        params = {"next": target} if request.method == "GET" and target != self.home_path else {}
        flashes = [Flash("warning", exc.reason_key)] if exc.reason_key else []
        response = self.redirect(request, self.sign_in_path(**params), *flashes)
        self.end_session(response)
        return response

    # --- paths and cookies --------------------------------------------------------------

    def sign_in_path(self, **params: str) -> str:
        return f"{self.prefix}/sign-in" + (f"?{urlencode(params)}" if params else "")

    def static_url(self, name: str) -> str:
        return f"{self.prefix}/static/{name}?v={self._static_versions.get(name, '0')}"

    def safe_next(self, value: str | None) -> str:
        """A local path under the prefix, else home: `next` never leads off the site."""
        if not value:
            return self.home_path
        parts = urlsplit(value)
        if parts.scheme or parts.netloc or "\\" in value or parts.path.startswith("//"):
            return self.home_path
        # `/ui/../api/x` would leave the UI once the browser resolves the dots.
        path = posixpath.normpath(parts.path) + ("/" if parts.path.endswith("/") else "")
        if path.startswith("//") or not self.owns(path):
            return self.home_path
        return path + (f"?{parts.query}" if parts.query else "")

    def start_session(self, response: Response, token: str, max_age: int) -> None:
        response.set_cookie(
            self.session_cookie,
            token,
            max_age=max_age,
            path=self.prefix,
            httponly=True,
            secure=self.secure_cookies,
            samesite="lax",
        )
        response.delete_cookie(self.presession_cookie, path=self.prefix)

    def end_session(self, response: Response) -> None:
        response.delete_cookie(
            self.session_cookie,
            path=self.prefix,
            httponly=True,
            secure=self.secure_cookies,
            samesite="lax",
        )

    def lang(self, request: Request) -> Lang:
        return as_lang(request.cookies.get(LANG_COOKIE))

    def translator(self, request: Request) -> Translator:
        return self.catalog.translator(self.lang(request))

    # --- identity and CSRF --------------------------------------------------------------

    async def session(self, request: Request) -> SessionState:
        cached = getattr(request.state, "ui_session", None)
        if isinstance(cached, SessionState):
            return cached
        state = await read_session(request, self.session_cookie)
        request.state.ui_session = state
        return state

    def _csrf_binding(self, request: Request) -> str:
        """What the CSRF token is bound to: the session token, or before sign-in a random
        pre-session value in its own cookie (so the sign-in form is protected too)."""
        session = request.cookies.get(self.session_cookie)
        if session:
            return session
        pre = request.cookies.get(self.presession_cookie) or getattr(
            request.state, "ui_new_presession", None
        )
        if not pre:
            pre = secrets.token_urlsafe(24)
            request.state.ui_new_presession = pre
        return "pre:" + pre

    def csrf_for(self, request: Request) -> str:
        return csrf_token(self.secret, self._csrf_binding(request))

    async def check_csrf(
        self, request: Request, *, upload_limit_bytes: int | None = None
    ) -> FormData:
        """The request's form, once it has proved it comes from one of our pages.

        `upload_limit_bytes` is a route's explicit opt-in to a multipart body (a file
        upload) of at most that many bytes in all; the Origin and the declared length are
        still checked before a byte is read, and a CSRF token sent in the header is checked
        before the body too (the upload script sends it so).
        """
        # Cheap refusals first: a foreign origin or an oversized or multipart body is never
        # read (the UI's forms are small and urlencoded).
        if not same_origin(request):
            log.warning("ui_csrf_refused", path=request.url.path, why="origin")
            raise UiError(403, "error.csrf")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        declared = request.headers.get("content-length", "")
        upload = upload_limit_bytes is not None and content_type == "multipart/form-data"
        limit = upload_limit_bytes if upload and upload_limit_bytes is not None else MAX_FORM_BYTES
        # Browsers always declare the length of a form; the server holds the body to it.
        if (
            (content_type != "application/x-www-form-urlencoded" and not upload)
            or not declared.isdigit()
            or int(declared) > limit
        ):
            log.warning("ui_csrf_refused", path=request.url.path, why="body")
            raise UiError(403, "error.csrf")
        session = request.cookies.get(self.session_cookie)
        pre = request.cookies.get(self.presession_cookie)
        binding = session or (f"pre:{pre}" if pre else None)
        header_token = request.headers.get(CSRF_HEADER)
        if (
            upload
            and header_token is not None
            and not csrf_valid(self.secret, binding, header_token)
        ):
            log.warning("ui_csrf_refused", path=request.url.path, why="header")
            raise UiError(403, "error.csrf")
        # One file and a few small fields at most: nothing else of a multipart body is kept.
        form = await (
            _bounded(request, int(declared)).form(max_files=1, max_fields=16)
            if upload
            else request.form()
        )
        presented = form.get(CSRF_FIELD) or header_token
        if not csrf_valid(self.secret, binding, presented if isinstance(presented, str) else None):
            await form.close()
            log.warning("ui_csrf_refused", path=request.url.path)
            raise UiError(403, "error.csrf")
        return form

    # --- responses ----------------------------------------------------------------------

    def redirect(self, request: Request, url: str, *flashes: Flash) -> RedirectResponse:
        response = RedirectResponse(url, status_code=303)
        if flashes:
            pending = decode_flashes(self.secret, request.cookies.get(self.flash_cookie))
            response.set_cookie(
                self.flash_cookie,
                encode_flashes(self.secret, [*pending, *flashes]),
                path=self.prefix,
                httponly=True,
                secure=self.secure_cookies,
                samesite="lax",
            )
        return response

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        status: int = 200,
        flashes: Sequence[Flash] = (),
        partial: bool = False,
    ) -> HTMLResponse:
        """A page (or, `partial`, a fragment for the live search) in the user's language."""
        t = self.translator(request)
        state: SessionState | None = getattr(request.state, "ui_session", None)
        shown: list[Flash] = []
        if not partial:
            shown = [*decode_flashes(self.secret, request.cookies.get(self.flash_cookie)), *flashes]
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        html = self.jinja.get_template(template).render(
            {
                "t": t,
                "lang": t.lang,
                "langs": LANGS,
                "user": state.user if state else None,
                "csrf_field": CSRF_FIELD,
                "csrf_token": self.csrf_for(request),
                "flashes": [(f.level, t(f.key, **f.params)) for f in shown],
                "static": self.static_url,
                "prefix": self.prefix,
                "home": self.home_path,
                "app_title": t(self.title_key),
                "here": here,
                "lang_url": lambda code: f"{self.prefix}/lang/{code}?{urlencode({'next': here})}",
                "sign_in_url": self.sign_in_path(),
                **(context or {}),
            }
        )
        response = HTMLResponse(html, status_code=status)
        # Pages carry customer data: never kept by a shared cache or the back-forward cache.
        response.headers["Cache-Control"] = "no-store"
        if shown or (not partial and request.cookies.get(self.flash_cookie)):
            response.delete_cookie(self.flash_cookie, path=self.prefix)
        new_pre = getattr(request.state, "ui_new_presession", None)
        if new_pre:
            response.set_cookie(
                self.presession_cookie,
                new_pre,
                path=self.prefix,
                httponly=True,
                secure=self.secure_cookies,
                samesite="lax",
            )
        return response

    def error_page(
        self,
        request: Request,
        status: int,
        message_key: str,
        *,
        title_key: str | None = None,
        **params: Any,
    ) -> Response:
        """`title_key` names the page when the status's own title says too little."""
        title_key = title_key or f"error.title.{status}"
        t = self.translator(request)
        return self.render(
            request,
            "kit/error.html",
            {
                "status": status,
                "title": t(title_key) if t.has(title_key) else t("error.title.other"),
                "message": t(message_key, **params),
            },
            status=status,
        )

    def confirm_page(
        self,
        request: Request,
        *,
        action: str,
        fields: Mapping[str, str],
        question: str,
        details: Sequence[tuple[str, str]] = (),
        confirm_label: str,
        cancel_url: str,
        danger: bool = False,
    ) -> HTMLResponse:
        """The no-JavaScript confirmation: the same form again, with `confirmed=1`."""
        return self.render(
            request,
            "kit/confirm.html",
            {
                "action": action,
                "fields": {k: v for k, v in fields.items() if k not in (CSRF_FIELD, "confirmed")},
                "question": question,
                "details": [(label, value) for label, value in details if value],
                "confirm_label": confirm_label,
                "cancel_url": cancel_url,
                "danger": danger,
            },
        )


def _bounded(request: Request, limit: int) -> Request:
    """The request with a body that fails past `limit` bytes, whatever the server lets
    through (an upload is large enough for that to matter)."""
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise UiError(403, "error.csrf")
        return message

    return Request(request.scope, receive)


def clean_param(value: str | None, limit: int) -> str:
    """A text parameter of a URL or form as pages use it: NUL bytes (which PostgreSQL text
    refuses) dropped, trimmed, and cut to `limit` characters."""
    return (value or "").replace("\x00", "").strip()[:limit]


def get_kit(request: Request) -> UiKit:
    kit: UiKit = request.app.state.ui_kit
    return kit


async def ui_user(request: Request) -> UiUser:
    """The signed-in user; anyone else is sent to the sign-in page."""
    state = await get_kit(request).session(request)
    if state.user is None:
        raise SignInRequired(state.problem)
    return state.user


def require_ui_roles(*roles: str) -> Callable[[Request], Awaitable[UiUser]]:
    """A dependency admitting a signed-in user with one of `roles` (admin always passes)."""

    async def check(request: Request) -> UiUser:
        user = await ui_user(request)
        if not user.principal.has_any(*roles, "admin"):
            raise UiError(403, "error.role_required")
        return user

    return check


async def csrf_form(request: Request) -> FormData:
    return await get_kit(request).check_csrf(request)


#: A POST's form, after the same-origin and CSRF checks.
CsrfForm = Annotated[FormData, Depends(csrf_form)]


def flash(level: Level, key: str, **params: Any) -> Flash:
    return Flash(level, key, dict(params))
