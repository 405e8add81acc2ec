"""Topic names of CONTRACT.md §8."""

CUSTOMER_EVENTS = "ims.customer.events.v1"
APPROVAL_EVENTS = "ims.approval.events.v1"
MISA_EVENTS = "ims.misa.events.v1"
REFERENCE_EVENTS = "ims.reference.events.v1"

ALL_TOPICS: tuple[str, ...] = (CUSTOMER_EVENTS, APPROVAL_EVENTS, MISA_EVENTS, REFERENCE_EVENTS)


def dlq(topic: str) -> str:
    """The dead-letter companion of a topic."""
    return f"{topic}.dlq"


def all_topics_with_dlq() -> list[str]:
    return [t for topic in ALL_TOPICS for t in (topic, dlq(topic))]


#: Which services consume each topic (each as its own consumer group, named after it).
CONSUMERS: dict[str, tuple[str, ...]] = {
    CUSTOMER_EVENTS: ("approval", "misa_sync"),
    APPROVAL_EVENTS: ("customer",),
    MISA_EVENTS: ("customer",),
    REFERENCE_EVENTS: ("customer", "approval"),
}
