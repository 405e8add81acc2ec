"""The AsyncAPI 3 document of CONTRACT.md §8, generated from the event models.

Nothing here is written by hand that the models already say: each message's payload is
its pydantic model's JSON Schema (what `model_dump(mode="json")` puts on the wire), its
name is the `ce_type`, its channel the model's topic. The document is committed
(`docs/asyncapi.json`, one JSON Schema per event beside it) and served by every service
at `/asyncapi.json`; `python -m shared.events.asyncapi --check` fails when the committed
copy is out of date, `--write` refreshes it (refusing a breaking change to a `v1` event,
see shared.events.compat).
"""

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.events import topics
from shared.events.contracts import EVENT_TYPES, EventData
from shared.logging import CORRELATION_HEADER

ASYNCAPI_VERSION = "3.0.0"
#: The document's own version: the contract's major version (topics end in `.v1`).
CONTRACT_VERSION = "1.0.0"

#: Who publishes each topic (the service that owns the aggregate).
PRODUCERS: Mapping[str, str] = {
    topics.CUSTOMER_EVENTS: "customer",
    topics.APPROVAL_EVENTS: "approval",
    topics.MISA_EVENTS: "misa_sync",
    topics.REFERENCE_EVENTS: "reference",
}

_CHANNEL_IDS: Mapping[str, str] = {
    topics.CUSTOMER_EVENTS: "customerEvents",
    topics.APPROVAL_EVENTS: "approvalEvents",
    topics.MISA_EVENTS: "misaEvents",
    topics.REFERENCE_EVENTS: "referenceEvents",
}

_KEY_DESCRIPTIONS: Mapping[str, str] = {
    topics.REFERENCE_EVENTS: "`<list>/<code>` of the item (equals `ce_subject`).",
}
_CUSTOMER_KEY = "The customer id (equals `ce_subject`), so one customer's events stay in order."

_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 in Kafka binary mode: the attributes as `ce_*` headers.",
    "required": [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_subject",
        "content-type",
    ],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "format": "uuid", "description": "Unique per event."},
        "ce_source": {
            "type": "string",
            "enum": ["/ims/customer", "/ims/approval", "/ims/misa-sync", "/ims/reference"],
        },
        "ce_type": {"type": "string", "description": "The message's name."},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string", "description": "The aggregate id (the Kafka key)."},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {"type": "string", "description": "W3C trace context, when there is one."},
        CORRELATION_HEADER: {"type": "string", "description": "The request's correlation id."},
    },
}
_DLQ_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": (
        "The original record's headers (whatever they were), plus why and where it failed."
    ),
    "required": ["x-error", "x-original-topic", "x-consumer"],
    "properties": {
        "x-error": {"type": "string", "description": "Why the consumer could not apply it."},
        "x-original-topic": {"type": "string"},
        "x-original-partition": {"type": "string"},
        "x-original-offset": {"type": "string"},
        "x-attempts": {"type": "string"},
        "x-consumer": {"type": "string", "description": "The consumer group that gave up."},
    },
}


def message_id(model: type[EventData]) -> str:
    """`CustomerSubmittedV1`: the model's name, unique across topics."""
    return model.__name__


def event_schema(model: type[EventData]) -> dict[str, Any]:
    """The JSON Schema of one event's `data` as it travels (serialisation mode)."""
    schema = model.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"urn:ims:event:{model.TYPE}"
    schema["x-ce-type"] = model.TYPE
    schema["x-topic"] = model.TOPIC
    if model.__doc__:
        schema["description"] = " ".join(model.__doc__.split())
    return schema


def _topic_models(topic: str) -> list[type[EventData]]:
    return [m for m in EVENT_TYPES.values() if topic == m.TOPIC]


def _message(model: type[EventData]) -> dict[str, Any]:
    key = _KEY_DESCRIPTIONS.get(model.TOPIC, _CUSTOMER_KEY)
    return {
        "name": model.TYPE,
        "title": model.TYPE,
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
        "payload": {"$ref": f"#/components/schemas/{message_id(model)}"},
        "bindings": {"kafka": {"key": {"type": "string", "description": key}}},
    }


