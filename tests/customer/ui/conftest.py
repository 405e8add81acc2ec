"""The customer app with its salesperson UI, in process, on the session's customer
database (its reference replica filled by tests/customer/conftest.py)."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.customer.test_api import complete_customer
from tests.fixtures.apps import app_client, build_app
from tests.shared.ui.client import UiClient

Auth = Callable[[str], dict[str, str]]


def word() -> str:
    """A word no other test's customer has: searching it finds this test's customers."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
async def engine(service_databases: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_databases["customer"])
    yield engine
    await engine.dispose()


@pytest.fixture
def customer_app(
    service_databases: dict[str, str], dev_keys: tuple[Path, Path], tmp_path: Path
) -> FastAPI:
    return build_app(
        "customer",
        service_databases["customer"],
        dev_keys[1],
        blob_dir=tmp_path / "blobs",
        upload_tmp_dir=tmp_path / "spool",
    )


@pytest.fixture
async def http(customer_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """One in-process client: the API with bearer headers, the UI with cookies."""
    async with app_client(customer_app) as client:
        yield client


SignIn = Callable[[str], Awaitable[UiClient]]


@pytest.fixture
async def sign_in(http: httpx.AsyncClient, customer_app: FastAPI) -> AsyncIterator[SignIn]:
    """A browser of its own per user (its own cookie jar), over the same app."""
    opened: list[httpx.AsyncClient] = []

    async def make(username: str) -> UiClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=customer_app), base_url="http://test"
        )
        opened.append(client)
        ui = UiClient(client)
        await ui.sign_in(username)
        return ui

    yield make
    for client in opened:
        await client.aclose()


Create = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def create(http: httpx.AsyncClient, auth_header: Auth) -> Create:
    """A customer made through the REST API, as `user`; `complete` fills every field
    submission needs."""

    async def make(
        full_name: str, user: str = "sales1", *, complete: bool = True, **fields: Any
    ) -> dict[str, Any]:
        body = {**(complete_customer(full_name) if complete else {"full_name": full_name})}
        body.update(fields)
        response = await http.post("/api/v1/customers", json=body, headers=auth_header(user))
        assert response.status_code == 201, response.text
        return dict(response.json())

    return make


SetStatus = Callable[..., Awaitable[None]]


@pytest.fixture
def set_status(engine: AsyncEngine) -> SetStatus:
    """Put a customer in a status as CS's decisions would (code for active ones)."""

    async def apply(customer_id: str, status: str, **columns: Any) -> None:
        values = {"status": status, **columns}
        if status == "active":
            values.setdefault("customer_code", f"KH7{uuid.uuid4().int % 10**5:05d}")
        assignments = ", ".join(f"{k} = :{k}" for k in values)
        async with engine.begin() as conn:
            await conn.execute(
                text(f"UPDATE customers SET {assignments} WHERE id = :id"),
                {**values, "id": customer_id},
            )

    return apply
