"""The local stack's dev issuer: an RS256 key pair on disk and tokens for the demo users.

Only the local stack and tests use this; production verifies tokens from the company's
OIDC provider through its JWKS URL.
"""

import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth.demo import DEMO_USERS

DEV_ISSUER = "ims-dev-issuer"
DEV_AUDIENCE = "ims"
KEY_ID = "ims-dev-1"


class UnknownDemoUserError(LookupError):
    pass


def ensure_keypair(directory: Path) -> tuple[Path, Path]:
    """Create (once) and return the paths of the dev private and public PEM keys."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / "private.pem", directory / "public.pem"
    if not private_path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        private_path.chmod(0o600)
        public_path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return private_path, public_path


def issue_token(
    private_key_pem: bytes,
    *,
    username: str,
    ttl_seconds: int = 12 * 3600,
    issuer: str = DEV_ISSUER,
    audience: str = DEV_AUDIENCE,
    now: float | None = None,
) -> str:
    """Sign a JWT for a demo user with the claims of CONTRACT.md §2."""
    user = DEMO_USERS.get(username)
    if user is None:
        raise UnknownDemoUserError(username)
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": user.employee_id,
        "name": user.name,
        "preferred_username": user.username,
        "roles": list(user.roles),
        "sales_unit": user.sales_unit,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    return jwt.encode(claims, private_key_pem, algorithm="RS256", headers={"kid": KEY_ID})
