"""`ims bench reference-search`: latency of the admin-unit type-ahead search (issue 3).

In one run and side by side, so that ratios hold on a noisy shared machine:

- the index build (and the first load of the official data it is built from);
- per-query latency of the index over a realistic type-ahead mix;
- the same queries through a linear scan of every unit (`UnitIndex.search_linear`), the
  baseline the index has to beat;
- with ``--url``, the HTTP endpoint of a running reference service.

The figures are printed and appended, with the machine they ran on, to
``docs/benchmarks/reference-search.md``. Targets are checked here, never in timed tests.
"""

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from ims_cli.bench_report import Machine as Machine  # re-exported: older callers
from ims_cli.bench_report import Stats as Stats
from ims_cli.bench_report import cpu_model as cpu_model
from ims_cli.bench_report import machine_info as machine_info
from ims_cli.bench_report import machine_line, markdown_table
from ims_cli.bench_report import mem_total_gib as mem_total_gib
from ims_cli.bench_report import percentile as percentile
from ims_cli.bench_report import summarize as summarize
from ims_cli.paths import find_repo_root

if TYPE_CHECKING:
    from reference.unit_search import Hit

TARGET_P95_MS = 10.0
DEFAULT_QUERIES = 600
SEARCH_PATH = "/api/v1/admin-units/search"
RESULT_FILE = Path("docs/benchmarks/reference-search.md")
_WARMUP = 20

# What people type into an address form, letter by letter.
_TYPED = (
    "ho chi minh",
    "ha noi",
    "da nang",
    "sai gon",
    "ben nghe",
    "thu duc",
    "phuong 1",
    "nguyen hue",
    "tan binh",
    "vung tau",
    "can tho",
    "xuan mai",
)
# Whole queries: aliases, accented and punctuated spellings.
_WHOLE = (
    "hcm",
    "tphcm",
    "TP.HCM",
    "sg",
    "hn",
    "dn",
    "hp",
    "ct",
    "brvt",
    "tth",
    "hue",
    "Hồ Chí Minh",
    "Đà Nẵng",
    "Phường Bến Nghé",
    "Xã Tân An",
    "Thị trấn Xuân Mai",
    "M'Đrắk",
    "tt xuan mai",
)
# Queries that find nothing, including ones that die at the first token.
_NO_MATCH = ("zzz", "qwerty", "'; drop table ward", "%%%", "hcmx", "ho chi minx", "xa zzz")


@dataclass(frozen=True, slots=True)
class BenchQuery:
    q: str
    scheme: Literal["2025", "legacy"] | None = None
    kind: Literal["province", "ward"] | None = None
    province_code: str | None = None
    limit: int = 10

    def params(self) -> dict[str, str | int]:
        """The query string of the HTTP endpoint."""
        out: dict[str, str | int] = {"q": self.q, "limit": self.limit}
        if self.scheme:
            out["scheme"] = self.scheme
        if self.kind:
            out["kind"] = self.kind
        if self.province_code:
            out["province_code"] = self.province_code
        return out


_FILTERED = (
    BenchQuery("phu", scheme="2025"),
    BenchQuery("tan", province_code="79"),
    BenchQuery("an", kind="ward", limit=50),
    BenchQuery("phuong", scheme="legacy", province_code="79", limit=20),
    BenchQuery("x", limit=50),
    BenchQuery("ben", scheme="legacy", kind="ward"),
)


def typed_prefixes(text: str) -> list[str]:
    """'ho c' → ['h', 'ho', 'ho c']: each keystroke's query (a trailing space adds nothing)."""
    return [text[:end] for end in range(1, len(text) + 1) if not text[:end].endswith(" ")]


def query_mix() -> list[BenchQuery]:
    """The distinct queries of one round, in the order they are sent."""
    mix = [BenchQuery(p) for text in _TYPED for p in typed_prefixes(text)]
    mix += [BenchQuery(q) for q in _WHOLE]
    mix += [BenchQuery(q) for q in _NO_MATCH]
    mix += _FILTERED
    return mix


@dataclass(frozen=True, slots=True)
class Report:
    command: str
    machine: Machine
    distinct_queries: int
    data_load_ms: float
    build_ms: tuple[float, ...]
    index: Stats
    linear: Stats
    mismatches: int
    """Queries where the index and the linear scan answered differently (should be 0)."""
    http: Stats | None = None
    url: str | None = None


