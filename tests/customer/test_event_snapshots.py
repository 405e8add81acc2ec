"""The customer in every customer event has the published shape (shared.events.snapshots).

Consumers read `customer` as a plain dict, so nothing at runtime would notice the customer
service sending another shape: these tests hold the producer to the schema other teams
build on, through every event a customer's life emits.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter, ValidationError

from customer.schemas import CustomerOut
from shared.events.contracts import ApprovalCustomerRejectedV1, MisaCustomerLinkedV1
from shared.events.snapshots import CustomerSnapshotV1
from tests.customer.test_addresses_and_codes import SPLIT
from tests.customer.test_api import complete_customer, create
from tests.customer.test_attachments import pdf_bytes, upload
from tests.customer.test_change_requests import Auth, approve, decide, events, fetch, patch

_SNAPSHOT = TypeAdapter(CustomerSnapshotV1)


def test_the_rest_model_has_exactly_the_snapshot_fields() -> None:
    rest = {*CustomerOut.model_fields, *CustomerOut.model_computed_fields}
    assert rest == set(CustomerSnapshotV1.model_fields)


def test_the_snapshot_schema_lists_every_field_as_optional() -> None:
    """The published v1 schemas left `customer` open; required fields would break them."""
    schema = CustomerSnapshotV1.model_json_schema()
    assert "required" not in schema
    assert set(schema["properties"]) == set(CustomerSnapshotV1.model_fields)


def test_a_snapshot_missing_a_field_or_with_a_wrong_type_is_refused() -> None:
    """What the producer test below relies on: the model is strict about what it lists."""
    nulls = dict.fromkeys(CustomerSnapshotV1.model_fields)
    with pytest.raises(ValidationError) as refused:
        _SNAPSHOT.validate_python({**nulls, "version": "two"})
    problems = {error["loc"][0] for error in refused.value.errors()}
    assert {"id", "status", "version", "full_name", "delivery_addresses"} <= problems
    assert "phone" not in problems  # nullable
    del nulls["warnings"]
    with pytest.raises(ValidationError) as missing:
        _SNAPSHOT.validate_python(nulls)
    assert any(e["loc"] == ("warnings",) and e["type"] == "missing" for e in missing.value.errors())


async def test_every_event_of_a_customers_life_carries_a_snapshot_of_the_published_shape(
    customer_api: httpx.AsyncClient, auth_header: Auth, service_databases: dict[str, str]
) -> None:
    database = service_databases["customer"]
    body = {
        **complete_customer(),
        # A legacy address split between 2025 wards: admin_2025 and a warning are sent.
        "admin_scheme": "legacy",
        "province_code": SPLIT.legacy_province_code,
        "district_code": SPLIT.legacy_district_code,
        "ward_code": SPLIT.legacy_ward_code,
        "company_name": "Công ty TNHH Minh Anh",
        "tax_code": "0314409058",
        "contact_name": "Chị Anh",
        "note": "Giao buổi sáng",
        "delivery_addresses": [
            {"label": "Kho", "address": "5 Lê Lợi", "province_code": "01", "is_default": True},
            {
                "address": "Kho cũ",
                "admin_scheme": "legacy",
                "province_code": SPLIT.legacy_province_code,
                "district_code": SPLIT.legacy_district_code,
                "ward_code": SPLIT.legacy_ward_code,
            },
        ],
        "invoice_profiles": [
            {
                "company_name": "Công ty TNHH Minh Anh",
                "tax_code": "0314409058-002",
                "email": "ketoan@example.vn",
                "is_default": True,
            }
        ],
    }
    customer = await create(customer_api, auth_header, **body)
    uploaded = await upload(customer_api, auth_header, customer, pdf_bytes())
    assert uploaded.status_code == 201, uploaded.text
    url = f"/api/v1/customers/{customer['id']}"
    submitted = await customer_api.post(f"{url}/submit", headers=auth_header("sales1"))
    assert submitted.status_code == 200, submitted.text
    # CS rejects once (the next submission carries the reason), then approves.
    await decide(
        database,
        ApprovalCustomerRejectedV1(
            review_id=uuid.uuid4(),
            customer_id=customer["id"],
            customer_version=2,
            reason="Thiếu giấy phép",
            rejected_by="NV020",
            rejected_at=datetime.now(UTC),
        ),
    )
    # No event carries a rejected customer (CustomerRejected has no snapshot): the REST
    # answer, which snapshots are made from, stands in for it.
    rejected = await fetch(customer_api, auth_header, customer["id"])
    assert rejected["rejection_reason"] == "Thiếu giấy phép"
    _SNAPSHOT.validate_python(rejected)
    again = await customer_api.post(f"{url}/submit", headers=auth_header("sales1"))
    assert again.status_code == 200, again.text
    await approve(
        database, {**customer, "customer_code": "KH900001"}, version=again.json()["version"]
    )
    await decide(
        database,
        MisaCustomerLinkedV1(
            customer_id=customer["id"],
            customer_code="KH900001",
            misa_code="KH900001",
            misa_account_object_id=str(uuid.uuid4()),
            created_in_misa=True,
            linked_at=datetime.now(UTC),
        ),
    )
    active = await fetch(customer_api, auth_header, customer["id"])
    assert active["status"] == "active" and active["misa_code"] == "KH900001", active
    # A governed change waits for CS (CustomerSubmitted with changes), then is approved.
    change = await patch(
        customer_api, auth_header, active, {"full_name": "Tạp hóa Minh Anh 2"}, active["version"]
    )
    assert change.status_code == 200, change.text
    await approve(database, active, version=change.json()["version"])
    for action in ("deactivate", "reactivate"):
        done = await customer_api.post(
            f"{url}/{action}", json={"reason": "Tạm ngừng"}, headers=auth_header("cs1")
        )
        assert done.status_code == 200, done.text

    emitted = [(kind, p) for kind, p in await events(database, customer["id"]) if "customer" in p]
    kinds = [kind for kind, _ in emitted]
    for kind in ("CustomerSubmitted", "CustomerActivated", "CustomerUpdated"):
        assert kind in kinds
    assert kinds[-2:] == ["CustomerDeactivated", "CustomerReactivated"]
    for kind, payload in emitted:
        snapshot: dict[str, Any] = payload["customer"]
        _SNAPSHOT.validate_python(snapshot)  # every listed field present and well typed
        assert snapshot["attachments"] and snapshot["delivery_addresses"], kind
        assert snapshot["invoice_profiles"] and snapshot["warnings"], kind
        assert snapshot["admin_2025"]["ambiguous"] is True, kind
    # Each field was checked with a real value somewhere, not only as null.
    seen = [payload["customer"] for _, payload in emitted] + [rejected]
    never = {
        name
        for name in CustomerSnapshotV1.model_fields
        if not any(snapshot[name] not in (None, [], {}) for snapshot in seen)
    }
    assert never == set()
