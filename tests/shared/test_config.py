from typing import ClassVar

import pytest
from pydantic import SecretStr, ValidationError

from shared.config import ServiceSettings


class DemoSettings(ServiceSettings):
    dev_secret_defaults: ClassVar[dict[str, str]] = {"api_secret": "dev-secret"}
    api_secret: SecretStr = SecretStr("dev-secret")


def test_dev_accepts_dev_secrets() -> None:
    assert DemoSettings(env="dev").api_secret.get_secret_value() == "dev-secret"


@pytest.mark.parametrize("env", ["test", "prod"])
def test_dev_secret_is_refused_outside_dev(env: str) -> None:
    with pytest.raises(ValidationError, match="api_secret still has its development default"):
        DemoSettings(env=env, jwt_public_key="k")  # type: ignore[arg-type]


def test_prod_needs_a_way_to_verify_tokens() -> None:
    with pytest.raises(ValidationError, match="jwt_jwks_url"):
        DemoSettings(env="prod", api_secret=SecretStr("real"))  # type: ignore[arg-type]
    DemoSettings(env="prod", api_secret=SecretStr("real"), jwt_jwks_url="https://idp/jwks")  # type: ignore[arg-type]


def test_settings_read_their_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    from customer.settings import CustomerSettings

    monkeypatch.setenv("CUSTOMER_HTTP_PORT", "9101")
    monkeypatch.setenv("APPROVAL_HTTP_PORT", "9102")
    assert CustomerSettings().http_port == 9101


def test_parallel_partitions_must_fit_in_the_pool() -> None:
    """Each partition applied side by side holds a pool connection (ADR 0016)."""
    assert ServiceSettings(db_pool_size=5, consumer_parallel_partitions=5)
    with pytest.raises(ValidationError, match="consumer_parallel_partitions must not exceed"):
        ServiceSettings(db_pool_size=2, consumer_parallel_partitions=3)
    with pytest.raises(ValidationError, match="consumer_parallel_partitions"):
        ServiceSettings(consumer_parallel_partitions=0)
