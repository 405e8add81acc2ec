"""Vietnamese administrative units from `vietnam-provinces`, as plain frozen dataclasses.

Two schemes coexist:

- ``"2025"``: the two-tier structure in force since 1 July 2025 (province → ward/commune).
  There are no districts.
- ``"legacy"``: the three-tier structure before the reform (province → district → ward).
  Customer addresses captured before July 2025 use it.

Codes are the statistics office (NSO) codes as zero-padded strings: 2 digits for
provinces, 3 for districts, 5 for wards. The leading zeros are part of the code, and
Excel imports drop them if codes are handled as numbers. Codes are unique within a scheme
but not across schemes: 2025 ward ``"00004"`` is not legacy ward ``"00004"``.

Every public function is cached and returns immutable values, so callers may call them
per request.
"""

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Literal, get_args

import vietnam_provinces as vp
import vietnam_provinces.legacy as vpl

# The package exposes the full conversion table only through this private module. Its
# public API (`Ward.search_from_legacy(code=...)`) gives one code at a time and drops the
# "partly merged" flag. The version is pinned (==2026.9.0), and the tests would catch a
# change in the table's shape.
from vietnam_provinces._ward_conversion_2025 import OLD_TO_NEW as _WARD_OLD_TO_NEW

Scheme = Literal["2025", "legacy"]
SCHEMES: tuple[Scheme, ...] = get_args(Scheme)

#: Date from which the 2025 scheme applies (Resolution 202/2025/QH15, two-tier government).
SCHEME_2025_EFFECTIVE_DATE = "2025-07-01"
#: Package version and data date, for provenance (e.g. stored in a seed-run record).
SOURCE_PACKAGE_VERSION: str = vp.__version__
SOURCE_DATA_DATE: str = vp.__data_version__

_PROVINCE_PREFIXES = ("Thành phố ", "Tỉnh ")


@dataclass(frozen=True, slots=True)
class Province:
    code: str
    """Two-digit NSO code, e.g. ``"01"`` (Hà Nội), ``"79"`` (TP. Hồ Chí Minh)."""
    name: str
    """Official Vietnamese name with diacritics, e.g. ``"Thành phố Hà Nội"``."""
    short_name: str
    """Name without the "Tỉnh"/"Thành phố" prefix, e.g. ``"Hà Nội"``."""
    name_ascii: str
    """`short_name` without diacritics, e.g. ``"Ha Noi"``. The package has no English names."""
    division_type: str
    """``"tỉnh"`` or ``"thành phố trung ương"``."""
    codename: str
    """ASCII slug from the package. The 2025 slugs have no prefix (``"ha_noi"``); the legacy ones
    keep it (``"thanh_pho_ha_noi"``)."""
    phone_area_code: str
    """Landline area code with its leading zero, e.g. ``"024"``."""
    scheme: Scheme


@dataclass(frozen=True, slots=True)
class District:
    """A legacy (pre-July-2025) district. The 2025 scheme has no districts."""

    code: str
    """Three-digit NSO code, e.g. ``"001"``."""
    name: str
    province_code: str
    division_type: str
    """``"quận"``, ``"huyện"``, ``"thị xã"`` or ``"thành phố"`` (provincial city)."""
    codename: str


@dataclass(frozen=True, slots=True)
class Ward:
    code: str
    """Five-digit NSO code, e.g. ``"00004"``."""
    name: str
    province_code: str
    district_code: str | None
    """The legacy district. Always ``None`` in the 2025 scheme."""
    division_type: str
    """2025: ``"phường"``, ``"xã"``, ``"đặc khu"``. Legacy: ``"phường"``, ``"xã"``, ``"thị trấn"``."""
    codename: str
    scheme: Scheme


@dataclass(frozen=True, slots=True)
class WardConversion:
    """Where one legacy ward went in the 2025 reform."""

    legacy_ward_code: str
    legacy_district_code: str
    legacy_province_code: str
    new_ward_codes: tuple[str, ...]
    """Every 2025 ward that received part of the legacy ward, in the package's order."""
    new_province_code: str
    """All targets of one legacy ward lie in the same 2025 province."""
    partly_merged: bool
    """The package's flag: only part of the legacy ward went to a given target."""
    ambiguous: bool
    """More than one target. An old address alone can't tell which 2025 ward it is in, so
    a person has to choose (mark the address for review)."""
    in_legacy_list: bool
    """False for the few codes the conversion table knows but the legacy ward list lacks.
    These are wards created between the legacy snapshot (Jan 2025) and the reform."""


