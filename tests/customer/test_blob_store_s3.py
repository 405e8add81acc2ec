"""The S3 blob store against a real S3 protocol server (moto's), alone and behind the API.

Every test gets its own empty bucket, so listing it proves what was stored and what was
not; "S3 is down" is an endpoint on a port where nothing listens.
"""

import gc
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
from aiobotocore.session import get_session
from botocore.exceptions import ReadTimeoutError
from fastapi import FastAPI
from pydantic import ValidationError

from customer.attachments import AttachmentService
from customer.attachments_api import router as attachments_router
from customer.blob_store import (
    BlobNotFoundError,
    BlobStoreUnavailableError,
    make_blob_store,
)
from customer.s3_blob_store import ObjectChunks, S3BlobStore, S3Options
from customer.settings import CustomerSettings
from ims_cli.ports import free_port
from tests.customer.test_api import create
from tests.customer.test_attachments import (
    PROBLEM,
    files_under,
    pdf_bytes,
    png_bytes,
    stored_rows,
    upload,
    url,
    with_attachments,
)
from tests.fixtures.apps import build_app
from tests.fixtures.s3 import S3Server

Auth = Callable[[str], dict[str, str]]
KiB = 1024
MiB = 1024 * KiB
KEY = "0b7e5f5e-1111-4a4a-9c9c-000000000001/0b7e5f5e-2222-4a4a-9c9c-000000000002"


def options(server: S3Server, bucket: str, **overrides: Any) -> S3Options:
    fields: dict[str, Any] = {
        "bucket": bucket,
        "endpoint_url": server.endpoint_url,
        "region": server.region,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        "addressing_style": "path",
        **overrides,
    }
    return S3Options(**fields)


