"""Attachments of customers (CONTRACT.md §4) on a real database, with a blob folder per test.

Every refusal is checked for what it must not leave behind: no row, no blob, no spooled
temporary file.
"""

import asyncio
import hashlib
import io
import struct
import uuid
import zipfile
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from customer.attachments import AttachmentService, attachments_of
from customer.attachments_api import content_disposition
from customer.attachments_api import router as attachments_router
from customer.blob_store import LocalBlobStore
from customer.file_types import PDF, PNG, UnsafeFilenameError, safe_filename
from tests.customer.test_api import complete_customer, create
from tests.fixtures.apps import build_app

Auth = Callable[[str], dict[str, str]]
PROBLEM = "application/problem+json"
UPLOAD_PATH = "/api/v1/customers/{customer_id}/attachments"
MiB = 1024 * 1024

# ---- tiny real files ---------------------------------------------------------------------


def pdf_bytes() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
        b"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\n"
        b"trailer <</Root 1 0 R>>\n%%EOF\n"
    )


def png_bytes() -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)  # 1x1, 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def jpeg_bytes() -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def webp_bytes() -> bytes:
    # A 1x1 lossless WebP.
    payload = b"\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
    body = b"WEBP" + b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def ooxml_bytes(main_type: str, main_part: str, extra: dict[str, bytes] | None = None) -> bytes:
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        f'<Override PartName="/{main_part}" ContentType="{main_type}"/>'
        "</Types>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr(main_part, "<document/>")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def docx_bytes() -> bytes:
    return ooxml_bytes(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        "word/document.xml",
    )


def xlsx_bytes() -> bytes:
    return ooxml_bytes(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        "xl/workbook.xml",
    )


def docm_bytes() -> bytes:
    return ooxml_bytes(
        "application/vnd.ms-word.document.macroEnabled.main+xml",
        "word/document.xml",
        {"word/vbaProject.bin": b"\x00" * 32},
    )


def plain_zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not an office document")
    return buffer.getvalue()


DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# ---- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def blob_dir(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def attachments_env(
    monkeypatch: pytest.MonkeyPatch, blob_dir: Path, spool_dir: Path
) -> pytest.MonkeyPatch:
    monkeypatch.setenv("CUSTOMER_BLOB_DIR", str(blob_dir))
    monkeypatch.setenv("CUSTOMER_UPLOAD_TMP_DIR", str(spool_dir))
    for name in ("BLOB_STORE", "ATTACHMENT_MAX_BYTES", "ATTACHMENTS_PER_CUSTOMER"):
        monkeypatch.delenv(f"CUSTOMER_{name}", raising=False)
    return monkeypatch


def with_attachments(app: FastAPI) -> FastAPI:
    """The customer app with the attachments router, unless app.py already includes it."""
    included = any(
        getattr(route, "original_router", None) is attachments_router  # FastAPI's lazy include
        or getattr(route, "path", None) == UPLOAD_PATH
        for route in app.routes
    )
    if not included:
        app.include_router(attachments_router)
    return app


MakeApi = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def make_api(
    service_databases: dict[str, str],
    dev_keys: tuple[Path, Path],
    attachments_env: pytest.MonkeyPatch,
) -> AsyncIterator[MakeApi]:
    """A client on a fresh app; keyword arguments become CUSTOMER_* environment variables
    (the attachment settings are read on the app's first request)."""
    clients: list[httpx.AsyncClient] = []
    apps: list[Any] = []

    async def make(**env: Any) -> httpx.AsyncClient:
        for name, value in env.items():
            attachments_env.setenv(f"CUSTOMER_{name.upper()}", str(value))
        app = with_attachments(build_app("customer", service_databases["customer"], dev_keys[1]))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        clients.append(client)
        apps.append(app)
        return client

    yield make
    for client in clients:
        await client.aclose()
    for app in apps:  # close each app's connection pool
        await app.state.runtime.engine.dispose()


