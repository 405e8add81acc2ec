"""Duplicate candidates of a submitted customer, from the customer replica.

Computed once, when the review is created (ADR 0010), against active and inactive
customers and against other customers waiting for CS (the replica's pending rows),
never the customer itself. Reasons, each a machine-readable code:

- ``same_tax_code``: the compact tax code is equal ('0314409058-002' = '0314409058002');
- ``same_phone``: the E.164 phone is equal;
- ``same_email``: the e-mail is equal, case-insensitively;
- ``similar_name_address``: the names are alike once folded and stripped of legal-form
  and shop-type words (approval.matchkeys), in the same 2025 province (a legacy
  address counts in its successor), scored with the street lines.

A candidate's `score` (0..1) combines its reasons as independent evidence
(1 - Π(1 - weight)); a fuzzy match weighs its own score. At most `MAX_CANDIDATES`,
best first.

Cost at millions of customers: the exact reasons are lookups of the partial btree
indexes on tax code, phone and e-mail; the fuzzy one is one scan of the GIN index on
(2025 province, trigrams of the name) with the similarity threshold raised for the
transaction, so only that province's similar names are read and scored; both
statements are bounded by a LIMIT.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Float, Row, Select, bindparam, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from approval.matchkeys import (
    address_key,
    name_key,
    normalise_email,
    normalise_phone,
    normalise_tax_code,
    snapshot_text,
)
from approval.models import CustomerReplica
from approval.replica import province_2025

MAX_CANDIDATES = 10
#: Exact matches read at most this many rows (a shared hotline can match thousands).
MAX_EXACT_ROWS = 50
CANDIDATE_STATUSES = ("active", "inactive", "pending")

#: How much each exact reason says "the same customer" on its own.
EXACT_WEIGHTS = {"same_tax_code": 0.95, "same_phone": 0.85, "same_email": 0.8}

#: Names at least this similar (pg_trgm) are read from the index; it keeps the candidate
#: set small. A single shared word is below it ('minh' / 'minh phat' is exactly 0.5).
NAME_SIMILARITY_MIN = 0.51
#: Fuzzy score = NAME_WEIGHT · name similarity + (1 - NAME_WEIGHT) · street similarity.
NAME_WEIGHT = 0.75
#: The fuzzy score a candidate needs: an identical name qualifies whatever the street;
#: 'nguyen van an' / 'nguyen van binh' (0.61) only at a similar street.
FUZZY_SCORE_MIN = 0.6


@dataclass
class Candidate:
    customer_id: uuid.UUID
    customer_code: str | None
    full_name: str
    status: str
    reasons: list[str] = field(default_factory=list)
    fuzzy_score: float | None = None

    @property
    def score(self) -> float:
        miss = 1.0
        for reason in self.reasons:
            weight = EXACT_WEIGHTS.get(reason)
            if weight is None and reason == "similar_name_address":
                weight = self.fuzzy_score or 0.0
            miss *= 1.0 - (weight or 0.0)
        return round(1.0 - miss, 3)

    def as_json(self) -> dict[str, Any]:
        return {
            "customer_id": str(self.customer_id),
            "customer_code": self.customer_code,
            "full_name": self.full_name,
            "status": self.status,
            "reasons": self.reasons,
            "score": self.score,
        }


# The statements are built once per shape and then only executed with new values: a
# replay runs them for every submission, and building them cost more than running them.


#: What a candidate shows: never the whole row, whose snapshot is the costly part to read.
_SHOWN = (
    CustomerReplica.customer_id,
    CustomerReplica.customer_code,
    CustomerReplica.full_name,
    CustomerReplica.status,
)
_EXACT_COLUMNS = {
    "same_tax_code": CustomerReplica.tax_code,
    "same_phone": CustomerReplica.phone,
    "same_email": CustomerReplica.email,
}


@cache
def _exact_statement(reasons: tuple[str, ...]) -> Select[*tuple[Any, ...]]:
    """Customers sharing any of `reasons`' values (bound as :same_tax_code…), likeliest first."""
    tests = {reason: _EXACT_COLUMNS[reason] == bindparam(reason) for reason in reasons}
    flags = [func.coalesce(test, False).label(reason) for reason, test in tests.items()]
    name_alike = func.similarity(CustomerReplica.match_name, bindparam("key"), type_=Float)
    hits = sum((case((test, 1), else_=0) for test in tests.values()), literal(0))
    return (
        select(*_SHOWN, *flags)
        .where(
            or_(*tests.values()),
            CustomerReplica.customer_id != bindparam("customer_id"),
            CustomerReplica.status.in_(CANDIDATE_STATUSES),
        )
        # A shared hotline can match hundreds: those whose name is also alike come first,
        # so the cut at MAX_EXACT_ROWS keeps the likeliest duplicates.
        .order_by(hits.desc(), name_alike.desc(), CustomerReplica.customer_id)
        .limit(MAX_EXACT_ROWS)
    )


