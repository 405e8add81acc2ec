"""Each service's migrations build exactly its models' schema, and go down and up again."""

import pytest
from alembic import command

from shared.migrations import alembic_config
from tests.fixtures.infra import SERVICES, create_database


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_models_and_round_trip(service: str, run_id: str) -> None:
    url = create_database(f"ims_test_migr_{service}_{run_id}")
    cfg = alembic_config(service, url)
    command.upgrade(cfg, "head")
    command.check(cfg)  # raises when the models and the migrated schema differ
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
    command.check(cfg)
