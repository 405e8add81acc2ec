"""The simulated tenant's data: account objects and issued tokens, kept in a JSON file.

Every mutation is written at once with an atomic replace, so the state survives a
restart (or a crash) of the simulator, as a real MISA tenant's would.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import secrets
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from misa_simulator import misa_time
from misa_simulator.envelope import ApiError, ErrorCode
from misa_simulator.settings import DuplicateCodeMode

log = logging.getLogger(__name__)

STATE_FORMAT = 1

#: ``dictionary_type`` of an account object (customer, vendor or employee) on save.
ACCOUNT_OBJECT = 1

#: Fields the server owns; whatever a client sends for them is overwritten.
_SERVER_FIELDS = frozenset(
    {"dictionary_type", "created_date", "created_by", "modified_date", "modified_by"}
)
#: Request instructions rather than data (``state`` 1/2/3 = add/edit/delete, MISA_API.md §7).
_NOT_STORED = frozenset({"state"})

#: Expired tokens are kept a day so a late caller gets ExpiredToken, not InvalidToken.
_TOKEN_GRACE = timedelta(days=1)

_WRITER = "OpenAPI"

TokenStatus = Literal["valid", "expired", "unknown"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_at: datetime


def _code_key(code: str) -> str:
    # Assumption: codes compare case-insensitively, as in MISA's SQL Server default collation.
    return code.strip().casefold()


def _seed_objects() -> list[dict[str, Any]]:
    """A vendor and an employee: MISA mixes them with customers under data_type 1."""
    created = misa_time.iso(datetime(2024, 1, 2, 8, 0, tzinfo=misa_time.VN_TZ))
    common: dict[str, Any] = {
        "dictionary_type": ACCOUNT_OBJECT,
        "is_customer": False,
        "inactive": False,
        "country": "Việt Nam",
        "created_date": created,
        "created_by": "MISA",
        "modified_date": created,
        "modified_by": "MISA",
    }
    return [
        {
            **common,
            "account_object_id": "5e1f0a52-6f1c-4c1e-9a43-1d7b0f3c2a01",
            "account_object_code": "NCC00001",
            "account_object_name": "Công ty TNHH Vật tư Demo",
            "account_object_type": 0,
            "is_vendor": True,
            "is_employee": False,
            "company_tax_code": "0100000001",
            "address": "12 Đường Demo, Hà Nội",
            "pay_account": "331",
        },
        {
            **common,
            "account_object_id": "5e1f0a52-6f1c-4c1e-9a43-1d7b0f3c2a02",
            "account_object_code": "NV00001",
            "account_object_name": "Nguyễn Văn Demo",
            "account_object_type": 1,
            "is_vendor": False,
            "is_employee": True,
        },
    ]


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._objects: list[dict[str, Any]] = []
        self._tokens: dict[str, datetime] = {}

    # -- persistence -------------------------------------------------------------------

    def load(self) -> None:
        """Read the state file; a new tenant starts with the seeded non-customers."""
        if not self.path.exists():
            self._objects = _seed_objects()
            self._tokens = {}
            self.persist()
            return
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            objects = raw["account_objects"]
            tokens = raw.get("tokens", {})
            if not isinstance(objects, list) or not isinstance(tokens, dict):
                raise ValueError("unexpected state layout")
            self._objects = [o for o in objects if isinstance(o, dict)]
            self._tokens = {str(t): misa_time.parse_timestamp(str(e)) for t, e in tokens.items()}
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            # Keep the unreadable file for inspection rather than overwrite it silently.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{secrets.token_hex(4)}")
            os.replace(self.path, aside)
            log.warning("state file %s unreadable (%s); moved to %s", self.path, exc, aside)
            self._objects = _seed_objects()
            self._tokens = {}
            self.persist()

    def persist(self) -> None:
        """Write the whole state to a temp file, then os.replace it over the old one."""
        cutoff = misa_time.now() - _TOKEN_GRACE
        self._tokens = {t: e for t, e in self._tokens.items() if e > cutoff}
        state = {
            "format": STATE_FORMAT,
            "account_objects": self._objects,
            "tokens": {t: misa_time.iso(e) for t, e in self._tokens.items()},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as tmp:
                json.dump(state, tmp, ensure_ascii=False, indent=1)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def reset(self, *, seed: bool) -> None:
        self._objects = _seed_objects() if seed else []
        self._tokens = {}
        self.persist()

    # -- tokens ------------------------------------------------------------------------

    def issue_token(self, ttl_s: float) -> IssuedToken:
        token = secrets.token_urlsafe(48)
        expires_at = misa_time.now() + timedelta(seconds=ttl_s)
        self._tokens[token] = expires_at
        self.persist()
        return IssuedToken(token, expires_at)

    def token_status(self, token: str) -> TokenStatus:
        expires_at = self._tokens.get(token)
        if expires_at is None:
            return "unknown"
        return "valid" if expires_at > misa_time.now() else "expired"

    def expire_tokens(self) -> int:
        past = misa_time.now() - timedelta(seconds=1)
        self._tokens = dict.fromkeys(self._tokens, past)
        self.persist()
        return len(self._tokens)

    # -- account objects ---------------------------------------------------------------

    def all_objects(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._objects)

    def changed_since(self, since: datetime | None) -> list[dict[str, Any]]:
        """Objects modified at or after ``since`` (all of them when None), oldest first."""
        if since is None:
            return self.all_objects()
        return [copy.deepcopy(o) for o in self._objects if self._modified(o) >= since]

    @staticmethod
    def _modified(obj: dict[str, Any]) -> datetime:
        try:
            return misa_time.parse_timestamp(str(obj.get("modified_date")))
        except ValueError:
            # An object without a readable date counts as changed, so a sync never misses it.
            return misa_time.now()

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store one object directly (test control): no token, no duplicate-code rules."""
        now = misa_time.iso(misa_time.now())
        record: dict[str, Any] = {
            "dictionary_type": ACCOUNT_OBJECT,
            "account_object_type": 0,
            "is_customer": True,
            "is_vendor": False,
            "is_employee": False,
            "inactive": False,
            "created_date": now,
            "created_by": "MISA",
            "modified_date": now,
            "modified_by": "MISA",
            **obj,
        }
        record["account_object_id"] = str(record.get("account_object_id") or uuid.uuid4())
        self._objects = [
            o for o in self._objects if o.get("account_object_id") != record["account_object_id"]
        ]
        self._objects.append(record)
        self.persist()
        return copy.deepcopy(record)

    def save_batch(
        self, items: Iterable[dict[str, Any]], mode: DuplicateCodeMode
    ) -> list[dict[str, Any]]:
        """Apply a save_dictionary batch all-or-nothing; answer the stored objects.

        Items must already be validated. Raises ApiError (InvalidParam) on a refused code.
        """
        working = copy.deepcopy(self._objects)
        now = misa_time.iso(misa_time.now())
        saved = [_apply(working, item, mode, now) for item in items]
        self._objects = working
        self.persist()
        return copy.deepcopy(saved)


