"""The customer path driven against a running stack at an open-loop rate (issue 8).

Customers arrive on a schedule (customer i at t0 + i / rate), whatever became of the
earlier ones: each arrival creates a draft and submits it as `sales1` (REST, the
customer service). One watcher then follows every customer in flight:

- its review, as CS sees it: `GET /api/v1/reviews?status=pending` on the approval
  service (one listing per poll for all customers in flight, not one per customer);
- once seen, `cs1` approves it (`POST …/approve`);
- its status and MISA code in the customer service's database: one
  `SELECT … WHERE id = ANY(…)` per poll for all customers in flight, the rows its API
  serves (polling its API per customer would itself become the load).

The time a stage ends is when a poll first sees it, so each stage carries up to one poll
interval (`POLL_S`) of delay, the same for every rate.
"""

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from ims_cli.bench_customer import draft_payload
from ims_cli.paths import dev_issuer_dir
from ims_cli.stack_config import StackConfig
from shared.auth.dev_issuer import issue_token
from shared.db import asyncpg_dsn

POLL_S = 0.05
#: Reviews listed per page (the API's maximum).
_PAGE = 200
#: Pages of pending reviews read per poll (other pending reviews may precede ours).
_MAX_PAGES = 20
SALES_USER, CS_USER = "sales1", "cs1"


@dataclass(slots=True)
class Trace:
    """One customer's way through the stack (time.monotonic() seconds)."""

    index: int
    scheduled: float
    started: float = 0.0
    customer_id: str | None = None
    submitted: float | None = None
    review_id: str | None = None
    review_seen: float | None = None
    approved: float | None = None
    active: float | None = None
    linked: float | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.error is not None or self.linked is not None


@dataclass(frozen=True, slots=True)
class Target:
    """Where the stack answers, and how to act as its users."""

    customer_url: str
    approval_url: str
    customer_dsn: str
    bootstrap_servers: str
    partitions: int
    issuer_key: bytes

    @classmethod
    def of(cls, config: StackConfig) -> "Target":
        services = {s.name: s for s in config.services}
        key = (dev_issuer_dir(config.data_dir) / "private.pem").read_bytes()
        return cls(
            customer_url=config.service_url(services["customer"]),
            approval_url=config.service_url(services["approval"]),
            customer_dsn=asyncpg_dsn(config.database_url(services["customer"].database)),
            bootstrap_servers=config.kafka_bootstrap_servers,
            partitions=config.kafka_partitions,
            issuer_key=key,
        )

    def auth(self, username: str) -> dict[str, str]:
        token = issue_token(self.issuer_key, username=username, ttl_seconds=6 * 3600)
        return {"Authorization": f"Bearer {token}"}


class DriveError(Exception):
    pass


