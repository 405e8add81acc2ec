"""Honcho-style output: every line of every child prefixed with the child's name.

The word "ready" is reserved for the single line `ims up` prints once the whole stack
answers, so nothing else printed by ims itself contains it.
"""

import os
import sys
from collections.abc import Iterable
from typing import TextIO

IMS = "ims"

_COLOURS = (36, 33, 32, 35, 34, 96, 93, 92, 95, 94)


def _wants_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Console:
    """Prefixed, aligned lines on stdout (and ims's own errors on stderr)."""

    def __init__(
        self,
        names: Iterable[str] = (),
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
        colour: bool | None = None,
    ) -> None:
        self._out = out if out is not None else sys.stdout
        self._err = err if err is not None else sys.stderr
        self._colour = _wants_colour(self._out) if colour is None else colour
        self._width = len(IMS)
        self._colours: dict[str, int] = {}
        for name in names:
            self.register(name)

    def register(self, name: str) -> None:
        """Make room for `name` in the prefix column and give it a colour."""
        self._width = max(self._width, len(name))
        if name not in self._colours:
            self._colours[name] = _COLOURS[len(self._colours) % len(_COLOURS)]

    def _prefix(self, name: str, *, colour: bool = True) -> str:
        label = f"{name:<{self._width}} |"
        if not (colour and self._colour):
            return label
        return f"\x1b[{self._colours.get(name, 0)}m{label}\x1b[0m"

    def line(self, name: str, text: str) -> None:
        """One line of output of the child `name`."""
        self._write(self._out, f"{self._prefix(name)} {text}")

    def info(self, text: str) -> None:
        """A message of ims itself."""
        self.line(IMS, text)

    def error(self, text: str) -> None:
        """An error of ims itself, on stderr."""
        self._write(self._err, f"{self._prefix(IMS, colour=False)} error: {text}")

    def plain(self, text: str) -> None:
        """A line without prefix (the stack's ready line)."""
        self._write(self._out, text)

    @staticmethod
    def _write(stream: TextIO, text: str) -> None:
        try:
            stream.write(text + "\n")
            stream.flush()
        except (OSError, ValueError):
            # Nobody listens any more (closed pipe, terminal gone); keep supervising anyway.
            pass