def _apply(
    objects: list[dict[str, Any]], item: dict[str, Any], mode: DuplicateCodeMode, now: str
) -> dict[str, Any]:
    object_id = item["account_object_id"]
    code = item["account_object_code"]
    fields = {k: v for k, v in item.items() if k not in _SERVER_FIELDS | _NOT_STORED}
    same_id = next((o for o in objects if o.get("account_object_id") == object_id), None)
    holders = [
        o
        for o in objects
        if o.get("account_object_id") != object_id
        and _code_key(str(o.get("account_object_code", ""))) == _code_key(code)
    ]

    if same_id is not None:
        # An update that would move this object onto another object's code is refused
        # unless duplicates are allowed: "upsert" cannot merge two existing objects.
        if holders and mode is not DuplicateCodeMode.DUPLICATE:
            raise ApiError(ErrorCode.INVALID_PARAM, _taken(code))
        same_id.update(fields, modified_date=now, modified_by=_WRITER)
        return same_id

    if holders and mode is DuplicateCodeMode.UPSERT:
        target = holders[0]
        fields.pop("account_object_id")  # the existing object keeps its own id
        target.update(fields, modified_date=now, modified_by=_WRITER)
        return target
    if holders and mode is DuplicateCodeMode.INVALID_PARAM:
        raise ApiError(ErrorCode.INVALID_PARAM, _taken(code))

    record: dict[str, Any] = {
        "dictionary_type": ACCOUNT_OBJECT,
        "account_object_type": 0,
        "is_customer": False,
        "is_vendor": False,
        "is_employee": False,
        "inactive": False,
        **fields,
        "created_date": now,
        "created_by": _WRITER,
        "modified_date": now,
        "modified_by": _WRITER,
    }
    objects.append(record)
    return record


def _taken(code: str) -> str:
    return f"account_object_code '{code}' already exists (Mã đối tượng đã tồn tại)"
