"""What an uploaded file really is, and a name for it that is safe to keep and to serve.

The type is decided from the bytes, never from the name or the client's Content-Type:
a PNG named `giay-phep.pdf` is a PNG, an HTML page named `x.pdf` is refused, and so is a
ZIP archive that is not a Word or Excel document (including macro-enabled ones).
"""

import re
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

#: Bytes from the start of a file that `sniff` needs.
HEAD_BYTES = 16
#: Longest filename kept, in characters (the extension is preserved when cutting).
MAX_FILENAME_CHARS = 200
#: [Content_Types].xml is tiny in real documents; refuse to inflate more than this of it.
_MAX_CONTENT_TYPES_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class FileType:
    content_type: str
    #: File extensions for this type, lower case; the first is the one appended when needed.
    extensions: tuple[str, ...]


PDF = FileType("application/pdf", (".pdf",))
JPEG = FileType("image/jpeg", (".jpg", ".jpeg", ".jfif"))
PNG = FileType("image/png", (".png",))
WEBP = FileType("image/webp", (".webp",))
DOCX = FileType(
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document", (".docx",)
)
XLSX = FileType("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx",))
ALLOWED: tuple[FileType, ...] = (PDF, JPEG, PNG, WEBP, DOCX, XLSX)

# The main-part content types an OOXML package declares in [Content_Types].xml. The
# macro-enabled and template variants declare other types, so they are not recognised.
_OOXML_MAIN = {
    DOCX: (
        b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        "word/",
    ),
    XLSX: (b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml", "xl/"),
}


def sniff(head: bytes, path: Path) -> FileType | None:
    """The allowed type of the file at `path` (whose first bytes are `head`), or None.

    Blocking (opens ZIP archives): call it from a worker thread.
    """
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    # The IHDR chunk always comes first: a bare signature glued onto other bytes is no PNG.
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and head[12:16] in (b"VP8 ", b"VP8L", b"VP8X"):
        return WEBP
    if head.startswith(b"PK\x03\x04"):
        return _office_type(path)
    return None


def _office_type(path: Path) -> FileType | None:
    """DOCX or XLSX if the archive is an OOXML package of that kind; any other ZIP is None."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "[Content_Types].xml" not in names:
                return None
            with archive.open("[Content_Types].xml") as handle:
                # Bounded read: a lying header must not make us inflate a zip bomb.
                declared = handle.read(_MAX_CONTENT_TYPES_BYTES + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError):
        return None  # not a ZIP we can read, an unsupported method, or encrypted
    except (OSError, EOFError, ValueError, zlib.error):
        return None  # truncated or corrupt archive
    if len(declared) > _MAX_CONTENT_TYPES_BYTES:
        return None
    found = [
        file_type
        for file_type, (main_type, folder) in _OOXML_MAIN.items()
        if main_type in declared and any(name.startswith(folder) for name in names)
    ]
    return found[0] if len(found) == 1 else None


class UnsafeFilenameError(ValueError):
    """A filename that tries to leave its folder (`../`)."""


_SEPARATORS = re.compile(r"[/\\]")
#: Look-alikes that become a separator under compatibility normalisation (NFKC/NFKD, as
#: tools and download fallbacks apply it): the fullwidth and small solidus and reverse
#: solidus. They are separators here too, so `..／..／etc` is the traversal it reads as.
_SEPARATOR_LOOKALIKES = re.compile("[\uff0f\uff3c\ufe68]")
_SPACES = re.compile(r"\s+")
# Characters Windows refuses in names; replaced so the downloaded file can be saved anywhere.
_RESERVED = re.compile(r'[<>:"|?*]')
#: Names Windows gives to devices, with any extension (`CON.pdf` cannot be saved either).
_DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{port}{n}" for port in ("COM", "LPT") for n in "123456789"}
)


def safe_filename(raw: str, file_type: FileType) -> str:
    """The name to keep: no folders, no control or bidi characters, Vietnamese intact.

    A name with a `..` component is refused (UnsafeFilenameError), fullwidth look-alikes
    of `/`, `\\` and `.` included; other folder parts (`C:\\scans\\a.pdf`) are dropped. A
    Windows device name (`CON`, `LPT1.txt`) gets a `_` in front. The extension is made to
    match the real type, so a PNG uploaded as `a.pdf` is kept as `a.pdf.png` and opens
    with the right program.
    """
    name = _SEPARATOR_LOOKALIKES.sub("/", unicodedata.normalize("NFC", raw))
    parts = _SEPARATORS.split(name)
    if any(unicodedata.normalize("NFKC", part).strip() == ".." for part in parts):
        raise UnsafeFilenameError(raw)
    # Category C: controls (tabs and newlines too), format characters (bidi overrides such
    # as U+202E that disguise `fdp.exe` as `exe.pdf`), surrogates, private use, unassigned.
    name = "".join(ch for ch in parts[-1] if not unicodedata.category(ch).startswith("C"))
    name = _SPACES.sub(" ", name)
    name = _RESERVED.sub("_", name).strip(" .")
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    if not extension or "." + extension.lower() not in file_type.extensions:
        stem, extension = name, file_type.extensions[0][1:]
    stem = stem or "attachment"
    if unicodedata.normalize("NFKC", stem.split(".")[0]).strip().upper() in _DEVICE_NAMES:
        stem = "_" + stem  # `CON.pdf` would name a device on Windows, not a file
    suffix = "." + extension
    if len(stem) + len(suffix) > MAX_FILENAME_CHARS:
        stem = stem[: MAX_FILENAME_CHARS - len(suffix)].rstrip(" .") or "attachment"
    return stem + suffix
