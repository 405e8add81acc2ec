"""Reviews: created from submissions, decided by CS, codes unique under concurrency."""

import asyncio
import re
import uuid

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from approval.settings import ApprovalSettings
from tests.approval.helpers import Auth, deliver, review_of, submission
from tests.fixtures.openapi import assert_documented_problem, problem_statuses


async def test_a_submission_becomes_a_pending_review_once(
    approval_api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    engine = create_async_engine(service_databases["approval"])
    data = submission()
    await deliver(engine, data)
    await deliver(engine, data)  # redelivered: no second review
    review = await review_of(approval_api, auth_header, data.customer_id)
    assert review["kind"] == "new" and review["customer"]["full_name"] == "Tạp hóa Hải Yến"
    async with engine.connect() as conn:
        n = await conn.scalar(
            text("SELECT count(*) FROM reviews WHERE customer_id = :c"), {"c": data.customer_id}
        )
    assert n == 1
    await engine.dispose()


async def test_approve_assigns_a_code_and_records_the_event(
    approval_api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    engine = create_async_engine(service_databases["approval"])
    data = submission()
    await deliver(engine, data)
    review = await review_of(approval_api, auth_header, data.customer_id)
    response = await approval_api.post(
        f"/api/v1/reviews/{review['id']}/approve", headers=auth_header("cs1")
    )
    assert response.status_code == 200, response.text
    code = response.json()["customer_code"]
    assert re.fullmatch(r"KH\d{6}", code)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT event_type, payload FROM outbox WHERE key = :k"),
                {"k": str(data.customer_id)},
            )
        ).one()
    assert row.event_type == "ims.approval.CustomerApproved.v1"
    assert row.payload["customer_code"] == code and row.payload["customer_version"] == 2
    again = await approval_api.post(
        f"/api/v1/reviews/{review['id']}/approve", headers=auth_header("cs1")
    )
    assert again.status_code == 409
    reject = await approval_api.post(
        f"/api/v1/reviews/{review['id']}/reject", json={"reason": "x"}, headers=auth_header("cs1")
    )
    assert reject.status_code == 409
    await engine.dispose()


