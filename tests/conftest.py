"""Root conftest: registers the suite's shared fixture plugins."""

import pytest

pytest_plugins = [
    "tests.fixtures.infra",
    "tests.fixtures.auth",
    "tests.fixtures.apps",
    "tests.fixtures.misa_simulator",
    "tests.fixtures.s3",
    "tests.fixtures.browser",
    "tests.fixtures.log_scan",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `make test`'s parallel workers (`--dist loadgroup`), the e2e tests share one
    worker: they share one `ims up` stack per session, which takes a minute to start."""
    for item in items:
        if item.nodeid.startswith("tests/e2e/"):
            item.add_marker(pytest.mark.xdist_group("e2e-stack"))
