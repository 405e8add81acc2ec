"""The AsyncAPI document of CONTRACT.md §8: generated from the models, valid AsyncAPI 3,
committed up to date, and served by every service."""

import json
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.events import asyncapi, topics
from shared.events.compat import breaking_changes
from shared.events.contracts import EVENT_TYPES, CustomerSubmittedV1, EventData, to_cloud_event
from tests.fixtures.apps import build_app

ROOT = Path(__file__).resolve().parents[3]
DOCUMENT = asyncapi.build_document()


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_the_document_is_valid_asyncapi_3() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the validator's own pydantic warnings
        from asyncapi3.models import AsyncAPI3

        parsed = AsyncAPI3.model_validate(DOCUMENT)
    assert parsed.asyncapi == "3.0.0"
    # That validator does not follow references: every one must point into the document.
    unresolved = []
    for ref in set(_refs(DOCUMENT)):
        try:
            _resolve(DOCUMENT, ref)
        except KeyError:
            unresolved.append(ref)
    assert unresolved == []


def test_every_topic_and_event_type_of_the_contract_is_there() -> None:
    addresses = {c["address"] for c in DOCUMENT["channels"].values()}
    assert addresses == set(topics.all_topics_with_dlq())
    names = {m["name"] for m in DOCUMENT["components"]["messages"].values()}
    assert names == set(EVENT_TYPES)
    for model in EVENT_TYPES.values():
        channel = next(c for c in DOCUMENT["channels"].values() if c["address"] == model.TOPIC)
        assert model.__name__ in channel["messages"]


def test_operations_name_who_publishes_and_who_consumes() -> None:
    ops = DOCUMENT["operations"]
    assert ops["customer-publish-customerEvents"]["action"] == "send"
    assert ops["misa_sync-consume-customerEvents"]["action"] == "receive"
    receivers = {k.split("-")[0] for k, v in ops.items() if v["action"] == "receive"}
    assert receivers == {"customer", "approval", "misa_sync"}


def test_consumers_match_what_the_services_subscribe_to(
    service_databases: dict[str, str], dev_keys: tuple[Path, Path]
) -> None:
    """topics.CONSUMERS documents the subscriptions; it must be what the apps really do."""
    subscribed: dict[str, set[str]] = {}
    for name in ("customer", "approval", "misa_sync", "reference"):
        app = build_app(name, service_databases[name], dev_keys[1])
        for topic in app.state.runtime.consumed_topics:
            subscribed.setdefault(topic, set()).add(name)
    assert subscribed == {topic: set(names) for topic, names in topics.CONSUMERS.items()}


def test_a_real_event_matches_its_schema() -> None:
    import jsonschema

    event = to_cloud_event(
        CustomerSubmittedV1(
            customer_id="6f1c6c1e-8a36-4d3c-9a1f-0c7f6b1f2a10",
            version=2,
            review_kind="new",
            submitted_by="NV001",
            submitted_at="2026-11-29T01:00:00+07:00",
            customer={"full_name": "Tạp hóa Minh Anh"},
        )
    )
    schema = asyncapi.event_schema(CustomerSubmittedV1)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
        event.data
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({**event.data, "review_kind": "other"})


def test_the_committed_copy_is_up_to_date() -> None:
    """CI fails here when a model changed and `python -m shared.events.asyncapi --write`
    was not run (it refuses breaking changes to a v1 event)."""
    assert asyncapi.main(["--docs", str(ROOT / "docs"), "--check"]) == 0


def test_check_reports_and_write_refreshes_a_stale_copy(tmp_path: Path) -> None:
    assert asyncapi.main(["--docs", str(tmp_path), "--check"]) == 1
    assert asyncapi.main(["--docs", str(tmp_path), "--write"]) == 0
    assert asyncapi.main(["--docs", str(tmp_path), "--check"]) == 0
    written = json.loads((tmp_path / "asyncapi.json").read_text())
    assert written == json.loads(asyncapi.render(DOCUMENT))