async def test_four_eyes_whoever_submitted_may_not_decide(
    approval_api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    engine = create_async_engine(service_databases["approval"])
    data = submission(by="NV020")  # cs1 submitted it (e.g. on behalf of a salesperson)
    await deliver(engine, data)
    review = await review_of(approval_api, auth_header, data.customer_id)
    own = await approval_api.post(
        f"/api/v1/reviews/{review['id']}/approve", headers=auth_header("cs1")
    )
    assert own.status_code == 403
    other = await approval_api.post(
        f"/api/v1/reviews/{review['id']}/approve", headers=auth_header("cs2")
    )
    assert other.status_code == 200
    await engine.dispose()


async def test_roles_and_bad_input(
    approval_api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    engine = create_async_engine(service_databases["approval"])
    data = submission()
    await deliver(engine, data)
    review = await review_of(approval_api, auth_header, data.customer_id)
    url = f"/api/v1/reviews/{review['id']}"
    assert (await approval_api.post(f"{url}/approve")).status_code == 401
    assert (
        await approval_api.post(f"{url}/approve", headers=auth_header("sales1"))
    ).status_code == 403
    assert (
        await approval_api.get("/api/v1/reviews", headers=auth_header("sales1"))
    ).status_code == 403
    no_reason = await approval_api.post(
        f"{url}/reject", json={"reason": "   "}, headers=auth_header("cs1")
    )
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    missing = await approval_api.post(f"{url}/reject", json={}, headers=auth_header("cs1"))
    assert missing.status_code == 422
    unknown = await approval_api.post(
        f"/api/v1/reviews/{uuid.uuid4()}/approve", headers=auth_header("cs1")
    )
    assert unknown.status_code == 404
    rejected = await approval_api.post(
        f"{url}/reject",
        json={"reason": "Sai mã số thuế", "reason_code": "invalid_tax_code"},
        headers=auth_header("cs1"),
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    await engine.dispose()


async def test_a_resubmission_supersedes_the_pending_review(
    approval_api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    engine = create_async_engine(service_databases["approval"])
    cid = uuid.uuid4()
    await deliver(engine, submission(cid, version=2))
    old = await review_of(approval_api, auth_header, cid)
    await deliver(engine, submission(cid, version=4))
    new = await review_of(approval_api, auth_header, cid)
    assert new["customer_version"] == 4
    stale = await approval_api.post(
        f"/api/v1/reviews/{old['id']}/approve", headers=auth_header("cs1")
    )
    assert stale.status_code == 409
    await deliver(engine, submission(cid, version=2))  # an old redelivery changes nothing
    assert (await review_of(approval_api, auth_header, cid))["id"] == new["id"]
    await engine.dispose()


async def test_concurrent_approvals_never_share_a_code(
    approval_api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    engine = create_async_engine(service_databases["approval"])
    ids = []
    for _ in range(12):
        data = submission()
        await deliver(engine, data)
        ids.append((await review_of(approval_api, auth_header, data.customer_id))["id"])
    responses = await asyncio.gather(
        *(
            approval_api.post(f"/api/v1/reviews/{rid}/approve", headers=auth_header("cs1"))
            for rid in ids
        )
    )
    codes = [r.json()["customer_code"] for r in responses]
    assert all(r.status_code == 200 for r in responses)
    assert len(set(codes)) == 12
    async with engine.connect() as conn:
        total = await conn.scalar(select(func.count()).select_from(text("customer_codes")))
        distinct = await conn.scalar(text("SELECT count(DISTINCT code) FROM customer_codes"))
    assert total == distinct
    await engine.dispose()


async def test_a_change_review_keeps_the_customers_code(
    approval_api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    engine = create_async_engine(service_databases["approval"])
    cid = uuid.uuid4()
    await deliver(engine, submission(cid, version=2))
    first = await review_of(approval_api, auth_header, cid)
    code = (
        await approval_api.post(
            f"/api/v1/reviews/{first['id']}/approve", headers=auth_header("cs1")
        )
    ).json()["customer_code"]
    change = submission(cid, version=5).model_copy(update={"review_kind": "change"})
    await deliver(engine, change)
    review = await review_of(approval_api, auth_header, cid)
    assert review["kind"] == "change"
    approved = await approval_api.post(
        f"/api/v1/reviews/{review['id']}/approve", headers=auth_header("cs1")
    )
    assert approved.status_code == 200 and approved.json()["customer_code"] == code
    await engine.dispose()


async def test_a_decision_taken_while_a_session_held_the_review_is_seen(
    service_databases: dict[str, str],
) -> None:
    """A page loads the review, someone else decides meanwhile, then this session decides:
    the lock must read the row as it now is (409), not the copy the session loaded."""
    from approval.models import Review, messaging
    from approval.service import ReviewService
    from shared.auth.principal import Principal
    from shared.errors import ProblemError

    engine = create_async_engine(service_databases["approval"])
    data = submission()
    await deliver(engine, data)
    settings = ApprovalSettings()
    cs1 = Principal("NV020", "cs1", frozenset({"cs"}), None)
    cs2 = Principal("NV021", "cs2", frozenset({"cs"}), None)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as slow, slow.begin():
            shown = await slow.scalar(select(Review).where(Review.customer_id == data.customer_id))
            assert shown is not None and shown.status == "pending"
            async with AsyncSession(engine, expire_on_commit=False) as fast, fast.begin():
                await ReviewService(fast, settings).reject(cs2, shown.id, reason="Thiếu giấy tờ")
            with pytest.raises(ProblemError) as refused:
                await ReviewService(slow, settings).approve(cs1, shown.id)
            assert refused.value.status == 409
        async with AsyncSession(engine) as check:
            outbox = messaging.outbox
            events = await check.scalar(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.key == str(data.customer_id))
            )
            assert events == 1  # the rejection only; no approval, no code
    finally:
        await engine.dispose()


async def test_error_answers_are_documented_problems(
    approval_api: httpx.AsyncClient, auth_header: Auth
) -> None:
    """Found by the fuzzer (issue 8): 403 (every route is CS-only), 404 and 409 were answered
    but missing from the OpenAPI document; 422 was documented as FastAPI's JSON."""
    document = (await approval_api.get("/openapi.json")).json()
    approve = "/api/v1/reviews/{review_id}/approve"
    assert problem_statuses(document, "POST", approve) == {400, 401, 403, 404, 409, 422, 503}
    missing = f"/api/v1/reviews/{uuid.uuid4()}/approve"
    answers = [
        await approval_api.post(missing, headers=auth_header("sales1")),
        await approval_api.post(missing, headers=auth_header("cs1")),
        await approval_api.post("/api/v1/reviews/x/approve", headers=auth_header("cs1")),
    ]
    assert [a.status_code for a in answers] == [403, 404, 422]
    for answer in answers:
        assert_documented_problem(document, "POST", approve, answer)
