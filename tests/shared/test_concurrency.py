import pytest

from shared.concurrency import ensure_current, etag, if_match_versions
from shared.errors import ProblemError


def test_etag_and_if_match_round_trip() -> None:
    assert if_match_versions(etag(7)) == {7}
    assert if_match_versions('W/"7", "8"') == {7, 8}
    assert if_match_versions("*") is None
    assert if_match_versions("garbage") == frozenset()


@pytest.mark.parametrize(("header", "status"), [(None, 428), ('"6"', 412), ("garbage", 412)])
def test_missing_or_stale_preconditions(header: str | None, status: int) -> None:
    with pytest.raises(ProblemError) as info:
        ensure_current(if_match_versions(header), 7, what="item")
    assert info.value.status == status


@pytest.mark.parametrize("header", ['"7"', 'W/"7"', '"5", "7"', "*"])
def test_current_preconditions_pass(header: str) -> None:
    ensure_current(if_match_versions(header), 7, what="item")
