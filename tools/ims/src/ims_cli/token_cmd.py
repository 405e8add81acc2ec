"""`ims token USERNAME`: a bearer token for a demo user, signed by the local dev issuer."""

import sys
from pathlib import Path
from typing import TextIO

from ims_cli.paths import dev_issuer_dir
from shared.auth.demo import DEMO_USERS
from shared.auth.dev_issuer import UnknownDemoUserError, ensure_keypair, issue_token

EXIT_UNKNOWN_USER = 2


def run_token(
    username: str,
    *,
    ttl_seconds: int,
    data: Path,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the JWT for `username`; exit code 2 (and the valid names) for an unknown user."""
    out = out or sys.stdout
    err = err or sys.stderr
    private_path, _ = ensure_keypair(dev_issuer_dir(data))
    try:
        token = issue_token(private_path.read_bytes(), username=username, ttl_seconds=ttl_seconds)
    except UnknownDemoUserError:
        names = ", ".join(sorted(DEMO_USERS))
        print(f"ims token: unknown demo user {username!r}; valid names: {names}", file=err)
        return EXIT_UNKNOWN_USER
    print(token, file=out)
    return 0
