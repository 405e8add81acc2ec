"""What the deploy/ checks share: paths, the services, the offline tools and parsers."""

import re
import shutil
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from pytest import MonkeyPatch

from ims_cli.stack_config import DEFAULT_SERVICES

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKER_DIR = DEPLOY / "docker"
K8S_DIR = DEPLOY / "k8s"


@dataclass(frozen=True)
class Service:
    """One of the four services as deploy/ names it."""

    name: str  # ServiceDef.name: customer, approval, misa_sync, reference
    module: str
    prefix: str
    port: int
    database: str

    @property
    def package(self) -> str:
        pyproject = REPO / "services" / self.name / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text())["project"]["name"])

    @property
    def k8s_name(self) -> str:  # the Deployment, Service, ConfigMap... stem
        return "ims-" + self.name.replace("_", "-")

    @property
    def image(self) -> str:  # the image repository, ims/<name>
        return "ims/" + self.name.replace("_", "-")


SERVICES: tuple[Service, ...] = tuple(
    Service(s.name, s.module, s.env_prefix, s.default_port, s.database) for s in DEFAULT_SERVICES
)
SIMULATOR_PORT = 8090


def tool(name: str) -> str:
    """A command installed into the project's venv by `make bootstrap` (or on PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    assert found, f"{name} is missing: run `make bootstrap` (it comes from a dev dependency)"
    return found


# ---- Dockerfiles ------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int  # index of the FROM it belongs to


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with their continuation lines joined; comments and blank lines dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    out: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(keyword, args.strip(), stage))
    return out


def env_pairs(args: str) -> dict[str, str]:
    """`ENV A=1 B="x y"` as a dict (the key=value form only)."""
    pairs = re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)', args)
    return {k: v.strip('"') for k, v in pairs}


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves `path` out (Docker's rules: last match wins, and
    a pattern matching a parent folder matches everything under it)."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        if any(
            fnmatchcase(c, pattern) or fnmatchcase(c, pattern.removeprefix("**/"))
            for c in candidates
        ):
            excluded = not negate
    return excluded


# ---- compose ------------------------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\?|-|\?)(?P<arg>[^}]*))?\}"
)


def compose_variables(text: str) -> dict[str, str | None]:
    """Every `${VAR...}` of a compose file: name -> its default (None: required or bare)."""
    out: dict[str, str | None] = {}
    for m in _VARIABLE.finditer(text):
        if m.group("name"):
            has_default = m.group("op") in (":-", "-")
            out[m.group("name")] = m.group("arg") if has_default else None
    return out


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """Compose's interpolation: `${VAR}`, `${VAR:-default}`, `${VAR:?error}`, `$$`."""

    def replace(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$$"  # left for the container's shell, as compose does
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        value = values.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op in (":?", "?") and not value:
            raise KeyError(f"{name}: {arg}")
        return value or ""

    return _VARIABLE.sub(replace, text)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (comments and blank lines skipped), as compose and kustomize read them."""
    out: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {raw!r}"
        out[key.strip()] = value.strip()
    return out


def dummy_secret(key: str) -> str:
    """A stand-in for a secret an operator fills in: well formed for its setting."""
    if key.endswith("DATABASE_URL"):
        return "postgresql+asyncpg://svc:s3cret@db.internal:5432/ims_test"
    return "test-" + key.lower().replace("_", "-") + "-0123456789abcdef"


def settings_class(service: Service) -> type:
    """The service's pydantic-settings class (services/<name>/.../settings.py)."""
    import importlib

    from shared.config import ServiceSettings

    module = importlib.import_module(f"{service.module}.settings")
    (cls,) = (
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, ServiceSettings) and v is not ServiceSettings
    )
    return cls


def load_settings(service: Service, env: Mapping[str, str], monkeypatch: MonkeyPatch) -> object:
    """Build the service's settings from exactly `env` (its own prefixed variables), as the
    process would at start-up: a value its validators refuse fails here."""
    import os

    for key in list(os.environ):
        if key.startswith(service.prefix):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return settings_class(service)()


def image_env(name: str) -> dict[str, str]:
    """The ENV of a Dockerfile's runtime stage (what every container of the image starts with)."""
    instrs = parse_dockerfile((DOCKER_DIR / f"{name}.Dockerfile").read_text())
    last = max(i.stage for i in instrs)
    out: dict[str, str] = {}
    for i in instrs:
        if i.keyword == "ENV" and i.stage == last:
            out.update(env_pairs(i.args))
    return out


#: Containers listen on every interface of their own network namespace.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
