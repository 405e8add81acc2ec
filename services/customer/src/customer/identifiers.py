"""Vietnamese tax codes and phone numbers.

Tax codes (MST): 10 digits with a check digit, or 13 for a branch (`0100109106-001`),
validated with python-stdnum. Since 1 July 2025 an individual's 12-digit personal ID
(CCCD) also serves as their tax code: format only, there is no public checksum.

Phones: E.164 through `phonenumbers` (region VN). Mobile numbers that still carry the
11-digit prefixes retired in 2018 (0168… → 038…) are converted first, since customers'
old paper records still have them.
"""

import re

import phonenumbers
from stdnum.vn import mst

TAX_CODE_FORMAT = re.compile(r"^\d{10}(-\d{3})?$|^\d{12}$")

# Retired 4-digit mobile prefixes and their replacements (Ministry of Information and
# Communications, 2018).
_OLD_MOBILE_PREFIXES = {
    "0162": "032",
    "0163": "033",
    "0164": "034",
    "0165": "035",
    "0166": "036",
    "0167": "037",
    "0168": "038",
    "0169": "039",
    "0120": "070",
    "0121": "079",
    "0122": "077",
    "0126": "076",
    "0128": "078",
    "0123": "083",
    "0124": "084",
    "0125": "085",
    "0127": "081",
    "0129": "082",
    "0186": "056",
    "0188": "058",
    "0199": "059",
}


def is_personal_id(tax_code: str) -> bool:
    return len(tax_code) == 12 and tax_code.isdigit()


def tax_code_problem(tax_code: str, *, allow_personal_id: bool) -> str | None:
    """None when valid, else the reason code: 'checksum' or 'personal_id_not_allowed'."""
    if is_personal_id(tax_code):
        return None if allow_personal_id else "personal_id_not_allowed"
    return None if mst.is_valid(tax_code) else "checksum"


def _modernise_mobile(digits: str) -> str:
    """0168 xxx xxxx (11 digits) → 038 xxx xxxx; also with a 84 country prefix."""
    national = "0" + digits[2:] if digits.startswith("84") and len(digits) == 12 else digits
    if len(national) == 11 and national[:4] in _OLD_MOBILE_PREFIXES:
        return _OLD_MOBILE_PREFIXES[national[:4]] + national[4:]
    return digits


def normalise_phone(value: str) -> str:
    """A Vietnamese phone number in E.164 (+84…); ValueError when it cannot be one."""
    digits = re.sub(r"[\s().\-]", "", value)
    plus = digits.startswith("+")
    digits = _modernise_mobile(digits.lstrip("+"))
    candidate = ("+" if plus and not digits.startswith("0") else "") + digits
    try:
        parsed = phonenumbers.parse(candidate, "VN")
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