def _check_scheme(scheme: str) -> Scheme:
    # The Literal only helps type-checked callers. A query parameter can carry anything.
    for known in SCHEMES:
        if scheme == known:
            return known
    raise ValueError(f"unknown scheme {scheme!r}; expected one of {SCHEMES}")


def _ascii_fold(text: str) -> str:
    # NFD splits tone and vowel marks off the letters. đ/Đ have no decomposition, so they
    # are mapped by hand.
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _strip_prefix(name: str, prefixes: Iterable[str]) -> str:
    for prefix in prefixes:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _fix_case(name: str) -> str:
    # The package has one 2025 name in lower case ("xã Bắc Sơn", 06325). Capitalise it so
    # that lists sort and display consistently.
    return name[:1].upper() + name[1:]


def _province_code(n: int) -> str:
    return f"{n:02d}"


def _district_code(n: int) -> str:
    return f"{n:03d}"


def _ward_code(n: int) -> str:
    return f"{n:05d}"


# `functools.cache` wrappers accept any hashable arguments as far as mypy can tell, so each
# cached builder that takes a scheme sits behind a plain typed function that also checks
# the value. Bad schemes then fail before they reach the cache.


def provinces(scheme: Scheme = "2025") -> tuple[Province, ...]:
    """All provinces of a scheme, ordered by code (34 in 2025, 63 legacy)."""
    return _provinces(_check_scheme(scheme))


@cache
def _provinces(checked: Scheme) -> tuple[Province, ...]:
    source: Iterable[vp.Province | vpl.Province] = (
        vp.Province.iter_all() if checked == "2025" else vpl.Province.iter_all()
    )
    result = []
    for p in source:
        short = _strip_prefix(p.name, _PROVINCE_PREFIXES)
        result.append(
            Province(
                code=_province_code(p.code.value),
                name=p.name,
                short_name=short,
                name_ascii=_ascii_fold(short),
                division_type=p.division_type.value,
                codename=p.codename,
                phone_area_code=f"0{p.phone_code}",
                scheme=checked,
            )
        )
    return tuple(sorted(result, key=lambda x: x.code))


@cache
def districts() -> tuple[District, ...]:
    """All legacy districts, ordered by code (696)."""
    return tuple(
        sorted(
            (
                District(
                    code=_district_code(d.code.value),
                    name=d.name,
                    province_code=_province_code(d.province_code.value),
                    division_type=d.division_type.value,
                    codename=d.codename,
                )
                for d in vpl.District.iter_all()
            ),
            key=lambda x: x.code,
        )
    )


def wards(scheme: Scheme = "2025") -> tuple[Ward, ...]:
    """All wards/communes of a scheme, ordered by code (3,321 in 2025, 10,051 legacy)."""
    return _wards(_check_scheme(scheme))


@cache
def _wards(checked: Scheme) -> tuple[Ward, ...]:
    result: list[Ward] = []
    if checked == "2025":
        for w in vp.Ward.iter_all():
            result.append(
                Ward(
                    code=_ward_code(w.code.value),
                    name=_fix_case(w.name),
                    province_code=_province_code(w.province_code.value),
                    district_code=None,
                    division_type=w.division_type.value,
                    codename=w.codename,
                    scheme=checked,
                )
            )
    else:
        # Legacy wards only store their district. The package's `province_code` property
        # does a dict lookup per call, so use our own district index instead.
        district_province = {d.code: d.province_code for d in districts()}
        for lw in vpl.Ward.iter_all():
            district_code = _district_code(lw.district_code.value)
            result.append(
                Ward(
                    code=_ward_code(lw.code.value),
                    name=_fix_case(lw.name),
                    province_code=district_province[district_code],
                    district_code=district_code,
                    division_type=lw.division_type.value,
                    codename=lw.codename,
                    scheme=checked,
                )
            )
    return tuple(sorted(result, key=lambda x: x.code))


def province_by_code(scheme: Scheme = "2025") -> Mapping[str, Province]:
    """Provinces of a scheme keyed by code."""
    return _province_by_code(_check_scheme(scheme))


@cache
def _province_by_code(checked: Scheme) -> Mapping[str, Province]:
    return MappingProxyType({p.code: p for p in _provinces(checked)})


