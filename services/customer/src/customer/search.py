"""List and search customers: newest first, or ranked by relevance to `q`.

`q` is folded like `search_text` (see `customer.service.search_text`: lower case, no
diacritics, đ → d) and matched against that column. Relevance, best first, in tiers:

0. **exact identifier**: the customer code, the tax code (``0314409058-002`` however it
   is spaced) or the phone (any format typed, compared in E.164);
1. **name prefix**: the folded name starts with `q` (the text starts with the name);
2. **word prefix**: `q` starts a word elsewhere: in the company name, the e-mail, a later
   word of the name;
3. **contains**: every word of `q` occurs somewhere, in any order; a word of one or two
   letters must start a word ('an' is not the 'an' of 'Thanh'). A phone-like `q` (digits
   and ``+ ( ) . -`` and spaces) matches its digits run together instead, so
   ``0912 345 678``, ``+84912345678`` and ``912345678`` all find ``+84912345678``.

Within tier 0 by id; tier 1 by the folded text (alphabetical, which is index order);
tiers 2 and 3 by trigram similarity (pg_trgm ``similarity``), best first, then id. A `q`
that looks like an identifier has no tier 1 (no name starts with a phone number; one
that does is still found, as a word prefix).

Each tier is one indexed statement, run in order and only while the page is not full:

- tier 0 reads the btree indexes on `customer_code`, `tax_code` and `phone`;
- tier 1 is a range of ``ix_customers_search_prefix`` (``search_text`` in the C
  collation, then id), read in order and stopped after the page: as fast for 'nguyen'
  (a third of the customers) as for a unique name;
- tiers 2-3 take their candidates from the trigram GIN index ``ix_customers_search_trgm``
  (every word; a short one as a word start), materialise them with their
  tier (cheap), and rank by similarity only the tiers the page needs.

So the cost is one page for exact and prefix matches, and grows with the number of
candidates only for words found in the middle of texts (one common word such as 'minh'
matches a sixth of the customers: hundreds of milliseconds at a million). A `q` made only
of one- and two-letter words ('an', 'do') has no trigram to look up: it matches name
prefixes only.

Keyset cursors in both orders: newest first uses the (created_at, id) cursor of
`shared.pagination`; by relevance the cursor holds the tier, the similarity (tiers 2-3),
the id of the last row, and a fingerprint of the folded `q`, so a cursor coming back with
another `q`, with no `q`, or not made here is refused with the shared 400 problem. The
name-prefix position is re-read from the last row (a cursor carries no customer data,
since cursors end up in URLs and logs); should that row's name change between two pages,
the next page starts from its new place.
"""

import base64
import binascii
import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypedDict

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Float,
    Integer,
    Select,
    SQLColumnExpression,
    String,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from customer.identifiers import TAX_CODE_FORMAT, normalise_phone
from customer.models import Customer
from shared.pagination import decode_cursor, invalid_cursor, page_of
from shared.text import fold

#: Words shorter than this have no trigram to look up: they only filter.
MIN_INDEXED_WORD = 3
#: Relevance tiers (see the module docstring).
EXACT, NAME_PREFIX, WORD_PREFIX, CONTAINS = 0, 1, 2, 3

_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-]+$")
_PHONE_SEPARATORS = re.compile(r"[\s().\-+]")
#: Customer codes: letters and digits with at least one digit ('KH000123').
_CODE_LIKE = re.compile(r"^(?=.*\d)[A-Z0-9][A-Z0-9_.\-]{1,39}$")
_RELEVANCE_CURSOR = "q"

#: One statement of a relevance search: rows of (customer, tier, similarity or None).
RankedSelect = Select[Customer, int, float | None]


class CustomerFilters(TypedDict, total=False):
    """Equality filters of `GET /api/v1/customers`; None (or absent) means no filter."""

    status: str | None
    province_code: str | None
    channel_code: str | None
    customer_group_code: str | None
    owner_employee_id: str | None
    sales_unit_code: str | None


_FILTER_COLUMNS = {
    "status": Customer.status,
    "province_code": Customer.province_code,
    "channel_code": Customer.channel_code,
    "customer_group_code": Customer.customer_group_code,
    "owner_employee_id": Customer.owner_employee_id,
    "sales_unit_code": Customer.sales_unit_code,
}


