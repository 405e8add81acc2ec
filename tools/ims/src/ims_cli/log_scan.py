"""Find personal data in log lines (issue 8: "no personal data in any log line of the whole run").

`find_personal_data` looks for Vietnamese phone numbers in their common written forms
(0912345678, 0912 345 678, 0912.345.678, +84 912 345 678, (+84) 912-345-678, 0084…, and
11-digit landlines 024 3826 1234), e-mail addresses, Vietnamese tax codes (10 digits, or
10-3 digits for a branch: 0101234567-001) and any `known` value (e.g. the customer names a
test run sent), the latter compared accent- and case-insensitively (đ = d), also when the
log line carries it as JSON `\\uXXXX` escapes or percent-encoded.

It is tuned not to flag what log lines are full of: UUIDs, hex ids (correlation ids, trace
ids), ISO timestamps and dates, epoch seconds under a time-like key (`exp`, `iat`, `ts`…),
ports, durations and floats, Kafka offsets, versions, IP addresses and customer codes
(KH000001). Every `Finding` carries the line with all its matches masked, so a report of
findings never repeats the data it warns about.

`ims scan-logs FILE... [--known-file F]` runs it over files; exit 1 when anything is found.
"""

import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Finding", "find_personal_data", "format_finding", "mask", "run_scan_logs"]

#: Known values shorter than this (after normalisation) are ignored: "An" would match anything.
MIN_KNOWN_LENGTH = 4
#: Excerpts of longer lines are cut to a window around the first match.
MAX_EXCERPT = 240


@dataclass(frozen=True)
class Finding:
    line_no: int  # 1-based
    kind: str  # "phone", "email", "tax_code" or "known"
    excerpt: str  # the line, every match on it masked


# --- what is blanked out before scanning (same length, so positions stay) ---------------

_HEX = "[0-9a-fA-F]"
_SAFE_TOKENS = re.compile(
    rf"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"  # UUID
    rf"|(?<![0-9A-Za-z]){_HEX}{{16,}}(?![0-9A-Za-z])"  # hex ids: correlation, trace, sha
)

# --- detectors --------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)

# A phone number: a prefix (+84 / 0084 / (+84) then an optional 0, or a national 0) and up
# to five digit groups joined by at most one space, dot or dash. Validity (the number of
# digits, the leading digit) is checked afterwards, on the digits alone.
_PHONE = re.compile(
    r"(?<![\w+.:/-])"
    r"(?:(?P<intl>\+84|0084|\(\+84\))[ .-]?\(?0?\)?|\(?(?=0[1-9]))"
    r"(?P<body>\d{1,4}\)?(?:[ .-]?\d{2,4}){0,4})"
    r"(?![\w]|[.,:-]\d)"
)

_TAX_CODE = re.compile(r"(?<![\w.:/+-])\d{10}(?:-\d{3})?(?![\w]|[.,:-]\d)")

# Ten digits right after one of these keys are a time, a size or a counter, not a tax code.
_NUMERIC_KEY = re.compile(
    r"(?:exp|iat|nbf|auth_time|ts|time|timestamp|epoch|expires\w*|\w*_at|offset|"
    r"\w*offsets?|bytes|size|length|\w*_ms|\w*_ns|\w*_us|\w*_s|duration\w*|elapsed\w*|"
    r"port|pid|seq\w*|count|total|lag)[\"']?\s*[:=]\s*[\"']?$",
    re.IGNORECASE,
)


def _valid_phone(digits: str) -> bool:
    """`digits`: the national number without its trunk 0."""
    # Mobile: 9 digits after the 0, starting 3, 5, 7, 8 or 9. Landline: 10, starting 2.
    if len(digits) == 9:
        return digits[0] in "35789"
    if len(digits) == 10:
        return digits[0] == "2"
    return False


def _phone_end(match: re.Match[str]) -> int | None:
    """Where the phone number of a candidate ends, or None if it is not one. A candidate
    that swallowed a following group ("0912 345 678 12 items") is cut back to a valid
    number at a separator."""
    body_start = match.start("body")
    text = match.string[body_start : match.end()]
    cuts = [len(text)] + [i for i in range(len(text) - 1, 0, -1) if text[i] in " .-"]
    for cut in cuts:
        digits = re.sub(r"\D", "", text[:cut])
        national = digits.removeprefix("0") if match.group("intl") else digits
        if not match.group("intl") and not digits.startswith("0"):
            return None
        if not match.group("intl"):
            national = digits[1:]
        if _valid_phone(national):
            return body_start + cut
    return None


# --- known values: accent-, case- and escape-insensitive --------------------------------

_ESCAPE = re.compile(
    r"\\u([0-9a-fA-F]{4})(?:\\u([dD][c-fC-F][0-9a-fA-F]{2}))?|(?:%[0-9A-Fa-f]{2})+"
)


def _fold(text: str) -> str:
    """Lower case, no accents, đ as d, runs of spaces as one space."""
    decomposed = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = stripped.casefold()
    return " " if folded.isspace() else folded


