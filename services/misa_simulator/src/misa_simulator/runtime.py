"""What one running simulator holds: settings, tunables, the store, faults and counters."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request

from misa_simulator.settings import DuplicateCodeMode, Settings
from misa_simulator.store import Store


class FaultMode(StrEnum):
    HTTP_500 = "http_500"
    TIMEOUT = "timeout"
    RATE_LIMIT = "rate_limit"
    EXPIRED_TOKEN = "expired_token"  # noqa: S105 - a fault name


@dataclass(slots=True)
class Tunables:
    """Settings tests may change at run time (``POST /_sim/config``); reset restores them."""

    duplicate_code_mode: DuplicateCodeMode
    timeout_delay_s: float
    token_ttl_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Tunables:
        return cls(settings.duplicate_code_mode, settings.timeout_delay_s, settings.token_ttl_s)


@dataclass(slots=True)
class RandomFaults:
    """Each API call fails with probability ``rate``, as one of ``modes`` picked at random.

    For chaos runs (``ims chaos``): faults at random moments rather than the next N calls.
    ``expired_token`` never picks connect (it carries no token): such a draw is no fault.
    """

    rate: float = 0.0
    modes: tuple[FaultMode, ...] = ()
    seed: int | None = None
    injected: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(default_factory=random.Random)

    def arm(self, rate: float, modes: tuple[FaultMode, ...], seed: int | None = None) -> None:
        self.rate = rate if modes else 0.0
        self.modes = modes
        self.seed = seed
        self.injected = Counter()
        self._rng = random.Random(seed)

    def draw(self, *, carries_token: bool) -> FaultMode | None:
        if self.rate <= 0 or self._rng.random() >= self.rate:
            return None
        mode = self._rng.choice(self.modes)
        if mode is FaultMode.EXPIRED_TOKEN and not carries_token:
            return None
        self.injected[mode.value] += 1
        return mode


@dataclass(slots=True)
class Faults:
    """The next ``remaining`` API calls fail as ``mode``; else maybe a random fault."""

    mode: FaultMode | None = None
    remaining: int = 0
    retry_after_s: int = 1
    #: Send ``rate_limit``'s Retry-After as an HTTP date instead of seconds (RFC 9110
    #: allows both; a client must read either).
    retry_after_http_date: bool = False
    random_faults: RandomFaults = field(default_factory=RandomFaults)

    def arm(
        self, mode: FaultMode, count: int, retry_after_s: int, *, http_date: bool = False
    ) -> None:
        self.mode = mode if count > 0 else None
        self.remaining = max(count, 0)
        self.retry_after_s = retry_after_s
        self.retry_after_http_date = http_date

    def retry_after_header(self) -> str:
        if not self.retry_after_http_date:
            return str(self.retry_after_s)
        # HTTP dates have whole seconds: round up so the wait is never shorter than asked.
        when = datetime.now(UTC) + timedelta(seconds=self.retry_after_s + 1)
        return format_datetime(when.replace(microsecond=0), usegmt=True)

    def take(self, *, carries_token: bool) -> FaultMode | None:
        """Consume one fault for this call, if one applies.

        An ``expired_token`` fault skips connect: connect carries no token, and a client
        must be able to reconnect to recover from it. Counted faults come first; without
        one, the random faults (``random_faults``) may pick this call.
        """
        if self.mode is None or self.remaining <= 0:
            return self.random_faults.draw(carries_token=carries_token)
        if self.mode is FaultMode.EXPIRED_TOKEN and not carries_token:
            return None
        mode = self.mode
        self.remaining -= 1
        if self.remaining == 0:
            self.mode = None
        return mode


class SimulatorRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tunables = Tunables.from_settings(settings)
        self.store = Store(settings.state_file)
        self.faults = Faults()
        #: API calls received per endpoint name, so tests can see e.g. how often a client connects.
        self.calls: Counter[str] = Counter()
        self._wake = asyncio.Event()

    async def hold(self, delay_s: float) -> None:
        """Sleep for a ``timeout`` fault; a reset cuts it short so no answer outlives a test."""
        wake = self._wake
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay_s)

    def reset(self, *, seed: bool) -> None:
        self.store.reset(seed=seed)
        self.tunables = Tunables.from_settings(self.settings)
        self.faults = Faults()
        self.calls.clear()
        self._wake.set()
        self._wake = asyncio.Event()


def get_runtime(request: Request) -> SimulatorRuntime:
    """FastAPI dependency: the runtime that create_app stored on the app."""
    runtime = request.app.state.runtime
    assert isinstance(runtime, SimulatorRuntime)
    return runtime


RuntimeDep = Annotated[SimulatorRuntime, Depends(get_runtime)]
