"""The settings every web UI needs, as a mixin for a service's settings class.

A service adds them with ``class ApprovalSettings(ServiceSettings, UiSettings)`` and lists
``UI_DEV_SECRET_DEFAULTS`` in its ``dev_secret_defaults``, so the existing start-up check
refuses the dev CSRF secret outside ``env=dev``.
"""

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, SecretStr, model_validator

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

    @model_validator(mode="after")
    def _no_demo_signin_in_prod(self) -> "UiSettings":
        if self.env not in DEMO_SIGNIN_ENVS and self.ui_dev_signin_key_file:
            raise InsecureDefaultError(
                "ui_dev_signin_key_file enables the demo sign-in, which only dev and test allow"
            )
        return self

    def demo_signin_key_path(self) -> Path | None:
        """The private key the demo sign-in signs with, or None when it is disabled."""
        if self.env not in DEMO_SIGNIN_ENVS:
            return None
        if self.ui_dev_signin_key_file:
            return Path(self.ui_dev_signin_key_file)
        if self.jwt_public_key_file:
            sibling = Path(self.jwt_public_key_file).with_name("private.pem")
            if sibling.is_file():
                return sibling
        return None
