"""`python -m <service> migrate|serve`: the same entry point for every service."""

import argparse
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from shared.config import ServiceSettings
from shared.logging import configure_logging
from shared.migrations import upgrade_to_head


def service_main(
    *,
    package: str,
    load_settings: Callable[[], ServiceSettings],
    create_app: Callable[[ServiceSettings], FastAPI],
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {package}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the database migrations (alembic upgrade head)")
    sub.add_parser("serve", help="run the HTTP API, the outbox relay and the consumers")
    args = parser.parse_args(argv)

    settings = load_settings()
    configure_logging(json=settings.json_logs, level=settings.log_level, service=package)
    if args.command == "migrate":
        upgrade_to_head(package, settings.database_url)
        return
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
    )
