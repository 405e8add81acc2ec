"""Message catalogs: both languages complete, every key a template uses exists."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import approval.ui
import shared.ui
from shared.ui.i18n import KIT_MESSAGES, Catalog, load_catalogs

APPROVAL_UI = Path(approval.ui.__file__).parent
KIT = Path(shared.ui.__file__).parent
#: t('literal.key') in templates and Python; dynamic keys ('status.' ~ s) are checked below.
LITERAL_KEY = re.compile(r"""\bt\(\s*["']([a-z0-9_.]+)["']""")


@pytest.mark.parametrize("directory", [KIT_MESSAGES, APPROVAL_UI / "messages"])
def test_vietnamese_and_english_have_the_same_keys(directory: Path) -> None:
    catalogs = load_catalogs(directory)
    assert catalogs["vi"] and set(catalogs["vi"]) == set(catalogs["en"])


def test_every_key_used_exists() -> None:
    catalog = Catalog(APPROVAL_UI / "messages").messages
    sources = [
        *KIT.rglob("*.html"),
        *APPROVAL_UI.rglob("*.html"),
        *APPROVAL_UI.rglob("*.py"),
        *KIT.rglob("*.py"),
    ]
    used = {key for path in sources for key in LITERAL_KEY.findall(path.read_text())}
    # Keys passed around in Python (flashes, error pages): quoted strings of a catalog's
    # namespaces ("decide.approved", "error.csrf", …).
    namespaces = {key.split(".")[0] for key in catalog["vi"]}
    for path in [*APPROVAL_UI.rglob("*.py"), *KIT.rglob("*.py")]:
        for key in re.findall(r"""["']([a-z_]+\.[a-z0-9_.]+)["']""", path.read_text()):
            if key.split(".")[0] in namespaces:
                used.add(key)
    used = {key for key in used if not key.endswith(".")}  # 'status.' ~ s: checked below
    missing = sorted(k for k in used if k not in catalog["vi"] or k not in catalog["en"])
    assert not missing
    for prefix, values in {
        "status.": ("pending", "approved", "rejected", "superseded"),
        "tab.": ("pending", "approved", "rejected", "superseded", "all"),
        "kind.": ("new", "change"),
        "role.": ("sales", "sales_manager", "cs", "accountant", "admin"),
        "dup.reason.": ("same_tax_code", "same_phone", "same_email", "similar_name_address"),
        "customer.attachment_kind.": (
            "business_license",
            "contract",
            "announcement",
            "note",
            "image",
            "other",
        ),
        "error.title.": ("400", "403", "404", "409", "500", "502", "other"),
        "customer.scheme.": ("2025", "legacy"),
    }.items():
        for value in values:
            assert prefix + value in catalog["vi"] and prefix + value in catalog["en"], (
                prefix + value
            )


def test_formats() -> None:
    vi = Catalog().translator("vi")
    en = Catalog().translator("en")
    assert vi.dt(datetime(2025, 12, 31, 17, 30, tzinfo=UTC)) == "01/01/2026 00:30"
    assert vi.dt("2025-07-01T01:05:00+00:00") == "01/07/2025 08:05"
    assert vi.dt(None) == ""
    assert vi.filesize(1536) == "1,5 KB" and en.filesize(1536) == "1.5 KB"
    now = datetime(2025, 7, 2, tzinfo=UTC)
    assert vi.age(now - timedelta(minutes=5), now) == "5 phút"
    assert vi.age(now - timedelta(hours=50), now) == "2 ngày 2 giờ"
    assert en.age(now - timedelta(hours=3), now) == "3 h"
    assert vi("no.such.key") == "no.such.key"
    assert vi("auth.sign_in_to") == "Đăng nhập vào {app}"  # a missing parameter shows


def test_the_customer_form_is_labelled_once_for_every_ui() -> None:
    """Both UIs label the guide's fields from the kit's catalog, in both languages."""
    from shared.ui.customer_form import ATTACHMENT_KINDS, FIELD_GROUPS, LIST_FIELDS

    catalog = Catalog().messages
    names = [n for _, fields in FIELD_GROUPS for n in fields] + [*LIST_FIELDS, "attachments"]
    keys = [f"customer.field.{n}" for n in names] + [f"customer.group.{g}" for g, _ in FIELD_GROUPS]
    keys += [f"customer.attachment_kind.{k}" for k in ATTACHMENT_KINDS]
    for lang in ("vi", "en"):
        assert [k for k in keys if k not in catalog[lang]] == []
    assert not any(
        k.startswith(("field.", "group."))
        for k in Catalog(APPROVAL_UI / "messages").messages["vi"]
        if k not in catalog["vi"]
    )
