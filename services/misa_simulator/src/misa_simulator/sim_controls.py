"""Test controls under ``/_sim/`` (not part of MISA's API) and ``/healthz``.

These never count as API calls, so armed faults do not touch them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from misa_simulator.runtime import FaultMode, RuntimeDep
from misa_simulator.settings import DuplicateCodeMode


class FaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: FaultMode
    count: int = Field(default=1, ge=0, description="How many API calls fail; 0 disarms.")
    retry_after_s: int = Field(default=1, ge=0, description="Retry-After for rate_limit.")
    retry_after_http_date: bool = Field(
        default=False, description="Send Retry-After as an HTTP date (now + retry_after_s)."
    )


class FaultState(BaseModel):
    mode: FaultMode | None
    remaining: int
    retry_after_s: int
    retry_after_http_date: bool


class RandomFaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate: float = Field(ge=0, le=1, description="Share of API calls that fail; 0 disarms.")
    modes: list[FaultMode] = Field(
        default_factory=lambda: list(FaultMode), description="Picked at random for each fault."
    )
    seed: int | None = Field(default=None, description="Seed of the draws, for a repeatable run.")


class RandomFaultState(BaseModel):
    rate: float
    modes: list[FaultMode]
    seed: int | None
    injected: dict[str, int] = Field(description="Random faults injected so far, by mode.")


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: bool = Field(
        default=False, description="Put back the demo vendor and employee after clearing."
    )


class ConfigPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duplicate_code_mode: DuplicateCodeMode | None = None
    timeout_delay_s: float | None = Field(default=None, ge=0)
    token_ttl_s: float | None = Field(default=None, gt=0)


class ConfigState(BaseModel):
    duplicate_code_mode: DuplicateCodeMode
    timeout_delay_s: float
    token_ttl_s: float


def _config_state(runtime: RuntimeDep) -> ConfigState:
    t = runtime.tunables
    return ConfigState(
        duplicate_code_mode=t.duplicate_code_mode,
        timeout_delay_s=t.timeout_delay_s,
        token_ttl_s=t.token_ttl_s,
    )


def _fault_state(runtime: RuntimeDep) -> FaultState:
    f = runtime.faults
    return FaultState(
        mode=f.mode,
        remaining=f.remaining,
        retry_after_s=f.retry_after_s,
        retry_after_http_date=f.retry_after_http_date,
    )


def _random_fault_state(runtime: RuntimeDep) -> RandomFaultState:
    r = runtime.faults.random_faults
    return RandomFaultState(
        rate=r.rate, modes=list(r.modes), seed=r.seed, injected=dict(r.injected)
    )


def build_router() -> APIRouter:
    router = APIRouter()
    sim = APIRouter(prefix="/_sim", tags=["simulator controls"])

    @router.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @sim.get("/account-objects")
    async def list_account_objects(
        runtime: RuntimeDep, code: str | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Everything stored (customers, vendors, employees); ``?code=`` filters by code."""
        items = runtime.store.all_objects()
        if code is not None:
            items = [o for o in items if o.get("account_object_code") == code]
        return {"items": items}

    @sim.post("/account-objects", status_code=201)
    async def put_account_object(
        runtime: RuntimeDep, obj: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        """Store one object as if it had always been in MISA (defaults: a customer)."""
        code = obj.get("account_object_code")
        if not isinstance(code, str) or not code.strip():
            raise HTTPException(422, "account_object_code is required")
        obj.setdefault("account_object_name", code)
        return runtime.store.put(obj)

    @sim.get("/faults")
    async def get_faults(runtime: RuntimeDep) -> FaultState:
        return _fault_state(runtime)

    @sim.post("/faults")
    async def arm_faults(runtime: RuntimeDep, request: FaultRequest) -> FaultState:
        """Make the next ``count`` API calls (connect, get, save) fail as ``mode``."""
        runtime.faults.arm(
            request.mode,
            request.count,
            request.retry_after_s,
            http_date=request.retry_after_http_date,
        )
        return _fault_state(runtime)

    @sim.get("/faults/random")
    async def get_random_faults(runtime: RuntimeDep) -> RandomFaultState:
        return _random_fault_state(runtime)

    @sim.post("/faults/random")
    async def arm_random_faults(
        runtime: RuntimeDep, request: RandomFaultRequest
    ) -> RandomFaultState:
        """Make each API call fail with probability ``rate`` as one of ``modes``, until
        disarmed (rate 0) or reset. Counted faults (``POST /_sim/faults``) go first."""
        runtime.faults.random_faults.arm(request.rate, tuple(request.modes), request.seed)
        return _random_fault_state(runtime)

    @sim.get("/config")
    async def get_config(runtime: RuntimeDep) -> ConfigState:
        return _config_state(runtime)

    @sim.post("/config")
    async def patch_config(runtime: RuntimeDep, patch: ConfigPatch) -> ConfigState:
        """Change a tunable until the next reset, without restarting the process."""
        t = runtime.tunables
        if patch.duplicate_code_mode is not None:
            t.duplicate_code_mode = patch.duplicate_code_mode
        if patch.timeout_delay_s is not None:
            t.timeout_delay_s = patch.timeout_delay_s
        if patch.token_ttl_s is not None:
            t.token_ttl_s = patch.token_ttl_s
        return _config_state(runtime)

    @sim.post("/tokens/expire")
    async def expire_tokens(runtime: RuntimeDep) -> dict[str, int]:
        """Expire every issued token now, as if 12 hours had passed."""
        return {"expired": runtime.store.expire_tokens()}

    @sim.get("/stats")
    async def stats(runtime: RuntimeDep) -> dict[str, dict[str, int]]:
        """API calls received per endpoint since start or the last reset."""
        return {"calls": dict(runtime.calls)}

    @sim.post("/reset")
    async def reset(
        runtime: RuntimeDep, request: Annotated[ResetRequest | None, Body()] = None
    ) -> dict[str, Any]:
        """Clear objects, tokens, faults, counters and config changes."""
        seed = request.seed if request is not None else False
        runtime.reset(seed=seed)
        return {"status": "reset", "seeded": seed}

    router.include_router(sim)
    return router
