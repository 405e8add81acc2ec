"""Drift between our links and MISA's dictionary, read from the mirror.

- missing: a link MISA accepted, whose object MISA no longer has (as of the last full
  scan, the only read that sees deletions);
- changed: MISA holds other values than we last pushed for mapped fields (someone
  edited the customer in MISA, or MISA normalised a value);
- extra: a MISA customer no link points to, whose code looks like ours or whose id is
  one we derive (account_object_id_for) — created by IMS, or by hand with our codes.

Only field names are reported, never values: the report is about where to look.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from misa_sync.mapping import differing_fields
from misa_sync.misa_client import account_object_id_for
from misa_sync.models import MirrorObject, MisaLink

DriftKind = Literal["missing", "changed", "extra"]


@dataclass(frozen=True, slots=True)
class Drift:
    kind: DriftKind
    account_object_id: str
    misa_code: str | None
    customer_id: str | None = None
    customer_code: str | None = None
    fields: list[str] = field(default_factory=list)


def _link_drift(kind: DriftKind, link: MisaLink, fields: list[str]) -> Drift:
    return Drift(
        kind,
        account_object_id=link.account_object_id,
        misa_code=link.misa_code,
        customer_id=str(link.customer_id),
        customer_code=link.customer_code,
        fields=fields,
    )


async def find_drift(session: AsyncSession, *, ims_code_pattern: str) -> list[Drift]:
    """Every drift, links first (in customer order), then extras (in code order)."""
    pattern = re.compile(ims_code_pattern)
    mirrored = {
        m.account_object_id: m
        for m in await session.scalars(select(MirrorObject).where(MirrorObject.is_customer))
    }
    linked_ids: set[str] = set()
    own_ids: set[str] = set()
    drift: list[Drift] = []
    links = await session.stream_scalars(select(MisaLink).order_by(MisaLink.customer_id))
    async for link in links:
        linked_ids.add(link.account_object_id)
        own_ids.add(account_object_id_for(str(link.customer_id)))
        if link.pushed is None:
            continue  # never accepted by MISA: nothing to compare yet
        held = mirrored.get(link.account_object_id)
        if held is None:
            drift.append(_link_drift("missing", link, []))
            continue
        fields = differing_fields(link.pushed, held.record)
        if fields:
            drift.append(_link_drift("changed", link, fields))
    for object_id, held in sorted(mirrored.items(), key=lambda item: item[1].code_key):
        if object_id in linked_ids:
            continue
        if object_id in own_ids or pattern.match(held.code):
            drift.append(Drift("extra", account_object_id=object_id, misa_code=held.code))
    return drift
