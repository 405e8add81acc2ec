"""deploy/docker: one Dockerfile per service, linted by hadolint and checked for what the
images promise (pinned base, non-root, health check, production settings, sources that
exist in the build context). No image is built here (no daemon, no registry); the builder
stage is rehearsed in test_image_builds.py."""

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.deploy.helpers import (
    ALL_INTERFACES,
    DOCKER_DIR,
    REPO,
    SERVICES,
    SIMULATOR_PORT,
    Instruction,
    Service,
    dockerignore_excludes,
    env_pairs,
    parse_dockerfile,
    tool,
)

DOCKERFILES = sorted(DOCKER_DIR.glob("*.Dockerfile"))
IGNORE = (REPO / ".dockerignore").read_text().splitlines()
#: python:<exact version>-slim-<debian release>, the same in every stage.
BASE = re.compile(r"^python:(?P<version>3\.\d+\.\d+)-slim-[a-z]+$")


def instructions(name: str) -> list[Instruction]:
    return parse_dockerfile((DOCKER_DIR / f"{name}.Dockerfile").read_text())


def final(instrs: list[Instruction], keyword: str) -> list[str]:
    last = max(i.stage for i in instrs)
    return [i.args for i in instrs if i.keyword == keyword and i.stage == last]


def test_one_dockerfile_per_service_and_the_simulator() -> None:
    names = {p.name.removesuffix(".Dockerfile") for p in DOCKERFILES}
    assert names == {s.name for s in SERVICES} | {"misa_simulator"}


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--config", str(DOCKER_DIR / "hadolint.yaml"), *map(str, DOCKERFILES)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_really_lints() -> None:
    # The same binary and settings refuse an unpinned base: the check above is not a no-op.
    result = subprocess.run(
        [tool("hadolint"), "--config", str(DOCKER_DIR / "hadolint.yaml"), "-"],
        input="FROM python:latest\nRUN pip install uv\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_base_is_pinned_and_matches_the_project_python(path: Path) -> None:
    instrs = parse_dockerfile(path.read_text())
    bases = [i.args.split()[0] for i in instrs if i.keyword == "FROM"]
    assert len(bases) == 2, "multi-stage: a builder and a runtime"
    assert len(set(bases)) == 1, "the venv is built on the runtime's own Python"
    match = BASE.match(bases[0])
    assert match, f"base not pinned to an exact python version: {bases[0]}"
    wanted = (REPO / ".python-version").read_text().strip()
    assert match["version"].startswith(wanted + ".")


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_exist_in_the_build_context(path: Path) -> None:
    for instr in parse_dockerfile(path.read_text()):
        if instr.keyword != "COPY" or instr.args.startswith("--from"):
            continue
        *sources, _target = instr.args.split()
        for source in sources:
            assert (REPO / source).exists(), f"{path.name}: COPY {source}: no such path"
            assert not dockerignore_excludes(source, IGNORE), f".dockerignore drops {source}"


def test_dockerignore_keeps_local_data_and_secrets_out() -> None:
    for path in (
        ".ims/pgdata/base",
        ".venv/bin/python",
        "deploy/.env",
        ".git/config",
        "services/customer/src/customer/__pycache__/app.cpython-312.pyc",
    ):
        assert dockerignore_excludes(path, IGNORE), path
    assert not dockerignore_excludes("services/customer/src/customer/app.py", IGNORE)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_runtime_is_unprivileged_and_health_checked(path: Path) -> None:
    instrs = parse_dockerfile(path.read_text())
    users = final(instrs, "USER")
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid not in ("root", "0") and uid.isdigit() and int(uid) >= 1000
    assert any(f"--uid {uid}" in run for run in final(instrs, "RUN")), "USER is the user created"
    (health,) = final(instrs, "HEALTHCHECK")
    assert "/healthz" in health and "CMD" in health
    assert final(instrs, "EXPOSE"), "EXPOSE the port"
    env = {k: v for args in final(instrs, "ENV") for k, v in env_pairs(args).items()}
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    assert final(instrs, "ENTRYPOINT")
    # Only the venv crosses from the builder: no sources, no uv, no compiler.
    copies = final(instrs, "COPY")
    assert copies == ["--from=builder /opt/ims/venv /opt/ims/venv"]


def test_uv_matches_the_makefile() -> None:
    wanted = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert wanted
    for path in DOCKERFILES:
        assert f'"uv=={wanted[1]}"' in path.read_text(), path.name


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_service_image_runs_the_service_in_production(service: Service) -> None:
    instrs = instructions(service.name)
    p = service.prefix
    env = {k: v for args in final(instrs, "ENV") for k, v in env_pairs(args).items()}
    assert env[f"{p}ENV"] == "prod"
    assert env[f"{p}HTTP_HOST"] == ALL_INTERFACES
    assert env[f"{p}HTTP_PORT"] == str(service.port)
    assert env[f"{p}LOG_JSON"] == "true"
    assert env[f"{p}KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    assert final(instrs, "EXPOSE") == [str(service.port)]
    (health,) = final(instrs, "HEALTHCHECK")
    assert f"{p}HTTP_PORT" in health and str(service.port) in health
    assert final(instrs, "ENTRYPOINT") == [f'["python", "-m", "{service.module}"]']
    assert final(instrs, "CMD") == ['["serve"]']
    syncs = [i.args for i in instrs if i.keyword == "RUN" and "uv sync" in i.args]
    assert len(syncs) == 2
    for sync in syncs:
        assert "--frozen" in sync and "--no-dev" in sync
        assert sync.endswith(f"--package {service.package}")
    assert "--no-editable" in syncs[-1]


def test_simulator_image() -> None:
    instrs = instructions("misa_simulator")
    env = {k: v for args in final(instrs, "ENV") for k, v in env_pairs(args).items()}
    assert env["MISA_SIM_HOST"] == ALL_INTERFACES
    assert env["MISA_SIM_PORT"] == str(SIMULATOR_PORT)
    assert env["MISA_SIM_STATE_FILE"].startswith("/var/lib/ims/")
    assert final(instrs, "EXPOSE") == [str(SIMULATOR_PORT)]
    assert final(instrs, "ENTRYPOINT") == ['["python", "-m", "misa_simulator"]']
    pyproject = REPO / "services/misa_simulator/pyproject.toml"
    package = tomllib.loads(pyproject.read_text())["project"]["name"]
    syncs = [i.args for i in instrs if i.keyword == "RUN" and "uv sync" in i.args]
    assert all(s.endswith(f"--package {package}") for s in syncs)


def test_the_service_dockerfiles_stay_in_step() -> None:
    """The four service Dockerfiles differ only in their names (and customer's blob folder)."""

    def normalised(service: Service) -> str:
        text = (DOCKER_DIR / f"{service.name}.Dockerfile").read_text()
        lines = [
            line.rstrip(" \\")  # continuations: customer's extra ENV line moves the last one
            for line in text.splitlines()
            if "Image of" not in line and "description=" not in line and "BLOB_DIR" not in line
        ]
        text = "\n".join(lines).replace("/var/lib/ims/blobs", "/var/lib/ims")
        for old, new in (
            (service.package, "<package>"),
            (service.prefix, "<PREFIX>"),
            (f"COPY services/{service.name}/ services/{service.name}/\n", "COPY <code>\n"),
            (f'"{service.module}"', "<module>"),
            (service.image, "<image>"),
            (f"{service.name}.Dockerfile", "<file>"),
            (str(service.port), "<port>"),
        ):
            text = text.replace(old, new)
        return text

    first, *others = SERVICES
    for other in others:
        assert normalised(other) == normalised(first), f"{other.name} drifted from {first.name}"
