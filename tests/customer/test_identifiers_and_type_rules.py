"""Tax codes, phones, and the rules a customer's type brings."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from customer.identifiers import normalise_phone, tax_code_problem
from tests.customer.test_api import complete_customer

Auth = Callable[[str], dict[str, str]]
VALID_MST = "0100109106"


@pytest.mark.parametrize(
    ("code", "personal_ok", "problem"),
    [
        (VALID_MST, False, None),
        (f"{VALID_MST}-001", False, None),
        ("0100109107", False, "checksum"),
        ("001099012345", True, None),
        ("001099012345", False, "personal_id_not_allowed"),
    ],
)
def test_tax_codes(code: str, personal_ok: bool, problem: str | None) -> None:
    assert tax_code_problem(code, allow_personal_id=personal_ok) == problem


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0912 345 678", "+84912345678"),
        ("0168 123 4567", "+84381234567"),  # retired 11-digit mobile prefix
        ("+84 168 123 4567", "+84381234567"),
        ("0129.123.4567", "+84821234567"),
        ("024 3825 1234", "+842438251234"),  # Hà Nội landline
        ("(028) 3822-1234", "+842838221234"),  # TP.HCM landline
    ],
)
def test_phones_become_e164(raw: str, e164: str) -> None:
    assert normalise_phone(raw) == e164


@pytest.mark.parametrize("raw", ["12", "0999", "abc", "+84 12", "0912345678901234"])
def test_impossible_phones_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_phone(raw)


async def submit(api: httpx.AsyncClient, auth: Auth, **overrides: Any) -> httpx.Response:
    created = await api.post(
        "/api/v1/customers", json={**complete_customer(), **overrides}, headers=auth("sales1")
    )
    assert created.status_code == 201, created.text
    return await api.post(
        f"/api/v1/customers/{created.json()['id']}/submit",
        headers={**auth("sales1"), "Accept-Language": "vi"},
    )


def codes(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["field"]: e["code"] for e in response.json()["errors"]}


async def test_a_company_needs_its_name_tax_code_and_an_invoicing_profile(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    errors = codes(await submit(customer_api, auth_header, customer_type_code="DN"))
    assert errors == {
        "company_name": "required_for_company",
        "tax_code": "required_for_company",
        "invoice_profiles": "required_for_company",
    }


async def test_a_complete_company_submits(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    response = await submit(
        customer_api,
        auth_header,
        customer_type_code="DN",
        company_name="Công ty TNHH Minh Anh",
        tax_code=VALID_MST,
        invoice_profiles=[
            {"company_name": "Công ty TNHH Minh Anh", "tax_code": VALID_MST, "is_default": True}
        ],
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        (
            {"customer_type_code": "DN", "company_name": "X", "tax_code": "0100109107"},
            "tax_code",
            "tax_code_checksum",
        ),
        (
            {"customer_type_code": "DN", "company_name": "X", "tax_code": "001099012345"},
            "tax_code",
            "tax_code_personal_id_not_allowed",
        ),
        (
            {"invoice_profiles": [{"company_name": "X", "tax_code": "0100109107"}]},
            "invoice_profiles[0].tax_code",
            "tax_code_checksum",
        ),
    ],
)
async def test_tax_code_problems_name_their_field(
    customer_api: httpx.AsyncClient,
    auth_header: Auth,
    overrides: dict[str, Any],
    field: str,
    code: str,
) -> None:
    assert codes(await submit(customer_api, auth_header, **overrides))[field] == code


async def test_a_household_may_use_its_personal_id_as_tax_code(
    customer_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    response = await submit(
        customer_api, auth_header, customer_type_code="HKD", tax_code="001099012345"
    )
    assert response.status_code == 200, response.text