def test_write_refuses_a_breaking_change_to_a_published_event(tmp_path: Path) -> None:
    assert asyncapi.main(["--docs", str(tmp_path), "--write"]) == 0
    published = tmp_path / "events" / "ims.approval.CustomerApproved.v1.schema.json"
    schema = json.loads(published.read_text())
    schema["properties"]["legacy_field"] = {"type": "string"}  # as if the model lost it
    published.write_text(json.dumps(schema))
    assert asyncapi.main(["--docs", str(tmp_path), "--write"]) == 1
    assert "legacy_field" in published.read_text()  # nothing overwritten


async def test_every_service_serves_the_document(
    customer_api: httpx.AsyncClient,
    approval_api: httpx.AsyncClient,
    misa_sync_api: httpx.AsyncClient,
    reference_api: httpx.AsyncClient,
) -> None:
    for client in (customer_api, approval_api, misa_sync_api, reference_api):
        response = await client.get("/asyncapi.json")
        assert response.status_code == 200
        assert response.json() == json.loads(asyncapi.render(DOCUMENT))


@pytest.mark.parametrize("model", list(EVENT_TYPES.values()), ids=lambda m: m.TYPE)
def test_no_event_breaks_its_committed_schema(model: type[EventData]) -> None:
    """A clearer failure than 'out of date' when a v1 model changed incompatibly."""
    committed = json.loads((ROOT / "docs" / "events" / f"{model.TYPE}.schema.json").read_text())
    assert breaking_changes(committed, asyncapi.event_schema(model)) == []


def test_a_published_event_type_cannot_disappear(tmp_path: Path) -> None:
    assert asyncapi.main(["--docs", str(tmp_path), "--write"]) == 0
    gone = tmp_path / "events" / "ims.customer.CustomerRetired.v1.schema.json"
    gone.write_text("{}")  # as if its model had been deleted
    assert asyncapi.main(["--docs", str(tmp_path), "--check"]) == 1
    assert asyncapi.main(["--docs", str(tmp_path), "--write"]) == 1


def _published_versions(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every committed version of a schema file, from git (the clone CI runs in has it)."""
    relative = path.relative_to(ROOT).as_posix()
    log = subprocess.run(
        ["git", "log", "--format=%H", "--", relative], cwd=ROOT, capture_output=True, text=True
    )
    # Outside a git checkout (an unpacked archive) the committed copy is all there is.
    shas = log.stdout.split() if log.returncode == 0 else []
    versions = [("working tree", json.loads(path.read_text()))]
    for sha in shas:
        shown = subprocess.run(
            ["git", "show", f"{sha}:{relative}"], cwd=ROOT, capture_output=True, text=True
        )
        if shown.returncode == 0:  # absent at a commit that deleted it
            versions.append((sha[:10], json.loads(shown.stdout)))
    return versions


@pytest.mark.parametrize("model", list(EVENT_TYPES.values()), ids=lambda m: m.TYPE)
def test_no_event_breaks_any_version_ever_published(model: type[EventData]) -> None:
    """The committed copy could be edited together with the model; its history cannot."""
    path = ROOT / "docs" / "events" / f"{model.TYPE}.schema.json"
    current = asyncapi.event_schema(model)
    for sha, published in _published_versions(path):
        assert breaking_changes(published, current) == [], f"breaks the version of {sha}"


def test_shared_parts_are_lifted_once_with_their_references_pointed_at_components() -> None:
    part = {"type": "object", "properties": {"inner": {"$ref": "#/$defs/Inner"}}}
    inner = {"type": "object", "properties": {"x": {"type": "string"}}}

    def event() -> dict[str, Any]:  # each event's schema carries its own copy of the parts
        return {
            "properties": {"part": {"$ref": "#/$defs/Part"}},
            "$defs": {"Part": json.loads(json.dumps(part)), "Inner": dict(inner)},
        }

    components: dict[str, Any] = {}
    first = asyncapi._lift_definitions(event(), components)
    second = asyncapi._lift_definitions(event(), components)
    assert first == second == {"properties": {"part": {"$ref": "#/components/schemas/Part"}}}
    assert components["Part"]["properties"]["inner"] == {"$ref": "#/components/schemas/Inner"}
    clash = event()
    clash["$defs"]["Inner"] = {"type": "integer"}
    with pytest.raises(ValueError, match="two different schemas named Inner"):
        asyncapi._lift_definitions(clash, components)
