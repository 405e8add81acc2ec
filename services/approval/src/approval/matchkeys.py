"""The keys duplicates are matched on, computed in Python and stored in the replica.

Names and addresses are folded (no diacritics, đ → d, lower case) and stripped of the
words that say what kind of business it is rather than which one: "Công ty TNHH Minh
Phát" and "Minh Phát" both become ``minh phat``, "Tạp hóa Hải Yến" and "Cửa hàng Hải
Yến" both ``hai yen``. The word lists are data: add a phrase to a tuple, never an `if`.

The replica stores these keys, so a change to a list only applies to rows written after
it; a migration that recomputes ``customers.match_name``/``match_address`` applies it to
the rest.
"""

import re
from collections.abc import Iterable, Mapping
from typing import Any

from shared.text import fold

#: Legal forms and shop types (folded). Phrases, matched as whole words, longest first.
#: Words that are also common in names ("quan" is the eatery Quán and the name Quân,
#: "phat" the name Phát) are deliberately absent.
NAME_STOP_PHRASES: tuple[str, ...] = (
    # legal forms
    "cong ty",
    "cty",
    "tong cong ty",
    "tap doan",
    "trach nhiem huu han",
    "tnhh",
    "mot thanh vien",
    "hai thanh vien tro len",
    "mtv",
    "co phan",
    "cp",
    "cty cp",
    "ctcp",
    "doanh nghiep tu nhan",
    "dntn",
    "doanh nghiep",
    "hop tac xa",
    "htx",
    "ho kinh doanh",
    "hkd",
    "chi nhanh",
    "van phong dai dien",
    # what the business does (in company names: "TNHH Thương mại Dịch vụ Minh Phát")
    "thuong mai",
    "dich vu",
    "san xuat",
    "xuat nhap khau",
    "tm",
    "dv",
    "tmdv",
    "sx",
    "xnk",
    "va",
    # shop types
    "cua hang",
    "tap hoa",
    "dai ly",
    "nha thuoc",
    "quay thuoc",
    "hieu thuoc",
    "sieu thi",
    "minimart",
    "mini mart",
    "shop",
    "store",
)

#: Words of a street line that every address has ("số 12 đường Lê Lợi, phường …").
ADDRESS_STOP_PHRASES: tuple[str, ...] = (
    "so",
    "duong",
    "pho",
    "phuong",
    "p",
    "quan",
    "q",
    "huyen",
    "xa",
    "thi tran",
    "thi xa",
    "thanh pho",
    "tp",
    "tinh",
    "ap",
    "thon",
    "to",
    "khu pho",
    "kp",
    "ngo",
    "ngach",
    "hem",
    "kiet",
)

_NOT_WORD = re.compile(r"[^0-9a-z]+")
_NOT_TAX = re.compile(r"[^0-9A-Z]+")


def _stripper(phrases: Iterable[str]) -> re.Pattern[str]:
    ordered = sorted({fold(p) for p in phrases}, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(p) for p in ordered) + r")\b")


_NAME_STOPS = _stripper(NAME_STOP_PHRASES)
_ADDRESS_STOPS = _stripper(ADDRESS_STOP_PHRASES)


def _words(value: str | None) -> str:
    """Folded, punctuation as spaces: 'Cty TNHH Minh-Phát.' → 'cty tnhh minh phat'."""
    return " ".join(_NOT_WORD.sub(" ", fold(value)).split())


def name_key(full_name: str | None) -> str:
    """The name as duplicates compare it; '' when only stop words are left."""
    return " ".join(_NAME_STOPS.sub(" ", _words(full_name)).split())


def address_key(address: str | None) -> str:
    return " ".join(_ADDRESS_STOPS.sub(" ", _words(address)).split())


def normalise_tax_code(value: str | None) -> str | None:
    """'0314409058-002', '0314 409 058 002' → '0314409058002' (None when empty)."""
    compact = _NOT_TAX.sub("", (value or "").upper())
    return compact or None


def normalise_email(value: str | None) -> str | None:
    cleaned = (value or "").strip().lower()
    return cleaned or None


def normalise_phone(value: str | None) -> str | None:
    """The snapshot's phone is E.164 already; only blanks are removed."""
    cleaned = (value or "").strip()
    return cleaned or None


def snapshot_text(snapshot: Mapping[str, Any], key: str) -> str | None:
    """A snapshot's field as text; None when absent or empty."""
    value = snapshot.get(key)
    return str(value) if value not in (None, "") else None


def review_search_text(snapshot: Mapping[str, Any], customer_code: str | None = None) -> str:
    """What the queue's `q` is matched against: name, company, code, phone (E.164 and
    the local 0… form), tax code (as written and compact), folded."""
    phone = snapshot_text(snapshot, "phone")
    tax = snapshot_text(snapshot, "tax_code")
    parts = [
        snapshot_text(snapshot, "full_name"),
        snapshot_text(snapshot, "company_name"),
        customer_code or snapshot_text(snapshot, "customer_code"),
        phone,
        "0" + phone[3:] if phone and phone.startswith("+84") else None,
        tax,
        normalise_tax_code(tax) if tax and normalise_tax_code(tax) != tax else None,
    ]
    return " ".join(fold(p) for p in parts if p)
