"""JWT verification and role checks (CONTRACT.md §2)."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, FastAPI

from shared.auth.dependencies import CurrentPrincipal, require_roles
from shared.auth.dev_issuer import DEV_AUDIENCE, DEV_ISSUER, UnknownDemoUserError, issue_token
from shared.auth.principal import Principal
from shared.auth.verify import InvalidTokenError, TokenVerifier
from shared.errors import install_error_handlers


@pytest.fixture(scope="module")
def verifier(dev_keys: tuple[Path, Path]) -> TokenVerifier:
    return TokenVerifier(
        issuer=DEV_ISSUER, audience=DEV_AUDIENCE, public_key=dev_keys[1].read_text()
    )


def signed(dev_keys: tuple[Path, Path], **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": "NV001",
        "name": "A",
        "roles": ["sales"],
        "sales_unit": "HN-T1",
        "iat": now,
        "exp": now + 600,
        **overrides,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, dev_keys[0].read_bytes(), algorithm="RS256")


def test_a_dev_token_carries_the_demo_users_claims(
    verifier: TokenVerifier, token_for: Callable[[str], str]
) -> None:
    principal = verifier.verify(token_for("manager1"))
    assert principal == Principal("NV010", "Lê Văn Cường", frozenset({"sales_manager"}), "MB-HN")


def test_unknown_demo_user(dev_keys: tuple[Path, Path]) -> None:
    with pytest.raises(UnknownDemoUserError):
        issue_token(dev_keys[0].read_bytes(), username="nobody")


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"iss": "someone-else"}, "issuer"),
        ({"aud": "another-app"}, "audience"),
        ({"exp": None}, "exp"),
        ({"sub": None}, "sub"),
        ({"roles": "admin"}, "roles"),
    ],
)
def test_bad_claims_are_refused(
    verifier: TokenVerifier, dev_keys: tuple[Path, Path], overrides: dict[str, Any], why: str
) -> None:
    with pytest.raises(InvalidTokenError):
        verifier.verify(signed(dev_keys, **overrides))


def test_a_token_signed_by_another_key_is_refused(verifier: TokenVerifier) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "sub": "x",
            "exp": int(time.time()) + 60,
            "roles": ["admin"],
        },
        other,
        algorithm="RS256",
    )
    with pytest.raises(InvalidTokenError):
        verifier.verify(forged)


def test_hs256_and_none_algorithms_are_refused(
    verifier: TokenVerifier, dev_keys: tuple[Path, Path]
) -> None:
    claims = {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": "x",
        "exp": int(time.time()) + 60,
        "roles": ["admin"],
    }

    # The classic confusion attack: HMAC-signed with the public key as the secret.
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    mac = hmac.new(dev_keys[1].read_bytes(), signing_input.encode(), hashlib.sha256).digest()
    for token in (
        f"{signing_input}.{b64(mac)}",
        jwt.encode(claims, None, algorithm="none"),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidTokenError):
            verifier.verify(token)


def test_es256_keys_are_accepted() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    v = TokenVerifier(issuer="i", audience="a", public_key=public)
    token = jwt.encode(
        {"iss": "i", "aud": "a", "sub": "NV9", "exp": int(time.time()) + 60, "roles": ["cs"]},
        key,
        algorithm="ES256",
    )
    assert v.verify(token).roles == frozenset({"cs"})


async def test_dependencies_answer_401_and_403_as_problems(
    verifier: TokenVerifier, token_for: Callable[[str], str]
) -> None:
    app = FastAPI()
    app.state.token_verifier = verifier
    install_error_handlers(app)

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str]:
        return {"sub": principal.employee_id}

    @app.post("/decide")
    async def decide(_: Annotated[Principal, Depends(require_roles("cs"))]) -> dict[str, bool]:
        return {"ok": True}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        assert (await client.get("/me")).status_code == 401
        assert (await client.get("/me", headers={"Authorization": "Basic abc"})).status_code == 401
        assert (
            await client.get("/me", headers={"Authorization": f"Bearer {token_for('sales1')}"})
        ).json() == {"sub": "NV001"}
        denied = await client.post(
            "/decide", headers={"Authorization": f"Bearer {token_for('sales1')}"}
        )
        assert (
            denied.status_code == 403
            and denied.headers["content-type"] == "application/problem+json"
        )
        assert (
            await client.post("/decide", headers={"Authorization": f"Bearer {token_for('cs1')}"})
        ).status_code == 200
        assert (
            await client.post("/decide", headers={"Authorization": f"Bearer {token_for('admin1')}"})
        ).status_code == 200


async def test_keys_can_come_from_a_jwks_url(
    dev_keys: tuple[Path, Path], token_for: Callable[[str], str]
) -> None:
    """Production verifies against the OIDC provider's JWKS; here a local server serves it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from jwt.algorithms import RSAAlgorithm

    public = serialization.load_pem_public_key(dev_keys[1].read_bytes())
    jwk = json.loads(RSAAlgorithm.to_jwk(public))  # type: ignore[arg-type]
    body = json.dumps(
        {"keys": [{**jwk, "kid": "ims-dev-1", "use": "sig", "alg": "RS256"}]}
    ).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/certs"
        verifier = TokenVerifier(issuer=DEV_ISSUER, audience=DEV_AUDIENCE, jwks_url=url)
        principal = await verifier.verify_async(token_for("cs1"))
        assert principal.roles == frozenset({"cs"})
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode(
            {"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": "x", "exp": int(time.time()) + 60},
            other,
            algorithm="RS256",
            headers={"kid": "ims-dev-1"},
        )
        with pytest.raises(InvalidTokenError):
            await verifier.verify_async(forged)
    finally:
        server.shutdown()


def test_a_verified_token_is_remembered_until_it_expires(
    dev_keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = TokenVerifier(
        issuer=DEV_ISSUER, audience=DEV_AUDIENCE, public_key=dev_keys[1].read_text(), leeway_s=0
    )
    now = time.time()
    token = signed(dev_keys, iat=int(now), exp=int(now) + 60)
    checks: list[str] = []
    original = verifier._verify_signature

    def counting(t: str) -> tuple[Principal, float]:
        checks.append(t)
        return original(t)

    monkeypatch.setattr(verifier, "_verify_signature", counting)
    first = verifier.verify(token)
    assert verifier.verify(token) == first
    assert len(checks) == 1  # the second call was answered from memory
    # A different token (one character changed) is checked, and refused, on its own.
    with pytest.raises(InvalidTokenError):
        verifier.verify(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
    # Past its expiry the remembered answer is gone: the token is checked again (and
    # PyJWT, on its own clock, decides; test_bad_claims_are_refused covers refusal).
    monkeypatch.setattr(time, "time", lambda: now + 120)
    verifier.verify(token)
    assert len(checks) == 3


def test_remembered_tokens_are_bounded(
    dev_keys: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shared.auth.verify as verify_module

    monkeypatch.setattr(verify_module, "CACHE_MAX_TOKENS", 3)
    verifier = TokenVerifier(
        issuer=DEV_ISSUER, audience=DEV_AUDIENCE, public_key=dev_keys[1].read_text()
    )
    tokens = [signed(dev_keys, sub=f"NV{i:03d}") for i in range(5)]
    for token in tokens:
        verifier.verify(token)
    assert list(verifier._verified) == tokens[2:]  # the oldest went first
