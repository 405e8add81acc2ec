"""The kit the web UIs are built from: server-rendered Jinja2 pages, no front-end build.

CS's approval UI uses it now; the salesperson UI of the customer service will use it too.
"""

from shared.ui.flash import Flash
from shared.ui.i18n import Translator
from shared.ui.kit import (
    CsrfForm,
    SignInRequired,
    UiError,
    UiKit,
    clean_param,
    flash,
    get_kit,
    require_ui_roles,
    ui_not_found,
    ui_user,
)
from shared.ui.session import UiUser
from shared.ui.settings import UI_DEV_SECRET_DEFAULTS, UiSettings

__all__ = [
    "UI_DEV_SECRET_DEFAULTS",
    "CsrfForm",
    "Flash",
    "SignInRequired",
    "Translator",
    "UiError",
    "UiKit",
    "UiSettings",
    "UiUser",
    "clean_param",
    "flash",
    "get_kit",
    "require_ui_roles",
    "ui_not_found",
    "ui_user",
]