def _folded_units(line: str) -> tuple[str, list[int], list[int]]:
    """The line folded for comparison, with each folded character's span in the line."""
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []

    def emit(text: str, start: int, end: int) -> None:
        folded = _fold(text)
        if folded == " " and out and out[-1] == " ":
            ends[-1] = end
            return
        for ch in folded:
            out.append(ch)
            starts.append(start)
            ends.append(end)

    pos = 0
    for match in _ESCAPE.finditer(line):
        for i in range(pos, match.start()):
            emit(line[i], i, i + 1)
        emit(_decode_escape(match), match.start(), match.end())
        pos = match.end()
    for i in range(pos, len(line)):
        emit(line[i], i, i + 1)
    return "".join(out), starts, ends


def _decode_escape(match: re.Match[str]) -> str:
    text = match.group(0)
    if text.startswith("%"):
        raw = bytes(int(text[i + 1 : i + 3], 16) for i in range(0, len(text), 3))
        return raw.decode("utf-8", errors="replace")
    high = int(match.group(1), 16)
    if match.group(2) and 0xD800 <= high < 0xDC00:
        low = int(match.group(2), 16)
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    return chr(high)


def _prepare_known(known: Iterable[str]) -> list[str]:
    values = {" ".join(_fold(value).split()) for value in known}
    return sorted((v for v in values if len(v) >= MIN_KNOWN_LENGTH), key=len, reverse=True)


def _known_spans(line: str, known: Sequence[str]) -> list[tuple[int, int]]:
    if not known:
        return []
    folded, starts, ends = _folded_units(line)
    spans: list[tuple[int, int]] = []
    for value in known:
        index = folded.find(value)
        while index >= 0:
            end = index + len(value)
            before = folded[index - 1] if index > 0 else " "
            after = folded[end] if end < len(folded) else " "
            # Whole words only where the value starts or ends with a letter or digit.
            if not (value[0].isalnum() and before.isalnum()) and not (
                value[-1].isalnum() and after.isalnum()
            ):
                spans.append((starts[index], ends[end - 1]))
            index = folded.find(value, index + 1)
    return spans


# --- the scan ---------------------------------------------------------------------------


def mask(text: str) -> str:
    """Every letter and digit as `*`; separators stay, so the shape is still readable."""
    return "".join("*" if ch.isalnum() else ch for ch in text)


def _scan_line(line: str, known: Sequence[str]) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = [(s, e, "known") for s, e in _known_spans(line, known)]
    scrubbed = _SAFE_TOKENS.sub(lambda m: "x" * len(m.group(0)), line)
    spans += [(m.start(), m.end(), "email") for m in _EMAIL.finditer(scrubbed)]
    taxes = [
        (m.start(), m.end(), "tax_code")
        for m in _TAX_CODE.finditer(scrubbed)
        if not _NUMERIC_KEY.search(scrubbed[max(0, m.start() - 40) : m.start()])
    ]
    # A branch tax code (0312345678-001) is one before its first ten digits are a phone.
    spans += [span for span in taxes if span[1] - span[0] > 10]
    for m in _PHONE.finditer(scrubbed):
        end = _phone_end(m)
        if end is not None:
            spans.append((m.start(), end, "phone"))
    spans += [span for span in taxes if span[1] - span[0] == 10]
    # One finding per place: the earlier detector wins an overlap (known > email > phone > tax).
    kept: list[tuple[int, int, str]] = []
    for span in spans:
        if all(span[1] <= s or span[0] >= e for s, e, _ in kept):
            kept.append(span)
    return sorted(kept)


def _excerpt(line: str, spans: Sequence[tuple[int, int, str]], focus: int) -> str:
    masked = list(line)
    for start, end, _ in spans:
        masked[start:end] = mask(line[start:end])
    text = "".join(masked)
    if len(text) <= MAX_EXCERPT:
        return text
    begin = max(0, min(focus - MAX_EXCERPT // 3, len(text) - MAX_EXCERPT))
    cut = text[begin : begin + MAX_EXCERPT]
    return ("…" if begin else "") + cut + ("…" if begin + MAX_EXCERPT < len(text) else "")


def find_personal_data(lines: Iterable[str], known: Iterable[str] = ()) -> list[Finding]:
    """Every phone number, e-mail address, tax code and known value in `lines`, masked."""
    prepared = _prepare_known(known)
    findings: list[Finding] = []
    for line_no, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        spans = _scan_line(line, prepared)
        findings += [
            Finding(line_no=line_no, kind=kind, excerpt=_excerpt(line, spans, start))
            for start, _, kind in spans
        ]
    return findings


def format_finding(finding: Finding, source: str = "") -> str:
    where = f"{source}:{finding.line_no}" if source else f"line {finding.line_no}"
    return f"{where}: {finding.kind}: {finding.excerpt}"


def run_scan_logs(files: Sequence[Path], known_file: Path | None = None) -> int:
    """`ims scan-logs`: 0 when clean, 1 with the masked findings, 2 if a file is unreadable."""
    known: list[str] = []
    try:
        if known_file is not None:
            known = [v.strip() for v in known_file.read_text("utf-8").splitlines() if v.strip()]
        total = 0
        for path in files:
            with path.open(encoding="utf-8", errors="replace") as handle:
                findings = find_personal_data(handle, known)
            for finding in findings:
                print(format_finding(finding, str(path)))
            total += len(findings)
    except OSError as exc:
        print(f"ims scan-logs: {exc}", file=sys.stderr)
        return 2
    if total:
        print(f"ims scan-logs: {total} finding(s) of personal data", file=sys.stderr)
        return 1
    print(f"ims scan-logs: no personal data in {len(files)} file(s)", file=sys.stderr)
    return 0
