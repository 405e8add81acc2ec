"""Is a new JSON Schema of an event's `data` compatible with the published one?

A `v1` event only ever gains optional fields (CONTRACT.md §8): consumers already running
must read what new producers write, and new consumers must read every event still on the
topic (a replay starts at the beginning). So, field by field, recursively (through
`$ref`s, `items` and `anyOf`/`oneOf`/`allOf` branches):

- a field may be added if it is optional;
- a field may not be removed, become required or stop being required, or change its type,
  format, allowed values or anything else that constrains it; words (title, description,
  examples) and defaults may change.
"""

from collections.abc import Mapping
from typing import Any

#: Schema keywords that document without constraining (never property names: those live
#: inside a `properties` mapping and are walked as fields).
_WORDS = frozenset({"title", "description", "examples", "$comment", "$id", "$schema", "default"})
#: Keywords whose value is one schema or a list of schemas, walked rather than compared.
_SUBSCHEMA = ("items", "additionalProperties", "not", "contains", "propertyNames")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_WALKED = frozenset({"properties", "required", "$defs", "definitions", "$ref"})

Schema = Mapping[str, Any]


def _resolve(schema: Schema, root: Schema) -> Schema:
    """Follow a local `$ref` (#/$defs/X) to the schema it names, once or several times."""
    seen: set[str] = set()
    while isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/"):
        ref = schema["$ref"]
        if ref in seen:
            break  # a recursive model: compare the reference itself
        seen.add(ref)
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **siblings}
    return schema


def breaking_changes(
    old: Schema,
    new: Schema,
    path: str = "",
    *,
    old_root: Schema | None = None,
    new_root: Schema | None = None,
) -> list[str]:
    """What in `new` would break a consumer of `old`, one line each; [] when compatible."""
    old_root = old if old_root is None else old_root
    new_root = new if new_root is None else new_root
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    where = path.rstrip(".") or "(the event)"
    problems: list[str] = []

    def walk(a: Any, b: Any, sub: str) -> list[str]:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            return breaking_changes(a, b, sub, old_root=old_root, new_root=new_root)
        return [] if a == b else [f"{sub.rstrip('.')}: changed from {a!r} to {b!r}"]

    for key in sorted((set(old) | set(new)) - _WORDS - _WALKED):
        a, b = old.get(key), new.get(key)
        if key in _SUBSCHEMA and isinstance(a, Mapping) and isinstance(b, Mapping):
            problems += walk(a, b, f"{path}[{key}].")
        elif key in _SUBSCHEMA_LISTS and isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                problems.append(f"{where}: '{key}' now has {len(b)} branches, had {len(a)}")
            else:
                for i, (x, y) in enumerate(zip(a, b, strict=True)):
                    problems += walk(x, y, f"{path}[{key}{i}].")
        elif a != b:
            problems.append(f"{where}: '{key}' changed from {a!r} to {b!r}")

    old_props: Schema = old.get("properties") or {}
    new_props: Schema = new.get("properties") or {}
    for name in sorted(old_props):
        if name not in new_props:
            problems.append(f"{path}{name}: removed")
        else:
            problems += walk(old_props[name], new_props[name], f"{path}{name}.")
    old_required = set(old.get("required") or ())
    new_required = set(new.get("required") or ())
    for name in sorted(new_required - old_required):
        added = "added as required" if name not in old_props else "now required"
        problems.append(f"{path}{name}: {added}")
    for name in sorted(old_required - new_required):
        if name in new_props:  # a removed field is reported once, above
            problems.append(f"{path}{name}: no longer required (consumers rely on it)")
    return problems
