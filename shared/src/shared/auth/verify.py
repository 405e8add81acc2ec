"""JWT verification (RS256/ES256) against a public key or a JWKS URL; `exp`, `iss`, `aud` checked."""

import asyncio
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWKClient

from shared.auth.principal import Principal

ALGORITHMS = ["RS256", "ES256"]
#: Verified tokens remembered (a signature check costs more than the rest of a small
#: request); bounded in number and in time, so a retired signing key stops working soon.
CACHE_MAX_TOKENS = 10_000
CACHE_MAX_SECONDS = 300.0


class InvalidTokenError(Exception):
    pass


@dataclass
class TokenVerifier:
    issuer: str
    audience: str
    public_key: str | None = None
    jwks_url: str | None = None
    leeway_s: int = 30
    _verified: dict[str, tuple[Principal, float]] = field(default_factory=dict, repr=False)
    # JWKS verification runs in worker threads.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not (self.public_key or self.jwks_url):
            raise ValueError("a public key or a JWKS URL is required to verify tokens")
        self._jwks = PyJWKClient(self.jwks_url, cache_keys=True) if self.jwks_url else None

    @classmethod
    def from_settings(
        cls,
        *,
        issuer: str,
        audience: str,
        public_key: str | None,
        public_key_file: str | None,
        jwks_url: str | None,
    ) -> "TokenVerifier":
        key = public_key or (Path(public_key_file).read_text() if public_key_file else None)
        return cls(issuer=issuer, audience=audience, public_key=key, jwks_url=jwks_url)

    async def verify_async(self, token: str) -> Principal:
        """As `verify`; a JWKS key lookup may fetch over HTTP, so it runs off the event loop."""
        remembered = self._remembered(token)
        if remembered is not None:
            return remembered
        if self._jwks is None:
            return self.verify(token)
        return await asyncio.to_thread(self.verify, token)

    def _remembered(self, token: str) -> Principal | None:
        with self._lock:
            remembered = self._verified.get(token)
            if remembered is None:
                return None
            principal, valid_until = remembered
            if time.time() < valid_until:
                return principal
            del self._verified[token]
            return None

    def verify(self, token: str) -> Principal:
        remembered = self._remembered(token)
        if remembered is not None:
            return remembered
        principal, expires_at = self._verify_signature(token)
        with self._lock:
            if len(self._verified) >= CACHE_MAX_TOKENS:
                del self._verified[next(iter(self._verified))]  # the oldest entry
            self._verified[token] = (principal, min(expires_at, time.time() + CACHE_MAX_SECONDS))
        return principal

    def _verify_signature(self, token: str) -> tuple[Principal, float]:
        try:
            key: Any = (
                self._jwks.get_signing_key_from_jwt(token).key if self._jwks else self.public_key
            )
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidTokenError(str(exc)) from exc
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidTokenError("roles claim must be a list of strings")
        unit = claims.get("sales_unit")
        principal = Principal(
            employee_id=str(claims["sub"]),
            name=str(claims.get("name") or claims["sub"]),
            roles=frozenset(roles),
            sales_unit=unit if isinstance(unit, str) else None,
        )
        # Remembered until the token expires (without the leeway the check allowed).
        return principal, float(claims["exp"])
