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
