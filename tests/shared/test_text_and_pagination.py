import uuid
from datetime import UTC, datetime

import pytest

from shared.errors import ProblemError
from shared.pagination import decode_cursor, encode_cursor
from shared.text import fold


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Tạp hóa Đức Thịnh", "tap hoa duc thinh"),
        ("  CÔNG TY   TNHH  ", "cong ty tnhh"),
        ("Thành phố Hồ Chí Minh", "thanh pho ho chi minh"),
        (None, ""),
    ],
)
def test_fold_ignores_diacritics_case_and_spacing(raw: str | None, folded: str) -> None:
    assert fold(raw) == folded


def test_cursor_round_trip() -> None:
    at, item = datetime(2026, 11, 1, 12, 0, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(at, item)) == (at, item)


@pytest.mark.parametrize("bad", ["", "abc", "!!!", "W10", "WyJ4IiwgInkiXQ"])
def test_a_cursor_we_did_not_issue_is_a_400(bad: str) -> None:
    with pytest.raises(ProblemError) as info:
        decode_cursor(bad)
    assert info.value.status == 400
