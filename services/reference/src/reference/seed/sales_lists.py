"""Seed values for the business reference lists of a consumer-goods (FMCG) distributor.

Every item has a short, stable upper-case `code` (other services and events store it),
a Vietnamese `name`, an English `name_en`, `active` and `sort_order`. The values follow
common Vietnamese distributor practice (see VIETNAM_DATA.md §5). They are conventions,
not law, and an admin may edit them later through the reference API.

Each list is defined once as a table of rows and turned into frozen dataclasses on first
call. `sort_order` is the row's position times 10, which leaves room for inserting
items later.
"""

from dataclasses import dataclass
from functools import cache
from typing import Literal

_SORT_STEP = 10


def _sort_order(index: int) -> int:
    return (index + 1) * _SORT_STEP


# --- customer types ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerType:
    code: str
    name: str
    name_en: str
    active: bool
    sort_order: int
    is_company: bool
    """A legal entity: validation requires a tax code (MST) and a registered company name."""


# (code, name, name_en, is_company)
_CUSTOMER_TYPES: tuple[tuple[str, str, str, bool], ...] = (
    ("CANHAN", "Cá nhân", "Individual", False),
    # Household businesses pay tax under the owner's 12-digit personal ID since July 2025,
    # but they are not legal entities.
    ("HKD", "Hộ kinh doanh", "Household business", False),
    ("DN", "Doanh nghiệp (công ty TNHH, cổ phần)", "Company (LLC, joint-stock)", True),
    ("DNTN", "Doanh nghiệp tư nhân", "Sole proprietorship enterprise", True),
    # Branches and dependent units invoice under a 13-digit MST (parent + "-NNN").
    ("CNDN", "Chi nhánh doanh nghiệp", "Company branch", True),
    ("HTX", "Hợp tác xã", "Cooperative", True),
    ("TOCHUC", "Cơ quan, đơn vị sự nghiệp", "Government agency or public institution", True),
)


@cache
def customer_types() -> tuple[CustomerType, ...]:
    return tuple(
        CustomerType(code, name, name_en, True, _sort_order(i), is_company)
        for i, (code, name, name_en, is_company) in enumerate(_CUSTOMER_TYPES)
    )


# --- payment terms ----------------------------------------------------------------------

DueBasis = Literal["immediate", "invoice_date", "end_of_month"]


@dataclass(frozen=True, slots=True)
class PaymentTerm:
    code: str
    name: str
    name_en: str
    active: bool
    sort_order: int
    days: int
    """Days of credit counted from `due_basis`. 0 means payment before or on delivery."""
    due_basis: DueBasis
    """``"immediate"``: paid before or on delivery. ``"invoice_date"``: due `days` after the
    invoice. ``"end_of_month"``: the month's invoices are reconciled at month end ("đối chiếu
    công nợ") and due `days` later."""


# (code, name, name_en, days, due_basis, active)
_PAYMENT_TERMS: tuple[tuple[str, str, str, int, DueBasis, bool], ...] = (
    ("PREPAID", "Thanh toán trước khi giao hàng", "Payment in advance", 0, "immediate", True),
    ("COD", "Thanh toán khi nhận hàng", "Cash on delivery", 0, "immediate", True),
    ("NET7", "Công nợ 7 ngày", "Net 7 days", 7, "invoice_date", True),
    ("NET15", "Công nợ 15 ngày", "Net 15 days", 15, "invoice_date", True),
    ("NET30", "Công nợ 30 ngày", "Net 30 days", 30, "invoice_date", True),
    ("NET45", "Công nợ 45 ngày", "Net 45 days", 45, "invoice_date", True),
    ("NET60", "Công nợ 60 ngày", "Net 60 days", 60, "invoice_date", True),
    ("EOM", "Thanh toán cuối tháng", "End of month", 0, "end_of_month", True),
    (
        "EOM15",
        "Đối chiếu cuối tháng, thanh toán trước ngày 15 tháng sau",
        "Monthly statement, due on the 15th of the next month",
        15,
        "end_of_month",
        True,
    ),
    ("EOM30", "Cuối tháng + 30 ngày", "End of month + 30 days", 30, "end_of_month", True),
    # Kept so that old customer records still resolve. It is no longer offered.
    (
        "NET90",
        "Công nợ 90 ngày (ngừng áp dụng)",
        "Net 90 days (withdrawn)",
        90,
        "invoice_date",
        False,
    ),
)


