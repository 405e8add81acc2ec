"""``python -m misa_simulator``: serve the simulator on MISA_SIM_HOST:MISA_SIM_PORT."""

from __future__ import annotations

import logging

import uvicorn

from misa_simulator.app import create_app
from misa_simulator.settings import Settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    app = create_app(settings)
    logging.getLogger(__name__).info(
        "MISA simulator on http://%s:%d, state in %s, duplicate codes: %s",
        settings.host,
        settings.port,
        settings.state_file,
        settings.duplicate_code_mode,
    )
    # A held "timeout" answer must not keep a stopping simulator alive for 30 s.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
