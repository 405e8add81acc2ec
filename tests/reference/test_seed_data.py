"""Integrity checks on the reference seed data (pure Python: no database, no services)."""

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol

import pytest

from reference.seed import sales_force, sales_lists
from shared import admin_units
from shared.auth.demo import DEMO_SALES_UNITS, DEMO_USERS


def _duplicates(codes: Iterable[str]) -> list[str]:
    return [code for code, n in Counter(codes).items() if n > 1]


def _is_nfc(text: str) -> bool:
    return unicodedata.normalize("NFC", text) == text


# --- administrative units ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "n_provinces", "n_wards"),
    [("2025", 34, 3321), ("legacy", 63, 10051)],
)
def test_counts(scheme: admin_units.Scheme, n_provinces: int, n_wards: int) -> None:
    assert len(admin_units.provinces(scheme)) == n_provinces
    assert len(admin_units.wards(scheme)) == n_wards


def test_legacy_district_count() -> None:
    assert len(admin_units.districts()) == 696


def test_2025_ward_types_match_official_counts() -> None:
    types = Counter(w.division_type for w in admin_units.wards("2025"))
    assert types == {"xã": 2621, "phường": 687, "đặc khu": 13}


@pytest.mark.parametrize("scheme", admin_units.SCHEMES)
def test_codes_unique_and_zero_padded(scheme: admin_units.Scheme) -> None:
    provinces = admin_units.provinces(scheme)
    wards = admin_units.wards(scheme)
    assert _duplicates(p.code for p in provinces) == []
    assert _duplicates(w.code for w in wards) == []
    assert all(len(p.code) == 2 and p.code.isdigit() for p in provinces)
    assert all(len(w.code) == 5 and w.code.isdigit() for w in wards)


def test_district_codes_unique_and_zero_padded() -> None:
    districts = admin_units.districts()
    assert _duplicates(d.code for d in districts) == []
    assert all(len(d.code) == 3 and d.code.isdigit() for d in districts)


@pytest.mark.parametrize("scheme", admin_units.SCHEMES)
def test_every_ward_province_exists(scheme: admin_units.Scheme) -> None:
    province_codes = {p.code for p in admin_units.provinces(scheme)}
    orphans = [w.code for w in admin_units.wards(scheme) if w.province_code not in province_codes]
    assert orphans == []


def test_2025_wards_have_no_district() -> None:
    assert all(w.district_code is None for w in admin_units.wards("2025"))


def test_every_legacy_ward_district_exists_in_same_province() -> None:
    districts = admin_units.district_by_code()
    for w in admin_units.wards("legacy"):
        assert w.district_code is not None
        district = districts[w.district_code]
        assert district.province_code == w.province_code, w


def test_every_district_province_exists() -> None:
    province_codes = {p.code for p in admin_units.provinces("legacy")}
    assert all(d.province_code in province_codes for d in admin_units.districts())


@pytest.mark.parametrize("scheme", admin_units.SCHEMES)
def test_names_are_clean(scheme: admin_units.Scheme) -> None:
    units: list[admin_units.Province | admin_units.Ward] = [
        *admin_units.provinces(scheme),
        *admin_units.wards(scheme),
    ]
    assert all(u.name and _is_nfc(u.name) and u.name[0].isupper() for u in units)
    for p in admin_units.provinces(scheme):
        assert p.division_type in {"tỉnh", "thành phố trung ương"}
        assert p.short_name and p.name.endswith(p.short_name)
        assert p.name_ascii.isascii()
        assert p.phone_area_code.startswith("0")


def test_well_known_codes() -> None:
    provinces = admin_units.province_by_code("2025")
    assert provinces["01"].short_name == "Hà Nội"
    assert provinces["79"].name == "Thành phố Hồ Chí Minh"
    assert provinces["79"].name_ascii == "Ho Chi Minh"
    assert provinces["48"].division_type == "thành phố trung ương"
    assert admin_units.province_by_code("legacy")["77"].short_name.startswith("Bà Rịa")
    assert admin_units.ward_by_code("2025")["00004"].name == "Phường Ba Đình"