@cache
def payment_terms() -> tuple[PaymentTerm, ...]:
    return tuple(
        PaymentTerm(code, name, name_en, active, _sort_order(i), days, basis)
        for i, (code, name, name_en, days, basis, active) in enumerate(_PAYMENT_TERMS)
    )


# --- payment methods --------------------------------------------------------------------

PaymentMethodKind = Literal["cash", "bank_transfer", "card", "e_wallet", "offset"]


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    code: str
    name: str
    name_en: str
    active: bool
    sort_order: int
    kind: PaymentMethodKind
    non_cash: bool
    """The money does not change hands as cash. From 1 July 2025 a buyer can deduct input VAT
    on a purchase of 5 million VND or more (VAT included) only if it was paid non-cash
    (VAT Law 48/2024, Decree 181/2025), so large orders may need one of these methods."""


# (code, name, name_en, kind, non_cash)
_PAYMENT_METHODS: tuple[tuple[str, str, str, PaymentMethodKind, bool], ...] = (
    ("TM", "Tiền mặt", "Cash", "cash", False),
    ("CK", "Chuyển khoản ngân hàng", "Bank transfer", "bank_transfer", True),
    ("VIETQR", "Quét mã VietQR", "VietQR bank transfer", "bank_transfer", True),
    # The shipper or carrier collects cash from the customer, so the buyer has paid in cash.
    ("COD", "Thu hộ khi giao hàng (COD)", "Cash on delivery (collected by carrier)", "cash", False),
    ("THE", "Thẻ ngân hàng (POS)", "Bank card (POS)", "card", True),
    ("MOMO", "Ví MoMo", "MoMo e-wallet", "e_wallet", True),
    ("ZALOPAY", "Ví ZaloPay", "ZaloPay e-wallet", "e_wallet", True),
    ("VNPAY", "VNPAY-QR", "VNPAY-QR", "e_wallet", True),
    # Common with agents who also sell back to the distributor (returns, promotions).
    ("BTCN", "Bù trừ công nợ", "Offset against payables", "offset", True),
)


@cache
def payment_methods() -> tuple[PaymentMethod, ...]:
    return tuple(
        PaymentMethod(code, name, name_en, True, _sort_order(i), kind, non_cash)
        for i, (code, name, name_en, kind, non_cash) in enumerate(_PAYMENT_METHODS)
    )


# --- sales channels ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SalesChannel:
    code: str
    name: str
    name_en: str
    active: bool
    sort_order: int
    parent_code: str | None
    """``None`` for a top-level channel. Parents come before their children in the list."""
    level: int
    """0 channel, 1 sub-channel, 2 outlet type (VIETNAM_DATA.md §5)."""


# (code, name, name_en, parent_code), parents first. A child's code starts with its parent's.
_SALES_CHANNELS: tuple[tuple[str, str, str, str | None], ...] = (
    ("GT", "Kênh truyền thống", "General trade", None),
    ("GT-NPP", "Nhà phân phối", "Distributor", "GT"),
    ("GT-DL", "Đại lý, bán sỉ", "Wholesale agent", "GT"),
    ("GT-DL1", "Đại lý cấp 1", "Tier-1 agent", "GT-DL"),
    ("GT-DL2", "Đại lý cấp 2", "Tier-2 agent", "GT-DL"),
    ("GT-TH", "Tạp hóa", "Grocery store", "GT"),
    ("GT-CHO", "Chợ truyền thống", "Wet market", "GT"),
    ("GT-NT", "Nhà thuốc, quầy thuốc", "Independent pharmacy", "GT"),
    ("MT", "Kênh hiện đại", "Modern trade", None),
    ("MT-ST", "Siêu thị, đại siêu thị", "Supermarket and hypermarket", "MT"),
    ("MT-CHTL", "Cửa hàng tiện lợi, minimart", "Convenience store and minimart", "MT"),
    ("MT-CHUOI", "Chuỗi chuyên doanh", "Specialty chain", "MT"),
    ("MT-CHUOI-NT", "Chuỗi nhà thuốc", "Pharmacy chain", "MT-CHUOI"),
    ("MT-CHUOI-MB", "Chuỗi mẹ và bé", "Mother-and-baby chain", "MT-CHUOI"),
    ("HORECA", "Khách sạn, nhà hàng, café", "HORECA (on-trade)", None),
    ("HORECA-KS", "Khách sạn, resort", "Hotel and resort", "HORECA"),
    ("HORECA-NH", "Nhà hàng, quán ăn", "Restaurant", "HORECA"),
    ("HORECA-CF", "Quán cà phê, bar", "Café and bar", "HORECA"),
    ("KA", "Khách hàng trọng điểm", "Key accounts", None),
    ("KA-BL", "Chuỗi bán lẻ toàn quốc", "National retail chain", "KA"),
    ("KA-DN", "Doanh nghiệp, tổ chức lớn", "Large corporate or institution", "KA"),
    ("ECOM", "Thương mại điện tử", "E-commerce", None),
    ("ECOM-SHOPEE", "Shopee", "Shopee", "ECOM"),
    ("ECOM-LAZADA", "Lazada", "Lazada", "ECOM"),
    ("ECOM-TIKTOK", "TikTok Shop", "TikTok Shop", "ECOM"),
    ("ECOM-WEB", "Website, ứng dụng riêng", "Own website and app", "ECOM"),
    ("ECOM-SOCIAL", "Mạng xã hội, livestream", "Social and live commerce", "ECOM"),
    ("B2B", "Khách hàng tổ chức", "Institutional (B2B)", None),
    ("B2B-BEP", "Bếp ăn công nghiệp, căng tin", "Industrial catering and canteens", "B2B"),
    ("B2B-TC", "Trường học, bệnh viện, cơ quan", "Schools, hospitals and offices", "B2B"),
)


