"""`ims_cli.log_scan`: personal data found in log lines in its written forms, masked in the
report, and none found in what the stack really prints (ids, times, ports, durations)."""

import unicodedata
from pathlib import Path

import pytest

from ims_cli.log_scan import Finding, find_personal_data, format_finding, mask
from ims_cli.main import main


def kinds(line: str, known: tuple[str, ...] = ()) -> list[str]:
    return [f.kind for f in find_personal_data([line], known)]


@pytest.mark.parametrize(
    "line",
    [
        "call 0912345678 now",
        "phone=0912 345 678",
        "phone=0912.345.678",
        "phone=091-234-5678",
        "phone=0912-345-678",
        "phone=09 1234 5678",
        "phone=+84912345678",
        "phone=+84 912 345 678",
        "phone=+84-912-345-678",
        "phone=(+84) 912 345 678",
        "phone=+84 (0) 912 345 678",
        "phone=0084912345678",
        "phone=0387654321",  # Viettel 03x
        "phone=0561234567",  # Vietnamobile 05x
        "phone=0701234567",  # MobiFone 07x
        "phone=0812345678",  # Vinaphone 08x
        "landline=024 3826 1234",
        "landline=(024) 3826 1234",
        "landline=028.3822.1234",
        "landline=+84 24 3826 1234",
        '{"event": "x", "phone": "0987654321"}',
        "0912 345 678 12 items",  # a following number does not hide it
        "contact: 0912345678.",
    ],
)
def test_vietnamese_phone_numbers_in_their_written_forms(line: str) -> None:
    assert kinds(line) == ["phone"]


@pytest.mark.parametrize(
    "line",
    [
        "mail=an.nguyen@example.vn",
        "to <minhanh+shop@cong-ty.com.vn>",
        '{"email": "kh.1a2b3c4d5e@example.vn"}',
        "From: Tran.Thi.Binh@EXAMPLE.COM",
    ],
)
def test_email_addresses(line: str) -> None:
    assert kinds(line) == ["email"]


@pytest.mark.parametrize(
    "line",
    [
        "tax_code=0100109106",
        "mst 0100109106-001",
        '{"tax_code": "0312345678-002"}',  # a branch: one finding, a tax code, not a phone
        "MST: 4201234567.",
    ],
)
def test_tax_codes_with_and_without_a_branch(line: str) -> None:
    assert kinds(line) == ["tax_code"]


def test_known_values_match_without_accents_case_or_escapes() -> None:
    known = ("Tạp hóa Ngọc Lan 1a2b3c",)
    for line in (
        "customer=Tạp hóa Ngọc Lan 1a2b3c created",
        "customer=TAP HOA NGOC LAN 1A2B3C created",
        "customer=tap hoa  ngoc lan 1a2b3c",  # runs of spaces
        '{"name": "T\\u1ea1p h\\u00f3a Ng\\u1ecdc Lan 1a2b3c"}',  # JSON escapes
        "GET /ui/customers?q=T%E1%BA%A1p%20h%C3%B3a%20Ng%E1%BB%8Dc%20Lan%201a2b3c",
        unicodedata.normalize("NFD", "Tạp hóa Ngọc Lan 1a2b3c"),  # decomposed: the same text
    ):
        assert kinds(line, known) == ["known"], line
    # Đ and đ are D and d.
    assert kinds("owner Do Quang Huy", ("Đỗ Quang Huy",)) == ["known"]
    # Whole words only, and short values are ignored (they would match everything).
    assert kinds("Nguyễn Văn Anh", ("Nguyễn Văn An",)) == []
    assert kinds("An came by", ("An",)) == []


