"""Where the `ims` command keeps its local state: the repository root and the data folder."""

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

DATA_DIR_ENV = "IMS_DATA_DIR"
DEFAULT_DATA_DIR_NAME = ".ims"


def _is_workspace_root(directory: Path) -> bool:
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        return False
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    tool = data.get("tool", {})
    uv = tool.get("uv", {}) if isinstance(tool, dict) else {}
    return isinstance(uv, dict) and "workspace" in uv


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` whose pyproject.toml declares the uv workspace.

    Falls back to `start` itself (the current directory by default) when there is none.
    """
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if _is_workspace_root(directory):
            return directory
    return here


def data_dir(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    """The local data folder: $IMS_DATA_DIR, else `.ims` under the repository root."""
    environ = os.environ if env is None else env
    base = (cwd or Path.cwd()).resolve()
    configured = environ.get(DATA_DIR_ENV, "").strip()
    if configured:
        return (base / Path(configured).expanduser()).resolve()
    return find_repo_root(base) / DEFAULT_DATA_DIR_NAME


def dev_issuer_dir(data: Path) -> Path:
    """Where the dev issuer's RS256 key pair lives."""
    return data / "dev-issuer"