@cache
def sales_channels() -> tuple[SalesChannel, ...]:
    levels: dict[str, int] = {}
    result = []
    for i, (code, name, name_en, parent) in enumerate(_SALES_CHANNELS):
        # Parents are listed first, so a parent's level is known when its children are read.
        level = 0 if parent is None else levels[parent] + 1
        levels[code] = level
        result.append(SalesChannel(code, name, name_en, True, _sort_order(i), parent, level))
    return tuple(result)


# --- customer groups --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerGroup:
    code: str
    name: str
    name_en: str
    active: bool
    sort_order: int
    default_payment_term_code: str
    """Proposed for a new customer of the group. CS may change it per customer."""
    default_credit_days: int
    """Days of credit granted by default. Usually the term's days; for month-end terms it is
    the longest the customer can owe (about a month plus the term's days)."""
    default_channel_code: str
    """The sales channel a new customer of the group usually belongs to."""


# (code, name, name_en, payment term, credit days, channel)
_CUSTOMER_GROUPS: tuple[tuple[str, str, str, str, int, str], ...] = (
    ("TAPHOA", "Tạp hóa", "Grocery store", "COD", 0, "GT-TH"),
    ("CHO", "Sạp chợ", "Market stall", "COD", 0, "GT-CHO"),
    ("DAILY1", "Đại lý cấp 1", "Tier-1 agent", "NET30", 30, "GT-DL1"),
    ("DAILY2", "Đại lý cấp 2, bán sỉ", "Tier-2 agent and wholesaler", "NET15", 15, "GT-DL2"),
    ("NPP", "Nhà phân phối", "Distributor", "NET45", 45, "GT-NPP"),
    ("NHATHUOC", "Nhà thuốc", "Pharmacy", "NET15", 15, "GT-NT"),
    ("SIEUTHI", "Siêu thị", "Supermarket", "NET45", 45, "MT-ST"),
    ("MINIMART", "Cửa hàng tiện lợi, minimart", "Convenience store", "NET30", 30, "MT-CHTL"),
    ("MEBE", "Cửa hàng mẹ và bé", "Mother-and-baby store", "NET15", 15, "MT-CHUOI-MB"),
    ("NHAHANG", "Nhà hàng, quán ăn", "Restaurant", "NET7", 7, "HORECA-NH"),
    ("KHACHSAN", "Khách sạn, resort", "Hotel and resort", "EOM15", 45, "HORECA-KS"),
    ("CAFE", "Quán cà phê, bar", "Café and bar", "NET7", 7, "HORECA-CF"),
    ("BEPAN", "Bếp ăn công nghiệp, căng tin", "Industrial canteen", "NET30", 30, "B2B-BEP"),
    ("KA", "Khách hàng trọng điểm", "Key account", "EOM30", 60, "KA-BL"),
    ("ONLINE", "Người bán hàng online", "Online reseller", "PREPAID", 0, "ECOM-SOCIAL"),
)


@cache
def customer_groups() -> tuple[CustomerGroup, ...]:
    return tuple(
        CustomerGroup(code, name, name_en, True, _sort_order(i), term, days, channel)
        for i, (code, name, name_en, term, days, channel) in enumerate(_CUSTOMER_GROUPS)
    )
