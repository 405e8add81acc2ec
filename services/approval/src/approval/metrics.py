"""Approval's gauges for /metrics: the CS queue (how many reviews wait, the oldest's age)."""

from sqlalchemy import func, select

from approval.models import Review
from shared import metrics
from shared.runtime import ServiceRuntime

KINDS = ("new", "change")


def pending_reviews(runtime: ServiceRuntime) -> metrics.Refresher:
    async def refresh() -> None:
        async with runtime.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(
                        Review.kind,
                        func.count(),
                        func.extract("epoch", func.now() - func.min(Review.submitted_at)),
                    )
                    .where(Review.status == "pending")
                    .group_by(Review.kind)
                )
            ).all()
        counts = {kind: 0 for kind in KINDS}
        oldest = 0.0
        for kind, count, age in rows:
            counts[kind] = count
            oldest = max(oldest, float(age or 0))
        for kind, count in counts.items():
            metrics.REVIEWS_PENDING.labels(kind).set(count)
        metrics.REVIEWS_OLDEST_AGE.set(oldest)

    return refresh
