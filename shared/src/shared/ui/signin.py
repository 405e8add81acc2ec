"""Sign-in providers: the company's OIDC provider (`shared.ui.oidc`) when configured, and
the demo sign-in of the local stack (dev and test only).

The sign-in page shows one section per `SignInProvider`, and each provider ends by calling
`UiKit.start_session` with a token the service's verifier accepts (ADR 11).
"""

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from shared.auth.demo import DEMO_USERS
from shared.auth.dev_issuer import issue_token
from shared.auth.verify import InvalidTokenError, TokenVerifier
from shared.logging import get_logger
from shared.ui.kit import CsrfForm, SignInProvider, UiError, UiKit, flash
from shared.ui.oidc import OidcSignIn
from shared.ui.settings import UiSettings

log = get_logger(__name__)


class DemoSignIn:
    """Choose a demo user; the token is signed with the dev issuer's private key."""

    template = "kit/_sign_in_demo.html"

    def __init__(self, *, private_key: bytes, issuer: str, audience: str, ttl_s: int) -> None:
        self.private_key = private_key
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s

    def context(self, request: Request) -> dict[str, Any]:
        return {"demo_users": list(DEMO_USERS.values())}

    def router(self, kit: UiKit) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        @router.post(f"{kit.prefix}/sign-in/demo")
        async def demo_sign_in(request: Request, form: CsrfForm) -> Response:
            username = str(form.get("username") or "")
            next_url = kit.safe_next(str(form.get("next") or ""))
            if username not in DEMO_USERS:
                return kit.redirect(
                    request, kit.sign_in_path(next=next_url), flash("error", "auth.choose_user")
                )
            token = issue_token(
                self.private_key,
                username=username,
                ttl_seconds=self.ttl_s,
                issuer=self.issuer,
                audience=self.audience,
            )
            verifier: TokenVerifier = request.app.state.token_verifier
            try:  # a key that does not match the service's public key is a setup error
                await verifier.verify_async(token)
            except InvalidTokenError as exc:
                log.error("ui_demo_key_mismatch", error=str(exc))
                raise UiError(500, "auth.demo_key_mismatch") from exc
            log.info("ui_signed_in", method="demo", employee_id=DEMO_USERS[username].employee_id)
            response = kit.redirect(request, next_url)
            kit.start_session(response, token, max_age=self.ttl_s)
            return response

        return router


def sign_in_providers(settings: UiSettings) -> list[SignInProvider]:
    """The company's account first (when configured), then the demo users (dev, test)."""
    providers: list[SignInProvider] = []
    if settings.ui_oidc_issuer_url:
        providers.append(OidcSignIn.from_settings(settings))
    key_path = settings.demo_signin_key_path()
    if key_path is not None:
        providers.append(
            DemoSignIn(
                private_key=key_path.read_bytes(),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl_s=settings.ui_dev_session_ttl_s,
            )
        )
    return providers


__all__ = ["DemoSignIn", "OidcSignIn", "sign_in_providers"]
