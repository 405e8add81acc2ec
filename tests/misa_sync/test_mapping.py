"""Every field of the IMS → MISA mapping (MISA_API.md §13)."""

from typing import Any

import pytest

from misa_sync.mapping import (
    MappingOptions,
    admin_unit_names,
    customer_to_account_object,
    differing_fields,
)


def company(**overrides: Any) -> dict[str, Any]:
    customer: dict[str, Any] = {
        "id": "5b0c3d9e-0000-4000-8000-000000000001",
        "customer_code": "KH000123",
        "misa_code": None,
        "status": "active",
        "customer_type_code": "DN",
        "full_name": "Nguyễn Thị Lan",
        "company_name": "Công ty TNHH Hoa Sen",
        "tax_code": " 0101234567 ",
        "contact_name": None,
        "phone": "+84901234567",
        "email": "ketoan@hoasen.vn",
        "address": "12 Lý Thường Kiệt",
        "admin_scheme": "2025",
        "province_code": "01",
        "district_code": None,
        "ward_code": "00004",
        "credit_days": 30,
        "customer_group_code": "DAILY",
        "note": "Giao giờ hành chính",
        "delivery_addresses": [
            {"address": "Kho 1, Hà Đông", "is_default": False},
            {"address": "Kho 2, Long Biên", "is_default": True},
        ],
        "invoice_profiles": [
            {"buyer_name": "Phạm Văn Hùng", "email": "hoadon@hoasen.vn", "is_default": True},
        ],
    }
    return customer | overrides


def mapped(customer: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return customer_to_account_object(customer, account_object_id="obj-1", **kw)


def test_an_organisation_maps_every_field() -> None:
    assert mapped(company()) == {
        "dictionary_type": 1,
        "account_object_id": "obj-1",
        "account_object_code": "KH000123",
        "account_object_name": "Công ty TNHH Hoa Sen",
        "account_object_type": 0,
        "is_customer": True,
        "is_vendor": False,
        "is_employee": False,
        "inactive": False,
        "company_tax_code": "0101234567",
        "address": "12 Lý Thường Kiệt",
        "province_or_city": "Thành phố Hà Nội",
        "district": None,
        "ward_or_commune": "Phường Ba Đình",
        "country": "Việt Nam",
        "tel": "+84901234567",
        "email_address": "ketoan@hoasen.vn",
        "contact_name": "Nguyễn Thị Lan",
        "einvoice_contact_name": "Phạm Văn Hùng",
        "einvoice_contact_email": "hoadon@hoasen.vn",
        "shipping_address": "Kho 2, Long Biên",
        "due_time": 30,
        "account_object_group_code_list": "DAILY",
        "description": "Giao giờ hành chính",
        "receive_account": "131",
        "pay_account": "331",
        "state": 1,
    }


def test_an_individual_is_named_after_the_person_even_with_a_shop_name() -> None:
    obj = mapped(company(customer_type_code="HKD", company_name="Tạp hóa Lan", tax_code=None))
    assert obj["account_object_type"] == 1
    assert obj["account_object_name"] == "Nguyễn Thị Lan"
    assert obj["contact_name"] is None  # the person is the customer, not its contact


def test_without_a_type_a_company_name_makes_an_organisation() -> None:
    assert mapped(company(customer_type_code=None))["account_object_type"] == 0
    person = mapped(company(customer_type_code=None, company_name=None))
    assert person["account_object_type"] == 1 and person["account_object_name"] == "Nguyễn Thị Lan"


def test_company_types_come_from_settings() -> None:
    options = MappingOptions(company_types={"HKD"})
    assert mapped(company(customer_type_code="HKD"), options=options)["account_object_type"] == 0
    assert mapped(company(customer_type_code="DN"), options=options)["account_object_type"] == 1


def test_an_explicit_contact_wins() -> None:
    assert mapped(company(contact_name="Trần Bình"))["contact_name"] == "Trần Bình"


def test_the_code_is_the_misa_code_when_given_else_the_ims_code() -> None:
    assert mapped(company(misa_code="A AN DUYÊN"))["account_object_code"] == "A AN DUYÊN"
    # the code of the MISA object the link points to beats both
    linked = mapped(company(misa_code="OLD"), misa_code="KH-OLD-5")
    assert linked["account_object_code"] == "KH-OLD-5"


def test_inactive_follows_the_status() -> None:
    assert mapped(company(status="inactive"))["inactive"] is True
    assert mapped(company(status="active"))["inactive"] is False


def test_legacy_addresses_carry_province_district_and_ward_of_that_scheme() -> None:
    customer = company(
        admin_scheme="legacy", province_code="01", district_code="001", ward_code="00001"
    )
    assert admin_unit_names(customer) == ("Thành phố Hà Nội", "Quận Ba Đình", "Phường Phúc Xá")
    obj = mapped(customer)
    assert (obj["province_or_city"], obj["district"], obj["ward_or_commune"]) == (
        "Thành phố Hà Nội",
        "Quận Ba Đình",
        "Phường Phúc Xá",
    )


def test_unknown_admin_codes_give_no_name_rather_than_a_guess() -> None:
    obj = mapped(company(province_code="99", ward_code=None))
    assert obj["province_or_city"] is None and obj["ward_or_commune"] is None


def test_the_first_entry_is_the_default_when_none_is_marked() -> None:
    obj = mapped(
        company(
            delivery_addresses=[{"address": "Kho A"}, {"address": "Kho B"}],
            invoice_profiles=[{"buyer_name": None, "email": "x@y.vn"}],
        )
    )
    assert obj["shipping_address"] == "Kho A"
    assert obj["einvoice_contact_name"] is None and obj["einvoice_contact_email"] == "x@y.vn"


def test_absent_values_are_sent_as_none_so_misa_clears_them() -> None:
    obj = mapped(
        company(
            phone=None,
            email="  ",
            delivery_addresses=[],
            invoice_profiles=[],
            credit_days=None,
            customer_group_code=None,
            note=None,
        )
    )
    for key in (
        "tel",
        "email_address",
        "shipping_address",
        "einvoice_contact_name",
        "einvoice_contact_email",
        "due_time",
        "account_object_group_code_list",
        "description",
    ):
        assert key in obj and obj[key] is None, key


@pytest.mark.parametrize("days", [-1, True, "30"])
def test_credit_days_must_be_a_non_negative_int(days: Any) -> None:
    assert mapped(company(credit_days=days))["due_time"] is None


def test_group_codes_and_branch_follow_the_options() -> None:
    options = MappingOptions(send_group_codes=False, branch_id="branch-9")
    obj = mapped(company(), options=options)
    assert obj["account_object_group_code_list"] is None and obj["branch_id"] == "branch-9"
    assert "branch_id" not in mapped(company())


@pytest.mark.parametrize(
    "overrides",
    [{"customer_code": None, "misa_code": None}, {"full_name": " ", "company_name": None}],
)
def test_a_customer_without_code_or_name_cannot_be_mapped(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="customer has"):
        mapped(company(**overrides))


def test_differing_fields_ignore_instructions_and_blank_versus_none() -> None:
    pushed = mapped(company())
    held = dict(pushed, state=2, tel="+84999999999", description="", created_date="x")
    held["description"] = "Giao giờ hành chính "
    assert differing_fields(pushed, held) == ["tel"]
    assert differing_fields(dict(pushed, fax=None), dict(pushed, fax="")) == []
