"""Issue 8's security matrix, the token half: every operation of every service that needs a
token answers 401 problem+json to every forged, stale or misdirected token (CONTRACT.md §2).

The operations come from each app's own OpenAPI document, checked against its routes: every
documented operation but the health probes depends on `current_principal`, and every route
left out of the document is the docs or the server-rendered UI (its own session checks).

The apps point at a database nobody listens on: a request that reached the database before
its token was checked would answer 503, not 401.
"""

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from shared.auth.dependencies import current_principal
from shared.auth.dev_issuer import DEV_AUDIENCE, DEV_ISSUER, KEY_ID
from shared.errors import PROBLEM_JSON
from tests.fixtures.apps import app_client, build_app

SERVICES = ("customer", "approval", "misa_sync", "reference")
#: Nothing listens on port 1: any database access fails at once.
NO_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:1/none"
PUBLIC_PATHS = {"/healthz", "/readyz"}
#: Routes outside the OpenAPI document: FastAPI's docs and the UIs (cookie sessions, tested
#: with the UIs), which are not bearer-token routes.
#: Routes outside the OpenAPI document: its own pages, the UIs (session cookies, tested in
#: tests/security/test_ui_attacks.py), the AsyncAPI document and /metrics (public
#: contracts; /metrics takes its own scrape token, tests/shared/test_metrics.py).
UNDOCUMENTED_PREFIXES = ("/openapi.json", "/docs", "/redoc", "/ui", "/asyncapi.json", "/metrics")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as documented, placeholders filled
    has_body: bool


def _calls(dependant: Dependant) -> Iterator[Any]:
    yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _fill(template: str, parameters: list[dict[str, Any]]) -> str:
    path = template
    for parameter in parameters:
        if parameter.get("in") != "path":
            continue
        schema = parameter.get("schema", {})
        value = str(uuid.uuid4()) if schema.get("format") == "uuid" else "01"
        path = path.replace("{" + parameter["name"] + "}", value)
    return path


def token_operations(app: FastAPI) -> list[Operation]:
    """The operations that need a token, from the OpenAPI document, checked against routes."""
    document = app.openapi()
    guarded: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        methods = getattr(context, "methods", None)
        if methods is None:  # a mount (/ui/static)
            assert context.path.startswith("/ui"), context.path
            continue
        if not context.include_in_schema:
            assert context.path.startswith(UNDOCUMENTED_PREFIXES), context.path
            continue
        if current_principal in set(_calls(context.dependant)):
            guarded |= {(m.lower(), context.path) for m in methods}
    operations = []
    for path, items in document["paths"].items():
        for method, operation in items.items():
            if path in PUBLIC_PATHS:
                assert (method, path) not in guarded
                continue
            assert (method, path) in guarded, f"{method.upper()} {path} checks no token"
            assert "401" in operation["responses"], f"{method.upper()} {path} documents no 401"
            operations.append(
                Operation(
                    method.upper(),
                    _fill(path, operation.get("parameters", [])),
                    "requestBody" in operation,
                )
            )
    return operations


# --- the forged tokens -------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": "NV099",
        "name": "Đỗ Quang Huy",
        "preferred_username": "admin1",
        "roles": ["admin"],
        "sales_unit": "HO",
        "iat": now,
        "exp": now + 600,
        **overrides,
    }
    return {k: v for k, v in claims.items() if v is not None}


