"""One-shot messages shown on the next page (after a redirect), in a signed cookie.

A flash holds a catalog key and its parameters, not text: it is translated when shown,
in the language of that page.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

from shared.ui.security import decode_signed, encode_signed

Level = Literal["info", "success", "warning", "error"]
PURPOSE = "flash"


@dataclass(frozen=True)
class Flash:
    level: Level
    key: str
    params: dict[str, Any] = field(default_factory=dict)


def encode_flashes(secret: str, flashes: list[Flash]) -> str:
    return encode_signed(secret, PURPOSE, [[f.level, f.key, f.params] for f in flashes])


def decode_flashes(secret: str, value: str | None) -> list[Flash]:
    """The flashes of a cookie we signed; anything else is ignored."""
    items = decode_signed(secret, PURPOSE, value)
    if not isinstance(items, list):
        return []
    try:
        return [Flash(level, str(key), dict(params)) for level, key, params in items]
    except (ValueError, TypeError):
        return []