def test_lookups_by_parent() -> None:
    hanoi_2025 = admin_units.wards_in_province("01", "2025")
    assert hanoi_2025 and all(w.province_code == "01" for w in hanoi_2025)
    total = sum(len(admin_units.wards_in_province(p.code)) for p in admin_units.provinces())
    assert total == len(admin_units.wards("2025"))

    ba_dinh = admin_units.wards_in_district("001")
    assert ba_dinh and all(w.district_code == "001" for w in ba_dinh)
    assert {d.code for d in admin_units.districts_in_province("01")} >= {"001", "002"}

    assert admin_units.wards_in_province("00") == ()
    assert admin_units.wards_in_district("999") == ()
    assert admin_units.districts_in_province("xx") == ()


def test_unknown_scheme_rejected() -> None:
    with pytest.raises(ValueError, match="unknown scheme"):
        admin_units.provinces("2019")  # type: ignore[arg-type]


def test_repeated_calls_are_cached() -> None:
    assert admin_units.wards("legacy") is admin_units.wards("legacy")
    assert admin_units.legacy_to_2025_ward_mapping() is admin_units.legacy_to_2025_ward_mapping()


# --- legacy → 2025 conversion -----------------------------------------------------------


def test_mapping_targets_exist_in_2025_wards() -> None:
    new_wards = admin_units.ward_by_code("2025")
    for conv in admin_units.legacy_to_2025_ward_mapping().values():
        assert conv.new_ward_codes, conv
        for target in conv.new_ward_codes:
            assert new_wards[target].province_code == conv.new_province_code, conv


def test_mapping_flags_and_coverage() -> None:
    mapping = admin_units.legacy_to_2025_ward_mapping()
    assert len(mapping) == 10033
    assert all(conv.ambiguous == (len(conv.new_ward_codes) > 1) for conv in mapping.values())
    assert sum(conv.ambiguous for conv in mapping.values()) == 441

    legacy = admin_units.ward_by_code("legacy")
    # Nearly every legacy ward is covered. The rest were merged away in early 2025.
    assert len(set(legacy) - set(mapping)) < 30
    for code, conv in mapping.items():
        assert conv.in_legacy_list == (code in legacy)
        if conv.in_legacy_list:
            ward = legacy[code]
            assert (conv.legacy_district_code, conv.legacy_province_code) == (
                ward.district_code,
                ward.province_code,
            )


def test_every_2025_ward_has_a_source_except_special_zones() -> None:
    targets = {
        t for c in admin_units.legacy_to_2025_ward_mapping().values() for t in c.new_ward_codes
    }
    unsourced = [w for w in admin_units.wards("2025") if w.code not in targets]
    assert len(unsourced) == 5
    assert all(w.division_type == "đặc khu" for w in unsourced)


def test_known_conversions() -> None:
    mapping = admin_units.legacy_to_2025_ward_mapping()
    # Phường Bến Nghé (Quận 1) became Phường Sài Gòn.
    ben_nghe = mapping["26740"]
    assert [admin_units.ward_by_code("2025")[c].name for c in ben_nghe.new_ward_codes] == [
        "Phường Sài Gòn"
    ]
    # The package tags this Long An ward with Tiền Giang (82); the district says Long An (80).
    assert mapping["27691"].legacy_province_code == "80"


def test_province_mapping() -> None:
    mapping = admin_units.legacy_to_2025_province_mapping()
    assert set(mapping) == {p.code for p in admin_units.provinces("legacy")}
    assert set(mapping.values()) == {p.code for p in admin_units.provinces("2025")}
    assert mapping["77"] == "79"  # Bà Rịa - Vũng Tàu → TP. Hồ Chí Minh
    assert mapping["74"] == "79"  # Bình Dương → TP. Hồ Chí Minh
    assert mapping["82"] == "82"  # Tiền Giang → Đồng Tháp (under Tiền Giang's code)


# --- sales lists ------------------------------------------------------------------------


class _ListItem(Protocol):
    # The fields every sales-list item shares (read-only, as the dataclasses are frozen).
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def name_en(self) -> str: ...
    @property
    def active(self) -> bool: ...
    @property
    def sort_order(self) -> int: ...


_LISTS: dict[str, Sequence[_ListItem]] = {
    "customer_types": sales_lists.customer_types(),
    "customer_groups": sales_lists.customer_groups(),
    "sales_channels": sales_lists.sales_channels(),
    "payment_terms": sales_lists.payment_terms(),
    "payment_methods": sales_lists.payment_methods(),
}