def _lift_definitions(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """Move a schema's `$defs` (e.g. the customer snapshot's parts) into the document's
    components, pointing its references there: `#/$defs/X` would resolve against the
    document's root, not the schema's."""
    for name, definition in schema.pop("$defs", {}).items():
        if components.setdefault(name, _pointed(definition)) != _pointed(definition):
            raise ValueError(f"two different schemas named {name}")
    lifted: dict[str, Any] = _pointed(schema)
    return lifted


def _pointed(node: Any) -> Any:
    """`node` with its `#/$defs/…` references pointing at the components instead."""
    if isinstance(node, dict):
        return {
            key: (
                value.replace("#/$defs/", "#/components/schemas/", 1)
                if key == "$ref" and isinstance(value, str)
                else _pointed(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_pointed(item) for item in node]
    return node


def build_document(consumers: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """The whole AsyncAPI 3 document, deterministic (sorted) so it can be committed."""
    consumers = topics.CONSUMERS if consumers is None else consumers
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {
        "CloudEventHeaders": _HEADERS,
        "DeadLetterHeaders": _DLQ_HEADERS,
    }
    for topic in topics.ALL_TOPICS:
        channel = _CHANNEL_IDS[topic]
        models = _topic_models(topic)
        refs = {message_id(m): {"$ref": f"#/components/messages/{message_id(m)}"} for m in models}
        for m in models:
            messages[message_id(m)] = _message(m)
            schema = event_schema(m)
            schema.pop("$schema")  # components share the document's dialect
            schemas[message_id(m)] = _lift_definitions(schema, schemas)
        channels[channel] = {
            "address": topic,
            "title": topic,
            "description": f"Published by the {PRODUCERS[topic]} service; keyed by aggregate id.",
            "messages": refs,
        }
        dlq_id = f"{channel}DeadLetters"
        dlq_refs = {
            f"{name}DeadLetter": {"$ref": f"#/components/messages/{name}DeadLetter"}
            for name in refs
        }
        for m in models:
            messages[f"{message_id(m)}DeadLetter"] = {
                **_message(m),
                "title": f"{m.TYPE} (dead-lettered)",
                "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
                "payload": {"description": "The original value, as it was (may be malformed)."},
            }
        channels[dlq_id] = {
            "address": topics.dlq(topic),
            "title": topics.dlq(topic),
            "description": "Records a consumer of the topic could not apply, with x-error.",
            "messages": dlq_refs,
        }
        producer = PRODUCERS[topic]
        operations[f"{producer}-publish-{channel}"] = {
            "action": "send",
            "summary": f"The {producer} service publishes from its outbox.",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{n}"} for n in refs],
        }
        for consumer in consumers.get(topic, ()):
            operations[f"{consumer}-consume-{channel}"] = {
                "action": "receive",
                "summary": (
                    f"The {consumer} service applies these once each (inbox), skips unknown "
                    "types and customer events older than what it has."
                ),
                "channel": {"$ref": f"#/channels/{channel}"},
                "messages": [{"$ref": f"#/channels/{channel}/messages/{n}"} for n in refs],
                "bindings": {"kafka": {"groupId": {"type": "string", "const": consumer}}},
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:ims:customer-master-data:events",
        "info": {
            "title": "IMS customer master data: events",
            "version": CONTRACT_VERSION,
            "description": (
                "Kafka topics of CONTRACT.md §8. Values are the event's `data` as JSON; "
                "CloudEvents 1.0 attributes travel as `ce_*` headers. Consumers tolerate "
                "duplicates and unknown `ce_type`s; a `v1` event only ever gains optional "
                "fields. Generated from shared.events.contracts."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {
                "host": "kafka:9092",
                "protocol": "kafka",
                "description": "Apache Kafka (deploy/); locally Tansu started by `ims up`.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def committed_files(docs: Path) -> dict[Path, str]:
    """Every generated file and its content: the document and one schema per event."""
    files = {docs / "asyncapi.json": render(build_document())}
    for model in EVENT_TYPES.values():
        files[docs / "events" / f"{model.TYPE}.schema.json"] = render(event_schema(model))
    return files


def main(argv: list[str] | None = None) -> int:
    from shared.events.compat import breaking_changes

    parser = argparse.ArgumentParser(
        prog="python -m shared.events.asyncapi",
        description="Check or refresh the committed AsyncAPI document and event schemas.",
    )
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="default: ./docs")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if anything is out of date")
    mode.add_argument("--write", action="store_true", help="write what is out of date")
    args = parser.parse_args(argv)
    files = committed_files(args.docs)
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    # A published event type never disappears: its consumers may still be reading it.
    removed = sorted(set((args.docs / "events").glob("*.schema.json")) - set(files))
    for path in removed:
        print(f"refused: {path.name} is published but no model defines it any more")
    if args.check:
        for path in stale:
            print(f"out of date: {path} (run python -m shared.events.asyncapi --write)")
        return 1 if stale or removed else 0
    if removed:
        return 1
    refused = []
    for path in stale:
        if path.exists() and path.name.endswith(".schema.json"):
            old, new = json.loads(path.read_text()), json.loads(files[path])
            refused += [f"{path.name}: {problem}" for problem in breaking_changes(old, new)]
    if refused:
        print("refused: a published event may only gain optional fields; make a new version")
        print("\n".join(f"  {line}" for line in refused))
        return 1
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
