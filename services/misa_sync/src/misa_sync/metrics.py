"""misa_sync's gauges for /metrics: links by state (pending ones are MISA's backlog)."""

from sqlalchemy import func, select

from misa_sync.models import MisaLink
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
