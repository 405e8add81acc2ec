"""Simulator settings, read from ``MISA_SIM_*`` environment variables.

Plain ``os.environ`` parsing keeps the simulator's dependencies to fastapi, uvicorn and
pydantic: it must start on any machine that can run the stack.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

ENV_PREFIX = "MISA_SIM_"

#: MISA documents 12-hour tokens (MISA_API.md §3).
DEFAULT_TOKEN_TTL_S = 12 * 60 * 60


class DuplicateCodeMode(StrEnum):
    """What save_dictionary does with a new object whose code another object already has.

    MISA does not document this (MISA_API.md §7), so the simulator lets tests try each.
    """

    UPSERT = "upsert"  # update the object that already has the code
    INVALID_PARAM = "invalid_param"  # refuse the whole request with InvalidParam
    DUPLICATE = "duplicate"  # silently store a second object with the same code


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8090
    state_file: Path = Path(".ims/misa-simulator.json")
    app_id: str = "ims-local-app"
    access_code: str = "ims-local-access-code"
    org_company_code: str = "ims-local"
    duplicate_code_mode: DuplicateCodeMode = DuplicateCodeMode.UPSERT
    #: How long a ``timeout`` fault holds the answer back.
    timeout_delay_s: float = 30.0
    #: Token lifetime; shorten it to exercise real expiry without waiting 12 hours.
    token_ttl_s: float = DEFAULT_TOKEN_TTL_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``MISA_SIM_*`` variables; a bad value fails at start-up."""
        env = os.environ if environ is None else environ
        base = cls()

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name)
            return value if value not in (None, "") else None

        def number(name: str, default: float, *, minimum: float = 0.0) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}{name} must be a number, got {raw!r}") from None
            if value < minimum:
                raise ValueError(f"{ENV_PREFIX}{name} must be >= {minimum}, got {raw!r}")
            return value

        port_raw = get("PORT")
        try:
            port = int(port_raw) if port_raw is not None else base.port
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}PORT must be an integer, got {port_raw!r}") from None
        if not 0 <= port <= 65535:
            raise ValueError(f"{ENV_PREFIX}PORT out of range: {port}")

        mode_raw = get("DUPLICATE_CODE_MODE")
        try:
            mode = DuplicateCodeMode(mode_raw) if mode_raw else base.duplicate_code_mode
        except ValueError:
            allowed = ", ".join(m.value for m in DuplicateCodeMode)
            raise ValueError(
                f"{ENV_PREFIX}DUPLICATE_CODE_MODE must be one of {allowed}, got {mode_raw!r}"
            ) from None

        state_file = get("STATE_FILE")
        return replace(
            base,
            host=get("HOST") or base.host,
            port=port,
            state_file=Path(state_file) if state_file else base.state_file,
            app_id=get("APP_ID") or base.app_id,
            access_code=get("ACCESS_CODE") or base.access_code,
            org_company_code=get("ORG_COMPANY_CODE") or base.org_company_code,
            duplicate_code_mode=mode,
            timeout_delay_s=number("TIMEOUT_DELAY_S", base.timeout_delay_s),
            token_ttl_s=number("TOKEN_TTL_S", base.token_ttl_s, minimum=0.001),
        )
