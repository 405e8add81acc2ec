"""Message catalogs (JSON per language) and the formats the UI shows.

Every visible string goes through a catalog: the kit's own (`shared/ui/messages/`) merged
with the application's, the application's keys winning. Messages are plain text; the
templates escape them like any other value, so a catalog can never inject markup.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Lang = Literal["vi", "en"]
LANGS: tuple[Lang, ...] = get_args(Lang)
DEFAULT_LANG: Lang = "vi"
LANG_COOKIE = "lang"
KIT_MESSAGES = Path(__file__).parent / "messages"

try:
    VN_TZ: timezone | ZoneInfo = ZoneInfo("Asia/Ho_Chi_Minh")
except ZoneInfoNotFoundError:  # no tzdata on the host: Viet Nam keeps UTC+7, without DST
    VN_TZ = timezone(timedelta(hours=7), "ICT")


def as_lang(value: str | None) -> Lang:
    for lang in LANGS:
        if value == lang:
            return lang
    return DEFAULT_LANG


def load_catalogs(*directories: Path) -> dict[Lang, dict[str, str]]:
    """{lang: {key: message}} from `<dir>/<lang>.json`; later directories override."""
    catalogs: dict[Lang, dict[str, str]] = {lang: {} for lang in LANGS}
    for directory in directories:
        for lang in LANGS:
            path = directory / f"{lang}.json"
            if path.is_file():
                data = json.loads(path.read_text(encoding="utf-8"))
                catalogs[lang].update({str(k): str(v) for k, v in data.items()})
    return catalogs


class _Params(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"  # a missing parameter shows, it does not crash the page


@dataclass(frozen=True)
class Translator:
    lang: Lang
    messages: Mapping[str, str]
    fallback: Mapping[str, str]

    def __call__(self, key: str, **params: Any) -> str:
        message = self.messages.get(key) or self.fallback.get(key) or key
        return message.format_map(_Params(params)) if params else message

    def has(self, key: str) -> bool:
        return key in self.messages or key in self.fallback

    def dt(self, value: datetime | str | None) -> str:
        """dd/mm/yyyy HH:MM in Viet Nam time, whatever the language."""
        moment = parse_datetime(value)
        return moment.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M") if moment else ""

    def date(self, value: datetime | str | None) -> str:
        moment = parse_datetime(value)
        return moment.astimezone(VN_TZ).strftime("%d/%m/%Y") if moment else ""

    def number(self, value: float, decimals: int = 0) -> str:
        text = f"{value:,.{decimals}f}"
        if self.lang == "vi":  # 1.234,5
            text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
        return text

    def filesize(self, size: int | None) -> str:
        if size is None:
            return ""
        if size < 1024:
            return self("unit.bytes", n=size)
        if size < 1024 * 1024:
            return self("unit.kb", n=self.number(size / 1024, 1))
        return self("unit.mb", n=self.number(size / (1024 * 1024), 1))

    def age(self, since: datetime | str | None, now: datetime | None = None) -> str:
        """How long ago, coarse: '45 phút', '3 giờ', '2 ngày 4 giờ'."""
        moment = parse_datetime(since)
        if moment is None:
            return ""
        minutes = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds() // 60))
        if minutes < 60:
            return self("age.minutes", n=minutes)
        hours = minutes // 60
        if hours < 24:
            return self("age.hours", n=hours)
        return self("age.days_hours", d=hours // 24, h=hours % 24)


def parse_datetime(value: datetime | str | None) -> datetime | None:
    """A datetime, or an ISO string from a JSON snapshot; naive values are taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Catalog:
    def __init__(self, *directories: Path) -> None:
        self.messages = load_catalogs(KIT_MESSAGES, *directories)

    def translator(self, lang: Lang) -> Translator:
        return Translator(lang, self.messages[lang], self.messages[DEFAULT_LANG])