def _unsigned(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


@dataclass(frozen=True)
class Keys:
    private_pem: bytes
    public_pem: bytes
    other_private_pem: bytes

    def sign(self, claims: dict[str, Any], key: bytes | None = None) -> str:
        return jwt.encode(
            claims, key or self.private_pem, algorithm="RS256", headers={"kid": KEY_ID}
        )


def _tampered(keys: Keys) -> str:
    """A real token for sales1 with the payload rewritten to admin, the signature kept."""
    header, _, signature = keys.sign(_claims(sub="NV001", roles=["sales"])).split(".")
    payload = _b64(json.dumps(_claims(sub="NV001", roles=["admin"])).encode())
    return f"{header}.{payload}.{signature}"


#: name -> the Authorization header value (None: no header at all). The verifier allows
#: 30 s of clock skew, so "expired" and "not yet valid" are well beyond it. PyJWT checks
#: `nbf` whenever the token has one (verify_nbf is on by default).
ATTACKS: dict[str, Callable[[Keys], str | None]] = {
    "no token": lambda k: None,
    "not a bearer scheme": lambda k: "Basic YWRtaW4xOmFkbWlu",
    "empty bearer": lambda k: "Bearer ",
    "garbage": lambda k: "Bearer not.a.jwt",
    "alg none": lambda k: "Bearer " + _unsigned({"alg": "none", "typ": "JWT"}, _claims(), None),
    "alg None spelled oddly": lambda k: (
        "Bearer " + _unsigned({"alg": "nOnE", "typ": "JWT"}, _claims(), None)
    ),
    "HS256 with the public key as secret": lambda k: (
        "Bearer "
        + _unsigned({"alg": "HS256", "typ": "JWT", "kid": KEY_ID}, _claims(), k.public_pem)
    ),
    "signed by another key": lambda k: "Bearer " + k.sign(_claims(), k.other_private_pem),
    "expired": lambda k: (
        "Bearer " + k.sign(_claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 120))
    ),
    "not yet valid": lambda k: "Bearer " + k.sign(_claims(nbf=int(time.time()) + 3600)),
    "wrong aud": lambda k: "Bearer " + k.sign(_claims(aud="another-app")),
    "no aud": lambda k: "Bearer " + k.sign(_claims(aud=None)),
    "wrong iss": lambda k: "Bearer " + k.sign(_claims(iss="https://evil.example")),
    "no exp": lambda k: "Bearer " + k.sign(_claims(exp=None)),
    "no sub": lambda k: "Bearer " + k.sign(_claims(sub=None)),
    "tampered claims": lambda k: "Bearer " + _tampered(k),
    "roles a string": lambda k: "Bearer " + k.sign(_claims(roles="admin")),
    "roles not strings": lambda k: "Bearer " + k.sign(_claims(roles=[{"role": "admin"}])),
}


@pytest.fixture(scope="module")
def keys(dev_keys: tuple[Path, Path]) -> Keys:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Keys(
        private_pem=dev_keys[0].read_bytes(),
        public_pem=dev_keys[1].read_bytes(),
        other_private_pem=other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@pytest.fixture(params=SERVICES)
async def service(
    request: pytest.FixtureRequest, dev_keys: tuple[Path, Path]
) -> AsyncIterator[tuple[list[Operation], httpx.AsyncClient]]:
    app = build_app(request.param, NO_DATABASE, dev_keys[1])
    async with app_client(app) as client:
        yield token_operations(app), client


async def _send(
    client: httpx.AsyncClient, op: Operation, authorization: str | None, body: bytes | None
) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return await client.request(op.method, op.path, headers=headers, content=body)


def _refused(answer: httpx.Response) -> str | None:
    """Why `answer` is not a 401 problem (None when it is one)."""
    if answer.status_code != 401:
        return f"{answer.status_code} {answer.text[:120]}"
    if answer.headers.get("content-type") != PROBLEM_JSON:
        return f"401 as {answer.headers.get('content-type')}"
    problem = answer.json()
    if problem.get("status") != 401 or not str(problem.get("type", "")).endswith("unauthorized"):
        return f"401 with body {problem}"
    return None


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_every_operation_refuses_the_attack_with_401(
    service: tuple[list[Operation], httpx.AsyncClient], keys: Keys, attack: str
) -> None:
    operations, client = service
    authorization = ATTACKS[attack](keys)
    failures = []
    for op in operations:
        # With no body, and (where the operation takes one) with a JSON body that does not
        # parse: the token is checked before the body is read.
        for body in (None, b"{not json") if op.has_body else (None,):
            why = _refused(await _send(client, op, authorization, body))
            if why:
                failures.append(f"{op.method} {op.path} body={body!r}: {why}")
    assert operations
    assert not failures, "\n".join(failures)


async def test_a_valid_token_passes_the_same_gate(
    service: tuple[list[Operation], httpx.AsyncClient], keys: Keys
) -> None:
    """The harness is sound: the same requests with a good admin token are not 401s."""
    operations, client = service
    authorization = "Bearer " + keys.sign(_claims())
    for op in operations:
        answer = await _send(client, op, authorization, None)
        assert answer.status_code != 401, f"{op.method} {op.path}: {answer.text[:200]}"
