"""The resilience building blocks on a fake clock: back-off, token bucket, circuit breaker."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest

from misa_sync.resilience import (
    CircuitBreaker,
    CircuitOpen,
    CircuitState,
    RetryPolicy,
    TokenBucket,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- retry policy ------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=0.5, max_delay_s=4.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 4.0)]:
        delays = [policy.backoff_s(attempt, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # Full jitter spreads over the whole range rather than clustering at the top.
        assert min(delays) < ceiling * 0.2 and max(delays) > ceiling * 0.8


def test_attempts_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.1, max_delay_s=1.0)
    assert policy.delay_s(1, None) is not None
    assert policy.delay_s(2, None) is not None
    assert policy.delay_s(3, None) is None
    assert RetryPolicy(max_attempts=1).delay_s(1, None) is None


def test_retry_after_is_honoured_unless_longer_than_the_cap() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay_s=0.1, max_delay_s=10.0)
    assert policy.delay_s(1, 7.0) == 7.0
    assert policy.delay_s(1, 0.0) == 0.0
    # Longer than the cap: the caller reschedules the work instead of holding a worker.
    assert policy.delay_s(1, 60.0) is None


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"base_delay_s": -1.0}, {"max_delay_s": -1.0}]
)
def test_retry_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


# -- token bucket ------------------------------------------------------------------------


def test_bucket_allows_a_burst_then_spaces_calls_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=4.0, burst=3, clock=clock)

    waits = [bucket.reserve() for _ in range(6)]

    assert waits[:3] == [0.0, 0.0, 0.0]
    # Each later caller is promised the next quarter second, in arrival order.
    assert waits[3:] == pytest.approx([0.25, 0.5, 0.75])


def test_bucket_refills_over_time_up_to_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=2.0, burst=2, clock=clock)
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]

    clock.advance(0.5)  # one token back
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.5)

    clock.advance(100)  # idle for long: no more than the burst accumulates
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]
    assert bucket.reserve() > 0


def test_a_refunded_reservation_frees_its_slot() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=1.0, burst=1, clock=clock)
    bucket.reserve()
    assert bucket.reserve() == pytest.approx(1.0)
    bucket.refund()
    assert bucket.reserve() == pytest.approx(1.0)


def test_rate_zero_disables_the_limit() -> None:
    bucket = TokenBucket(rate_per_s=0, burst=1)
    assert not bucket.enabled
    assert {bucket.reserve() for _ in range(100)} == {0.0}


async def test_a_cancelled_waiter_gives_its_token_back() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=1.0, burst=1, clock=clock)
    bucket.reserve()
    waiter = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert bucket.reserve() == pytest.approx(1.0)  # not 2.0: the cancelled slot is free


# -- circuit breaker ---------------------------------------------------------------------


def test_circuit_opens_after_consecutive_failures_only() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    breaker.before_call()
    breaker.record_success()  # a success resets the count
    assert breaker.snapshot().failures == 0

    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()

    snapshot = breaker.snapshot()
    assert snapshot.state is CircuitState.OPEN
    assert snapshot.failures == 3
    assert snapshot.opened_at is not None and snapshot.opened_at <= datetime.now(UTC)
    assert snapshot.retry_at is not None
    assert (snapshot.retry_at - snapshot.opened_at).total_seconds() == pytest.approx(10)


def test_open_circuit_fails_fast_then_lets_one_probe_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=10, clock=clock)
    breaker.before_call()
    breaker.record_failure()

    clock.advance(4)
    with pytest.raises(CircuitOpen) as caught:
        breaker.before_call()
    assert caught.value.retry_in_s == pytest.approx(6)

    clock.advance(6)
    assert breaker.before_call() is True  # the probe
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # only one probe at a time

    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.before_call() is False
    assert breaker.snapshot().opened_at is None


def test_a_failed_probe_opens_the_circuit_again_for_a_full_cooldown() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=5, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    clock.advance(5)
    assert breaker.before_call() is True
    breaker.record_failure()

    assert breaker.state is CircuitState.OPEN
    clock.advance(4.9)
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.advance(0.1)
    assert breaker.before_call() is True


def test_an_abandoned_probe_frees_the_slot() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=1, clock=clock)
    breaker.before_call()
    breaker.record_failure()
    clock.advance(1)
    assert breaker.before_call() is True
    breaker.record_abandoned()
    assert breaker.before_call() is True


def test_late_failures_do_not_extend_an_open_circuit() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=10, clock=clock)
    breaker.before_call()
    breaker.before_call()  # two calls in flight
    breaker.record_failure()  # opens
    clock.advance(9)
    breaker.record_failure()  # the other one, started before the circuit opened
    clock.advance(1)
    assert breaker.before_call() is True
