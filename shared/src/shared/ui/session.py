"""The UI session: the user's JWT in an HttpOnly cookie, verified on every request.

There is no server-side session store: the cookie holds the same token the APIs accept,
so expiry and roles are exactly those of the token, and the UI can call other services
on the user's behalf with it.
"""

from dataclasses import dataclass

import jwt
from starlette.requests import Request

from shared.auth.principal import Principal
from shared.auth.verify import InvalidTokenError, TokenVerifier


@dataclass(frozen=True)
class UiUser:
    principal: Principal
    #: The bearer token, for calls to other services as this user. Never rendered.
    token: str

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def roles(self) -> list[str]:
        return sorted(self.principal.roles)


@dataclass(frozen=True)
class SessionState:
    user: UiUser | None
    #: Catalog key explaining why there is no user although a cookie came (expired, bad).
    problem: str | None = None


async def read_session(request: Request, cookie_name: str) -> SessionState:
    token = request.cookies.get(cookie_name)
    if not token:
        return SessionState(None)
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = await verifier.verify_async(token)
    except InvalidTokenError as exc:
        expired = isinstance(exc.__cause__, jwt.ExpiredSignatureError)
        return SessionState(None, "auth.session_expired" if expired else "auth.session_invalid")
    return SessionState(UiUser(principal, token))