@pytest.mark.parametrize("name", list(_LISTS))
def test_sales_list_codes_and_fields(name: str) -> None:
    items = _LISTS[name]
    assert items
    codes = [i.code for i in items]
    assert _duplicates(codes) == []
    assert all(c == c.upper() and c.replace("-", "").isalnum() and c.isascii() for c in codes)
    orders = [i.sort_order for i in items]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    for item in items:
        assert _is_nfc(item.name) and item.name_en
        assert isinstance(item.active, bool)


def test_customer_types_mark_companies() -> None:
    types = {t.code: t for t in sales_lists.customer_types()}
    assert types["DN"].is_company
    assert not types["CANHAN"].is_company
    assert not types["HKD"].is_company


def test_group_defaults_exist() -> None:
    terms = {t.code: t for t in sales_lists.payment_terms()}
    channels = {c.code for c in sales_lists.sales_channels()}
    for group in sales_lists.customer_groups():
        term = terms[group.default_payment_term_code]
        assert term.active, group
        assert group.default_credit_days >= term.days, group
        assert group.default_channel_code in channels, group
    assert {g.code for g in sales_lists.customer_groups()} >= {"TAPHOA", "SIEUTHI", "NHATHUOC"}


def test_payment_terms() -> None:
    terms = {t.code: t for t in sales_lists.payment_terms()}
    assert {"COD", "NET7", "NET15", "NET30", "NET45", "NET60", "EOM"} <= set(terms)
    assert terms["NET30"].days == 30 and terms["NET30"].due_basis == "invoice_date"
    assert terms["COD"].days == 0
    assert all(t.days >= 0 for t in terms.values())


def test_payment_methods() -> None:
    methods = {m.code: m for m in sales_lists.payment_methods()}
    assert {"TM", "CK", "COD", "THE"} <= set(methods)
    assert not methods["TM"].non_cash and methods["CK"].non_cash


def test_channel_tree() -> None:
    channels = sales_lists.sales_channels()
    seen: dict[str, sales_lists.SalesChannel] = {}
    for channel in channels:
        if channel.parent_code is None:
            assert channel.level == 0
        else:
            # Parents come first, so a loader can insert rows in list order.
            parent = seen[channel.parent_code]
            assert channel.level == parent.level + 1
            assert channel.code.startswith(parent.code)
        seen[channel.code] = channel
    roots = {c.code for c in channels if c.parent_code is None}
    assert roots >= {"GT", "MT", "HORECA", "KA", "ECOM"}


# --- sales force ------------------------------------------------------------------------


def test_sales_units_mirror_demo() -> None:
    units = sales_force.sales_units()
    assert [(u.code, u.name, u.parent_code, u.manager_employee_id) for u in units] == list(
        DEMO_SALES_UNITS
    )
    levels = {u.code: u.level for u in units}
    assert levels["VN"] == "national"
    assert levels["MB"] == "region"
    assert levels["MB-HN"] == "area"
    assert levels["HN-T1"] == "team"
    assert levels["HO"] == "office"


def test_sales_unit_tree_parents_exist() -> None:
    codes = {u.code for u in sales_force.sales_units()}
    assert _duplicates(u.code for u in sales_force.sales_units()) == []
    assert all(u.parent_code is None or u.parent_code in codes for u in sales_force.sales_units())


def test_every_employee_unit_exists() -> None:
    codes = {u.code for u in sales_force.sales_units()}
    for employee in sales_force.employees():
        assert employee.sales_unit_code in codes, employee
    for user in DEMO_USERS.values():
        assert user.sales_unit in codes, user


def test_employees_cover_demo_users() -> None:
    employees = sales_force.employees()
    assert _duplicates(e.id for e in employees) == []
    by_id = {e.id: e for e in employees}
    for user in DEMO_USERS.values():
        employee = by_id[user.employee_id]
        assert (employee.username, employee.name, employee.roles) == (
            user.username,
            user.name,
            user.roles,
        )
    logins_only = sales_force.employees(include_field_staff=False)
    assert {e.id for e in logins_only} == {u.employee_id for u in DEMO_USERS.values()}


def test_managers_are_employees() -> None:
    ids = {e.id for e in sales_force.employees()}
    for unit in sales_force.sales_units():
        assert unit.manager_employee_id is None or unit.manager_employee_id in ids
