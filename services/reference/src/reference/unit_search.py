"""Type-ahead search over provinces and wards of both schemes, accent-insensitive, in memory.

The units are static official data (`shared.admin_units`), so the index is built once per
process (a fraction of a second) and then only read. A query is folded (lower case, no
diacritics, đ → d) and split into tokens; a unit matches when every query token is a prefix
of some token of its searchable text: the full name, the short name (without "Phường",
"Xã", "Tỉnh", …) and its aliases ("hcm", "sai gon", …).

Ranking, best first:

1. provinces before wards;
2. exact matches (the whole query is the full name, the short name or an alias), then
   matches where every query token is a whole word, then prefix-only matches;
3. within those, units whose name (or an alias) starts with the first query token;
4. shorter short names, then code, then the 2025 scheme before the legacy one.

Every set the query needs (prefix → units, word → units, phrase → units) is precomputed,
so a query costs a few set intersections instead of a scan over the ~13,500 units.
`UnitIndex.search_linear` is that scan, kept as the oracle for the tests and as the
baseline of the benchmark (`ims bench reference-search`).
"""

import heapq
import re
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

from shared.admin_units import SCHEMES, Scheme, district_by_code, province_by_code, wards
from shared.text import fold

Kind = Literal["province", "ward"]
KINDS: tuple[Kind, ...] = get_args(Kind)

# Aliases by the province's folded short name, for every scheme in which the province
# exists. Keys are names rather than codes because a code may mean another area in the
# other scheme; `UnitIndex.build` fails if a key names no province, so a typo cannot
# silently disable an alias.
PROVINCE_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "ho chi minh": ("hcm", "hcmc", "tphcm", "tp hcm", "sai gon", "saigon", "sg"),
        "ha noi": ("hn", "tphn", "tp hn"),
        "da nang": ("dn", "tpdn"),
        "hai phong": ("hp",),
        "can tho": ("ct",),
        # Province 46 was called Thừa Thiên Huế until it became a city in January 2025.
        "hue": ("tth", "thua thien hue", "thua thien"),
        # Legacy only: merged into Hồ Chí Minh City in 2025.
        "ba ria vung tau": ("brvt", "br vt", "vung tau", "ba ria"),
        # Older spellings still common in addresses.
        "dak lak": ("dac lac",),
        "bac kan": ("bac can",),
    }
)

# Leading words that name the unit's type, stripped to get the short name (in folded
# token form). Longer prefixes first.
_TYPE_PREFIXES: tuple[tuple[str, ...], ...] = (
    ("thanh", "pho"),
    ("thi", "tran"),
    ("thi", "xa"),
    ("dac", "khu"),
    ("phuong",),
    ("tinh",),
    ("quan",),
    ("huyen",),
    ("xa",),
)

_WORD = re.compile(r"\S+")
_ALNUM = re.compile(r"[a-z0-9]+")
_SCHEME_RANK: Mapping[str, int] = MappingProxyType({"2025": 0, "legacy": 1})
_EMPTY: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result."""

    kind: Kind
    scheme: Scheme
    code: str
    """2-digit province code or 5-digit ward code (unique within a scheme only)."""
    name: str
    """Official name, e.g. ``"Phường Sài Gòn"``."""
    province_code: str
    """The unit's own code for a province."""
    province_name: str
    district_code: str | None
    """Legacy wards only."""
    district_name: str | None


@dataclass(frozen=True, slots=True)
class IndexedUnit:
    """A unit with its precomputed searchable forms (all folded)."""

    hit: Hit
    tokens: frozenset[str]
    """Every token of the full name, the short name and the aliases."""
    phrases: frozenset[str]
    """Full name, short name and aliases, each as its tokens joined by single spaces."""
    leading: frozenset[str]
    """The first token of the short name and of each alias (what "the name starts with …"
    looks at)."""


def tokenize(text: str) -> list[str]:
    """Folded search tokens of `text`: 'TP. Hồ Chí Minh' → ['tp', 'ho', 'chi', 'minh'].

    Punctuation splits tokens, so "M'Đrắk" gives 'm' and 'drak'; queries are split the
    same way, so "m'drak" still finds it.
    """
    return _ALNUM.findall(fold(text))


def _word_forms(text: str) -> tuple[list[str], set[str]]:
    """The phrase tokens of `text`, plus extra index-only forms: each word with its
    punctuation removed ("m'drak" → "mdrak"), so the glued spelling also matches."""
    phrase: list[str] = []
    extra: set[str] = set()
    for word in _WORD.findall(fold(text)):
        pieces = _ALNUM.findall(word)
        phrase.extend(pieces)
        if len(pieces) > 1:
            extra.add("".join(pieces))
    return phrase, extra


def _short_tokens(tokens: Sequence[str]) -> list[str]:
    for prefix in _TYPE_PREFIXES:
        n = len(prefix)
        # Keep at least one token: a name that is only a type word stays searchable.
        if len(tokens) > n and tuple(tokens[:n]) == prefix:
            return list(tokens[n:])
    return list(tokens)