@pytest.mark.parametrize(
    "line",
    [
        # Real lines printed by `ims up` and the services in an e2e run (stack.lines).
        "misa_sync      | 2026-11-29T00:52:29.227974Z [info     ] misa.connected                 expires_at=2026-11-29T19:52:29.212880+07:00 service=misa_sync",
        "misa_sync      | 2026-11-29T00:52:29.227806Z [info     ] misa.call                      attempt=1 duration_ms=1183 error_code=None operation=connect outcome=ok rate_limit_wait_ms=0 service=misa_sync status=200",
        "misa_sync      | 2026-11-29T00:53:52.202792Z [info     ] misa_synced                    created_in_misa=True customer_id=5daf5b77-fd18-4e05-8582-527c0e5b1bef service=misa_sync",
        "misa_sync      | 2026-11-29T00:52:29.617142Z [info     ] misa_reconciliation            changed=0 duration_ms=1537 extra=0 missing=0 outcome=ok refresh=incremental run_id=b6d97921-2810-43f9-8326-67251ef907fe service=misa_sync trigger=schedule truncated=False",
        "approval       | 2026-11-29T00:53:41.979522Z [info     ] review_created                 correlation_id=2919a52dfd6648a4b8f3d2a6eeaf79bb customer_id=5daf5b77-fd18-4e05-8582-527c0e5b1bef duplicates=0 event_id=f823d869-e475-4c8c-9980-dba7cf4591ae event_type=ims.customer.CustomerSubmitted.v1 kind=new offset=0 partition=2 review_id=ea3991ed-9ac5-4f8f-831a-dae985991e5b service=approval topic=ims.customer.events.v1",
        "approval       | 2026-11-29T00:52:40.500727Z [info     ] event_applied                  correlation_id=91302f03e87d4cd288d87eb0405fff81 event_id=a4cb88f6-5709-40db-8b03-4d2c750fb809 event_type=ims.reference.ItemChanged.v1 offset=5 partition=0 service=approval",
        "customer       | 2026-11-29T00:56:27.229279Z [info     ] http_request                   correlation_id=44234304fe414204829f2b4821313127 duration_ms=97.7 method=GET path=/api/v1/customers/8798da41-e406-4929-ae4e-d2ee3218f5fc status=200",
        "approval       | 2026-11-29T00:52:19.698285Z [info     ] workers_started                consumers=['events'] service=approval workers=[]",
        "reference      | 2026-11-29T00:52:45.293277Z [info     ] reference_snapshot_announced   items=94 service=reference",
        "postgres       | 2026-11-29 00:49:40.399 UTC [8302] LOG:  starting PostgreSQL 18.6 on x86_64-pc-linux-gnu, compiled by gcc (GCC) 14.2.1 20250110 (Red Hat 14.2.1-11), 64-bit",
        'postgres       | 2026-11-29 00:49:40.399 UTC [8302] LOG:  listening on IPv4 address "127.0.0.1", port 60655',
        "misa_simulator | 2026-11-29 00:51:35,295 INFO __main__ MISA simulator on http://127.0.0.1:50023, state in /tmp/pytest-of-root/pytest-40/ims-stack0/misa-simulator.json, duplicate codes: upsert",
        "ims ready: customer http://127.0.0.1:46421 · approval http://127.0.0.1:32913 · misa_sync http://127.0.0.1:44815 · reference http://127.0.0.1:50245 · misa_simulator http://127.0.0.1:50023 · broker 127.0.0.1:39003 · postgres 127.0.0.1:60655",
        "broker         | listening on: tcp://127.0.0.1:39003 (advertised: tcp://127.0.0.1:39003)",
        "ims            | customer stopped unexpectedly (killed by SIGKILL); restarting in 1 s",
        # Lines of the in-process tests (structlog console output, moto's server).
        "2026-11-29 00:11:32 [info     ] http_request                   correlation_id=13173fb9723f4cfa978f67d448af8f67 duration_ms=43.1 method=POST path=/api/v1/customers status=201",
        "2026-11-29 00:11:32 [info     ] http_request                   correlation_id=cb0d56afa0d84696abe580086f2d6df7 duration_ms=29.6 method=POST path=/api/v1/customers/34d7a4d3-30ab-43d2-923b-4a472bc1bc6a/attachments status=201",
        '127.0.0.1 - - [29/Nov/2026 00:11:32] "PUT /ims-upload-ea25f352f03c HTTP/1.1" 200 -',
        '127.0.0.1 - - [29/Nov/2026 00:11:33] "GET /ims-upload-ea25f352f03c?list-type=2&encoding-type=url HTTP/1.1" 200 -',
        '{"event": "event_applied", "consumer": "approval", "topic": "ims.customer.events.v1", "partition": 2, "offset": 1234567890, "timestamp": "2026-11-29T00:11:32.123456Z"}',
        '{"exp": 1764374792, "iat": 1764331592, "sub": "NV001"}',
        "ims up: postgres ready on 127.0.0.1:54321 (pid 4123) in 1.234s",
        "customer | INFO:     Uvicorn running on http://127.0.0.1:8001 (Press CTRL+C to quit)",
        "event_id=0a1b2c3d-4e5f-6789-abcd-0123456789ab customer_id=09123456-7890-1234-5678-901234567890",
        "approved customer_code=KH000001 review_id=5d0c2a3e-1f4b-4c5d-9e6f-7a8b9c0d1e2f version=3",
        "misa_sync_deferred code=MISA_RATE_LIMIT delay_s=0.0123456789",
        "trace_id=0912345678abcdef0912345678abcdef span_id=0912345678abcdef",
        "sha256=ecbecf1cd983d89312637d5ed57ff33346fb7d65f5fcb817b921ca699b4637e8",
        "elapsed=1764374792.123 lag_s=12.5 bytes=1234567890",
        "dates 01-12-2026 03.12.2026 10:15 2026-11-29T00:06:32+07:00 09:12:34",
        "versions v0.25.1 0.165.0 python 3.12.3 postgres 16.4",
        "postgresql+asyncpg://postgres@127.0.0.1:5432/ims_customer",
        "ip 10.0.0.12 and 192.168.100.200 port 65535",
        "kafka partitions=3 offsets=[0, 12, 1234] group=ims.approval",
    ],
)
def test_what_log_lines_are_full_of_is_not_personal(line: str) -> None:
    assert find_personal_data([line]) == []