@dataclass
class Drive:
    """Customers sent at `rate` per second; `traces` fill in as they move."""

    target: Target
    rate: float
    count: int
    #: Give up on a customer this long after the last arrival.
    timeout_s: float = 120.0
    #: Stop following once every customer is active (not waiting for the MISA link).
    until: str = "linked"
    seed: int = 0
    traces: list[Trace] = field(default_factory=list)
    #: Milliseconds between one look and the next, per loop ("reviews", "customers"): the
    #: resolution of the stage ends (POLL_S plus the look itself).
    poll_ms: dict[str, list[float]] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    async def run(self) -> list[Trace]:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        sales, cs = self.target.auth(SALES_USER), self.target.auth(CS_USER)
        rng = random.Random(self.seed)
        async with (
            httpx.AsyncClient(limits=limits, timeout=60.0) as client,
            _connect(self.target.customer_dsn) as db,
        ):
            t0 = time.monotonic() + 0.2
            self.traces = [Trace(i, t0 + i / self.rate) for i in range(self.count)]
            tasks: set[asyncio.Task[None]] = set()
            watcher = asyncio.create_task(self._watch(client, db, cs, tasks))
            try:
                for trace in self.traces:
                    await asyncio.sleep(max(0.0, trace.scheduled - time.monotonic()))
                    payload = draft_payload(rng, trace.index)
                    payload["full_name"] = f"{payload['full_name']} B{self.run_id}"
                    task = asyncio.create_task(self._create_submit(client, sales, trace, payload))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                await watcher
            finally:
                watcher.cancel()
                for task in list(tasks):
                    task.cancel()
                await asyncio.gather(watcher, *tasks, return_exceptions=True)
        return self.traces

    async def _create_submit(
        self, client: httpx.AsyncClient, auth: dict[str, str], trace: Trace, payload: dict[str, Any]
    ) -> None:
        trace.started = time.monotonic()
        try:
            created = await client.post(
                f"{self.target.customer_url}/api/v1/customers", json=payload, headers=auth
            )
            if created.status_code != 201:
                raise DriveError(f"create answered {created.status_code}: {created.text[:200]}")
            cid = created.json()["id"]
            submitted = await client.post(
                f"{self.target.customer_url}/api/v1/customers/{cid}/submit", headers=auth
            )
            if submitted.status_code != 200:
                raise DriveError(f"submit answered {submitted.status_code}: {submitted.text[:200]}")
            trace.customer_id = cid
            trace.submitted = time.monotonic()
        except (httpx.HTTPError, DriveError) as exc:
            trace.error = f"create/submit: {exc}"

    async def _approve(self, client: httpx.AsyncClient, auth: dict[str, str], trace: Trace) -> None:
        try:
            answer = await client.post(
                f"{self.target.approval_url}/api/v1/reviews/{trace.review_id}/approve",
                headers=auth,
            )
            if answer.status_code != 200:
                raise DriveError(f"approve answered {answer.status_code}: {answer.text[:200]}")
            trace.approved = time.monotonic()
        except (httpx.HTTPError, DriveError) as exc:
            trace.error = f"approve: {exc}"

    def _done(self, trace: Trace) -> bool:
        if trace.error is not None:
            return True
        return trace.active is not None if self.until == "active" else trace.linked is not None

    async def _watch(
        self,
        client: httpx.AsyncClient,
        db: asyncpg.Connection,
        cs: dict[str, str],
        tasks: set[asyncio.Task[None]],
    ) -> None:
        """Two loops side by side, so that a slow listing never delays the other's view."""
        deadline = self.traces[-1].scheduled + self.timeout_s if self.traces else 0.0
        await asyncio.gather(
            self._poll("reviews", deadline, lambda: self._see_reviews(client, cs, tasks)),
            self._poll("customers", deadline, lambda: self._see_customers(db)),
        )
        for t in self.traces:
            if not self._done(t):
                t.error = f"timed out ({self._stage(t)})"

    def _all_done(self) -> bool:
        return all(t.started for t in self.traces) and all(self._done(t) for t in self.traces)

    async def _poll(self, name: str, deadline: float, look: Callable[[], Awaitable[None]]) -> None:
        periods = self.poll_ms.setdefault(name, [])
        last = time.monotonic()
        while not self._all_done() and time.monotonic() <= deadline:
            await asyncio.sleep(POLL_S)
            await look()
            now = time.monotonic()
            periods.append((now - last) * 1000)
            last = now

    async def _see_reviews(
        self, client: httpx.AsyncClient, cs: dict[str, str], tasks: set[asyncio.Task[None]]
    ) -> None:
        waiting = {
            t.customer_id: t
            for t in self.traces
            if t.submitted is not None and t.review_seen is None and t.error is None
        }
        if not waiting:
            return
        for review in await self._pending_reviews(client, cs, set(waiting)):
            trace = waiting.pop(review["customer_id"], None)
            if trace is None:
                continue
            trace.review_seen = time.monotonic()
            trace.review_id = review["id"]
            task = asyncio.create_task(self._approve(client, cs, trace))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    @staticmethod
    def _stage(t: Trace) -> str:
        if t.submitted is None:
            return "create/submit"
        if t.review_seen is None:
            return "no review"
        if t.approved is None:
            return "approve"
        return "not active" if t.active is None else "not linked"

    async def _pending_reviews(
        self, client: httpx.AsyncClient, cs: dict[str, str], wanted: set[str | None]
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            params: dict[str, str | int] = {"status": "pending", "limit": _PAGE}
            if cursor:
                params["cursor"] = cursor
            try:
                page = await client.get(
                    f"{self.target.approval_url}/api/v1/reviews", params=params, headers=cs
                )
            except httpx.HTTPError:
                return found  # the next poll asks again
            if page.status_code != 200:
                return found
            body = page.json()
            found += [r for r in body["items"] if r["customer_id"] in wanted]
            cursor = body.get("next_cursor")
            if not cursor or len(found) == len(wanted):
                return found
        return found

    async def _see_customers(self, db: asyncpg.Connection) -> None:
        waiting = [t for t in self.traces if t.review_seen is not None and not self._done(t)]
        if not waiting:
            return
        rows = await db.fetch(
            "SELECT id::text AS id, status, misa_code FROM customers WHERE id = ANY($1::uuid[])",
            [t.customer_id for t in waiting],
        )
        now = time.monotonic()
        by_id = {t.customer_id: t for t in waiting}
        for row in rows:
            trace = by_id[row["id"]]
            if trace.approved is None:
                continue  # the approval's answer is still on its way
            if trace.active is None and row["status"] == "active":
                trace.active = now
            if trace.linked is None and row["misa_code"]:
                trace.active = trace.active or now
                trace.linked = now


class _connect:
    """`async with _connect(dsn) as conn`: one asyncpg connection."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        self._conn = await asyncpg.connect(self._dsn)
        return self._conn

    async def __aexit__(self, *_: object) -> None:
        if self._conn is not None:
            await self._conn.close()


async def drive(
    target: Target,
    *,
    rate: float,
    count: int,
    timeout_s: float = 120.0,
    until: str = "linked",
    seed: int = 0,
) -> list[Trace]:
    """Send `count` customers at `rate` per second and follow them (see the module)."""
    return (
        await run_drive(target, rate=rate, count=count, timeout_s=timeout_s, until=until, seed=seed)
    ).traces


async def run_drive(
    target: Target,
    *,
    rate: float,
    count: int,
    timeout_s: float = 120.0,
    until: str = "linked",
    seed: int = 0,
) -> Drive:
    """`drive`, returning the whole `Drive` (its traces and its polls' periods)."""
    if rate <= 0 or count <= 0:
        raise ValueError("rate and count must be positive")
    run = Drive(target, rate, count, timeout_s=timeout_s, until=until, seed=seed)
    await run.run()
    return run


async def drive_for(target: Target, *, rate: float, seconds: float, seed: int = 0) -> int:
    """Keep customers arriving at `rate` for `seconds` (the soak's load), in chunks of
    about 30 s so that nothing grows with the duration; returns how many reached MISA."""
    linked = 0
    chunk_s = min(30.0, seconds)
    ends = time.monotonic() + seconds
    for part in itertools.count():
        left = ends - time.monotonic()
        if left <= 1.0:
            return linked
        count = max(1, int(min(chunk_s, left) * rate))
        traces = await drive(target, rate=rate, count=count, seed=seed + part, timeout_s=60.0)
        linked += sum(t.linked is not None for t in traces)
    return linked
