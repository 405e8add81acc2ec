"""deploy/README.md, the runbook: it covers what issue 9 asks for, and every file it
points the operator at exists."""

import re

import pytest

from shared.events.topics import ALL_TOPICS
from tests.deploy.helpers import DEPLOY, REPO

RUNBOOK = (DEPLOY / "README.md").read_text()


@pytest.mark.parametrize(
    "heading",
    [
        "## Images",
        "## Single host with Docker Compose",
        "### First install",
        "### Upgrade with migrations",
        "### Scaling each service",
        "### Replaying a topic into a new consumer",
        "### Draining a dead-letter queue",
        "### Rotating MISA credentials",
        "### Backup and restore",
    ],
)
def test_runbook_covers(heading: str) -> None:
    assert re.search(rf"^{re.escape(heading)}$", RUNBOOK, re.M)


def test_paths_it_names_exist() -> None:
    named = set(re.findall(r"(?<![\w/])deploy/[\w./-]*[\w]", RUNBOOK))
    named |= {
        "deploy/" + p
        for p in re.findall(r"`((?:docker|compose|k8s|scripts|grafana)/[\w./-]*[\w])`", RUNBOOK)
    }
    # (`deploy/ims-customer` is kubectl's name of a Deployment, not a path)
    named = {p for p in named if not p.endswith(".env") and not p.startswith("deploy/ims-")}
    assert "deploy/scripts/dlq.py" in named
    for path in sorted(named):
        assert (REPO / path).exists(), path


def test_topics_listed() -> None:
    for topic in ALL_TOPICS:
        assert f"`{topic}`" in RUNBOOK


def section(heading: str) -> str:
    """The runbook's text under `heading`, up to the next heading of its level or above."""
    depth = len(heading.split(" ", 1)[0])
    lines = RUNBOOK.splitlines()
    start = lines.index(heading)
    fenced = False
    for end in range(start + 1, len(lines)):
        line = lines[end]
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(rf"#{{1,{depth}}} ", line):
            return "\n".join(lines[start:end])
    return "\n".join(lines[start:])


@pytest.mark.parametrize(
    "heading", ["### Replaying a topic into a new consumer", "### Backup and restore"]
)
def test_what_is_scaled_to_zero_is_scaled_up_again(heading: str) -> None:
    # The Deployments set no `replicas` (the HPA owns it): re-applying the overlay does not
    # bring a Deployment back from 0, and neither does its HPA.
    text = section(heading)
    stopped = re.findall(r"kubectl -n ims scale ((?:deploy/[\w-]+ )+)--replicas=0\b", text)
    assert stopped
    for deployment in " ".join(stopped).split():
        assert re.search(rf"scale {deployment} --replicas=(?!0\b)\S+", text), deployment


def test_dead_letter_reasons_are_the_ones_the_consumer_writes() -> None:
    text = section("### Draining a dead-letter queue")
    consumer = (REPO / "shared/src/shared/messaging/consumer.py").read_text()
    assert 'f"malformed: {exc}"' in consumer and "`malformed: " in text
    assert "MalformedEventError" not in text, "x-error says `malformed: …`, not the type"
    # a database that is down is waited for, never dead-lettered
    assert "OperationalError" not in text
    assert "--only-error" in text and "first dead letter it passed over" in text


def test_first_boot_checks_the_token_and_the_metrics() -> None:
    for claim in ("sub", "roles", "sales_unit", "aud"):
        assert f"`{claim}`" in RUNBOOK, claim
    assert "base64.urlsafe_b64decode" in RUNBOOK
    metrics = section("## Metrics and dashboards")
    assert "`<PREFIX>METRICS_TOKEN`" in metrics and "404" in metrics
