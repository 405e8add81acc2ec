"""Sign-in with the company's OIDC provider, against a real, independent provider.

oidc-provider-mock (authlib under Flask, in a thread) plays the company's IdP: discovery,
the authorization endpoint (a POST with `sub` signs that user in), the token endpoint
with client authentication, JWKS and RS256 ID tokens. Its access tokens are opaque, so the
session here is the ID token (`ui_oidc_session_token="id_token"`) and the service's
verifier trusts the provider's keys with the client id as audience. What the mock cannot
be made to do (a forged signature, a token endpoint answering HTML) is played by a small
in-process provider on an httpx.MockTransport.
"""

import base64
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import oidc_provider_mock
import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jwt.algorithms import RSAAlgorithm
from pydantic import SecretStr, ValidationError

from shared.auth.verify import TokenVerifier
from shared.ui.oidc import STATE_PURPOSE, OidcSignIn, PendingSignIn, pkce_challenge
from shared.ui.security import encode_signed
from shared.ui.signin import DemoSignIn, sign_in_providers
from tests.shared.ui.client import UiClient
from tests.shared.ui.conftest import DemoUiSettings, build_demo_app

SECRET = "oidc-test-ui-secret"
CLIENT = "ims-cs-ui"
SESSION = "ims_demo_session"
STATE_COOKIE = "ims_demo_oidc"
CALLBACK = "http://test/ui/sign-in/oidc/callback"
MAI = {
    "name": "Nguyễn Thị Mai",
    "roles": ["cs"],
    "sales_unit": "HCM1",
    "email": "mai.nguyen@example.com",
}


@pytest.fixture(scope="module")
def idp() -> Iterator[str]:
    with oidc_provider_mock.run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


def oidc_app(
    tmp_path: Path,
    public_key: Path,
    issuer: str,
    *,
    client_id: str = CLIENT,
    audience: str | None = None,
    **settings: Any,
) -> FastAPI:
    """The kit's tiny app with the OIDC sign-in, its verifier trusting the provider."""
    app = build_demo_app(
        tmp_path,
        public_key,
        ui_secret=SecretStr(SECRET),
        ui_oidc_issuer_url=issuer,
        ui_oidc_client_id=client_id,
        ui_oidc_session_token="id_token",
        **settings,
    )
    app.state.token_verifier = TokenVerifier(
        issuer=issuer, audience=audience or client_id, jwks_url=f"{issuer}/jwks"
    )
    return app