def closed_endpoint() -> str:
    """An endpoint where nothing listens: S3 "down", refused at once."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
async def store(s3_server: S3Server, s3_bucket: str) -> AsyncIterator[S3BlobStore]:
    s3 = S3BlobStore(options(s3_server, s3_bucket))
    yield s3
    await s3.aclose()


def a_file(folder: Path, content: bytes, name: str = "upload.part") -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


async def read_all(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


# ---- the store's contract ----------------------------------------------------------------


async def test_put_open_exists_delete_round_trip(
    store: S3BlobStore, s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    content = bytes(range(256)) * 1024  # 256 KiB: several chunks
    assert not await store.exists(KEY)
    await store.put(KEY, a_file(tmp_path, content))

    assert await store.exists(KEY)
    assert s3_server.keys(s3_bucket) == [KEY]
    head = s3_server.client().head_object(Bucket=s3_bucket, Key=KEY)
    assert head["ContentType"] == "application/octet-stream"  # the API decides the real type
    assert head["ContentLength"] == len(content)

    chunks = await read_all(await store.open(KEY))
    assert len(chunks) > 1 and b"".join(chunks) == content

    await store.delete(KEY)
    assert not await store.exists(KEY)
    assert s3_server.keys(s3_bucket) == []
    await store.delete(KEY)  # idempotent
    with pytest.raises(BlobNotFoundError):
        await store.open(KEY)


async def test_put_replaces_the_blob_under_a_key(store: S3BlobStore, tmp_path: Path) -> None:
    await store.put(KEY, a_file(tmp_path, b"first", "a"))
    await store.put(KEY, a_file(tmp_path, b"second", "b"))
    assert b"".join(await read_all(await store.open(KEY))) == b"second"


async def test_a_missing_key_is_refused_before_any_byte_is_read(store: S3BlobStore) -> None:
    # `open` itself raises (not the iteration), so the API can still answer with a status.
    with pytest.raises(BlobNotFoundError):
        await store.open(KEY)


async def test_a_missing_bucket_is_unavailable_not_a_missing_blob(
    s3_server: S3Server, tmp_path: Path
) -> None:
    s3 = S3BlobStore(options(s3_server, "ims-no-such-bucket"))
    try:
        with pytest.raises(BlobStoreUnavailableError, match="NoSuchBucket"):
            await s3.open(KEY)
        with pytest.raises(BlobStoreUnavailableError, match="NoSuchBucket"):
            await s3.put(KEY, a_file(tmp_path, b"x"))
    finally:
        await s3.aclose()


@pytest.mark.parametrize("key", ["../x", "a/../../b", "/etc/passwd", "a//b", "a/b.c", "", "a/"])
async def test_keys_that_are_not_plain_ids_are_refused(
    store: S3BlobStore, s3_server: S3Server, s3_bucket: str, tmp_path: Path, key: str
) -> None:
    source = a_file(tmp_path, b"x")
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.put(key, source)
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.open(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.delete(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.exists(key)
    assert s3_server.keys(s3_bucket) == []


async def test_the_key_prefix_is_honoured(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    prefixed = S3BlobStore(options(s3_server, s3_bucket, prefix="/prod/customer-files/"))
    bare = S3BlobStore(options(s3_server, s3_bucket))
    try:
        await prefixed.put(KEY, a_file(tmp_path, b"tenant data"))
        assert s3_server.keys(s3_bucket) == [f"prod/customer-files/{KEY}"]
        assert await prefixed.exists(KEY) and not await bare.exists(KEY)
        assert b"".join(await read_all(await prefixed.open(KEY))) == b"tenant data"
        await bare.delete(KEY)  # another prefix: not this blob
        assert s3_server.keys(s3_bucket) == [f"prod/customer-files/{KEY}"]
        await prefixed.delete(KEY)
        assert s3_server.keys(s3_bucket) == []
    finally:
        await prefixed.aclose()
        await bare.aclose()


@pytest.mark.parametrize("prefix", ["../up", "a/../b", "a/./b", "a//b", "tab\tbed", "ü"])
def test_an_unsafe_prefix_is_refused(s3_server: S3Server, prefix: str) -> None:
    with pytest.raises(ValueError, match="invalid S3 key prefix"):
        S3BlobStore(options(s3_server, "any-bucket", prefix=prefix))


async def test_a_put_that_fails_after_the_server_stored_it_leaves_nothing(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    answered: list[int] = []

    def lose_the_answer(http_response: Any, **_: Any) -> None:
        answered.append(http_response.status_code)
        raise ReadTimeoutError(endpoint_url=s3_server.endpoint_url)

    session = get_session()
    session.register("after-call.s3.PutObject", lose_the_answer)
    s3 = S3BlobStore(options(s3_server, s3_bucket, max_attempts=1), session=session)
    try:
        with pytest.raises(BlobStoreUnavailableError, match="ReadTimeoutError"):
            await s3.put(KEY, a_file(tmp_path, pdf_bytes()))
    finally:
        await s3.aclose()
    assert answered == [200]  # the server had stored it...
    assert s3_server.keys(s3_bucket) == []  # ...and the store took it back


async def test_a_put_cancelled_after_the_server_stored_it_leaves_nothing(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    # What happens when the client of an upload goes away at the wrong moment.
    async def stall(**_: Any) -> None:
        await anyio.sleep(30)

    session = get_session()
    session.register("after-call.s3.PutObject", stall)
    s3 = S3BlobStore(options(s3_server, s3_bucket), session=session)
    try:
        with anyio.move_on_after(1) as scope:
            await s3.put(KEY, a_file(tmp_path, pdf_bytes()))
        assert scope.cancelled_caught
    finally:
        await s3.aclose()
    assert s3_server.keys(s3_bucket) == []


async def test_an_unreachable_store_is_unavailable_for_every_operation(tmp_path: Path) -> None:
    s3 = S3BlobStore(
        S3Options(
            bucket="any-bucket",
            endpoint_url=closed_endpoint(),
            region="us-east-1",
            access_key_id="k",
            secret_access_key="s",
            max_attempts=1,
        )
    )
    source = a_file(tmp_path, b"x")
    attempts: list[Callable[[], Awaitable[Any]]] = [
        lambda: s3.put(KEY, source),
        lambda: s3.open(KEY),
        lambda: s3.delete(KEY),
        lambda: s3.exists(KEY),
    ]
    try:
        for attempt in attempts:
            with pytest.raises(BlobStoreUnavailableError) as caught:
                await attempt()
            assert isinstance(caught.value, OSError)  # what the API answers with a 503
    finally:
        await s3.aclose()


@pytest.mark.parametrize("max_attempts", [1, 2])
async def test_a_call_is_tried_max_attempts_times_in_all(max_attempts: int) -> None:
    sent: list[str] = []
    session = get_session()
    session.register("before-send.s3.HeadObject", lambda **_: sent.append("HEAD"))
    s3 = S3BlobStore(
        S3Options(
            bucket="any-bucket",
            endpoint_url=closed_endpoint(),
            region="us-east-1",
            access_key_id="k",
            secret_access_key="s",
            max_attempts=max_attempts,
        ),
        session=session,
    )
    try:
        with pytest.raises(BlobStoreUnavailableError, match="EndpointConnectionError"):
            await s3.exists(KEY)
    finally:
        await s3.aclose()
    assert sent == ["HEAD"] * max_attempts


async def test_downloads_give_their_connection_back(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    # Two connections only: a download that kept one would stall the third call for good.
    s3 = S3BlobStore(options(s3_server, s3_bucket, max_pool_connections=2))
    try:
        await s3.put(KEY, a_file(tmp_path, b"z" * MiB))  # far more than is buffered at once
        with anyio.fail_after(20):
            for _ in range(3):  # read to the end
                assert len(b"".join(await read_all(await s3.open(KEY)))) == MiB
            # Referenced to the end: only `aclose` can give their connections back.
            kept: list[ObjectChunks] = []
            for _ in range(3):  # closed after one chunk (the client went away)
                chunks = await s3.open(KEY)
                assert await anext(chunks)
                await chunks.aclose()
                kept.append(chunks)
            assert all(chunks.closed for chunks in kept)
            for _ in range(3):  # dropped after one chunk, never closed
                chunks = await s3.open(KEY)
                assert await anext(chunks)
                del chunks
                gc.collect()
            for _ in range(3):  # opened and dropped unread
                await s3.open(KEY)
                gc.collect()
            assert await s3.exists(KEY)
    finally:
        await s3.aclose()


async def test_credentials_default_to_botocores_chain(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    anonymous = options(s3_server, s3_bucket, access_key_id=None, secret_access_key=None)

    nobody = S3BlobStore(anonymous)
    try:
        with pytest.raises(BlobStoreUnavailableError, match="NoCredentialsError"):
            await nobody.exists(KEY)
    finally:
        await nobody.aclose()

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment")
    from_env = S3BlobStore(anonymous)
    try:
        await from_env.put(KEY, a_file(tmp_path, b"x"))
        assert await from_env.exists(KEY)
    finally:
        await from_env.aclose()


# ---- settings and start-up ---------------------------------------------------------------


def test_s3_without_a_bucket_stops_the_start_up() -> None:
    with pytest.raises(ValidationError, match="CUSTOMER_BLOB_STORE=s3 needs CUSTOMER_S3_BUCKET"):
        CustomerSettings(blob_store="s3")
    with pytest.raises(ValidationError, match="CUSTOMER_S3_BUCKET"):
        CustomerSettings(blob_store="S3", s3_bucket="  ")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"s3_access_key_id": "AKIDEXAMPLE"}, "both CUSTOMER_S3_ACCESS_KEY_ID"),
        ({"s3_secret_access_key": "wJalrXUtnFEMI-secret"}, "both CUSTOMER_S3_ACCESS_KEY_ID"),
        ({"s3_endpoint_url": "minio:9000"}, "CUSTOMER_S3_ENDPOINT_URL must be an http"),
        ({"s3_prefix": "../other-service"}, "invalid S3 key prefix"),
        ({"s3_addressing_style": "dns"}, "s3_addressing_style"),
    ],
)
def test_bad_s3_settings_are_refused_without_echoing_secrets(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        CustomerSettings(blob_store="s3", s3_bucket="b-ucket", **fields)
    assert "wJalrXUtnFEMI-secret" not in str(caught.value)


def test_the_settings_make_an_s3_store(tmp_path: Path) -> None:
    settings = CustomerSettings(
        blob_store="s3",
        s3_bucket="ims-attachments",
        s3_endpoint_url="http://minio.internal:9000",
        s3_region="ap-southeast-1",
        s3_prefix="/prod/customer/",
        s3_access_key_id="AKIDEXAMPLE",
        s3_secret_access_key="wJalrXUtnFEMI-secret",
        s3_addressing_style="path",
    )
    s3 = settings.s3_options()
    assert s3 is not None
    assert (s3.bucket, s3.prefix, s3.endpoint_url, s3.region, s3.addressing_style) == (
        "ims-attachments",
        "prod/customer",
        "http://minio.internal:9000",
        "ap-southeast-1",
        "path",
    )
    assert s3.secret_access_key == "wJalrXUtnFEMI-secret"
    assert "wJalrXUtnFEMI-secret" not in repr(settings) + repr(s3)
    built = make_blob_store(settings.blob_store, local_root=tmp_path, s3=s3)
    assert isinstance(built, S3BlobStore) and built.object_key("a/b") == "prod/customer/a/b"
    assert CustomerSettings().s3_options() is None  # `local` needs none
    with pytest.raises(ValueError, match="needs its settings"):
        make_blob_store("s3", local_root=tmp_path)


async def test_the_start_up_builds_the_s3_store_and_shutdown_closes_it(
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in s3_server.settings(s3_bucket, s3_prefix="p").items():
        monkeypatch.setenv(f"CUSTOMER_{name.upper()}", value)
    closed: list[S3BlobStore] = []
    real_aclose = S3BlobStore.aclose

    async def spy(self: S3BlobStore) -> None:
        closed.append(self)
        await real_aclose(self)

    monkeypatch.setattr(S3BlobStore, "aclose", spy)
    app = FastAPI()
    app.include_router(attachments_router)
    async with app.router.lifespan_context(app):
        store = app.state.customer_attachments.store
        assert isinstance(store, S3BlobStore)
        assert (store.bucket, store.prefix) == (s3_bucket, "p")
        assert not await store.exists(KEY)  # the client exists from here on
    assert closed == [store]


# ---- the attachments API on S3 -----------------------------------------------------------

PREFIX = "ims/customer"
MakeApi = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
async def make_api(
    service_databases: dict[str, str],
    dev_keys: tuple[Path, Path],
    s3_server: S3Server,
    s3_bucket: str,
    spool_dir: Path,
) -> AsyncIterator[MakeApi]:
    """A client on a fresh customer app with CUSTOMER_BLOB_STORE=s3 on the test's bucket;
    keyword arguments override its settings."""
    apps: list[tuple[FastAPI, httpx.AsyncClient]] = []

    async def make(**overrides: Any) -> httpx.AsyncClient:
        settings = s3_server.settings(
            s3_bucket, s3_prefix=PREFIX, upload_tmp_dir=spool_dir, **overrides
        )
        app = with_attachments(
            build_app("customer", service_databases["customer"], dev_keys[1], **settings)
        )
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        apps.append((app, client))
        return client

    yield make
    for app, client in apps:
        await client.aclose()
        config = getattr(app.state, "customer_attachments", None)
        if config is not None:  # the lifespan does not run here: close the store's client
            await config.aclose()
        await app.state.runtime.engine.dispose()


@pytest.fixture
async def api(make_api: MakeApi) -> httpx.AsyncClient:
    return await make_api()


async def history_actions(
    api: httpx.AsyncClient, auth: Auth, customer: dict[str, Any]
) -> list[str]:
    response = await api.get(f"/api/v1/customers/{customer['id']}/history", headers=auth("sales1"))
    assert response.status_code == 200, response.text
    return [item["action"] for item in response.json()["items"]]


async def test_upload_list_download_delete_through_s3(
    api: httpx.AsyncClient,
    auth_header: Auth,
    service_databases: dict[str, str],
    s3_server: S3Server,
    s3_bucket: str,
    spool_dir: Path,
) -> None:
    customer = await create(api, auth_header, **{"full_name": "Nhà thuốc Hồng Phúc"})
    name = "Giấy phép kinh doanh Đức Hưng.pdf"
    content = b"%PDF-1.4\n" + bytes(range(256)) * (4 * 1024)  # 1 MiB: streamed in chunks
    uploaded = await upload(api, auth_header, customer, content, name)
    assert uploaded.status_code == 201, uploaded.text
    attachment = uploaded.json()
    second = await upload(api, auth_header, customer, png_bytes(), "ảnh.png", "image")
    assert second.status_code == 201, second.text

    # Keys come from ids under the prefix, never from names; the bytes are exact.
    key = f"{PREFIX}/{customer['id']}/{attachment['id']}"
    assert s3_server.keys(s3_bucket) == sorted(
        [key, f"{PREFIX}/{customer['id']}/{second.json()['id']}"]
    )
    stored = s3_server.client().get_object(Bucket=s3_bucket, Key=key)
    assert stored["Body"].read() == content
    assert files_under(spool_dir) == []

    listed = await api.get(url(customer), headers=auth_header("sales1"))
    assert listed.status_code == 200
    assert [a["id"] for a in listed.json()["items"]] == [attachment["id"], second.json()["id"]]

    async with api.stream(
        "GET", url(customer, attachment["id"]), headers=auth_header("cs1")
    ) as download:
        assert download.status_code == 200
        received = [chunk async for chunk in download.aiter_raw()]
    assert b"".join(received) == content
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-length"] == str(len(content))
    assert download.headers["etag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    assert download.headers["x-content-type-options"] == "nosniff"
    assert f"filename*=UTF-8''{quote(name, safe='')}" in download.headers["content-disposition"]

    deleted = await api.delete(url(customer, attachment["id"]), headers=auth_header("sales1"))
    assert deleted.status_code == 204
    assert s3_server.keys(s3_bucket) == [f"{PREFIX}/{customer['id']}/{second.json()['id']}"]
    assert await stored_rows(service_databases["customer"], customer["id"]) == 1
    assert await history_actions(api, auth_header, customer) == [
        "created",
        "attachment_added",
        "attachment_added",
        "attachment_deleted",
    ]


S3_REFUSALS: list[tuple[str, str, bytes, int, dict[str, Any]]] = [
    # (case, filename, content, status, settings)
    ("spoofed type", "hop-dong.pdf", b"<!DOCTYPE html><script>alert(1)</script>", 415, {}),
    ("empty", "a.pdf", b"", 422, {}),
    (
        "oversized",
        "a.pdf",
        b"%PDF-1.4\n" + b"0" * (64 * KiB),
        413,
        {"attachment_max_bytes": 64 * KiB},
    ),
    ("traversal name", "../../etc/passwd", pdf_bytes(), 422, {}),
]


@pytest.mark.parametrize(
    ("case", "filename", "content", "status", "settings"),
    S3_REFUSALS,
    ids=[r[0] for r in S3_REFUSALS],
)
async def test_refused_uploads_store_nothing_in_the_bucket(
    make_api: MakeApi,
    auth_header: Auth,
    service_databases: dict[str, str],
    s3_server: S3Server,
    s3_bucket: str,
    spool_dir: Path,
    case: str,
    filename: str,
    content: bytes,
    status: int,
    settings: dict[str, Any],
) -> None:
    api = await make_api(**settings)
    customer = await create(api, auth_header, **{"full_name": f"Đại lý {case}"})
    response = await upload(api, auth_header, customer, content, filename)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert await stored_rows(service_databases["customer"], customer["id"]) == 0
    assert s3_server.keys(s3_bucket) == []
    assert files_under(spool_dir) == []


async def test_a_failure_after_the_blob_is_written_removes_it_from_the_bucket(
    api: httpx.AsyncClient,
    auth_header: Auth,
    service_databases: dict[str, str],
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customer = await create(api, auth_header, **{"full_name": "A"})

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("database trouble after the blob was written")

    monkeypatch.setattr(AttachmentService, "_record", broken)
    with pytest.raises(RuntimeError, match="after the blob was written"):
        await upload(api, auth_header, customer, pdf_bytes())
    assert await stored_rows(service_databases["customer"], customer["id"]) == 0
    assert s3_server.keys(s3_bucket) == []


async def test_a_blob_missing_from_the_bucket_is_a_500_not_a_503(
    api: httpx.AsyncClient, auth_header: Auth, s3_server: S3Server, s3_bucket: str
) -> None:
    customer = await create(api, auth_header, **{"full_name": "A"})
    attachment = (await upload(api, auth_header, customer, pdf_bytes())).json()
    s3_server.client().delete_object(
        Bucket=s3_bucket, Key=f"{PREFIX}/{customer['id']}/{attachment['id']}"
    )
    response = await api.get(url(customer, attachment["id"]), headers=auth_header("sales1"))
    assert response.status_code == 500 and response.headers["content-type"] == PROBLEM


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == "5"
    assert response.json()["status"] == 503


async def test_s3_down_answers_503_and_leaves_nothing_half_done(
    make_api: MakeApi,
    auth_header: Auth,
    service_databases: dict[str, str],
    s3_server: S3Server,
    s3_bucket: str,
    spool_dir: Path,
) -> None:
    healthy = await make_api()
    down = await make_api(s3_endpoint_url=closed_endpoint(), s3_max_attempts=1)
    customer = await create(down, auth_header, **{"full_name": "Cửa hàng Bình An"})
    kept = (await upload(healthy, auth_header, customer, pdf_bytes(), "kept.pdf")).json()

    # Upload: no row, no history entry, no blob, no spooled file.
    assert_unavailable(await upload(down, auth_header, customer, png_bytes(), "anh.png"))
    assert await stored_rows(service_databases["customer"], customer["id"]) == 1
    assert await history_actions(down, auth_header, customer) == ["created", "attachment_added"]
    assert s3_server.keys(s3_bucket) == [f"{PREFIX}/{customer['id']}/{kept['id']}"]
    assert files_under(spool_dir) == []

    # Download: an answer, not a broken stream.
    assert_unavailable(await down.get(url(customer, kept["id"]), headers=auth_header("sales1")))

    # Delete: refused while the store cannot take the blob away; the row stays.
    assert_unavailable(await down.delete(url(customer, kept["id"]), headers=auth_header("sales1")))
    assert await stored_rows(service_databases["customer"], customer["id"]) == 1
    assert await history_actions(down, auth_header, customer) == ["created", "attachment_added"]

    # What needs only the database still works; once S3 is back, everything does.
    listed = await down.get(url(customer), headers=auth_header("sales1"))
    assert [a["id"] for a in listed.json()["items"]] == [kept["id"]]
    again = await healthy.get(url(customer, kept["id"]), headers=auth_header("sales1"))
    assert again.status_code == 200 and again.content == pdf_bytes()


async def test_a_bucket_that_refuses_the_service_answers_503(
    make_api: MakeApi, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    # Not the network this time: S3 answers, with an error (here NoSuchBucket).
    api = await make_api(s3_bucket="ims-bucket-that-does-not-exist")
    customer = await create(api, auth_header, **{"full_name": "A"})
    assert_unavailable(await upload(api, auth_header, customer, pdf_bytes()))
    assert await stored_rows(service_databases["customer"], customer["id"]) == 0
