"""Optimistic concurrency over HTTP: `ETag: "<version>"` out, `If-Match` in.

428 when a change comes without If-Match; 412 when none of its tags is the current
version (`*` matches anything).
"""

import re

from shared.errors import ProblemError

_TAG = re.compile(r'^(?:W/)?"(\d{1,9})"$')


def etag(version: int) -> str:
    return f'"{version}"'


def if_match_versions(if_match: str | None) -> frozenset[int] | None:
    """The versions If-Match names, or None for `*`. Raises 428 when the header is absent."""
    if if_match is None:
        raise ProblemError(
            428,
            "Precondition Required",
            'Send If-Match: "<version>" with the ETag you last read.',
            "precondition-required",
        )
    tags = {tag.strip() for tag in if_match.split(",") if tag.strip()}
    if "*" in tags:
        return None
    return frozenset(int(m.group(1)) for tag in tags if (m := _TAG.match(tag)))


def ensure_current(expected: frozenset[int] | None, current: int, *, what: str) -> None:
    """412 unless the caller read the current version (None: `*`, anything goes)."""
    if expected is not None and current not in expected:
        raise ProblemError(
            412,
            "Precondition Failed",
            f"The {what} has changed since you read it (now version {current}).",
            "stale-version",
        )