@asynccontextmanager
async def browser(app: FastAPI) -> AsyncIterator[UiClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield UiClient(client)


@pytest.fixture
async def ui(tmp_path: Path, dev_keys: tuple[Path, Path], idp: str) -> AsyncIterator[UiClient]:
    async with browser(oidc_app(tmp_path, dev_keys[1], idp)) as client:
        yield client


def provider_of(app: FastAPI) -> OidcSignIn:
    return next(p for p in app.state.ui_kit.providers if isinstance(p, OidcSignIn))


def set_cookies(response: httpx.Response, name: str) -> list[str]:
    return [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]


def sets_a_session(response: httpx.Response) -> bool:
    """A session cookie with a value (clearing one is not setting it)."""
    return any("Max-Age=0" not in h for h in set_cookies(response, SESSION))


def replace_cookie(ui: UiClient, name: str, value: str) -> None:
    ui.http.cookies.delete(name)
    ui.http.cookies.set(name, value, path="/ui")


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def put_user(issuer: str, sub: str, claims: dict[str, Any]) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.put(f"{issuer}/users/{sub}", json=claims)
        assert response.status_code == 204


async def start(ui: UiClient, next_url: str | None = None) -> httpx.Response:
    response = await ui.get("/ui/sign-in/oidc", params={"next": next_url} if next_url else None)
    assert response.status_code == 303, response.text
    return response


async def at_idp(authorization_url: str, *, sub: str | None = None) -> str:
    """The user signs in as `sub` at the provider (or, without one, declines): the URL the
    provider sends the browser back to."""
    form = {"sub": sub} if sub else {"action": "deny"}
    async with httpx.AsyncClient() as client:
        response = await client.post(authorization_url, data=form)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    return location


async def sign_in(ui: UiClient, sub: str, next_url: str | None = None) -> httpx.Response:
    redirect = await start(ui, next_url)
    return await ui.get(await at_idp(redirect.headers["location"], sub=sub))


async def assert_refused(ui: UiClient, response: httpx.Response, status: int, text: str) -> None:
    assert response.status_code == status, response.text
    assert "text/html" in response.headers["content-type"]
    assert "Đăng nhập không thành công" in response.text and text in response.text
    assert not sets_a_session(response)
    assert SESSION not in ui.http.cookies
    assert (await ui.get("/ui/")).status_code == 303, "still signed out"


# --- the sign-in page and the redirect to the provider ---------------------------------


async def test_the_sign_in_page_offers_the_company_account(ui: UiClient) -> None:
    page = await ui.get("/ui/sign-in", params={"next": "/ui/?name=a&b=c"})
    assert page.status_code == 200
    assert "Đăng nhập bằng tài khoản công ty" in page.text
    assert 'href="/ui/sign-in/oidc?next=%2Fui%2F%3Fname%3Da%26b%3Dc"' in page.text
    assert "Đăng nhập thử" in page.text, "dev: the demo users too"
    await ui.get("/ui/lang/en")
    assert "Sign in with your company account" in (await ui.get("/ui/sign-in")).text


async def test_start_redirects_to_the_provider_with_state_nonce_and_pkce(
    ui: UiClient, idp: str
) -> None:
    redirect = await start(ui, "/ui/?name=x")
    location = redirect.headers["location"]
    assert location.startswith(f"{idp}/oauth2/authorize?")
    query = query_of(location)
    assert query["response_type"] == "code" and query["client_id"] == CLIENT
    assert query["redirect_uri"] == CALLBACK and query["scope"] == "openid profile email"
    assert query["code_challenge_method"] == "S256" and query["ui_locales"] == "vi"
    assert redirect.headers["cache-control"] == "no-store"

    (cookie,) = set_cookies(redirect, STATE_COOKIE)
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=lax", "path=/ui", "max-age=600"} <= flags
    pending = PendingSignIn.decode(SECRET, ui.http.cookies[STATE_COOKIE])
    assert pending is not None
    assert (pending.state, pending.nonce) == (query["state"], query["nonce"])
    assert query["code_challenge"] == pkce_challenge(pending.verifier)
    assert pending.verifier not in location, "the verifier stays with the browser"
    assert pending.next == "/ui/?name=x"
    assert 0 < pending.expires_at - time.time() <= 600

    again = await start(ui)
    assert query_of(again.headers["location"])["state"] != query["state"]


def test_pkce_s256_matches_rfc_7636() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636, appendix B
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


# --- the whole way ----------------------------------------------------------------------


async def test_signing_in_with_the_company_account_end_to_end(ui: UiClient, idp: str) -> None:
    await put_user(idp, "emp-0042", MAI)
    bounced = await ui.get("/ui/?name=x")
    assert bounced.headers["location"] == "/ui/sign-in?next=%2Fui%2F%3Fname%3Dx"

    callback = await sign_in(ui, "emp-0042", "/ui/?name=x")
    assert callback.status_code == 303 and callback.headers["location"] == "/ui/?name=x"
    (session,) = set_cookies(callback, SESSION)
    flags = {part.strip().lower() for part in session.split(";")}
    assert {"httponly", "samesite=lax", "path=/ui"} <= flags
    max_age = next(int(f.split("=")[1]) for f in flags if f.startswith("max-age="))
    assert 3500 < max_age <= 3600, "the ID token's lifetime (an hour at the mock)"
    (cleared,) = set_cookies(callback, STATE_COOKIE)
    assert "Max-Age=0" in cleared or "expires=" in cleared.lower()

    token = ui.http.cookies[SESSION]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == idp and claims["sub"] == "emp-0042" and CLIENT in claims["aud"]

    home = await ui.follow(callback)
    assert home.status_code == 200
    assert "Xin chào x" in home.text and "Nguyễn Thị Mai" in home.text
    assert '<span class="who-role">CS</span>' in home.text, "roles come from the token"

    replay = await ui.get(callback.request.url.raw_path.decode())
    assert replay.status_code == 400 and not sets_a_session(replay), "a callback works once"


async def test_roles_come_from_the_providers_token(ui: UiClient, idp: str) -> None:
    await put_user(idp, "emp-0043", {"name": "Trần Văn Bình", "roles": ["sales"]})
    callback = await sign_in(ui, "emp-0043")
    assert callback.status_code == 303 and callback.headers["location"] == "/ui/"
    page = await ui.follow(callback)
    assert page.status_code == 403 and "không có quyền dùng trang này" in page.text
    assert "Trần Văn Bình" in page.text


async def test_a_confidential_client_authenticates_with_its_secret(
    tmp_path: Path, dev_keys: tuple[Path, Path], idp: str
) -> None:
    async with httpx.AsyncClient() as client:
        registered = await client.post(
            f"{idp}/oauth2/clients",
            json={"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "client_secret_basic"},
        )
    client_id, secret = registered.json()["client_id"], registered.json()["client_secret"]
    await put_user(idp, "emp-0044", MAI)

    good = oidc_app(tmp_path, dev_keys[1], idp, client_id=client_id, ui_oidc_client_secret=secret)
    async with browser(good) as ui:
        callback = await sign_in(ui, "emp-0044")
        assert callback.status_code == 303 and sets_a_session(callback)

    wrong = oidc_app(tmp_path, dev_keys[1], idp, client_id=client_id, ui_oidc_client_secret="x")
    async with browser(wrong) as ui:
        refused = await sign_in(ui, "emp-0044")
        await assert_refused(ui, refused, 502, "không hoàn tất việc đăng nhập")


async def test_a_public_client_proves_itself_with_pkce_alone(
    tmp_path: Path, dev_keys: tuple[Path, Path], idp: str
) -> None:
    async with httpx.AsyncClient() as client:
        registered = await client.post(
            f"{idp}/oauth2/clients",
            json={"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"},
        )
    client_id = registered.json()["client_id"]
    await put_user(idp, "emp-0045", MAI)
    async with browser(oidc_app(tmp_path, dev_keys[1], idp, client_id=client_id)) as ui:
        callback = await sign_in(ui, "emp-0045")
        assert callback.status_code == 303 and sets_a_session(callback)


async def test_next_is_kept_and_never_leads_off_the_site(ui: UiClient, idp: str) -> None:
    await put_user(idp, "emp-0046", MAI)
    for evil in ("https://evil.example/", "//evil.example/ui/", "/ui\\..\\x", "/api/thing"):
        ui.http.cookies.clear()
        callback = await sign_in(ui, "emp-0046", evil)
        assert callback.status_code == 303 and callback.headers["location"] == "/ui/", evil
    # Where to go is bound to the sign-in: a `next` added to the callback is ignored.
    ui.http.cookies.clear()
    redirect = await start(ui, "/ui/?name=kept")
    back = await at_idp(redirect.headers["location"], sub="emp-0046")
    callback = await ui.get(back + "&" + urlencode({"next": "https://evil.example/"}))
    assert callback.headers["location"] == "/ui/?name=kept"


# --- refusals: never a session ----------------------------------------------------------


async def test_a_callback_without_the_state_cookie_is_refused(ui: UiClient, idp: str) -> None:
    await put_user(idp, "emp-0050", MAI)
    redirect = await start(ui)
    back = await at_idp(redirect.headers["location"], sub="emp-0050")
    ui.http.cookies.clear()
    await assert_refused(ui, await ui.get(back), 400, "không được bắt đầu từ trình duyệt này")


async def test_a_callback_with_another_state_is_refused(ui: UiClient, idp: str) -> None:
    await put_user(idp, "emp-0051", MAI)
    redirect = await start(ui)
    back = await at_idp(redirect.headers["location"], sub="emp-0051")
    query = query_of(back)
    forged = f"{CALLBACK}?{urlencode({'code': query['code'], 'state': 'x' + query['state']})}"
    await assert_refused(ui, await ui.get(forged), 400, "đã hết hạn")
    missing = f"{CALLBACK}?{urlencode({'code': query['code']})}"
    await start(ui)
    await assert_refused(ui, await ui.get(missing), 400, "đã hết hạn")


async def test_an_expired_sign_in_is_refused(ui: UiClient, idp: str) -> None:
    await put_user(idp, "emp-0052", MAI)
    redirect = await start(ui)
    pending = PendingSignIn.decode(SECRET, ui.http.cookies[STATE_COOKIE])
    assert pending is not None
    stale = PendingSignIn(
        state=pending.state,
        nonce=pending.nonce,
        verifier=pending.verifier,
        next=pending.next,
        expires_at=int(time.time()) - 1,
    )
    replace_cookie(ui, STATE_COOKIE, stale.encode(SECRET))
    back = await at_idp(redirect.headers["location"], sub="emp-0052")
    await assert_refused(ui, await ui.get(back), 400, "đã hết hạn")


async def test_a_tampered_state_cookie_is_refused(ui: UiClient, idp: str) -> None:
    await put_user(idp, "emp-0053", MAI)
    redirect = await start(ui)
    back = await at_idp(redirect.headers["location"], sub="emp-0053")
    value = ui.http.cookies[STATE_COOKIE]
    pending = PendingSignIn.decode(SECRET, value)
    assert pending is not None
    signature = value.rsplit(".", 1)[1]
    fields = {
        "state": pending.state,
        "nonce": pending.nonce,
        "verifier": pending.verifier,
        "next": "https://evil.example/",
        "expires_at": pending.expires_at,
    }
    forgeries = [
        value[:-1] + ("0" if value[-1] != "0" else "1"),  # the signature altered
        encode_signed("another-secret", STATE_PURPOSE, fields),  # signed with another key
        encode_signed(SECRET, "flash", fields),  # our key, but signed as something else
        encode_signed("x", STATE_PURPOSE, fields).rsplit(".", 1)[0] + "." + signature,
        "garbage",
    ]
    for forged in forgeries:
        replace_cookie(ui, STATE_COOKIE, forged)
        await assert_refused(ui, await ui.get(back), 400, "đã hết hạn")


async def test_the_providers_error_is_shown_by_its_code_only(ui: UiClient) -> None:
    redirect = await start(ui)
    back = await at_idp(redirect.headers["location"])  # the user declines
    assert query_of(back)["error"] == "access_denied"
    refused = await ui.get(back)
    await assert_refused(ui, refused, 403, "mã lỗi: access_denied")
    assert "denied the request" not in refused.text, "the provider's free text is not shown"

    redirect = await start(ui)
    state = query_of(redirect.headers["location"])["state"]
    crafted = f"{CALLBACK}?{urlencode({'error': '<b>x</b>', 'state': state})}"
    refused = await ui.get(crafted)
    await assert_refused(ui, refused, 400, "mã lỗi: unknown")
    assert "<b>x</b>" not in refused.text and "&lt;b&gt;" not in refused.text


async def test_a_code_from_another_sign_in_fails_the_nonce_check(ui: UiClient, idp: str) -> None:
    """A callback replayed (or injected) into another sign-in: the state matches the
    browser's cookie, but the ID token carries the other sign-in's nonce."""
    await put_user(idp, "emp-0054", MAI)
    first = await start(ui)
    stolen = query_of(await at_idp(first.headers["location"], sub="emp-0054"))["code"]
    second = await start(ui)
    state = query_of(second.headers["location"])["state"]
    replayed = f"{CALLBACK}?{urlencode({'code': stolen, 'state': state})}"
    await assert_refused(ui, await ui.get(replayed), 400, "Không xác minh được phản hồi")


async def test_a_token_the_service_does_not_accept_gives_a_clear_page(
    tmp_path: Path, dev_keys: tuple[Path, Path], idp: str
) -> None:
    """The ID token is fine for the UI's client, but the service's verifier wants another
    audience (the APIs'): the page says so, the log says why, without personal data."""
    await put_user(idp, "emp-0055", MAI)
    app = oidc_app(tmp_path, dev_keys[1], idp, audience="ims")
    async with browser(app) as ui:
        with structlog.testing.capture_logs() as logs:
            refused = await sign_in(ui, "emp-0055")
        await assert_refused(ui, refused, 403, "không được dịch vụ này chấp nhận")
    (entry,) = [e for e in logs if e["event"] == "ui_oidc_refused"]
    assert entry["reason"] == "session_token_refused" and entry["token_aud"] == [CLIENT]
    assert "audience" in entry["error"].lower()
    assert "mai.nguyen@example.com" not in repr(logs) and "Nguyễn" not in repr(logs)


async def test_a_provider_that_stopped_gives_a_503_page(
    tmp_path: Path, dev_keys: tuple[Path, Path]
) -> None:
    with oidc_provider_mock.run_server_in_thread() as server:
        issuer = f"http://localhost:{server.server_port}"
        await put_user(issuer, "emp-0056", MAI)
        app = oidc_app(tmp_path, dev_keys[1], issuer)
        async with browser(app) as ui:
            redirect = await start(ui)
            back = await at_idp(redirect.headers["location"], sub="emp-0056")
            state_cookie = ui.http.cookies[STATE_COOKIE]
    async with browser(app) as ui:
        ui.http.cookies.set(STATE_COOKIE, state_cookie, path="/ui")
        refused = await ui.get(back)  # discovery is remembered; the token endpoint is gone
        await assert_refused(ui, refused, 503, "không kết nối được dịch vụ đăng nhập")
    # A process that never read the discovery document: the start itself says so.
    async with browser(oidc_app(tmp_path, dev_keys[1], issuer)) as ui:
        page = await ui.get("/ui/sign-in/oidc")
        assert page.status_code == 503 and not set_cookies(page, STATE_COOKIE)
        assert "không kết nối được dịch vụ đăng nhập" in page.text
        assert "Đăng nhập không thành công" in page.text


# --- what only a fake provider can do ---------------------------------------------------


class FakeIdp:
    """An in-process provider whose token endpoint answers whatever a test sets."""

    issuer = "https://idp.invalid/realms/ims"

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.discovery_issuer = self.issuer
        self.token_response = httpx.Response(200, html="<html>maintenance</html>")
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/realms/ims")
        if path == "/.well-known/openid-configuration":
            base = self.issuer
            return httpx.Response(
                200,
                json={
                    "issuer": self.discovery_issuer,
                    "authorization_endpoint": f"{base}/auth",
                    "token_endpoint": f"{base}/token",
                    "jwks_uri": f"{base}/certs",
                },
            )
        if path == "/certs":
            jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return httpx.Response(200, json={"keys": [{**jwk, "kid": "k1", "use": "sig"}]})
        if path == "/token":  # a fresh copy: a response is read once
            answer = self.token_response
            return httpx.Response(
                answer.status_code, headers=answer.headers, content=answer.content
            )
        return httpx.Response(404)

    def id_token(self, nonce: str, key: rsa.RSAPrivateKey | None = None) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT, "sub": "emp-1", "iat": now}
        claims |= {"exp": now + 600, "nonce": nonce}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def fake() -> FakeIdp:
    return FakeIdp()


@asynccontextmanager
async def fake_browser(tmp_path: Path, public_key: Path, fake: FakeIdp) -> AsyncIterator[UiClient]:
    app = build_demo_app(
        tmp_path,
        public_key,
        ui_secret=SecretStr(SECRET),
        ui_oidc_issuer_url=fake.issuer,
        ui_oidc_client_id=CLIENT,
        ui_oidc_client_secret="s3cret",
    )
    provider_of(app).transport = httpx.MockTransport(fake.handle)
    async with browser(app) as ui:
        yield ui


async def callback_for(ui: UiClient) -> tuple[str, str]:
    """A started sign-in's callback URL (the code is the fake's to judge) and nonce."""
    redirect = await start(ui)
    assert redirect.headers["location"].startswith(FakeIdp.issuer + "/auth?")
    pending = PendingSignIn.decode(SECRET, ui.http.cookies[STATE_COOKIE])
    assert pending is not None
    return f"{CALLBACK}?{urlencode({'code': 'c0de', 'state': pending.state})}", pending.nonce


async def test_a_token_endpoint_answering_nonsense_is_refused(
    tmp_path: Path, dev_keys: tuple[Path, Path], fake: FakeIdp
) -> None:
    async with fake_browser(tmp_path, dev_keys[1], fake) as ui:
        for answer in (
            httpx.Response(200, html="<html>maintenance</html>"),
            httpx.Response(200, json=["not", "an", "object"]),
            httpx.Response(200, json={"access_token": "x", "token_type": "Bearer"}),
            httpx.Response(400, json={"error": "invalid_grant"}),
        ):
            fake.token_response = answer
            url, _ = await callback_for(ui)
            await assert_refused(ui, await ui.get(url), 502, "không hoàn tất việc đăng nhập")


async def test_an_id_token_not_signed_by_the_provider_is_refused(
    tmp_path: Path, dev_keys: tuple[Path, Path], fake: FakeIdp
) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with fake_browser(tmp_path, dev_keys[1], fake) as ui:
        url, nonce = await callback_for(ui)
        forged = fake.id_token(nonce, key=other_key)
        fake.token_response = httpx.Response(200, json={"id_token": forged, "access_token": forged})
        await assert_refused(ui, await ui.get(url), 400, "Không xác minh được phản hồi")

        url, nonce = await callback_for(ui)
        unsigned = jwt.encode(
            jwt.decode(fake.id_token(nonce), options={"verify_signature": False}),
            "k" * 32,
            algorithm="HS256",
            headers={"kid": "k1"},
        )
        fake.token_response = httpx.Response(200, json={"id_token": unsigned})
        await assert_refused(ui, await ui.get(url), 400, "Không xác minh được phản hồi")


async def test_the_client_secret_goes_in_the_basic_header(
    tmp_path: Path, dev_keys: tuple[Path, Path], fake: FakeIdp
) -> None:
    async with fake_browser(tmp_path, dev_keys[1], fake) as ui:
        url, nonce = await callback_for(ui)
        pending = PendingSignIn.decode(SECRET, ui.http.cookies[STATE_COOKIE])
        assert pending is not None
        token = fake.id_token(nonce)
        fake.token_response = httpx.Response(200, json={"id_token": token, "access_token": token})
        # The service's verifier trusts the dev issuer, not the fake: no session.
        await assert_refused(ui, await ui.get(url), 403, "không được dịch vụ này chấp nhận")
    (token_call,) = [r for r in fake.requests if r.url.path.endswith("/token")]
    basic = base64.b64encode(f"{CLIENT}:s3cret".encode()).decode()
    assert token_call.headers["authorization"] == f"Basic {basic}"
    form = parse_qs(token_call.content.decode())
    assert form["grant_type"] == ["authorization_code"] and form["code"] == ["c0de"]
    assert form["redirect_uri"] == [CALLBACK] and "client_id" not in form
    assert form["code_verifier"] == [pending.verifier] and 43 <= len(pending.verifier) <= 128


async def test_discovery_naming_another_issuer_is_refused(
    tmp_path: Path, dev_keys: tuple[Path, Path], fake: FakeIdp
) -> None:
    fake.discovery_issuer = "https://evil.example"
    async with fake_browser(tmp_path, dev_keys[1], fake) as ui:
        page = await ui.get("/ui/sign-in/oidc")
        assert page.status_code == 503 and "không kết nối được" in page.text
        assert not set_cookies(page, STATE_COOKIE)


# --- settings ---------------------------------------------------------------------------


def test_oidc_settings_are_checked_at_start_up(tmp_path: Path) -> None:
    prod: dict[str, Any] = {
        "env": "prod",
        "ui_secret": SecretStr("s"),
        "jwt_jwks_url": "https://sso.example/realms/ims/protocol/openid-connect/certs",
    }
    with pytest.raises(ValidationError, match="https URL"):
        DemoUiSettings(
            **prod, ui_oidc_issuer_url="http://sso.example/realms/ims", ui_oidc_client_id="c"
        )
    with pytest.raises(ValidationError, match="needs ui_oidc_client_id"):
        DemoUiSettings(**prod, ui_oidc_issuer_url="https://sso.example/realms/ims")
    with pytest.raises(ValidationError, match="http or https URL"):
        DemoUiSettings(ui_oidc_issuer_url="ftp://sso.example", ui_oidc_client_id="c")
    with pytest.raises(ValidationError, match="include openid"):
        DemoUiSettings(
            ui_oidc_issuer_url="http://localhost:8080",
            ui_oidc_client_id="c",
            ui_oidc_scopes="profile",
        )
    settings = DemoUiSettings(
        **prod,
        ui_oidc_issuer_url="https://sso.example/realms/ims",
        ui_oidc_client_id="ims-cs-ui",
        ui_oidc_client_secret=SecretStr("secret"),
    )
    (provider,) = sign_in_providers(settings)  # prod: the company account only
    assert isinstance(provider, OidcSignIn) and provider.client_secret == "secret"
    assert provider.session_token == "access_token"


def test_dev_offers_both_sign_ins(dev_keys: tuple[Path, Path]) -> None:
    settings = DemoUiSettings(
        jwt_public_key_file=str(dev_keys[1]),
        ui_oidc_issuer_url="http://localhost:8080/realms/ims",
        ui_oidc_client_id="ims-cs-ui",
    )
    providers = sign_in_providers(settings)
    assert [type(p) for p in providers] == [OidcSignIn, DemoSignIn]
    assert isinstance(providers[0], OidcSignIn) and providers[0].client_secret is None