async def _exact(
    session: AsyncSession, customer_id: uuid.UUID, snapshot: Mapping[str, Any]
) -> list[Candidate]:
    wanted = {
        "same_tax_code": normalise_tax_code(snapshot_text(snapshot, "tax_code")),
        "same_phone": normalise_phone(snapshot_text(snapshot, "phone")),
        "same_email": normalise_email(snapshot_text(snapshot, "email")),
    }
    values = {reason: value for reason, value in wanted.items() if value}
    if not values:
        return []
    reasons = tuple(values)
    rows = await session.execute(
        _exact_statement(reasons),
        {
            **values,
            "customer_id": customer_id,
            # '' is alike to nothing: the order is then by the reasons alone.
            "key": name_key(snapshot_text(snapshot, "full_name")) or "",
        },
    )
    return [_candidate(row, [reason for reason in reasons if getattr(row, reason)]) for row in rows]


@cache
def _similar_statement(*, with_street: bool, with_province: bool) -> Select[*tuple[Any, ...]]:
    """Alike names (:key) near :street in :province, best first."""
    name_sim = func.similarity(CustomerReplica.match_name, bindparam("key"), type_=Float)
    street_sim = (
        case(
            (
                CustomerReplica.match_address != "",
                func.similarity(CustomerReplica.match_address, bindparam("street")),
            ),
            else_=0.0,
        )
        if with_street
        else literal(0.0, Float)
    )
    score = (NAME_WEIGHT * name_sim + (1 - NAME_WEIGHT) * street_sim).label("fuzzy_score")
    conditions = [
        CustomerReplica.match_name.op("%")(bindparam("key")),
        name_sim >= NAME_SIMILARITY_MIN,  # the same bound, whatever the GUC says
        CustomerReplica.customer_id != bindparam("customer_id"),
        CustomerReplica.status.in_(CANDIDATE_STATUSES),
        score >= FUZZY_SCORE_MIN,
    ]
    if with_province:  # always, after the customer service's validation
        # The same name in another province is another shop.
        conditions.append(CustomerReplica.match_province == bindparam("province"))
    return (
        select(*_SHOWN, score)
        .where(*conditions)
        .order_by(score.desc(), CustomerReplica.customer_id)
        .limit(MAX_CANDIDATES)
    )


#: `%` reads the GIN index with this threshold; set_config(..., true) lasts until the
#: transaction ends, so nothing else on the connection sees it.
_RAISE_SIMILARITY_THRESHOLD = select(
    func.set_config("pg_trgm.similarity_threshold", str(NAME_SIMILARITY_MIN), True)
)
_THRESHOLD_RAISED_IN = "approval.duplicates.threshold_raised_in"


async def _raise_similarity_threshold(session: AsyncSession) -> None:
    """Once per transaction (a consumer applies a whole fetch in one): a round trip saved
    per submission."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    if session.info.get(_THRESHOLD_RAISED_IN) is not transaction:
        await session.execute(_RAISE_SIMILARITY_THRESHOLD)
        session.info[_THRESHOLD_RAISED_IN] = transaction


async def _similar(
    session: AsyncSession, customer_id: uuid.UUID, snapshot: Mapping[str, Any]
) -> list[Candidate]:
    key = name_key(snapshot_text(snapshot, "full_name"))
    if not key:
        return []  # nothing but legal-form words: no name to compare
    street = address_key(snapshot_text(snapshot, "address"))
    province = province_2025(snapshot)
    await _raise_similarity_threshold(session)
    rows = await session.execute(
        _similar_statement(with_street=bool(street), with_province=bool(province)),
        {"key": key, "street": street, "province": province, "customer_id": customer_id},
    )
    return [
        _candidate(row, ["similar_name_address"], round(float(row.fuzzy_score), 3)) for row in rows
    ]


def _candidate(row: Row[Any], reasons: list[str], fuzzy_score: float | None = None) -> Candidate:
    return Candidate(
        customer_id=row.customer_id,
        customer_code=row.customer_code,
        full_name=row.full_name,
        status=row.status,
        reasons=reasons,
        fuzzy_score=fuzzy_score,
    )


async def find_duplicates(
    session: AsyncSession, customer_id: uuid.UUID, snapshot: Mapping[str, Any]
) -> list[Candidate]:
    """The customers `snapshot` (a submitted customer) may duplicate, best first."""
    merged: dict[uuid.UUID, Candidate] = {}
    for candidate in [
        *await _exact(session, customer_id, snapshot),
        *await _similar(session, customer_id, snapshot),
    ]:
        held = merged.setdefault(candidate.customer_id, candidate)
        if held is not candidate:
            held.reasons += [r for r in candidate.reasons if r not in held.reasons]
            held.fuzzy_score = held.fuzzy_score or candidate.fuzzy_score
    ranked = sorted(merged.values(), key=lambda c: (-c.score, c.full_name, str(c.customer_id)))
    return ranked[:MAX_CANDIDATES]
