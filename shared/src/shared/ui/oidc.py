"""Sign-in with the company's OIDC provider: the authorization code flow with PKCE (S256).

`GET {prefix}/sign-in/oidc` sends the browser to the provider, which sends it back to
`{prefix}/sign-in/oidc/callback` with a code, exchanged at the token endpoint. What the
two requests share (state, nonce, PKCE verifier, where to go next) rides in a short-lived
signed cookie rather than on the server, so any instance of the service can finish a
sign-in another one started. The ID token proves who signed in (the provider's signature,
issuer, audience, expiry, nonce); the session is then the token the settings name, and
only if the service's own verifier accepts it: the UI holds exactly what the APIs accept.
Every refusal is a page in the user's language; none sets a session (ADR 11).
"""

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal
from urllib.parse import quote, urlencode

import httpx
import jwt
from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from shared.auth.verify import InvalidTokenError, TokenVerifier
from shared.logging import get_logger
from shared.ui.kit import UiKit
from shared.ui.security import decode_signed, encode_signed
from shared.ui.settings import UiSettings

log = get_logger(__name__)

SessionToken = Literal["access_token", "id_token"]
CALLBACK_PATH = "/sign-in/oidc/callback"
#: Time for the sign-in at the provider (a password, a second factor).
STATE_TTL_S = 10 * 60
STATE_PURPOSE = "oidc-state"
#: The provider's metadata and keys are read again after this; an unknown key id reads the
#: keys sooner (a rotation), but not more often than KEYS_MIN_REFRESH_S.
METADATA_TTL_S = 3600.0
KEYS_MIN_REFRESH_S = 30.0
LEEWAY_S = 30
#: Asymmetric signatures only: an ID token "signed" with a shared secret or none is refused.
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
#: The provider's error code is shown on the page; nothing else it sends back is.
ERROR_CODE = re.compile(r"[a-z0-9_.-]{1,64}")
FAILED_TITLE = "auth.oidc_failed_title"


class OidcUnavailable(Exception):
    """The provider could not be reached, or answered what no provider should."""


class Refusal(Exception):
    """Why a callback ends without a session: a page for the user, a reason for the log
    (`details` never holds personal data: no names, e-mails, tokens)."""

    def __init__(
        self,
        status: int,
        message_key: str,
        reason: str,
        *,
        params: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.message_key = message_key
        self.reason = reason
        self.params = params or {}
        self.details = details or {}


def pkce_challenge(verifier: str) -> str:
    """RFC 7636's S256: BASE64URL(SHA256(verifier)), without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str

    @classmethod
    def parse(cls, data: Any, expected_issuer: str) -> "ProviderMetadata":
        if not isinstance(data, dict):
            raise OidcUnavailable("discovery: not a JSON object")
        values: dict[str, str] = {}
        for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = data.get(name)
            if not isinstance(value, str) or not value.startswith(("https://", "http://")):
                raise OidcUnavailable(f"discovery: no usable {name}")
            values[name] = value
        # OIDC Discovery 4.3: the document must be the configured issuer's own.
        if values["issuer"].rstrip("/") != expected_issuer.rstrip("/"):
            raise OidcUnavailable("discovery: the document names another issuer")
        return cls(**values)


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in between the redirect to the provider and its callback."""

    state: str
    nonce: str
    verifier: str
    next: str
    expires_at: int

    @classmethod
    def new(cls, next_url: str) -> "PendingSignIn":
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(48),  # 64 characters: RFC 7636 wants 43 to 128
            next=next_url,
            expires_at=int(time.time()) + STATE_TTL_S,
        )

    def encode(self, secret: str) -> str:
        return encode_signed(secret, STATE_PURPOSE, asdict(self))

    @classmethod
    def decode(cls, secret: str, value: str) -> "PendingSignIn | None":
        """The sign-in of a cookie we signed, else None (altered, forged, another key)."""
        data = decode_signed(secret, STATE_PURPOSE, value)
        if not isinstance(data, dict):
            return None
        try:
            pending = cls(**{f.name: data[f.name] for f in fields(cls)})
        except (KeyError, TypeError):
            return None
        strings = (pending.state, pending.nonce, pending.verifier, pending.next)
        if not all(isinstance(s, str) for s in strings) or not isinstance(pending.expires_at, int):
            return None
        return pending