def ward_by_code(scheme: Scheme = "2025") -> Mapping[str, Ward]:
    """Wards of a scheme keyed by code."""
    return _ward_by_code(_check_scheme(scheme))


@cache
def _ward_by_code(checked: Scheme) -> Mapping[str, Ward]:
    return MappingProxyType({w.code: w for w in _wards(checked)})


@cache
def district_by_code() -> Mapping[str, District]:
    """Legacy districts keyed by code."""
    return MappingProxyType({d.code: d for d in districts()})


def _group[T](items: Iterable[T], key: Callable[[T], str | None]) -> Mapping[str, tuple[T, ...]]:
    groups: dict[str, list[T]] = {}
    for item in items:
        k = key(item)
        if k is not None:
            groups.setdefault(k, []).append(item)
    return MappingProxyType({k: tuple(v) for k, v in groups.items()})


# The indexes are cached; the public lookups below are not. Callers pass codes from
# requests, and caching on those would let the cache grow without bound.
@cache
def _wards_by_province(scheme: Scheme) -> Mapping[str, tuple[Ward, ...]]:
    return _group(wards(scheme), lambda w: w.province_code)


@cache
def _districts_by_province() -> Mapping[str, tuple[District, ...]]:
    return _group(districts(), lambda d: d.province_code)


@cache
def _wards_by_district() -> Mapping[str, tuple[Ward, ...]]:
    return _group(wards("legacy"), lambda w: w.district_code)


def wards_in_province(province_code: str, scheme: Scheme = "2025") -> tuple[Ward, ...]:
    """The wards of one province, or ``()`` for an unknown code."""
    return _wards_by_province(_check_scheme(scheme)).get(province_code, ())


def districts_in_province(province_code: str) -> tuple[District, ...]:
    """The legacy districts of one legacy province, or ``()`` for an unknown code."""
    return _districts_by_province().get(province_code, ())


def wards_in_district(district_code: str) -> tuple[Ward, ...]:
    """The legacy wards of one legacy district, or ``()`` for an unknown code."""
    return _wards_by_district().get(district_code, ())


@cache
def legacy_to_2025_ward_mapping() -> Mapping[str, WardConversion]:
    """Legacy ward code → its 2025 ward(s), for every row of the package's conversion table.

    10,033 legacy wards are covered. About 28 legacy codes are missing: wards merged
    between the legacy snapshot and the reform, whose successors are in the table under
    their own codes. Five 2025 special zones (island districts that had no communes) have
    no legacy source at all.
    """
    legacy_district = district_by_code()
    legacy_wards = ward_by_code("legacy")
    result: dict[str, WardConversion] = {}
    for old_code, entry in sorted(_WARD_OLD_TO_NEW.items()):
        old = entry.old_ward
        district_code = _district_code(old.district_code)
        # The table tags two wards with the wrong old province (27691 in Long An is marked
        # 82, 30781 in Hà Tiên is marked 89), so trust the district's province where known.
        district = legacy_district.get(district_code)
        legacy_province = district.province_code if district else _province_code(old.province_code)
        targets = tuple(_ward_code(n.code) for n in entry.new_wards)
        code = _ward_code(old_code)
        result[code] = WardConversion(
            legacy_ward_code=code,
            legacy_district_code=district_code,
            legacy_province_code=legacy_province,
            new_ward_codes=targets,
            new_province_code=_province_code(entry.new_wards[0].province_code),
            partly_merged=old.is_partly_merged,
            ambiguous=len(targets) > 1,
            in_legacy_list=code in legacy_wards,
        )
    return MappingProxyType(result)


@cache
def legacy_to_2025_province_mapping() -> Mapping[str, str]:
    """Legacy province code → 2025 province code. Each legacy province went whole into one
    2025 province.

    This is derived from the ward table (with the province fix above) rather than taken from
    the package's province table. Because of the mis-tagged ward, that table lists Tiền Giang
    (82) under both Tây Ninh (80) and Đồng Tháp (82).
    """
    result: dict[str, str] = {}
    for conv in legacy_to_2025_ward_mapping().values():
        seen = result.setdefault(conv.legacy_province_code, conv.new_province_code)
        if seen != conv.new_province_code:
            # A split province would need a ward-level answer, so fail loudly rather than
            # pick one.
            raise ValueError(
                f"legacy province {conv.legacy_province_code} maps to both "
                f"{seen} and {conv.new_province_code}"
            )
    return MappingProxyType(dict(sorted(result.items())))
