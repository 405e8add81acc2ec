"""One list of attachments for both UIs: shared.ui.customer_form.attachment_views and the
kit's `attachment_list` macro."""

from pathlib import Path

from jinja2 import Environment, FileSystemLoader

import shared.ui
from shared.ui.customer_form import attachment_views
from shared.ui.i18n import Catalog

KIT_TEMPLATES = Path(shared.ui.__file__).parent / "templates"
T = Catalog().translator("en")

ITEMS = [
    {
        "id": "a1",
        "kind": "business_license",
        "filename": "giay-phep.pdf",
        "content_type": "application/pdf",
        "size": 2048,
        "uploaded_by": "E001",
        "uploaded_at": "2026-11-28T03:00:00+00:00",
    },
    {"id": "a2", "kind": "image", "filename": "shop.jpg", "content_type": "image/jpeg"},
    {"id": "a3", "kind": "brand_new_kind", "filename": "x.docx", "content_type": "application/x"},
]


def test_views_carry_label_link_and_how_the_browser_opens_each_file() -> None:
    views = attachment_views(T, ITEMS, "/ui/customers/c1/attachments", lambda e: f"Name {e}")
    pdf, image, other = views
    assert pdf.href == "/ui/customers/c1/attachments/a1"
    assert pdf.kind_label == "Business registration licence"
    assert (pdf.pdf, pdf.inline, pdf.image) == (True, True, False)
    assert pdf.uploader == "Name E001" and pdf.size == 2048
    assert (image.image, image.inline, image.uploader, image.size) == (True, True, None, None)
    # A kind this UI does not know yet shows as itself; an unknown type downloads.
    assert other.kind_label == "brand_new_kind" and not other.inline


def test_missing_keys_show_empty_never_fail() -> None:
    (view,) = attachment_views(T, [{}], "/ui/reviews/r1/attachments")
    assert (view.filename, view.kind_label, view.size, view.content_type) == ("", "", None, None)


def _render(source: str, **context: object) -> str:
    env = Environment(loader=FileSystemLoader(KIT_TEMPLATES), autoescape=True)
    env.globals["kit"] = env.get_template("kit/macros.html").make_module()
    return env.from_string(source).render(t=T, **context)


def test_the_macro_escapes_names_and_renders_an_action_per_item() -> None:
    items = attachment_views(
        T, [{**ITEMS[1], "filename": '"><img src=x onerror=alert(1)>.jpg'}], "/ui/x"
    )
    html = _render(
        "{% call(a) kit.attachment_list(t, items) %}<form action='{{ a.href }}/delete'></form>"
        "{% endcall %}",
        items=items,
    )
    assert "<img src=x" not in html and "&#34;&gt;&lt;img src=x" in html
    assert "action='/ui/x/a2/delete'" in html
    assert 'class="thumb"' in html  # an image shows its thumbnail


def test_the_macro_says_when_there_is_nothing() -> None:
    html = _render("{{ kit.attachment_list(t, []) }}")
    assert "No attachments." in html
