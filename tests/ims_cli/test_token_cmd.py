"""`ims token`: a JWT the services accept, with the demo user's claims."""

import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from ims_cli.main import main
from shared.auth.demo import DEMO_USERS


def decode(token: str, data: Path) -> dict[str, object]:
    public_key = (data / "dev-issuer" / "public.pem").read_bytes()
    claims: dict[str, object] = jwt.decode(
        token, public_key, algorithms=["RS256"], audience="ims", issuer="ims-dev-issuer"
    )
    return claims


def test_token_verifies_and_carries_the_demo_claims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IMS_DATA_DIR", str(tmp_path))

    assert main(["token", "sales1"]) == 0

    token = capsys.readouterr().out.strip()
    claims = decode(token, tmp_path)
    user = DEMO_USERS["sales1"]
    assert claims["sub"] == user.employee_id
    assert claims["name"] == user.name
    assert claims["roles"] == list(user.roles)
    assert claims["sales_unit"] == user.sales_unit
    assert int(claims["exp"]) - int(claims["iat"]) == 12 * 3600  # type: ignore[call-overload]
    assert jwt.get_unverified_header(token)["alg"] == "RS256"


def test_ttl_and_a_stable_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IMS_DATA_DIR", str(tmp_path))
    assert main(["token", "cs1", "--ttl", "60"]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["token", "admin1"]) == 0
    second = capsys.readouterr().out.strip()

    # Both verify with the one key pair created on first use.
    claims = decode(first, tmp_path)
    assert claims["roles"] == ["cs"]
    assert int(claims["exp"]) <= time.time() + 61  # type: ignore[call-overload]
    assert decode(second, tmp_path)["roles"] == ["admin"]


def test_unknown_user_lists_the_valid_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IMS_DATA_DIR", str(tmp_path))

    assert main(["token", "nobody"]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "nobody" in captured.err
    for name in DEMO_USERS:
        assert name in captured.err


def test_the_installed_command(tmp_path: Path) -> None:
    ims = Path(sys.executable).with_name("ims")
    # `make` installs the console script (CONTRACT.md §1); its absence is a packaging bug.
    assert ims.exists(), f"{ims} is missing: the ims-cli package's console script was not installed"

    result = subprocess.run(
        [str(ims), "token", "accountant1"],
        capture_output=True,
        text=True,
        env={"IMS_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    assert decode(result.stdout.strip(), tmp_path)["sub"] == DEMO_USERS["accountant1"].employee_id
