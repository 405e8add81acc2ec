"""Root conftest: registers the suite's shared fixture plugins."""

pytest_plugins = [
    "tests.fixtures.infra",
    "tests.fixtures.auth",
    "tests.fixtures.apps",
    "tests.fixtures.misa_simulator",
    "tests.fixtures.s3",
    "tests.fixtures.browser",
    "tests.fixtures.log_scan",
]
