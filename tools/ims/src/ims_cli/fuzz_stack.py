"""The four services for fuzzing: fresh migrated databases, apps in process, and a few
objects made the way production makes them, so generated requests reach past the 404.

Events are carried in process instead of through Kafka: each service's outbox rows are
applied with the consuming service's own handlers (what its consumer would do), so a
customer drafted and submitted here becomes a review, is approved, turns active and gets
a MISA link.
"""

import asyncio
import os
import random
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI

    from shared.messaging.consumer import Handler

SERVICES = ("customer", "approval", "misa_sync", "reference")
#: CONTRACT.md §2: one demo user per role.
ROLE_USERS: dict[str, str] = {
    "sales": "sales1",
    "manager": "manager1",
    "cs": "cs1",
    "accountant": "accountant1",
    "admin": "admin1",
}
#: Reference codes that exist in the seed (Hà Nội, TP. Hồ Chí Minh; a Hà Nội district).
_REFERENCE_CODES = ["01", "79", "001"]
_MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n"
    b"2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
)

Known = dict[str, list[str]]


@dataclass(slots=True)
class FuzzStack:
    apps: dict[str, "FastAPI"]
    tokens: dict[str, str]
    """username -> bearer token from the dev issuer."""
    known: dict[str, Known] = field(default_factory=dict)
    """service -> path parameter -> ids of objects that exist."""

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[ROLE_USERS[role]]}"}


async def prepare_databases(base: str, prefix: str) -> dict[str, str]:
    """A fresh database per service, migrated to head: {service: url}."""
    from ims_cli.bench_customer import recreate_database
    from shared.migrations import upgrade_to_head

    urls: dict[str, str] = {}
    for service in SERVICES:
        url = await recreate_database(base, f"{prefix}_{service}")
        # Alembic runs its own event loop: off this one.
        await asyncio.to_thread(upgrade_to_head, service, url)
        urls[service] = url
    return urls


def build_service_app(
    service: str, database_url: str, public_key: Path, blob_dir: Path, misa_url: str
) -> "FastAPI":
    """The service's real app, without workers and with an unreachable broker (the lifespan
    never runs; see fuzz_engine.WithoutLifespan)."""
    common: dict[str, Any] = {
        "database_url": database_url,
        "jwt_public_key_file": str(public_key),
        "run_workers": False,
        "kafka_bootstrap_servers": "127.0.0.1:1",
    }
    if service == "customer":
        from customer.app import create_app as customer_app
        from customer.settings import CustomerSettings

        return customer_app(CustomerSettings(**common, blob_dir=blob_dir))
    if service == "approval":
        from approval.app import create_app as approval_app
        from approval.settings import ApprovalSettings

        return approval_app(ApprovalSettings(**common))
    if service == "misa_sync":
        from misa_sync.app import create_app as misa_app
        from misa_sync.settings import MisaSyncSettings

        return misa_app(MisaSyncSettings(**common, misa_base_url=misa_url))
    from reference.app import create_app as reference_app
    from reference.settings import ReferenceSettings

    return reference_app(ReferenceSettings(**common))


def issue_tokens(private_key: Path) -> dict[str, str]:
    from shared.auth.dev_issuer import issue_token

    pem = private_key.read_bytes()
    return {user: issue_token(pem, username=user) for user in ROLE_USERS.values()}


def _handlers(apps: Mapping[str, "FastAPI"]) -> dict[str, dict[str, "Handler"]]:
    from approval.handlers import build_handlers as approval_handlers
    from customer.handlers import HANDLERS as customer_handlers
    from misa_sync.handlers import HANDLERS as misa_handlers

    return {
        "customer": customer_handlers,
        "approval": approval_handlers(apps["approval"].state.runtime.settings),
        "misa_sync": misa_handlers,
    }


async def _apply(url: str, handlers: Mapping[str, "Handler"], events: list[Any]) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
            for event in events:
                handler = handlers.get(event.type)
                if handler is not None:
                    await handler(session, event)
    finally:
        await engine.dispose()


