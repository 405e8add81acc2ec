"""Time as MISA writes it: Vietnamese wall-clock time (UTC+07:00) and .NET ticks.

MISA's servers answer in +07:00 (``"expired_time":"2025-11-11T11:25:17.251251+07:00"``,
MISA_API.md §3) and ``last_sync_time`` is a naive ``"2024-01-01 14:15:02"`` string, so the
simulator keeps every timestamp it shows in that zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

VN_TZ = timezone(timedelta(hours=7), "ICT")

#: .NET DateTime ticks count 100 ns intervals from 0001-01-01T00:00:00.
_TICKS_EPOCH = datetime(1, 1, 1)
_TICKS_PER_MICROSECOND = 10

LAST_SYNC_FORMAT = "%Y-%m-%d %H:%M:%S"


def now() -> datetime:
    return datetime.now(UTC).astimezone(VN_TZ)


def iso(moment: datetime) -> str:
    """ISO 8601 with microseconds and the +07:00 offset, as MISA's ``expired_time``."""
    return moment.astimezone(VN_TZ).isoformat(timespec="microseconds")


def dotnet_ticks(moment: datetime) -> int:
    """Ticks of the +07:00 wall-clock time, like ``DateTime.Now.Ticks`` on a VN server."""
    wall = moment.astimezone(VN_TZ).replace(tzinfo=None)
    delta = wall - _TICKS_EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return micros * _TICKS_PER_MICROSECOND


def format_last_sync(moment: datetime) -> str:
    """``LastSyncTime`` as MISA hands it back: naive +07:00 time, whole seconds."""
    return moment.astimezone(VN_TZ).strftime(LAST_SYNC_FORMAT)


def parse_timestamp(value: str) -> datetime:
    """Parse ``"2024-01-01 14:15:02"`` or any ISO 8601 form; naive means +07:00.

    Answers UTC. Raises ValueError on anything else, including a moment that cannot be
    expressed in UTC (``0001-01-01 00:00:00`` at +07:00), so comparisons never overflow.
    """
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=VN_TZ)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp out of range: {value!r}") from None