@dataclass(frozen=True, slots=True)
class SearchTerms:
    """What a `q` is matched and ranked with."""

    folded: str
    """`q` folded as `search_text` is: the phrase of the prefix tiers."""
    words: tuple[str, ...]
    digits: str | None
    """The digits of a phone-like `q` run together (None unless `q` looks like one)."""
    phone: str | None
    """`q` as an E.164 phone number, when it is one."""
    tax_code: str | None
    code: str | None

    @property
    def fingerprint(self) -> str:
        """Ties a relevance cursor to the query it was made for."""
        return hashlib.sha256(self.folded.encode()).hexdigest()[:16]

    @property
    def has_exact(self) -> bool:
        """`q` looks like an identifier: a code, a tax code or a phone. Then no name
        starts with it in practice, and tier 1 is left out (a name that does is still
        found, as a word prefix)."""
        return bool(self.code or self.tax_code or self.phone)

    @property
    def indexed_words(self) -> tuple[str, ...]:
        return tuple(w for w in self.words if len(w) >= MIN_INDEXED_WORD)


def parse_query(q: str | None) -> SearchTerms | None:
    """The terms of `q`; None when `q` has nothing to search for (then: newest first)."""
    folded = fold(q)
    if not q or not folded:
        return None
    raw = q.strip()
    digits = phone = tax_code = None
    if _PHONE_LIKE.match(raw):
        run = _PHONE_SEPARATORS.sub("", raw)
        if len(run) >= MIN_INDEXED_WORD:
            digits = run
        try:
            phone = normalise_phone(raw)
        except ValueError:
            phone = None
        if len(run) == 13 and run.isdigit():  # a branch's tax code typed without its dash
            tax_code = f"{run[:10]}-{run[10:]}"
        elif TAX_CODE_FORMAT.match(run):
            tax_code = run
    if tax_code is None and TAX_CODE_FORMAT.match(raw):
        tax_code = raw
    upper = raw.upper()
    return SearchTerms(
        folded=folded,
        words=tuple(dict.fromkeys(folded.split(" "))),
        digits=digits,
        phone=phone,
        tax_code=tax_code,
        code=upper if _CODE_LIKE.match(upper) else None,
    )


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _pattern(value: str) -> BindParameter[str]:
    """A LIKE pattern the planner sees: rendered into the SQL (safely quoted), so each
    query gets a plan for its own patterns. As a parameter of a prepared statement, a
    generic plan made for other patterns can turn 100 ms into seconds."""
    return bindparam(None, value, type_=String, literal_execute=True)


