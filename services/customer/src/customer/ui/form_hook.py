"""Where the customer form (Tạo mới, edit, attachment uploads) plugs into the UI.

`install_ui` adds whatever routers this returns after the list and the customer page
(whose routes take only UUIDs, so `/ui/customers/new` reaches the form).
"""

from fastapi import APIRouter


def extra_routers() -> list[APIRouter]:
    # Imported here: the form's module imports the `customer.ui` package this is part of.
    from customer.ui.form_routes import assets, router

    return [router, assets.router()]