@pytest.fixture
async def api(make_api: MakeApi) -> httpx.AsyncClient:
    return await make_api()


# ---- helpers -----------------------------------------------------------------------------


def url(customer: dict[str, Any], attachment_id: str | None = None) -> str:
    base = f"/api/v1/customers/{customer['id']}/attachments"
    return f"{base}/{attachment_id}" if attachment_id else base


async def upload(
    api: httpx.AsyncClient,
    auth: Auth,
    customer: dict[str, Any],
    content: bytes,
    filename: str = "giay-phep.pdf",
    kind: str = "business_license",
    user: str = "sales1",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await api.post(
        url(customer),
        files={"file": (filename, content, "application/octet-stream")},
        data={"kind": kind},
        headers={**auth(user), **(headers or {})},
    )


async def stored_rows(database_url: str, customer_id: str) -> int:
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM attachments WHERE customer_id = :id"), {"id": customer_id}
        )
    await engine.dispose()
    return int(count or 0)


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


async def set_status(database_url: str, customer_id: str, status: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE customers SET status = :s WHERE id = :id"),
            {"s": status, "id": customer_id},
        )
    await engine.dispose()


# ---- accepted files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "filename", "content_type"),
    [
        (pdf_bytes(), "hop-dong.pdf", "application/pdf"),
        (png_bytes(), "anh.png", "image/png"),
        (jpeg_bytes(), "anh.jpg", "image/jpeg"),
        (webp_bytes(), "anh.webp", "image/webp"),
        (docx_bytes(), "thong-bao.docx", DOCX_TYPE),
        (xlsx_bytes(), "bang-gia.xlsx", XLSX_TYPE),
    ],
    ids=["pdf", "png", "jpeg", "webp", "docx", "xlsx"],
)
async def test_each_allowed_type_is_recognised_from_its_bytes(
    api: httpx.AsyncClient,
    auth_header: Auth,
    blob_dir: Path,
    content: bytes,
    filename: str,
    content_type: str,
) -> None:
    customer = await create(api, auth_header, **{"full_name": "Cửa hàng Bình An"})
    response = await upload(api, auth_header, customer, content, filename, kind="other")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["content_type"] == content_type
    assert body["filename"] == filename
    assert body["size"] == len(content)
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["kind"] == "other" and body["uploaded_by"] == "NV001"
    assert response.headers["location"] == url(customer, body["id"])
    blob = blob_dir / customer["id"] / body["id"]  # keys come from ids, never from names
    assert blob.read_bytes() == content


async def test_the_bytes_decide_the_type_not_the_name(
    api: httpx.AsyncClient, auth_header: Auth
) -> None:
    customer = await create(api, auth_header, **{"full_name": "A"})
    response = await upload(api, auth_header, customer, png_bytes(), "giay-phep.pdf")
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "image/png"
    # The extension follows the real type, so the downloaded file opens with the right app.
    assert response.json()["filename"] == "giay-phep.pdf.png"


