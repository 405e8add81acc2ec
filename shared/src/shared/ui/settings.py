"""The settings every web UI needs, as a mixin for a service's settings class.

A service adds them with ``class ApprovalSettings(ServiceSettings, UiSettings)`` and lists
``UI_DEV_SECRET_DEFAULTS`` in its ``dev_secret_defaults``, so the existing start-up check
refuses the dev CSRF secret outside ``env=dev``.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, model_validator

from shared.config import Environment, InsecureDefaultError

DEV_UI_SECRET = "ims-dev-ui-secret-change-me"  # noqa: S105 - a dev default, refused outside dev
UI_DEV_SECRET_DEFAULTS: dict[str, str] = {"ui_secret": DEV_UI_SECRET}
#: Environments where the demo sign-in may exist; never prod.
DEMO_SIGNIN_ENVS = frozenset({"dev", "test"})


class UiSettings(BaseModel):
    if TYPE_CHECKING:  # provided by ServiceSettings, which the service class also extends
        env: Environment
        jwt_issuer: str
        jwt_audience: str
        jwt_public_key_file: str | None

    #: Key of the CSRF tokens and of the signed flash cookie.
    ui_secret: SecretStr = SecretStr(DEV_UI_SECRET)
    #: The dev issuer's private key, for the demo sign-in (dev and test only). Unset in dev,
    #: the key next to `jwt_public_key_file` is used when it exists (the local stack keeps
    #: the dev issuer's key pair in one folder).
    ui_dev_signin_key_file: str | None = None
    #: Lifetime of a demo session's token, in seconds.
    ui_dev_session_ttl_s: int = 10 * 3600

    #: The company's OIDC provider (its issuer URL, e.g. a Keycloak realm's
    #: https://sso.example/realms/ims): set, it enables "sign in with your company account".
    ui_oidc_issuer_url: str | None = None
    ui_oidc_client_id: str | None = None
    #: A confidential client's secret (sent with HTTP Basic); unset, a public client with
    #: PKCE only.
    ui_oidc_client_secret: SecretStr | None = None
    ui_oidc_scopes: str = "openid profile email"
    #: Which token of the provider's answer becomes the session: it must be a JWT that the
    #: service's verifier accepts (issuer, audience, roles). Keycloak's access token is
    #: (with an audience mapper); some providers only put custom claims in the ID token.
    ui_oidc_session_token: Literal["access_token", "id_token"] = "access_token"  # noqa: S105
    #: The callback URL registered at the provider, when the request's own URL is not it
    #: (behind a proxy); by default `<base URL><prefix>/sign-in/oidc/callback`.
    ui_oidc_redirect_url: str | None = None
    #: Timeout of each call to the provider (discovery, keys, token exchange), in seconds.
    ui_oidc_timeout_s: float = Field(default=10.0, gt=0, le=60)

    @model_validator(mode="after")
    def _no_demo_signin_in_prod(self) -> "UiSettings":
        if self.env not in DEMO_SIGNIN_ENVS and self.ui_dev_signin_key_file:
            raise InsecureDefaultError(
                "ui_dev_signin_key_file enables the demo sign-in, which only dev and test allow"
            )
        return self

    @model_validator(mode="after")
    def _oidc_is_complete(self) -> "UiSettings":
        if not self.ui_oidc_issuer_url:
            return self
        schemes = {"https"} if self.env == "prod" else {"http", "https"}
        for name in ("ui_oidc_issuer_url", "ui_oidc_redirect_url"):
            value = getattr(self, name)
            if value and not _is_url(value, schemes):
                raise ValueError(f"{name} must be an {' or '.join(sorted(schemes))} URL")
        if not self.ui_oidc_client_id:
            raise ValueError("ui_oidc_issuer_url needs ui_oidc_client_id")
        if "openid" not in self.ui_oidc_scopes.split():
            raise ValueError("ui_oidc_scopes must include openid")
        return self

    def demo_signin_key_path(self) -> Path | None:
        """The private key the demo sign-in signs with, or None when it is disabled."""
        if self.env not in DEMO_SIGNIN_ENVS:
            return None
        if self.ui_dev_signin_key_file:
            return Path(self.ui_dev_signin_key_file)
        # Only the local stack finds the key by itself; a shared test environment must name
        # it, so nobody gets a demo sign-in there by accident.
        if self.env == "dev" and self.jwt_public_key_file:
            sibling = Path(self.jwt_public_key_file).with_name("private.pem")
            if sibling.is_file():
                return sibling
        return None


def _is_url(value: str, schemes: set[str]) -> bool:
    parts = urlsplit(value)
    return parts.scheme in schemes and bool(parts.netloc)
