"""Is a new JSON Schema of an event's `data` compatible with the published one?

A `v1` event only ever gains optional fields (CONTRACT.md §8): consumers already running
must read what new producers write, and new consumers must read every event still on the
topic (a replay starts at the beginning). So, field by field, recursively:

- a field may be added if it is optional;
- a field may not be removed, become required, or change its type, format, allowed values
  or anything else that constrains it; words (title, description, examples) may change.
"""

from collections.abc import Mapping
from typing import Any

#: Keywords that document without constraining.
_WORDS = frozenset({"title", "description", "examples", "$comment", "$id", "$schema"})


def _constraints(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Everything that constrains a value, except the properties walked one by one."""
    return {
        key: _strip_words(value)
        for key, value in schema.items()
        if key not in _WORDS and key not in ("properties", "required", "default")
    }


def _strip_words(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_words(v) for k, v in value.items() if k not in _WORDS}
    if isinstance(value, list):
        return [_strip_words(v) for v in value]
    return value


def breaking_changes(old: Mapping[str, Any], new: Mapping[str, Any], path: str = "") -> list[str]:
    """What in `new` would break a consumer of `old`, one line each; [] when compatible."""
    problems: list[str] = []
    old_constraints, new_constraints = _constraints(old), _constraints(new)
    for key in sorted(set(old_constraints) | set(new_constraints)):
        if old_constraints.get(key) != new_constraints.get(key):
            where = path.rstrip(".") or "(the event)"
            problems.append(
                f"{where}: '{key}' changed from {old_constraints.get(key)!r} "
                f"to {new_constraints.get(key)!r}"
            )
    old_props: Mapping[str, Any] = old.get("properties") or {}
    new_props: Mapping[str, Any] = new.get("properties") or {}
    for name in sorted(old_props):
        if name not in new_props:
            problems.append(f"{path}{name}: removed")
        else:
            problems += breaking_changes(old_props[name], new_props[name], f"{path}{name}.")
    newly_required = set(new.get("required") or ()) - set(old.get("required") or ())
    for name in sorted(newly_required):
        added = "added as required" if name not in old_props else "now required"
        problems.append(f"{path}{name}: {added}")
    return problems