def _check[T: str](value: str, allowed: tuple[T, ...], what: str) -> T:
    # The Literal types only help type-checked callers.
    for known in allowed:
        if value == known:
            return known
    raise ValueError(f"unknown {what} {value!r}; expected one of {allowed}")


@dataclass(frozen=True, slots=True)
class _Draft:
    hit: Hit
    full: list[str]
    extra: set[str]
    aliases: tuple[str, ...]


class UnitIndex:
    """The search index; build with `UnitIndex.build()` or share one via `unit_index()`."""

    def __init__(self, units: Sequence[IndexedUnit]) -> None:
        # Ids are positions in `units`, which are sorted by the static part of the ranking
        # (kind, short-name length, code, scheme): ordering ids orders results.
        self.units: tuple[IndexedUnit, ...] = tuple(units)
        word: defaultdict[str, set[int]] = defaultdict(set)
        phrase: defaultdict[str, set[int]] = defaultdict(set)
        leading_word: defaultdict[str, set[int]] = defaultdict(set)
        by_scheme: defaultdict[str, set[int]] = defaultdict(set)
        by_kind: defaultdict[str, set[int]] = defaultdict(set)
        by_province: defaultdict[str, set[int]] = defaultdict(set)
        for uid, unit in enumerate(self.units):
            for token in unit.tokens:
                word[token].add(uid)
            for text in unit.phrases:
                phrase[text].add(uid)
            for token in unit.leading:
                leading_word[token].add(uid)
            by_scheme[unit.hit.scheme].add(uid)
            by_kind[unit.hit.kind].add(uid)
            by_province[unit.hit.province_code].add(uid)

        self._word = _freeze(word)
        self._phrase = _freeze(phrase)
        # Only about a thousand distinct words exist, so expanding prefixes per word (not per unit
        # token) keeps the build short.
        self._prefix = _freeze(_prefixes(word))
        self._leading = _freeze(_prefixes(leading_word))
        self._scheme = _freeze(by_scheme)
        self._kind = _freeze(by_kind)
        self._province = _freeze(by_province)

    @classmethod
    def build(cls) -> "UnitIndex":
        """Index every province and ward of both schemes from `shared.admin_units`."""
        drafts: list[_Draft] = []
        alias_keys_used: set[str] = set()
        districts = district_by_code()
        for scheme in SCHEMES:
            provinces = province_by_code(scheme)
            for p in provinces.values():
                full, extra = _word_forms(p.name)
                short = " ".join(_short_tokens(full))
                aliases = list(PROVINCE_ALIASES.get(short, ()))
                if aliases:
                    alias_keys_used.add(short)
                if " " in short:
                    aliases.append(short.replace(" ", ""))  # "hanoi", "danang", "cantho"
                if full[:2] == ["thanh", "pho"]:
                    aliases.append("tp " + short)  # "TP. Huế", "TP Cần Thơ"
                hit = Hit("province", scheme, p.code, p.name, p.code, p.name, None, None)
                drafts.append(_Draft(hit, full, extra, tuple(aliases)))
            for w in wards(scheme):
                full, extra = _word_forms(w.name)
                district = districts.get(w.district_code) if w.district_code else None
                # "TT. Xuân Mai" is how townships are usually written.
                ward_aliases = ("tt " + " ".join(full[2:]),) if full[:2] == ["thi", "tran"] else ()
                hit = Hit(
                    "ward",
                    scheme,
                    w.code,
                    w.name,
                    w.province_code,
                    provinces[w.province_code].name,
                    w.district_code,
                    district.name if district else None,
                )
                drafts.append(_Draft(hit, full, extra, ward_aliases))
        unknown = set(PROVINCE_ALIASES) - alias_keys_used
        if unknown:
            raise ValueError(f"aliases for unknown provinces: {sorted(unknown)}")

        units: list[tuple[tuple[int, int, str, int], IndexedUnit]] = []
        for d in drafts:
            short_tokens = _short_tokens(d.full)
            phrase_lists = [d.full, short_tokens, *(tokenize(a) for a in d.aliases)]
            tokens = {t for p in phrase_lists for t in p} | d.extra
            unit = IndexedUnit(
                hit=d.hit,
                tokens=frozenset(tokens),
                phrases=frozenset(" ".join(p) for p in phrase_lists if p),
                # Not the full name's first word: nearly every full name starts with
                # "Xã"/"Phường"/"Tỉnh"…, which would make the flag meaningless.
                leading=frozenset(p[0] for p in phrase_lists[1:] if p),
            )
            rank = (
                KINDS.index(d.hit.kind),
                len(" ".join(short_tokens)),
                d.hit.code,
                _SCHEME_RANK[d.hit.scheme],
            )
            units.append((rank, unit))
        units.sort(key=lambda pair: pair[0])
        return cls([unit for _, unit in units])

    def _candidates(
        self,
        tokens: Sequence[str],
        scheme: Scheme | None,
        kind: Kind | None,
        province_code: str | None,
    ) -> frozenset[int]:
        sets: list[frozenset[int]] = []
        for token in dict.fromkeys(tokens):
            ids = self._prefix.get(token)
            if ids is None:
                return _EMPTY
            sets.append(ids)
        if scheme is not None:
            sets.append(self._scheme.get(scheme, _EMPTY))
        if kind is not None:
            sets.append(self._kind.get(kind, _EMPTY))
        if province_code is not None:
            sets.append(self._province.get(province_code, _EMPTY))
        # Intersecting from the smallest set keeps every step proportional to it.
        sets.sort(key=len)
        return sets[0].intersection(*sets[1:])

    def search(
        self,
        q: str,
        *,
        scheme: Scheme | None = None,
        kind: Kind | None = None,
        province_code: str | None = None,
        limit: int = 10,
    ) -> list[Hit]:
        """The best `limit` units for the query `q`; ``[]`` when nothing matches."""
        scheme, kind = _checked_filters(scheme, kind)
        tokens = tokenize(q)
        if not tokens or limit < 1:
            return []
        candidates = self._candidates(tokens, scheme, kind, province_code)
        if not candidates:
            return []
        exact = self._phrase.get(" ".join(tokens), _EMPTY)
        whole = candidates.intersection(*(self._word.get(t, _EMPTY) for t in tokens))
        leading = self._leading.get(tokens[0], _EMPTY)
        province_ids = self._kind.get("province", _EMPTY)

        result: list[Hit] = []
        provinces = candidates & province_ids
        for group in (provinces, candidates - provinces):
            if not group:
                continue
            tier0 = group & exact
            rest = group - tier0
            tier1 = rest & whole
            tier2 = rest - tier1
            for ids in (tier0, tier1 & leading, tier1 - leading, tier2 & leading, tier2 - leading):
                need = limit - len(result)
                if need <= 0:
                    return result
                if ids:
                    # nsmallest is linear in the group; a full sort would be n log n.
                    best = sorted(ids) if len(ids) <= need else heapq.nsmallest(need, ids)
                    result.extend(self.units[i].hit for i in best)
        return result

    def search_linear(
        self,
        q: str,
        *,
        scheme: Scheme | None = None,
        kind: Kind | None = None,
        province_code: str | None = None,
        limit: int = 10,
    ) -> list[Hit]:
        """`search` by scanning every unit: the same answers, much slower.

        The reference implementation of the matching and ranking rules, for the tests (as
        an oracle) and the benchmark (as the baseline). Not for request handling.
        """
        scheme, kind = _checked_filters(scheme, kind)
        tokens = tokenize(q)
        if not tokens or limit < 1:
            return []
        phrase = " ".join(tokens)
        ranked: list[tuple[int, int, int, int]] = []
        for uid, unit in enumerate(self.units):
            hit = unit.hit
            if (
                (scheme is not None and hit.scheme != scheme)
                or (kind is not None and hit.kind != kind)
                or (province_code is not None and hit.province_code != province_code)
            ):
                continue
            if not all(any(u.startswith(t) for u in unit.tokens) for t in tokens):
                continue
            if phrase in unit.phrases:
                tier, leads = 0, True
            else:
                tier = 1 if all(t in unit.tokens for t in tokens) else 2
                leads = any(u.startswith(tokens[0]) for u in unit.leading)
            ranked.append((KINDS.index(hit.kind), tier, 0 if leads else 1, uid))
        ranked.sort()
        return [self.units[r[-1]].hit for r in ranked[:limit]]


