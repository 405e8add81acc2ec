"""The approval app with its CS UI, in process, on the session's approval database."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.approval.helpers import deliver, submission, token
from tests.fixtures.apps import app_client, build_app
from tests.shared.ui.client import UiClient


@pytest.fixture(scope="module")
async def engine(service_databases: dict[str, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(service_databases["approval"])
    yield engine
    await engine.dispose()


@pytest.fixture
def approval_app(service_databases: dict[str, str], dev_keys: tuple[Path, Path]) -> FastAPI:
    return build_app("approval", service_databases["approval"], dev_keys[1])


@pytest.fixture
async def cs(approval_app: FastAPI) -> AsyncIterator[UiClient]:
    """cs1, signed in to the CS UI."""
    async with app_client(approval_app) as client:
        ui = UiClient(client)
        await ui.sign_in("cs1")
        yield ui


@pytest.fixture
def unit() -> str:
    """A sales unit of the test's own: its queue filter sees only its reviews."""
    return token("SU")


Submit = Callable[..., Any]


@pytest.fixture
def submit(engine: AsyncEngine, unit: str) -> Submit:
    """Deliver a submission through approval's handlers; returns the event."""

    async def make(full_name: str = "Tạp hóa Hải Yến", **fields: Any) -> Any:
        fields.setdefault("sales_unit_code", unit)
        fields.setdefault("province_code", token("P"))
        data = submission(full_name=full_name, **fields)
        await deliver(engine, data)
        return data

    return make
