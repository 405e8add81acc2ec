"""FastAPI dependencies: the caller's identity (401) and role checks (403)."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from shared.auth.principal import Principal
from shared.auth.verify import InvalidTokenError, TokenVerifier
from shared.errors import forbidden, unauthorized


def get_verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier


async def current_principal(
    request: Request, verifier: Annotated[TokenVerifier, Depends(get_verifier)]
) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("A bearer token is required.")
    try:
        return await verifier.verify_async(token.strip())
    except InvalidTokenError as exc:
        raise unauthorized(f"Invalid token: {exc}") from exc


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits the caller only with one of `roles` (admin always passes)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.has_any(*roles, "admin"):
            raise forbidden()
        return principal

    return check
