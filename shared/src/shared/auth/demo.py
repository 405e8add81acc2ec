"""The demo organisation of CONTRACT.md §2, shared by the dev issuer and the reference seed."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    employee_id: str
    name: str
    roles: tuple[str, ...]
    sales_unit: str | None


DEMO_USERS: dict[str, DemoUser] = {
    u.username: u
    for u in (
        DemoUser("sales1", "NV001", "Nguyễn Văn An", ("sales",), "HN-T1"),
        DemoUser("sales2", "NV002", "Trần Thị Bình", ("sales",), "HN-T2"),
        DemoUser("sales3", "NV003", "Phạm Thị Dung", ("sales",), "HCM-T1"),
        DemoUser("manager1", "NV010", "Lê Văn Cường", ("sales_manager",), "MB-HN"),
        DemoUser("cs1", "NV020", "Hoàng Thu Hà", ("cs",), "HO"),
        DemoUser("cs2", "NV021", "Bùi Thanh Mai", ("cs",), "HO"),
        DemoUser("accountant1", "NV030", "Vũ Minh Khoa", ("accountant",), "HO"),
        DemoUser("admin1", "NV099", "Đỗ Quang Huy", ("admin",), "HO"),
    )
}

#: The sales-force tree the demo users live in: (code, name, parent_code, manager employee id).
DEMO_SALES_UNITS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("VN", "Toàn quốc", None, None),
    ("HO", "Văn phòng công ty", "VN", None),
    ("MB", "Miền Bắc", "VN", None),
    ("MB-HN", "Khu vực Hà Nội", "MB", "NV010"),
    ("HN-T1", "Đội bán hàng Hà Nội 1", "MB-HN", "NV010"),
    ("HN-T2", "Đội bán hàng Hà Nội 2", "MB-HN", "NV010"),
    ("MN", "Miền Nam", "VN", None),
    ("MN-HCM", "Khu vực TP. Hồ Chí Minh", "MN", None),
    ("HCM-T1", "Đội bán hàng TP. Hồ Chí Minh 1", "MN-HCM", None),
)