def _filter_conditions(filters: CustomerFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for key, value in filters.items():
        column = _FILTER_COLUMNS.get(key)
        if column is None:
            raise ValueError(f"unknown customer filter {key!r}")
        if value is not None:
            conditions.append(column == value)
    return conditions


def exact_condition(terms: SearchTerms) -> ColumnElement[bool]:
    """Tier 0: the code, tax code or phone is `q` (each an indexed equality)."""
    exact: list[ColumnElement[bool]] = []
    if terms.code:
        exact.append(Customer.customer_code == terms.code)
    if terms.tax_code:
        exact.append(Customer.tax_code == terms.tax_code)
    if terms.phone:
        exact.append(Customer.phone == terms.phone)
    return or_(*exact) if exact else false()


def _not_exact(terms: SearchTerms) -> ColumnElement[bool]:
    # coalesce: a NULL code/tax code/phone makes the equality NULL, not false.
    return ~func.coalesce(exact_condition(terms), false()) if terms.has_exact else true()


def name_prefix_condition(terms: SearchTerms) -> ColumnElement[bool]:
    """Tier 1 (a range of `ix_customers_search_prefix`: `search_text` is in the C collation)."""
    return Customer.search_text.like(_pattern(f"{_like_escape(terms.folded)}%"))


def contains_condition(terms: SearchTerms) -> ColumnElement[bool] | None:
    """Tiers 2-3: every word somewhere; for a phone-like `q`, its digits run together (or
    the tax code it spells). None when `q` has nothing the trigram index can look up."""
    text = Customer.search_text
    if terms.digits:
        # The text holds each phone as '+84…' and '0…', and tax codes as written:
        # one selective pattern instead of the digit groups as words.
        alternatives = [text.like(_pattern(f"%{_like_escape(terms.digits)}%"))]
        if terms.tax_code and terms.tax_code != terms.digits:
            alternatives.append(text.like(_pattern(f"%{_like_escape(terms.tax_code)}%")))
        return or_(*alternatives)
    if not terms.indexed_words:
        return None
    return and_(
        *(
            text.like(_pattern(f"%{_like_escape(w)}%"))
            if len(w) >= MIN_INDEXED_WORD
            else or_(  # a short word starts a word: both forms can be read from an index
                text.like(_pattern(f"{_like_escape(w)}%")),
                text.like(_pattern(f"% {_like_escape(w)}%")),
            )
            for w in terms.words
        )
    )


def similarity(terms: SearchTerms, text: SQLColumnExpression[str]) -> ColumnElement[float]:
    return func.similarity(literal(terms.folded), text, type_=Float)


# ---- cursors --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelevanceKey:
    """Where a relevance page ended: the last row's tier, similarity (tiers 2-3) and id."""

    tier: int
    score: float | None
    id: uuid.UUID


def encode_relevance_cursor(terms: SearchTerms, key: RelevanceKey) -> str:
    raw = json.dumps([_RELEVANCE_CURSOR, terms.fingerprint, key.tier, key.score, str(key.id)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_relevance_cursor(cursor: str, terms: SearchTerms) -> RelevanceKey:
    """The position a relevance cursor points after; the shared 400 problem when the
    cursor is malformed, of the other order, or made for another `q`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(data, list) or len(data) != 5:
            raise ValueError("not a relevance cursor")
        kind, fingerprint, tier, score, item_id = data
        if kind != _RELEVANCE_CURSOR or fingerprint != terms.fingerprint:
            raise ValueError("a cursor of another query")
        if type(tier) is not int or not EXACT <= tier <= CONTAINS:
            raise ValueError("bad tier")
        if tier >= WORD_PREFIX:
            if type(score) not in (int, float) or not math.isfinite(score):
                raise ValueError("bad score")
            score = float(score)
        elif score is not None:
            raise ValueError("a score where the tier has none")
        return RelevanceKey(tier, score, uuid.UUID(item_id))
    except (ValueError, TypeError, UnicodeError, binascii.Error, AttributeError) as exc:
        raise invalid_cursor() from exc


# ---- statements -----------------------------------------------------------------------


def newest_first_statement(
    *,
    visibility: ColumnElement[bool],
    filters: CustomerFilters,
    limit: int,
    cursor: str | None,
) -> Select[Customer]:
    stmt = select(Customer).where(visibility, *_filter_conditions(filters))
    if cursor:
        at, last_id = decode_cursor(cursor)
        stmt = stmt.where(
            tuple_(Customer.created_at, Customer.id) < tuple_(literal(at), literal(last_id))
        )
    return stmt.order_by(Customer.created_at.desc(), Customer.id.desc()).limit(limit + 1)


def _exact_statement(
    terms: SearchTerms, base: list[ColumnElement[bool]], after: RelevanceKey | None, need: int
) -> RankedSelect:
    conditions = [exact_condition(terms), *base]
    if after is not None and after.tier == EXACT:
        conditions.append(Customer.id > after.id)
    return (
        select(Customer, literal(EXACT, Integer), null().cast(Float))
        .where(*conditions)
        .order_by(Customer.id)
        .limit(need)
    )


def _name_prefix_statement(
    terms: SearchTerms, base: list[ColumnElement[bool]], after: RelevanceKey | None, need: int
) -> RankedSelect:
    conditions = [name_prefix_condition(terms), _not_exact(terms), *base]
    if after is not None and after.tier == NAME_PREFIX:
        last_text = select(Customer.search_text).where(Customer.id == after.id).scalar_subquery()
        conditions.append(
            tuple_(Customer.search_text, Customer.id) > tuple_(last_text, literal(after.id))
        )
    return (
        select(Customer, literal(NAME_PREFIX, Integer), null().cast(Float))
        .where(*conditions)
        .order_by(Customer.search_text, Customer.id)
        .limit(need)
    )


def _contains_statement(
    terms: SearchTerms,
    match: ColumnElement[bool],
    base: list[ColumnElement[bool]],
    after: RelevanceKey | None,
    need: int,
) -> RankedSelect:
    text = Customer.search_text
    tier = case((func.strpos(" " + text, " " + terms.folded) > 0, WORD_PREFIX), else_=CONTAINS)
    conditions = [match, _not_exact(terms), *base]
    if after is not None and after.score is not None:
        score = similarity(terms, text)
        last_score = literal(after.score, Float)
        later_in_tier = or_(score < last_score, and_(score == last_score, Customer.id > after.id))
        # CASE, not OR: the similarity is computed only for rows of the cursor's tier.
        conditions.append(
            case((tier > after.tier, true()), (tier == after.tier, later_in_tier), else_=false())
        )
    candidates = (
        select(Customer.id, text, tier.label("tier"))
        .where(*conditions)
        .cte("candidates")
        .prefix_with("MATERIALIZED")
    )
    # The tier of the need-th best candidate: no row of a later tier can make it into
    # the page, so only the tiers up to it are ranked by similarity.
    last_needed_tier = (
        select(candidates.c.tier)
        .order_by(candidates.c.tier)
        .offset(need - 1)
        .limit(1)
        .scalar_subquery()
    )
    score = similarity(terms, candidates.c.search_text).label("score")
    ranked = (
        select(candidates.c.id, candidates.c.tier, score)
        .where(candidates.c.tier <= func.coalesce(last_needed_tier, CONTAINS))
        .order_by(candidates.c.tier, score.desc(), candidates.c.id)
        .limit(need)
        .subquery("ranked")
    )
    return (
        select(Customer, ranked.c.tier, ranked.c.score)
        .join(ranked, Customer.id == ranked.c.id)
        .order_by(ranked.c.tier, ranked.c.score.desc(), ranked.c.id)
    )


#: Builds a tier's statement for the number of rows still needed.
TierStatement = Callable[[int], RankedSelect]


def relevance_statements(
    terms: SearchTerms,
    *,
    visibility: ColumnElement[bool],
    filters: CustomerFilters,
    after: RelevanceKey | None,
) -> list[TierStatement]:
    """The statements of a relevance page, in tier order, from the cursor's tier on; run
    each while the page still needs rows (the benchmark runs the same ones raw)."""
    base = [visibility, *_filter_conditions(filters)]
    from_tier = after.tier if after is not None else EXACT
    steps: list[TierStatement] = []
    prefixes = not terms.has_exact
    if terms.has_exact and from_tier <= EXACT:
        steps.append(lambda need: _exact_statement(terms, base, after, need))
    if prefixes and from_tier <= NAME_PREFIX:
        steps.append(lambda need: _name_prefix_statement(terms, base, after, need))
    match = contains_condition(terms)
    if match is not None:
        if prefixes:
            match = and_(match, ~name_prefix_condition(terms))
        steps.append(lambda need: _contains_statement(terms, match, base, after, need))
    return steps


def relevance_page(
    terms: SearchTerms, rows: Sequence[tuple[Customer, int, float | None]], limit: int
) -> tuple[list[Customer], str | None]:
    """The page and its next cursor, from up to `limit + 1` ranked rows."""
    items = [row[0] for row in rows[:limit]]
    if len(rows) <= limit:
        return items, None
    _, tier, score = rows[limit - 1]
    return items, encode_relevance_cursor(terms, RelevanceKey(tier, score, items[-1].id))


async def search_customers(
    session: AsyncSession,
    *,
    visibility: ColumnElement[bool],
    filters: CustomerFilters,
    q: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Customer], str | None]:
    """A page of the customers `visibility` lets the caller see, and the next cursor.

    With a `q` (anything left after folding), ranked by relevance; without, newest first.
    `cursor` is the `next_cursor` of the previous page of the same query; anything else
    is the shared 400 problem.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    terms = parse_query(q)
    if terms is None:
        stmt = newest_first_statement(
            visibility=visibility, filters=filters, limit=limit, cursor=cursor
        )
        return page_of(list((await session.scalars(stmt)).all()), limit, at="created_at")
    after = decode_relevance_cursor(cursor, terms) if cursor else None
    rows: list[tuple[Customer, int, float | None]] = []
    for statement in relevance_statements(
        terms, visibility=visibility, filters=filters, after=after
    ):
        need = limit + 1 - len(rows)
        if need <= 0:
            break
        rows.extend((await session.execute(statement(need))).all())
    return relevance_page(terms, rows, limit)
