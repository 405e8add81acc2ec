"""What counts as a breaking change to a published (v1) event's schema."""

from typing import Any

import pytest

from shared.events.asyncapi import event_schema
from shared.events.compat import breaking_changes
from shared.events.contracts import EVENT_TYPES

BASE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": True,
    "properties": {
        "customer_id": {"type": "string", "format": "uuid", "title": "Customer Id"},
        "version": {"type": "integer"},
        "kind": {"enum": ["new", "change"], "type": "string"},
        "reason": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "customer": {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
        },
    },
    "required": ["customer_id", "version", "kind", "customer"],
}


def _with(change: dict[str, Any] | None = None, **props: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {**BASE, "properties": {**BASE["properties"], **props}}
    if change:
        schema.update(change)
    return schema


@pytest.mark.parametrize(
    ("name", "new"),
    [
        ("an optional field added", _with(note={"type": "string"})),
        (
            "words changed",
            _with(version={"type": "integer", "description": "The customer's version."}),
        ),
        ("a default changed", _with(reason={"anyOf": [{"type": "string"}, {"type": "null"}]})),
        (
            "a nested optional field added",
            _with(
                customer={
                    **BASE["properties"]["customer"],
                    "properties": {"name": {"type": "string"}, "alias": {"type": "string"}},
                }
            ),
        ),
    ],
)
def test_compatible_changes_pass(name: str, new: dict[str, Any]) -> None:
    assert breaking_changes(BASE, new) == [], name


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (
            {**BASE, "properties": {k: v for k, v in BASE["properties"].items() if k != "reason"}},
            "reason: removed",
        ),
        (_with({"required": [*BASE["required"], "reason"]}), "reason: now required"),
        (
            _with({"required": [*BASE["required"], "code"]}, code={"type": "string"}),
            "code: added as required",
        ),
        (_with(version={"type": "string"}), "version: 'type' changed"),
        (_with(customer_id={"type": "string"}), "customer_id: 'format' changed"),
        (_with(kind={"enum": ["new", "change", "merge"], "type": "string"}), "kind: 'enum'"),
        (_with(reason={"type": "string"}), "reason: 'anyOf' changed"),
        (_with({"additionalProperties": False}), "(the event): 'additionalProperties'"),
        (
            _with(customer={**BASE["properties"]["customer"], "required": ["name", "phone"]}),
            "customer.phone: added as required",
        ),
    ],
)
def test_breaking_changes_are_named(new: dict[str, Any], expected: str) -> None:
    problems = breaking_changes(BASE, new)
    assert any(p.startswith(expected) for p in problems), problems


def test_every_published_event_is_compatible_with_itself() -> None:
    for model in EVENT_TYPES.values():
        assert breaking_changes(event_schema(model), event_schema(model)) == []


NESTED: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "Snapshot": {
            "type": "object",
            "properties": {"description": {"type": "string"}, "phone": {"type": "string"}},
            "required": ["phone"],
        }
    },
    "properties": {"customer": {"$ref": "#/$defs/Snapshot"}},
    "required": ["customer"],
}


def _nested(**snapshot: Any) -> dict[str, Any]:
    return {**NESTED, "$defs": {"Snapshot": {**NESTED["$defs"]["Snapshot"], **snapshot}}}


def test_a_field_named_like_a_keyword_is_still_a_field() -> None:
    props = {"phone": {"type": "string"}}  # `description` removed
    assert breaking_changes(NESTED, _nested(properties=props)) == ["customer.description: removed"]
    props = {"description": {"type": "integer"}, "phone": {"type": "string"}}
    assert breaking_changes(NESTED, _nested(properties=props))


def test_references_are_followed_both_ways() -> None:
    props = {**NESTED["$defs"]["Snapshot"]["properties"], "alias": {"type": "string"}}
    assert breaking_changes(NESTED, _nested(properties=props)) == []
    assert breaking_changes(NESTED, _nested(required=[])) == [
        "customer.phone: no longer required (consumers rely on it)"
    ]


def test_a_field_that_stops_being_required_is_breaking() -> None:
    new = {**BASE, "required": [r for r in BASE["required"] if r != "version"]}
    assert breaking_changes(BASE, new) == ["version: no longer required (consumers rely on it)"]
