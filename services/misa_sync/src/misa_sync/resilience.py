"""Protection around a remote API: retry back-off, a token-bucket rate limit, a breaker.

Nothing here knows about MISA or HTTP. The state is plain attributes changed without an
``await`` in between, so one instance can be shared by every task of the process (and
even across event loops, as tests do) without a lock.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded attempts per call, exponential back-off with full jitter.

    A server-given wait (``Retry-After``) longer than ``max_delay_s`` is not slept inside
    the call: the error goes to the caller, who can schedule the work for later instead
    of holding a worker.
    """

    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("delays must be >= 0")

    def backoff_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**(attempt-1))] after ``attempt``."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** max(attempt - 1, 0))
        return (rng or random).uniform(0.0, ceiling)

    def delay_s(
        self, attempt: int, retry_after_s: float | None, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when the call should give up."""
        if attempt >= self.max_attempts:
            return None
        if retry_after_s is not None:
            return retry_after_s if retry_after_s <= self.max_delay_s else None
        return self.backoff_s(attempt, rng)


class TokenBucket:
    """``rate_per_s`` calls per second on average, bursts of up to ``burst``.

    Each caller reserves the next free slot synchronously and then sleeps until it, so
    waiters are served in arrival order. ``rate_per_s <= 0`` disables the limit.
    """

    def __init__(self, rate_per_s: float, burst: int, *, clock: Clock = time.monotonic) -> None:
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def reserve(self) -> float:
        """Take one token; answer how long the caller must wait before using it."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        self._tokens = min(
            float(self.burst), self._tokens + (now - self._updated) * self.rate_per_s
        )
        self._updated = now
        self._tokens -= 1.0
        # A negative balance is the queue of callers already promised a future token.
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate_per_s

    def refund(self) -> None:
        """Give back a reserved token whose caller gave up (e.g. was cancelled)."""
        if self.enabled:
            self._tokens = min(float(self.burst), self._tokens + 1.0)

    async def acquire(self) -> float:
        """Wait for a token; answers the seconds waited."""
        wait_s = self.reserve()
        if wait_s > 0:
            try:
                await asyncio.sleep(wait_s)
            except BaseException:
                self.refund()
                raise
        return wait_s


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class CircuitSnapshot:
    """The breaker as metrics and health checks see it."""

    state: CircuitState
    #: Consecutive transient failures counted so far.
    failures: int
    opened_at: datetime | None
    #: When an open circuit lets a probe through (None unless open).
    retry_at: datetime | None


class CircuitOpen(Exception):
    """The call was refused without trying: the remote side is considered down."""

    def __init__(self, retry_in_s: float, retry_at: datetime) -> None:
        super().__init__(f"circuit open; next probe in {retry_in_s:.1f}s")
        self.retry_in_s = retry_in_s
        self.retry_at = retry_at


class CircuitBreaker:
    """closed → open after ``failure_threshold`` consecutive failures → half-open after
    ``cooldown_s`` (one probe goes through) → closed on its success, open again on failure.

    Callers pair every successful :meth:`before_call` with exactly one of
    :meth:`record_success`, :meth:`record_failure` or :meth:`record_abandoned`.
    """

    def __init__(
        self, failure_threshold: int, cooldown_s: float, *, clock: Clock = time.monotonic
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_mono = 0.0
        self._opened_at: datetime | None = None
        self._probe_in_flight = False

    @property
    def state(self) -> CircuitState:
        return self._state

    def snapshot(self) -> CircuitSnapshot:
        retry_at = None
        if self._state is CircuitState.OPEN and self._opened_at is not None:
            retry_at = self._opened_at + timedelta(seconds=self.cooldown_s)
        return CircuitSnapshot(self._state, self._failures, self._opened_at, retry_at)

    def before_call(self) -> bool:
        """Let a call through (answers whether it is the half-open probe) or raise CircuitOpen."""
        if self._state is CircuitState.CLOSED:
            return False
        remaining = self._opened_mono + self.cooldown_s - self._clock()
        if self._state is CircuitState.OPEN and remaining <= 0:
            self._state = CircuitState.HALF_OPEN
        if self._state is CircuitState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return True
        # Open, or half-open with its single probe still out: fail fast.
        wait_s = max(remaining, 0.0) if self._state is CircuitState.OPEN else self.cooldown_s
        raise CircuitOpen(wait_s, datetime.now(UTC) + timedelta(seconds=wait_s))

    def record_success(self) -> None:
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = None
        self._probe_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._state is CircuitState.OPEN:
            return  # a call started before the circuit opened: do not extend the cool-down
        if self._state is CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._open()

    def record_abandoned(self) -> None:
        """The call ended without a verdict (cancelled, a bug): free the probe slot."""
        self._probe_in_flight = False

    def _open(self) -> None:
        self._state = CircuitState.OPEN
        self._opened_mono = self._clock()
        self._opened_at = datetime.now(UTC)
        self._probe_in_flight = False
