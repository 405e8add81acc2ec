"""misa_sync's gauges for /metrics: links by state (pending ones are MISA's backlog) and
whether the circuit breaker is failing MISA calls fast."""

from sqlalchemy import func, select

from misa_sync.misa_client import MisaClient
from misa_sync.models import MisaLink
from misa_sync.resilience import CircuitState
from shared import metrics
from shared.runtime import ServiceRuntime

STATES = ("pending", "synced", "failed")


def links_by_state(runtime: ServiceRuntime) -> metrics.Refresher:
    async def refresh() -> None:
        async with runtime.sessionmaker() as session:
            rows = (
                await session.execute(select(MisaLink.state, func.count()).group_by(MisaLink.state))
            ).all()
        counts = dict.fromkeys(STATES, 0) | {state: count for state, count in rows}
        for state, count in counts.items():
            metrics.MISA_LINKS.labels(state).set(count)

    return refresh


def circuit_state(client: MisaClient) -> metrics.Refresher:
    """Read at scrape: the state may have changed since the last call (a cool-down ended)."""

    async def refresh() -> None:
        metrics.MISA_CIRCUIT_OPEN.set(client.circuit.state is not CircuitState.CLOSED)

    return refresh