async def test_upload_list_download_round_trip_with_headers(
    api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    customer = await create(api, auth_header, **{"full_name": "Nhà thuốc Hồng Phúc"})
    name = "Giấy phép kinh doanh Đức Hưng.pdf"
    content = pdf_bytes()
    first = await upload(api, auth_header, customer, content, name)
    assert first.status_code == 201, first.text
    second = await upload(api, auth_header, customer, png_bytes(), "ảnh cửa hàng.png", "image")
    assert second.status_code == 201, second.text
    attachment = first.json()
    assert attachment["filename"] == name

    listed = await api.get(url(customer), headers=auth_header("sales1"))
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()["items"]] == [attachment["id"], second.json()["id"]]
    assert listed.json()["items"][0] == attachment

    download = await api.get(url(customer, attachment["id"]), headers=auth_header("sales1"))
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-length"] == str(len(content))
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["etag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote(name, safe='')}" in disposition
    assert 'filename="Giay phep kinh doanh Duc Hung.pdf"' in disposition

    cached = await api.get(
        url(customer, attachment["id"]),
        headers={**auth_header("sales1"), "If-None-Match": download.headers["etag"]},
    )
    assert cached.status_code == 304 and cached.content == b""

    # What the customer responses and event snapshots will carry.
    engine = create_async_engine(service_databases["customer"])
    async with AsyncSession(engine) as session:
        rows = await attachments_of(session, uuid.UUID(customer["id"]))
    await engine.dispose()
    assert rows == listed.json()["items"]

    history = await api.get(
        f"/api/v1/customers/{customer['id']}/history", headers=auth_header("sales1")
    )
    actions = [h["action"] for h in history.json()["items"]]
    assert actions == ["created", "attachment_added", "attachment_added"]


async def test_unknown_attachments_are_404(api: httpx.AsyncClient, auth_header: Auth) -> None:
    mine = await create(api, auth_header, **{"full_name": "A"})
    other = await create(api, auth_header, **{"full_name": "B"})
    theirs = (await upload(api, auth_header, other, pdf_bytes())).json()
    for target in (url(mine, str(uuid.uuid4())), url(mine, theirs["id"])):
        assert (await api.get(target, headers=auth_header("sales1"))).status_code == 404
        assert (await api.delete(target, headers=auth_header("sales1"))).status_code == 404
    missing = {"id": str(uuid.uuid4())}
    assert (await api.get(url(missing), headers=auth_header("cs1"))).status_code == 404
    assert (await upload(api, auth_header, missing, pdf_bytes())).status_code == 404


# ---- refusals: nothing stored ------------------------------------------------------------


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "x-b0undary") -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += (
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode()


RAW = "multipart/form-data; boundary=x-b0undary"

REFUSALS: list[tuple[str, dict[str, Any], int, str | None]] = [
    # (case, request, status, field named in the problem)
    ("empty file", {"file": ("a.pdf", b"")}, 422, "file"),
    ("html named pdf", {"file": ("x.pdf", b"<!DOCTYPE html><script>alert(1)</script>")}, 415, None),
    ("svg", {"file": ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>')}, 415, None),
    ("exe", {"file": ("setup.exe", b"MZ\x90\x00\x03" + b"\x00" * 64)}, 415, None),
    ("plain zip", {"file": ("hoso.docx", plain_zip_bytes())}, 415, None),
    ("macro docm", {"file": ("hoso.docx", docm_bytes())}, 415, None),
    ("corrupt zip", {"file": ("a.xlsx", b"PK\x03\x04" + b"\x00" * 40)}, 415, None),
    ("bare png signature", {"file": ("a.png", b"\x89PNG\r\n\x1a\n<html>")}, 415, None),
    ("traversal", {"file": ("../../etc/passwd", pdf_bytes())}, 422, "file"),
    ("windows traversal", {"file": ("..\\..\\boot.ini", pdf_bytes())}, 422, "file"),
    ("unknown kind", {"kind": "passport"}, 422, "kind"),
    ("missing kind", {"kind": None}, 422, "kind"),
    ("missing file", {"file": None}, 422, "file"),
    (
        "file as text",
        {"raw": multipart([("file", None, b"x"), ("kind", None, b"other")])},
        422,
        "file",
    ),
    (
        "two files",
        {
            "raw": multipart(
                [
                    ("file", "a.pdf", pdf_bytes()),
                    ("file", "b.pdf", pdf_bytes()),
                    ("kind", None, b"other"),
                ]
            )
        },
        422,
        "file",
    ),
    (
        "truncated body",
        {"raw": multipart([("kind", None, b"other"), ("file", "a.pdf", pdf_bytes())])[:-30]},
        400,
        None,
    ),
    ("json body", {"json": {"file": "JVBERi0=", "kind": "other"}}, 415, None),
    ("no body", {"raw": None}, 422, "file"),
]


@pytest.mark.parametrize(
    ("case", "request_", "status", "field"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
async def test_refused_uploads_store_nothing(
    api: httpx.AsyncClient,
    auth_header: Auth,
    service_databases: dict[str, str],
    blob_dir: Path,
    spool_dir: Path,
    case: str,
    request_: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    customer = await create(api, auth_header, **{"full_name": f"Đại lý {case}"})
    headers = auth_header("sales1")
    if "raw" in request_:
        raw = request_["raw"]
        response = await api.post(
            url(customer),
            content=raw,
            headers={**headers, "Content-Type": RAW} if raw is not None else headers,
        )
    elif "json" in request_:
        response = await api.post(url(customer), json=request_["json"], headers=headers)
    else:
        file = request_.get("file", ("a.pdf", pdf_bytes()))
        kind = request_.get("kind", "contract")
        response = await api.post(
            url(customer),
            files={"file": file} if file else {"other": ("x.txt", b"x")},
            data={"kind": kind} if kind else {"note": "x"},
            headers=headers,
        )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    if field:
        assert field in [e["field"] for e in response.json()["errors"]]
    assert await stored_rows(service_databases["customer"], customer["id"]) == 0
    assert files_under(blob_dir) == []
    assert files_under(spool_dir) == []


async def test_a_file_over_the_default_20_mb_is_413_and_nothing_is_stored(
    api: httpx.AsyncClient,
    auth_header: Auth,
    service_databases: dict[str, str],
    blob_dir: Path,
    spool_dir: Path,
) -> None:
    customer = await create(api, auth_header, **{"full_name": "A"})
    too_big = b"%PDF-1.4\n" + b"0" * (20 * MiB - 8)
    response = await upload(api, auth_header, customer, too_big, headers={"Accept-Language": "vi"})
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "Tệp vượt quá giới hạn 20 MB."
    assert await stored_rows(service_databases["customer"], customer["id"]) == 0
    assert files_under(blob_dir) == [] and files_under(spool_dir) == []


async def test_the_size_limit_is_a_setting_and_inclusive(
    make_api: MakeApi, auth_header: Auth, blob_dir: Path
) -> None:
    api = await make_api(attachment_max_bytes=1000)
    customer = await create(api, auth_header, **{"full_name": "A"})
    exactly = b"%PDF-1.4\n" + b"0" * 991
    assert (await upload(api, auth_header, customer, exactly)).status_code == 201
    one_more = (await upload(api, auth_header, customer, exactly + b"0")).status_code
    assert one_more == 413
    assert len(files_under(blob_dir)) == 1


async def test_an_oversized_stream_is_not_read_to_its_end(
    make_api: MakeApi, auth_header: Auth, spool_dir: Path
) -> None:
    api = await make_api(attachment_max_bytes=MiB)
    customer = await create(api, auth_header, **{"full_name": "A"})
    sent = 0

    async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse early
        nonlocal sent
        head = b'--x-b0undary\r\nContent-Disposition: form-data; name="kind"\r\n\r\nother\r\n'
        head += b'--x-b0undary\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n%PDF-'
        yield head
        for _ in range(1600):  # 100 MB if it were all read
            sent += 64 * 1024
            yield b"0" * (64 * 1024)

    response = await api.post(
        url(customer), content=body(), headers={**auth_header("sales1"), "Content-Type": RAW}
    )
    assert response.status_code == 413
    assert sent < 2 * MiB
    assert files_under(spool_dir) == []
    declared = await api.post(
        url(customer),
        content=b"x" * (MiB + 70 * 1024),
        headers={**auth_header("sales1"), "Content-Type": RAW},
    )
    assert declared.status_code == 413


async def test_the_count_limit_is_409(
    make_api: MakeApi, auth_header: Auth, service_databases: dict[str, str], blob_dir: Path
) -> None:
    api = await make_api(attachments_per_customer=2)
    customer = await create(api, auth_header, **{"full_name": "A"})
    for _ in range(2):
        assert (await upload(api, auth_header, customer, pdf_bytes())).status_code == 201
    third = await upload(api, auth_header, customer, pdf_bytes(), headers={"Accept-Language": "vi"})
    assert third.status_code == 409 and third.headers["content-type"] == PROBLEM
    assert third.json()["detail"] == "Mỗi khách hàng có tối đa 2 tài liệu đính kèm."
    assert await stored_rows(service_databases["customer"], customer["id"]) == 2
    assert len(files_under(blob_dir)) == 2
    other = await create(api, auth_header, **{"full_name": "B"})  # the limit is per customer
    assert (await upload(api, auth_header, other, pdf_bytes())).status_code == 201


async def test_concurrent_uploads_cannot_pass_the_count_limit(
    make_api: MakeApi, auth_header: Auth, service_databases: dict[str, str], blob_dir: Path
) -> None:
    api = await make_api(attachments_per_customer=2)
    customer = await create(api, auth_header, **{"full_name": "A"})
    responses = await asyncio.gather(
        *(upload(api, auth_header, customer, pdf_bytes()) for _ in range(6))
    )
    assert sorted(r.status_code for r in responses) == [201, 201, 409, 409, 409, 409]
    assert await stored_rows(service_databases["customer"], customer["id"]) == 2
    assert len(files_under(blob_dir)) == 2


async def test_a_failure_after_the_blob_is_written_removes_it(
    api: httpx.AsyncClient,
    auth_header: Auth,
    service_databases: dict[str, str],
    blob_dir: Path,
    spool_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customer = await create(api, auth_header, **{"full_name": "A"})

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("database trouble after the blob was written")

    monkeypatch.setattr(AttachmentService, "_record", broken)
    with pytest.raises(RuntimeError, match="after the blob was written"):
        await upload(api, auth_header, customer, pdf_bytes())
    assert await stored_rows(service_databases["customer"], customer["id"]) == 0
    assert files_under(blob_dir) == [] and files_under(spool_dir) == []


async def test_a_blob_missing_from_the_store_is_a_500_problem(
    api: httpx.AsyncClient, auth_header: Auth, blob_dir: Path
) -> None:
    customer = await create(api, auth_header, **{"full_name": "A"})
    attachment = (await upload(api, auth_header, customer, pdf_bytes())).json()
    (blob_dir / customer["id"] / attachment["id"]).unlink()
    response = await api.get(url(customer, attachment["id"]), headers=auth_header("sales1"))
    assert response.status_code == 500 and response.headers["content-type"] == PROBLEM


async def test_openapi_documents_the_multipart_upload(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    body = schema["paths"][UPLOAD_PATH]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["required"] == ["file", "kind"]
    assert set(schema["paths"][UPLOAD_PATH + "/{attachment_id}"]) == {"get", "delete"}


# ---- deletion and the customer's state ---------------------------------------------------


async def test_delete_in_draft_and_rejected_removes_row_and_blob(
    api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str], blob_dir: Path
) -> None:
    customer = await create(api, auth_header, **{"full_name": "A"})
    attachment = (await upload(api, auth_header, customer, pdf_bytes())).json()
    blob = blob_dir / customer["id"] / attachment["id"]
    assert blob.is_file()
    deleted = await api.delete(url(customer, attachment["id"]), headers=auth_header("sales1"))
    assert deleted.status_code == 204 and deleted.content == b""
    assert not blob.exists()
    assert await stored_rows(service_databases["customer"], customer["id"]) == 0
    assert (await api.get(url(customer), headers=auth_header("sales1"))).json() == {"items": []}
    again = await api.delete(url(customer, attachment["id"]), headers=auth_header("sales1"))
    assert again.status_code == 404

    await set_status(service_databases["customer"], customer["id"], "rejected")
    attachment = (await upload(api, auth_header, customer, pdf_bytes())).json()
    deleted = await api.delete(url(customer, attachment["id"]), headers=auth_header("sales1"))
    assert deleted.status_code == 204
    assert files_under(blob_dir) == []


async def test_pending_customers_take_no_changes_and_active_ones_only_uploads(
    api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str], blob_dir: Path
) -> None:
    customer = await create(api, auth_header, **complete_customer())
    attachment = (await upload(api, auth_header, customer, pdf_bytes())).json()
    submitted = await api.post(
        f"/api/v1/customers/{customer['id']}/submit", headers=auth_header("sales1")
    )
    assert submitted.status_code == 200, submitted.text

    target = url(customer, attachment["id"])
    pending_delete = await api.delete(target, headers=auth_header("sales1"))
    assert pending_delete.status_code == 409 and pending_delete.headers["content-type"] == PROBLEM
    assert (await upload(api, auth_header, customer, pdf_bytes())).status_code == 409
    assert (await api.get(target, headers=auth_header("cs1"))).status_code == 200

    await set_status(service_databases["customer"], customer["id"], "active")
    # Attachments of an active customer apply at once (issue 4) but are never removed.
    assert (await upload(api, auth_header, customer, png_bytes(), "a.png")).status_code == 201
    assert (await api.delete(target, headers=auth_header("sales1"))).status_code == 409
    assert (await api.delete(target, headers=auth_header("admin1"))).status_code == 409
    assert await stored_rows(service_databases["customer"], customer["id"]) == 2
    assert len(files_under(blob_dir)) == 2


# ---- access ------------------------------------------------------------------------------


async def test_access_follows_the_customers_visibility_and_roles(
    api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    customer = await create(api, auth_header, **{"full_name": "A"})
    attachment = (await upload(api, auth_header, customer, pdf_bytes())).json()
    one = url(customer, attachment["id"])

    for stranger in ("sales2", "sales3"):
        headers = auth_header(stranger)
        assert (
            await upload(api, auth_header, customer, pdf_bytes(), user=stranger)
        ).status_code == 404
        assert (await api.get(url(customer), headers=headers)).status_code == 404
        assert (await api.get(one, headers=headers)).status_code == 404
        assert (await api.delete(one, headers=headers)).status_code == 404

    for reader in ("cs1", "accountant1"):
        headers = auth_header(reader)
        assert (await api.get(url(customer), headers=headers)).status_code == 200
        got = await api.get(one, headers=headers)
        assert got.status_code == 200 and got.content == pdf_bytes()
        refused = await upload(api, auth_header, customer, pdf_bytes(), user=reader)
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
        assert (await api.delete(one, headers=headers)).status_code == 403

    # The manager of the owner's unit and admins may write.
    assert (
        await upload(api, auth_header, customer, pdf_bytes(), user="manager1")
    ).status_code == 201
    assert (await upload(api, auth_header, customer, pdf_bytes(), user="admin1")).status_code == 201

    for response in (
        await api.post(
            url(customer), files={"file": ("a.pdf", pdf_bytes())}, data={"kind": "other"}
        ),
        await api.get(url(customer)),
        await api.get(one),
        await api.delete(one),
    ):
        assert response.status_code == 401 and response.headers["content-type"] == PROBLEM
    assert await stored_rows(service_databases["customer"], customer["id"]) == 3


# ---- configuration and building blocks ---------------------------------------------------


async def test_an_unimplemented_blob_store_stops_the_start_up(
    attachments_env: pytest.MonkeyPatch,
) -> None:
    attachments_env.setenv("CUSTOMER_BLOB_STORE", "gcs")
    app = FastAPI()
    app.include_router(attachments_router)
    with pytest.raises(ValidationError, match="CUSTOMER_BLOB_STORE='gcs' is not implemented"):
        async with app.router.lifespan_context(app):
            pass


async def test_the_start_up_builds_the_local_store(
    attachments_env: pytest.MonkeyPatch, blob_dir: Path
) -> None:
    app = FastAPI()
    app.include_router(attachments_router)
    async with app.router.lifespan_context(app):
        store = app.state.customer_attachments.store
        assert (
            isinstance(store, LocalBlobStore) and store.root == blob_dir
        )  # tmp_path is already resolved


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Giấy phép kinh doanh.pdf", "Giấy phép kinh doanh.pdf"),
        ("Gia\u0301y phe\u0301p.pdf", "Giáy phép.pdf"),  # NFD (macOS) becomes NFC
        ("C:\\Users\\an\\Desktop\\hợp đồng.pdf", "hợp đồng.pdf"),
        ("scans/2025/hợp đồng.pdf", "hợp đồng.pdf"),
        ("a\x00b\x1fc\r\n.pdf", "abc.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe.pdf"),  # a bidi override cannot disguise it
        ('a<b>:"c"|?*.pdf', "a_b___c____.pdf"),
        ("  .hidden.pdf. ", "hidden.pdf"),
        ("", "attachment.pdf"),
        ("....", "attachment.pdf"),
        ("report", "report.pdf"),
        ("Báo cáo.PDF", "Báo cáo.PDF"),
    ],
)
def test_filenames_are_sanitised(raw: str, expected: str) -> None:
    assert safe_filename(raw, PDF) == expected


def test_long_filenames_keep_their_extension() -> None:
    name = safe_filename("Đ" * 500 + ".png", PNG)
    assert len(name) == 200 and name.endswith("Đ.png")


@pytest.mark.parametrize("raw", ["../../etc/passwd", "..", "a/../b.pdf", "..\\x.pdf", " .. /x"])
def test_traversal_names_are_refused(raw: str) -> None:
    with pytest.raises(UnsafeFilenameError):
        safe_filename(raw, PDF)


def test_content_disposition_is_rfc_5987() -> None:
    value = content_disposition('Hợp đồng "Đức" 100%.pdf')
    assert value == (
        'attachment; filename="Hop dong _Duc_ 100_.pdf"; '
        "filename*=UTF-8''H%E1%BB%A3p%20%C4%91%E1%BB%93ng%20%22%C4%90%E1%BB%A9c%22%20100%25.pdf"
    )


@pytest.mark.parametrize("key", ["../x", "a/../../b", "/etc/passwd", "a//b", "a/b.c", ""])
async def test_the_local_store_refuses_keys_that_are_not_plain_ids(
    tmp_path: Path, key: str
) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.put(key, tmp_path / "nothing")


async def test_the_customer_and_its_events_carry_the_attachments(
    api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    from tests.customer.test_api import complete_customer

    customer = await create(api, auth_header, **complete_customer())
    uploaded = (
        await upload(api, auth_header, customer, pdf_bytes(), "hợp đồng.pdf", "contract")
    ).json()
    read = (
        await api.get(f"/api/v1/customers/{customer['id']}", headers=auth_header("sales1"))
    ).json()
    assert [a["id"] for a in read["attachments"]] == [uploaded["id"]]
    listed = (
        await api.get(
            "/api/v1/customers", params={"q": customer["full_name"]}, headers=auth_header("sales1")
        )
    ).json()
    assert [a["kind"] for a in listed["items"][0]["attachments"]] == ["contract"]
    submitted = await api.post(
        f"/api/v1/customers/{customer['id']}/submit", headers=auth_header("sales1")
    )
    assert submitted.status_code == 200, submitted.text
    engine = create_async_engine(service_databases["customer"])
    async with engine.connect() as conn:
        payload = (
            await conn.execute(
                text("SELECT payload FROM outbox WHERE key = :k AND event_type LIKE '%Submitted%'"),
                {"k": customer["id"]},
            )
        ).scalar_one()
    await engine.dispose()
    assert [a["sha256"] for a in payload["customer"]["attachments"]] == [uploaded["sha256"]]
