"""Addresses in either administrative scheme (2025, or legacy with districts).

The official units ship with `shared.admin_units`, so checking an address needs neither
reference nor the network. A legacy address is kept as entered and its 2025 equivalent
is offered; a legacy ward that was split on 1 July 2025 cannot be converted by itself,
so it carries a warning for the salesperson and for CS.
"""

from typing import Any

from shared import admin_units
from shared.errors import FieldError


def _msg(vietnamese: bool, vi: str, en: str) -> str:
    return vi if vietnamese else en


def address_errors(
    prefix: str,
    *,
    scheme: str,
    province_code: str | None,
    district_code: str | None,
    ward_code: str | None,
    vietnamese: bool,
) -> list[FieldError]:
    """Unknown codes and units that do not belong together, each naming its field."""
    errors: list[FieldError] = []
    provinces = admin_units.province_by_code(scheme)  # type: ignore[arg-type]
    if province_code and province_code not in provinces:
        errors.append(
            FieldError(
                f"{prefix}province_code",
                _msg(
                    vietnamese,
                    "Tỉnh/thành không tồn tại trong danh mục.",
                    "Unknown province for this scheme.",
                ),
                "unknown_code",
            )
        )
        return errors
    if scheme == "2025" and district_code:
        errors.append(
            FieldError(
                f"{prefix}district_code",
                _msg(
                    vietnamese,
                    "Từ 1/7/2025 không còn cấp quận/huyện; bỏ trống trường này.",
                    "The 2025 structure has no districts; leave it empty.",
                ),
                "no_district_level",
            )
        )
    if scheme == "legacy" and district_code:
        district = admin_units.district_by_code().get(district_code)
        if district is None:
            errors.append(
                FieldError(
                    f"{prefix}district_code",
                    _msg(vietnamese, "Quận/huyện không tồn tại.", "Unknown district."),
                    "unknown_code",
                )
            )
        elif province_code and district.province_code != province_code:
            errors.append(
                FieldError(
                    f"{prefix}district_code",
                    _msg(
                        vietnamese,
                        "Quận/huyện không thuộc tỉnh/thành đã chọn.",
                        "The district is not in the chosen province.",
                    ),
                    "not_in_province",
                )
            )
    if ward_code:
        ward = admin_units.ward_by_code(scheme).get(ward_code)  # type: ignore[arg-type]
        if ward is None:
            errors.append(
                FieldError(
                    f"{prefix}ward_code",
                    _msg(
                        vietnamese,
                        "Phường/xã không tồn tại trong danh mục.",
                        "Unknown ward for this scheme.",
                    ),
                    "unknown_code",
                )
            )
        elif province_code and ward.province_code != province_code:
            errors.append(
                FieldError(
                    f"{prefix}ward_code",
                    _msg(
                        vietnamese,
                        "Phường/xã không thuộc tỉnh/thành đã chọn.",
                        "The ward is not in the chosen province.",
                    ),
                    "not_in_province",
                )
            )
        elif scheme == "legacy" and district_code and ward.district_code != district_code:
            errors.append(
                FieldError(
                    f"{prefix}ward_code",
                    _msg(
                        vietnamese,
                        "Phường/xã không thuộc quận/huyện đã chọn.",
                        "The ward is not in the chosen district.",
                    ),
                    "not_in_district",
                )
            )
    return errors


def equivalent_2025(
    *, scheme: str, province_code: str | None, ward_code: str | None
) -> dict[str, Any] | None:
    """For a legacy address, the 2025 unit(s) it now belongs to; None for a 2025 address."""
    if scheme != "legacy" or not province_code:
        return None
    if ward_code:
        conversion = admin_units.legacy_to_2025_ward_mapping().get(ward_code)
        if conversion is not None:
            wards = sorted(set(conversion.new_ward_codes))
            return {
                "province_code": conversion.new_province_code,
                "ward_codes": wards,
                "ambiguous": len(wards) > 1,
            }
    province = admin_units.legacy_to_2025_province_mapping().get(province_code)
    if not province:
        return None
    # No ward given, or a legacy ward the official table does not convert: province only.
    return {
        "province_code": province,
        "ward_codes": [],
        "ambiguous": False,
        "unresolved_ward": bool(ward_code),
    }


def ambiguity_warning(
    field_prefix: str, equivalent: dict[str, Any] | None
) -> dict[str, str] | None:
    if equivalent and equivalent.get("unresolved_ward"):
        return {
            "field": f"{field_prefix}ward_code",
            "code": "no_2025_ward",
            "message_vi": "Chưa xác định được phường/xã mới (từ 1/7/2025) cho phường/xã cũ này.",
            "message_en": "The official table gives no 2025 ward for this old ward; choose it by hand.",
        }
    if not equivalent or not equivalent["ambiguous"]:
        return None
    return {
        "field": f"{field_prefix}ward_code",
        "code": "ambiguous_2025_ward",
        "message_vi": "Phường/xã cũ này đã được chia cho nhiều phường/xã mới từ 1/7/2025; "
        "cần xác định phường/xã mới theo địa chỉ cụ thể.",
        "message_en": "This old ward was split between several 2025 wards; the right one "
        "must be chosen from the street address.",
    }