def _freeze(d: Mapping[str, set[int]]) -> Mapping[str, frozenset[int]]:
    return MappingProxyType({k: frozenset(v) for k, v in d.items()})


def _prefixes(word: Mapping[str, set[int]]) -> dict[str, set[int]]:
    """Every prefix of every word → the ids having a word with that prefix."""
    result: defaultdict[str, set[int]] = defaultdict(set)
    for token, ids in word.items():
        for end in range(1, len(token) + 1):
            result[token[:end]] |= ids
    return result


def _checked_filters(scheme: str | None, kind: str | None) -> tuple[Scheme | None, Kind | None]:
    return (
        None if scheme is None else _check(scheme, SCHEMES, "scheme"),
        None if kind is None else _check(kind, KINDS, "kind"),
    )


_lock = threading.Lock()
_index: UnitIndex | None = None


def unit_index() -> UnitIndex:
    """The process-wide index, built on first use (thread-safe, built once)."""
    global _index
    if _index is None:
        with _lock:
            if _index is None:
                _index = UnitIndex.build()
    return _index


def index_is_built() -> bool:
    """Whether `unit_index()` would answer without building (lets async callers build the
    index off the event loop the first time)."""
    return _index is not None


def search_units(
    q: str,
    *,
    scheme: Scheme | None = None,
    kind: Kind | None = None,
    province_code: str | None = None,
    limit: int = 10,
) -> list[Hit]:
    """Search the shared index; see `UnitIndex.search`."""
    return unit_index().search(
        q, scheme=scheme, kind=kind, province_code=province_code, limit=limit
    )