def _ms(ns: int) -> float:
    return ns / 1_000_000


def _timed[T](call: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter_ns()
    result = call()
    return result, _ms(time.perf_counter_ns() - started)


def _search(method: "Callable[..., list[Hit]]", query: BenchQuery) -> "Callable[[], list[Hit]]":
    return lambda: method(
        query.q,
        scheme=query.scheme,
        kind=query.kind,
        province_code=query.province_code,
        limit=query.limit,
    )


def measure_in_process(queries: int) -> tuple[float, tuple[float, ...], Stats, Stats, int]:
    """Data load, three builds, then `queries` queries through the index and the scan,
    alternating which goes first so that drift in machine load hits both alike."""
    from reference.unit_search import UnitIndex
    from shared.admin_units import SCHEMES, district_by_code, province_by_code, wards

    def load() -> None:
        for scheme in SCHEMES:
            province_by_code(scheme)
            wards(scheme)
        district_by_code()

    _, data_load_ms = _timed(load)
    builds = [_timed(UnitIndex.build) for _ in range(3)]
    index = builds[-1][0]

    mix = query_mix()
    for query in mix[:_WARMUP]:
        index.search(query.q, limit=query.limit)
    fast_ms: list[float] = []
    slow_ms: list[float] = []
    mismatches = 0
    for i in range(queries):
        query = mix[i % len(mix)]
        fast, slow = _search(index.search, query), _search(index.search_linear, query)
        if i % 2:
            (slow_hits, slow_t), (fast_hits, fast_t) = _timed(slow), _timed(fast)
        else:
            (fast_hits, fast_t), (slow_hits, slow_t) = _timed(fast), _timed(slow)
        fast_ms.append(fast_t)
        slow_ms.append(slow_t)
        mismatches += fast_hits != slow_hits
    return (
        data_load_ms,
        tuple(ms for _, ms in builds),
        summarize(fast_ms),
        summarize(slow_ms),
        mismatches,
    )


class HttpBenchError(Exception):
    pass


def measure_http(url: str, token: str, queries: int) -> Stats:
    """`queries` sequential GETs on one keep-alive connection."""
    import httpx

    mix = query_mix()
    samples: list[float] = []
    with httpx.Client(
        base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=10.0
    ) as client:

        def get(query: BenchQuery) -> httpx.Response:
            response = client.get(SEARCH_PATH, params=query.params())
            if response.status_code != 200:
                raise HttpBenchError(
                    f"GET {SEARCH_PATH} answered {response.status_code}: {response.text[:200]}"
                )
            return response

        try:
            # The warm-up also makes the service build its index before timing starts.
            for query in mix[:_WARMUP]:
                get(query)
            for i in range(queries):
                query = mix[i % len(mix)]
                started = time.perf_counter_ns()
                get(query)
                samples.append(_ms(time.perf_counter_ns() - started))
        except httpx.HTTPError as exc:
            raise HttpBenchError(f"{url}: {exc}") from exc
    return summarize(samples)


def _verdict(stats: Stats) -> str:
    met = "met" if stats.p95 <= TARGET_P95_MS else "NOT met"
    return f"{met} (p95 {stats.p95:.3f} ms)"


def render_table(report: Report) -> str:
    rows: list[tuple[str, Stats]] = [
        ("index (in process)", report.index),
        ("linear scan (baseline)", report.linear),
    ]
    if report.http is not None:
        rows.append((f"HTTP {report.url}", report.http))
    width = max(len(name) for name, _ in rows)
    lines = [f"{'':<{width}}  {'n':>6}  {'p50':>9}  {'p95':>9}  {'p99':>9}  {'max':>9}  (ms)"]
    for name, s in rows:
        lines.append(
            f"{name:<{width}}  {s.n:>6}  {s.p50:>9.3f}  {s.p95:>9.3f}  {s.p99:>9.3f}  {s.max:>9.3f}"
        )
    lines.append("")
    lines.extend(_summary_lines(report))
    return "\n".join(lines)


def _summary_lines(report: Report) -> list[str]:
    builds = ", ".join(f"{ms:.0f}" for ms in report.build_ms)
    lines = [
        f"official data load (first use): {report.data_load_ms:.0f} ms; "
        f"index build: {builds} ms (3 builds)",
        f"speed-up over the linear scan: p50 ×{_ratio(report.linear.p50, report.index.p50)}, "
        f"p95 ×{_ratio(report.linear.p95, report.index.p95)}",
        f"answers differing between index and scan: {report.mismatches}",
        f"target p95 ≤ {TARGET_P95_MS:g} ms, in process: {_verdict(report.index)}",
    ]
    if report.http is not None:
        lines.append(f"target p95 ≤ {TARGET_P95_MS:g} ms, over HTTP: {_verdict(report.http)}")
    return lines


def _ratio(slow: float, fast: float) -> str:
    return f"{slow / fast:.0f}" if fast > 0 else "∞"


def render_markdown(report: Report) -> str:
    lines = [
        f"## {report.machine.date}",
        "",
        machine_line(report.machine),
        f"Command: `{report.command}`; {report.distinct_queries} distinct queries, cycled.",
        "",
    ]
    rows = [("index, in process", report.index), ("linear scan, in process", report.linear)]
    if report.http is not None:
        rows.append((f"HTTP `{report.url}`", report.http))
    lines += markdown_table(
        ("measured", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"),
        "lrrrrr",
        (
            (name, s.n, f"{s.p50:.3f}", f"{s.p95:.3f}", f"{s.p99:.3f}", f"{s.max:.3f}")
            for name, s in rows
        ),
    )
    lines.append("")
    lines.extend(f"- {line}" for line in _summary_lines(report))
    return "\n".join(lines) + "\n"


HEADER = f"""# Benchmark: admin-unit type-ahead search (reference service)

Target (issue 3): accent-insensitive type-ahead over provinces and wards of both schemes,
**p95 ≤ {TARGET_P95_MS:g} ms** per query.

Run it from the repository root:

    .venv/bin/ims bench reference-search [--queries N] [--url http://127.0.0.1:8004]

In one process and side by side it measures the index build, the in-memory index
(`reference.unit_search`) over a type-ahead query mix (prefixes typed letter by letter,
aliases, ward names, accented spellings, queries that match nothing, filtered queries) and,
as the baseline, a linear scan over all ~13,500 units applying the same matching and
ranking. With `--url` it also times `GET {SEARCH_PATH}` on a running
reference service (`ims up`), with a token signed by the dev issuer key in the data folder.

Each run appends a section below, with the machine it ran on. The machines are shared and
noisy: compare the ratios within one run rather than absolute figures across runs.
"""


def append_report(path: Path, report: Report) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists() or not path.read_text(encoding="utf-8").strip()
    with path.open("a", encoding="utf-8") as f:
        if new:
            f.write(HEADER)
        f.write("\n" + render_markdown(report))


def _dev_token(data: Path) -> str:
    from ims_cli.paths import dev_issuer_dir
    from shared.auth.dev_issuer import ensure_keypair, issue_token

    private_path, _ = ensure_keypair(dev_issuer_dir(data))
    return issue_token(private_path.read_bytes(), username="sales1", ttl_seconds=3600)


def run_reference_search_bench(
    *,
    queries: int,
    url: str | None,
    data: Path,
    output: Path | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        import reference.unit_search  # noqa: F401
    except ImportError:
        print(
            "ims bench: the ims-reference package is not installed in this environment",
            file=err,
        )
        return 2
    command = f"ims bench reference-search --queries {queries}" + (f" --url {url}" if url else "")
    print(f"measuring {queries} queries in process (index and linear scan)…", file=out)
    data_load_ms, build_ms, index, linear, mismatches = measure_in_process(queries)
    http = None
    if url:
        print(f"measuring {queries} queries over HTTP at {url}…", file=out)
        try:
            http = measure_http(url, _dev_token(data), queries)
        except HttpBenchError as exc:
            print(f"ims bench: {exc}", file=err)
            return 1
    report = Report(
        command=command,
        machine=machine_info(),
        distinct_queries=len(query_mix()),
        data_load_ms=data_load_ms,
        build_ms=build_ms,
        index=index,
        linear=linear,
        mismatches=mismatches,
        http=http,
        url=url,
    )
    print(render_table(report), file=out)
    target = output or find_repo_root() / RESULT_FILE
    append_report(target, report)
    print(f"results appended to {target}", file=out)
    return 0