def test_findings_name_the_line_and_mask_every_match_on_it() -> None:
    lines = [
        "ok line",
        "customer Tạp hóa Ngọc Lan phone=0912 345 678 email=lan@example.vn mst=0100109106",
    ]
    findings = find_personal_data(lines, known=["Tạp hóa Ngọc Lan"])
    assert [(f.line_no, f.kind) for f in findings] == [
        (2, "known"),
        (2, "phone"),
        (2, "email"),
        (2, "tax_code"),
    ]
    masked = "customer *** *** **** *** phone=**** *** *** email=***@*******.** mst=**********"
    assert {f.excerpt for f in findings} == {masked}
    assert isinstance(findings[0], Finding)
    with pytest.raises(AttributeError):
        findings[0].kind = "x"  # type: ignore[misc]  # frozen
    assert format_finding(findings[1], "stack.log") == f"stack.log:2: phone: {masked}"
    assert mask("0912.345-678") == "****.***-***"


def test_long_lines_are_cut_around_the_match() -> None:
    line = "x" * 1000 + " phone=0912345678 " + "y" * 1000
    (finding,) = find_personal_data([line])
    assert len(finding.excerpt) <= 250 and "phone=**********" in finding.excerpt


def test_the_cli_exits_1_with_masked_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = tmp_path / "clean.log"
    clean.write_text("2026-11-29 00:11:32 [info] http_request status=201\n")
    dirty = tmp_path / "dirty.log"
    dirty.write_text("fine\ncustomer Nguyễn Thị Hoa phone=+84 912 345 678\n")
    known = tmp_path / "known.txt"
    known.write_text("Nguyễn Thị Hoa\n\n")

    assert main(["scan-logs", str(clean)]) == 0
    assert main(["scan-logs", str(clean), str(dirty), "--known-file", str(known)]) == 1
    out = capsys.readouterr().out
    assert f"{dirty}:2: known: customer ****** *** *** phone=+** *** *** ***" in out
    assert "Hoa" not in out and "912" not in out
    assert main(["scan-logs", str(tmp_path / "missing.log")]) == 2


def test_the_pytest_plugin_scans_the_log_lines_of_each_test_once() -> None:
    from tests.fixtures.log_scan import scan_report

    sections = [
        (
            "Captured stdout call",
            "2026-11-29T00:11:32.1Z [info     ] customer_created phone='0912 345 678'\n"
            "a test's own print: 0912 345 679\n",
        ),
        ("Captured log call", "INFO     werkzeug:_internal.py:97 sent to lan@example.vn\n"),
        ("Captured stdout setup", '{"event": "x", "tax_code": "0100109106"}\n'),
        ("Some other section", "2026-11-29T00:11:32.1Z [info     ] phone=0912345678\n"),
    ]
    found = scan_report("tests/x.py::test_y", sections)
    assert [(title, f.line_no, f.kind) for _, title, f in found] == [
        ("Captured stdout call", 1, "phone"),
        ("Captured log call", 1, "email"),
        ("Captured stdout setup", 1, "tax_code"),
    ]
    # The teardown report repeats the earlier sections: they are not counted twice.
    assert scan_report("tests/x.py::test_y", sections) == []


def test_the_e2e_session_fails_naming_each_offending_line_masked(tmp_path: Path) -> None:
    from tests.e2e.conftest import Stack, check_no_personal_data

    stack = Stack(process=None, data_dir=tmp_path, ports={})  # type: ignore[arg-type]
    stack.lines = [
        "customer       | 2026-11-29T00:53:05.9Z [info     ] http_request status=201",
        "approval       | 2026-11-29T00:53:41.9Z [info     ] review_created name=Tạp hóa Ngọc Lan 9f",
    ]
    check_no_personal_data(stack, set())  # no pattern matches: a clean run
    with pytest.raises(pytest.fail.Exception) as failed:
        check_no_personal_data(stack, {"Tạp hóa Ngọc Lan 9f"})
    message = str(failed.value)
    assert "personal data in 1 line(s)" in message
    assert "stack output:2: known: approval" in message and "name=*** *** **** *** **" in message
    assert "Ngọc" not in message
    assert "Ngọc" not in (tmp_path / "personal-data-findings.txt").read_text()