@dataclass
class OidcSignIn:
    """The "sign in with your company account" button and the two routes behind it."""

    issuer_url: str
    client_id: str
    #: None: a public client, which proves itself with PKCE alone.
    client_secret: str | None
    scopes: str = "openid profile email"
    session_token: SessionToken = "access_token"  # noqa: S105 - which token, not a secret
    #: The callback URL registered at the provider; None: derived from the request.
    redirect_url: str | None = None
    timeout_s: float = 10.0
    #: Tests plug an httpx.MockTransport in here.
    transport: httpx.AsyncBaseTransport | None = None
    template: str = field(default="kit/_sign_in_oidc.html", init=False)
    _metadata: tuple[ProviderMetadata, float] | None = field(default=None, init=False, repr=False)
    #: The provider's keys, the URL they came from and when (time.monotonic()).
    _keys: tuple[jwt.PyJWKSet, str, float] | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: UiSettings) -> "OidcSignIn":
        if not settings.ui_oidc_issuer_url or not settings.ui_oidc_client_id:
            raise ValueError("the OIDC sign-in needs ui_oidc_issuer_url and ui_oidc_client_id")
        secret = settings.ui_oidc_client_secret
        return cls(
            issuer_url=settings.ui_oidc_issuer_url,
            client_id=settings.ui_oidc_client_id,
            client_secret=(secret.get_secret_value() or None) if secret else None,
            scopes=settings.ui_oidc_scopes,
            session_token=settings.ui_oidc_session_token,
            redirect_url=settings.ui_oidc_redirect_url or None,
            timeout_s=settings.ui_oidc_timeout_s,
        )

    def context(self, request: Request) -> dict[str, Any]:
        return {}

    def router(self, kit: UiKit) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        cookie = f"ims_{kit.app_id}_oidc"

        @router.get(f"{kit.prefix}/sign-in/oidc")
        async def start(request: Request, next: str | None = None) -> Response:
            try:
                metadata = await self.metadata()
            except OidcUnavailable as exc:
                log.warning("ui_oidc_refused", reason="provider_unavailable", error=str(exc))
                return kit.error_page(request, 503, "auth.oidc_unavailable", title_key=FAILED_TITLE)
            pending = PendingSignIn.new(kit.safe_next(next))
            url = self.authorization_url(
                metadata, pending, self.redirect_uri(request, kit), kit.lang(request)
            )
            response = RedirectResponse(url, status_code=303)
            response.headers["Cache-Control"] = "no-store"
            response.set_cookie(
                cookie,
                pending.encode(kit.secret),
                max_age=STATE_TTL_S,
                path=kit.prefix,
                httponly=True,
                secure=kit.secure_cookies,
                samesite="lax",  # the provider's redirect back is a top-level GET: it is sent
            )
            return response

        @router.get(f"{kit.prefix}{CALLBACK_PATH}")
        async def callback(request: Request) -> Response:
            response: Response
            try:
                token, max_age, employee_id, next_url = await self.finish(
                    request, kit, request.cookies.get(cookie)
                )
            except Refusal as refusal:
                log.warning("ui_oidc_refused", reason=refusal.reason, **refusal.details)
                response = kit.error_page(
                    request,
                    refusal.status,
                    refusal.message_key,
                    title_key=FAILED_TITLE,
                    **refusal.params,
                )
            else:
                log.info("ui_signed_in", method="oidc", employee_id=employee_id)
                response = kit.redirect(request, next_url)
                response.headers["Cache-Control"] = "no-store"
                kit.start_session(response, token, max_age=max_age)
            # A sign-in in progress is used once, whatever the outcome.
            response.delete_cookie(
                cookie, path=kit.prefix, httponly=True, secure=kit.secure_cookies, samesite="lax"
            )
            return response

        return router

    # --- the flow -----------------------------------------------------------------------

    def redirect_uri(self, request: Request, kit: UiKit) -> str:
        if self.redirect_url:
            return self.redirect_url
        return str(request.base_url).rstrip("/") + kit.prefix + CALLBACK_PATH

    def authorization_url(
        self, metadata: ProviderMetadata, pending: PendingSignIn, redirect_uri: str, lang: str
    ) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.scopes,
                "state": pending.state,
                "nonce": pending.nonce,
                "code_challenge": pkce_challenge(pending.verifier),
                "code_challenge_method": "S256",
                "ui_locales": lang,  # the provider's page in the UI's language, if it can
            }
        )
        endpoint = metadata.authorization_endpoint
        return endpoint + ("&" if "?" in endpoint else "?") + query

    async def finish(
        self, request: Request, kit: UiKit, cookie_value: str | None
    ) -> tuple[str, int, str, str]:
        """The callback's checks and exchange: (session token, its remaining lifetime in
        seconds, the employee id, where to go next), or a `Refusal`."""
        params = request.query_params
        pending = self._pending(kit, cookie_value, params.get("state"))
        error = params.get("error")
        if error is not None:
            code = error if ERROR_CODE.fullmatch(error) else "unknown"
            status = 403 if code == "access_denied" else 400
            raise Refusal(
                status, "auth.oidc_idp_error", f"provider_error:{code}", params={"code": code}
            )
        authorization_code = params.get("code")
        if not authorization_code:
            raise Refusal(400, "auth.oidc_exchange_failed", "no_code")
        try:
            metadata = await self.metadata()
        except OidcUnavailable as exc:
            raise Refusal(
                503, "auth.oidc_unavailable", "provider_unavailable", details={"error": str(exc)}
            ) from exc
        redirect_uri = self.redirect_uri(request, kit)
        tokens = await self._exchange(metadata, authorization_code, pending, redirect_uri)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise Refusal(502, "auth.oidc_exchange_failed", "no_id_token")
        await self._verify_id_token(metadata, id_token, pending.nonce)

        session_token = tokens.get(self.session_token)
        if not isinstance(session_token, str) or not session_token:
            raise Refusal(502, "auth.oidc_exchange_failed", f"no_{self.session_token}")
        verifier: TokenVerifier = request.app.state.token_verifier
        try:
            principal = await verifier.verify_async(session_token)
        except InvalidTokenError as exc:
            raise Refusal(
                403,
                "auth.oidc_token_not_accepted",
                "session_token_refused",
                details={"error": str(exc), "session_token": self.session_token}
                | token_shape(session_token),
            ) from exc
        expires_at = jwt.decode(session_token, options={"verify_signature": False})["exp"]
        max_age = max(1, int(float(expires_at) - time.time()))
        return session_token, max_age, principal.employee_id, kit.safe_next(pending.next)

    def _pending(self, kit: UiKit, cookie_value: str | None, state: str | None) -> PendingSignIn:
        """The sign-in this browser started, if the callback belongs to it."""
        if not cookie_value:
            raise Refusal(400, "auth.oidc_state_invalid", "state_cookie_missing")
        pending = PendingSignIn.decode(kit.secret, cookie_value)
        if pending is None:
            raise Refusal(400, "auth.oidc_state_invalid", "state_cookie_invalid")
        if pending.expires_at < time.time():
            raise Refusal(400, "auth.oidc_state_invalid", "state_cookie_expired")
        if not state or not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise Refusal(400, "auth.oidc_state_invalid", "state_mismatch")
        return pending

    async def _exchange(
        self, metadata: ProviderMetadata, code: str, pending: PendingSignIn, redirect_uri: str
    ) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": pending.verifier,
        }
        auth: httpx.Auth | None = None
        if self.client_secret is None:
            form["client_id"] = self.client_id
        else:  # client_secret_basic; RFC 6749 2.3.1 form-encodes both before Base64
            auth = httpx.BasicAuth(
                quote(self.client_id, safe=""), quote(self.client_secret, safe="")
            )
        try:
            async with self._client(auth) as client:
                response = await client.post(
                    metadata.token_endpoint, data=form, headers={"Accept": "application/json"}
                )
        except httpx.HTTPError as exc:
            raise Refusal(
                503,
                "auth.oidc_unavailable",
                "token_endpoint_unreachable",
                details={"error": type(exc).__name__},
            ) from exc
        if not response.is_success:
            raise Refusal(
                502,
                "auth.oidc_exchange_failed",
                "token_endpoint_refused",
                details={"status": response.status_code, "error": _error_code(response)},
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise Refusal(502, "auth.oidc_exchange_failed", "token_response_not_json") from exc
        if not isinstance(body, dict):
            raise Refusal(502, "auth.oidc_exchange_failed", "token_response_not_json")
        return body

    async def _verify_id_token(
        self, metadata: ProviderMetadata, id_token: str, nonce: str
    ) -> dict[str, Any]:
        try:
            kid = jwt.get_unverified_header(id_token).get("kid")
        except jwt.PyJWTError as exc:
            raise Refusal(400, "auth.oidc_id_token_invalid", "id_token_malformed") from exc
        key = await self._signing_key(metadata, kid if isinstance(kid, str) else None)
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=ID_TOKEN_ALGORITHMS,
                audience=self.client_id,
                issuer=metadata.issuer,
                leeway=LEEWAY_S,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Refusal(
                400, "auth.oidc_id_token_invalid", "id_token_invalid", details={"error": str(exc)}
            ) from exc
        azp = claims.get("azp")
        if azp is not None and azp != self.client_id:
            raise Refusal(400, "auth.oidc_id_token_invalid", "id_token_azp_mismatch")
        presented = claims.get("nonce")
        # The nonce ties the ID token to this browser's sign-in: a code from another
        # sign-in (a replayed or injected callback) brings another nonce.
        if not isinstance(presented, str) or not hmac.compare_digest(
            presented.encode(), nonce.encode()
        ):
            raise Refusal(400, "auth.oidc_id_token_invalid", "nonce_mismatch")
        return claims

    # --- the provider's documents -------------------------------------------------------

    async def metadata(self) -> ProviderMetadata:
        """The provider's discovery document, read once an hour (failures are not kept)."""
        cached = self._metadata
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        url = self.issuer_url.rstrip("/") + "/.well-known/openid-configuration"
        metadata = ProviderMetadata.parse(await self._get_json(url, "discovery"), self.issuer_url)
        self._metadata = (metadata, time.monotonic() + METADATA_TTL_S)
        return metadata

    async def _signing_key(self, metadata: ProviderMetadata, kid: str | None) -> Any:
        key = _pick(await self._key_set(metadata, refresh=False), kid)
        fetched_at = self._keys[2] if self._keys else 0.0
        if key is None and time.monotonic() - fetched_at >= KEYS_MIN_REFRESH_S:
            key = _pick(await self._key_set(metadata, refresh=True), kid)  # maybe a rotation
        if key is None:
            raise Refusal(400, "auth.oidc_id_token_invalid", "unknown_signing_key")
        return key.key

    async def _key_set(self, metadata: ProviderMetadata, *, refresh: bool) -> jwt.PyJWKSet:
        cached = self._keys
        if (
            not refresh
            and cached is not None
            and cached[1] == metadata.jwks_uri
            and time.monotonic() - cached[2] < METADATA_TTL_S
        ):
            return cached[0]
        try:
            data = await self._get_json(metadata.jwks_uri, "keys")
            keys = jwt.PyJWKSet.from_dict(data if isinstance(data, dict) else {})
        except (OidcUnavailable, jwt.PyJWTError) as exc:
            raise Refusal(
                503,
                "auth.oidc_unavailable",
                "provider_keys_unavailable",
                details={"error": str(exc)},
            ) from exc
        self._keys = (keys, metadata.jwks_uri, time.monotonic())
        return keys

    async def _get_json(self, url: str, what: str) -> Any:
        try:
            async with self._client() as client:
                response = await client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()
        except httpx.HTTPStatusError as exc:
            raise OidcUnavailable(f"{what}: HTTP {exc.response.status_code}") from exc
        except httpx.HTTPError as exc:
            raise OidcUnavailable(f"{what}: {type(exc).__name__}") from exc
        except ValueError as exc:
            raise OidcUnavailable(f"{what}: not JSON") from exc

    def _client(self, auth: httpx.Auth | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            auth=auth,
            transport=self.transport,
            timeout=httpx.Timeout(self.timeout_s, connect=min(5.0, self.timeout_s)),
        )


def _pick(keys: jwt.PyJWKSet, kid: str | None) -> jwt.PyJWK | None:
    signing = [k for k in keys.keys if k.public_key_use in (None, "sig")]
    if kid is None:  # a provider with a single key may leave the id out
        return signing[0] if len(signing) == 1 else None
    return next((k for k in signing if k.key_id == kid), None)


def _error_code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return error if isinstance(error, str) and ERROR_CODE.fullmatch(error) else None


def token_shape(token: str) -> dict[str, Any]:
    """What an administrator needs to see why a token was refused, without whose it is:
    its issuer, audience and whether it carries roles."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {"token_format": "not a JWT"}
    return {
        "token_iss": claims.get("iss"),
        "token_aud": claims.get("aud"),
        "token_has_roles": bool(claims.get("roles")),
    }


__all__ = ["OidcSignIn", "OidcUnavailable", "PendingSignIn", "ProviderMetadata", "pkce_challenge"]