async def _outbox_events(url: str) -> list[Any]:
    """Every event in a service's outbox, as its relay would publish it."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.events.envelope import CloudEvent

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT event_id, key, event_type, headers, payload FROM outbox ORDER BY id"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    return [
        CloudEvent(
            id=row.event_id,
            source=dict(row.headers).get("ce_source", "fuzz"),
            type=row.event_type,
            subject=row.key,
            data=row.payload,
        )
        for row in rows
    ]


async def _relay(urls: Mapping[str, str], source: str, handlers: dict[str, Any]) -> None:
    events = await _outbox_events(urls[source])
    for target, target_handlers in handlers.items():
        if target != source:
            await _apply(urls[target], target_handlers, events)


async def fill_reference_replicas(urls: Mapping[str, str], apps: Mapping[str, "FastAPI"]) -> None:
    """Customer's and approval's replicas of reference lists, from reference's seed."""
    from reference.seeding import item_view, list_item_values, list_seed
    from shared.events.contracts import ReferenceItemChangedV1, to_cloud_event

    events = [
        to_cloud_event(
            ReferenceItemChangedV1(
                list=name, code=row["code"], item=item_view(list_item_values(name, row))
            )
        )
        for name, rows in list_seed().items()
        for row in rows
    ]
    handlers = _handlers(apps)
    for service in ("customer", "approval"):
        await _apply(urls[service], handlers[service], events)


async def _call(
    client: "httpx.AsyncClient", method: str, path: str, token: str, **kwargs: Any
) -> dict[str, Any]:
    response = await client.request(
        method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
    )
    if response.status_code >= 300:
        raise RuntimeError(f"seeding: {method} {path} answered {response.status_code}")
    body: dict[str, Any] = response.json()
    return body


async def seed_objects(
    urls: Mapping[str, str], apps: Mapping[str, "FastAPI"], tokens: Mapping[str, str]
) -> dict[str, Known]:
    """Three customers of sales1 (a draft with an attachment, one pending, one approved and
    linked), their reviews and MISA link; returns their ids by path parameter name."""
    import httpx

    from ims_cli.bench_customer import draft_payload

    rng = random.Random(8)
    handlers = _handlers(apps)
    sales, cs = tokens["sales1"], tokens["cs1"]

    def client(service: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=apps[service])
        return httpx.AsyncClient(transport=transport, base_url="http://fuzz")

    async with client("customer") as api:
        made = [
            await _call(api, "POST", "/api/v1/customers", sales, json=draft_payload(rng, n))
            for n in range(3)
        ]
        ids = [c["id"] for c in made]
        attachment = await _call(
            api,
            "POST",
            f"/api/v1/customers/{ids[0]}/attachments",
            sales,
            files={"file": ("giay-phep.pdf", _MINIMAL_PDF, "application/pdf")},
            data={"kind": "business_license"},
        )
        for cid in ids[1:]:
            await _call(api, "POST", f"/api/v1/customers/{cid}/submit", sales)
    await _relay(urls, "customer", handlers)
    async with client("approval") as api:
        page = await _call(api, "GET", "/api/v1/reviews", cs, params={"status": "pending"})
        reviews = [r["id"] for r in page["items"]]
        await _call(api, "POST", f"/api/v1/reviews/{reviews[-1]}/approve", cs)
    await _relay(urls, "approval", handlers)
    await _relay(urls, "customer", handlers)  # the activation, for misa_sync
    for service in ("customer", "approval"):
        # The pools were filled on this event loop; the fuzzer runs on another.
        await apps[service].state.runtime.engine.dispose()
    return {
        "customer": {"customer_id": ids, "attachment_id": [attachment["id"]]},
        "approval": {"review_id": reviews},
        "misa_sync": {"customer_id": ids[1:]},
        "reference": {"code": _REFERENCE_CODES},
    }


async def build_stack(
    urls: Mapping[str, str], keys: tuple[Path, Path], blob_dir: Path, misa_url: str
) -> FuzzStack:
    """The four apps on `urls` (migrated), replicas filled and objects seeded; misa_sync
    talks to the MISA (simulator) at `misa_url`."""
    apps = {s: build_service_app(s, urls[s], keys[1], blob_dir, misa_url) for s in SERVICES}
    tokens = issue_tokens(keys[0])
    await fill_reference_replicas(urls, apps)
    known = await seed_objects(urls, apps, tokens)
    return FuzzStack(apps=apps, tokens=tokens, known=known)


def start_misa_simulator(
    folder: Path, timeout_s: float = 30.0
) -> tuple[str, "subprocess.Popen[bytes]"]:
    """`python -m misa_simulator` on a free port, its state and log in `folder`: without a
    MISA, misa_sync's reconciliation rightly answers 503, and the fuzzer sees only that."""
    import httpx

    from ims_cli.ports import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISA_SIM_")}
    env |= {
        "MISA_SIM_HOST": "127.0.0.1",
        "MISA_SIM_PORT": str(port),
        "MISA_SIM_STATE_FILE": str(folder / "misa-state.json"),
    }
    with (folder / "misa-simulator.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "misa_simulator"], env=env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return url, process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the MISA simulator did not start; see {folder / 'misa-simulator.log'}")
