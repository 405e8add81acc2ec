"""The FastAPI application: MISA's API plus the simulator's own controls."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from misa_simulator import api, sim_controls
from misa_simulator.envelope import ErrorCode, error
from misa_simulator.runtime import SimulatorRuntime
from misa_simulator.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; loads (or creates) the state file straight away."""
    settings = settings or Settings.from_env()
    runtime = SimulatorRuntime(settings)
    runtime.store.load()

    app = FastAPI(
        title="MISA AMIS ACT Open API simulator",
        description="Speaks MISA's ACT Open API for the local stack and tests; "
        "controls under /_sim/.",
        version="1",
    )
    app.state.runtime = runtime
    app.include_router(api.build_router())
    app.include_router(sim_controls.build_router())

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug still answers in MISA's shape (its "Exception" code), and is logged.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error(ErrorCode.EXCEPTION, "Internal server error", status_code=500)

    return app
