"""Each image's build, rehearsed on this machine without Docker.

The builder stage of every Dockerfile is replayed as written: its COPY instructions copy
from the build context (the repository's files that .dockerignore lets through) into a
folder, and its `uv sync` commands run there against uv.lock. The venv they leave is what
the runtime stage copies; it must hold the service without its development dependencies,
installed as a package (not pointing back at the sources), and start the image's
entrypoint. What stays unchecked without a daemon is the base image itself.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ims_cli.ports import free_ports
from tests.deploy.helpers import (
    DOCKER_DIR,
    REPO,
    dockerignore_excludes,
    env_pairs,
    parse_dockerfile,
)

DOCKERFILES = sorted(DOCKER_DIR.glob("*.Dockerfile"))
IGNORE = (REPO / ".dockerignore").read_text().splitlines()
UV = Path(sys.executable).with_name("uv")


def build_context() -> list[str]:
    """The repository's files as `docker build .` would send them."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    # (--cached also lists tracked files deleted in the working tree: not in the context.)
    return [
        path
        for path in listed
        if not dockerignore_excludes(path, IGNORE) and (REPO / path).is_file()
    ]


def copy_instruction(args: str, context: list[str], workdir: Path) -> None:
    """`COPY a b dest/`: files as named, folders with what the context holds under them."""
    *sources, dest = shlex.split(args)
    assert not any(s.startswith("--") for s in sources), "builder COPYs come from the context"
    for source in sources:
        inside = source.rstrip("/")
        files = [p for p in context if p == inside or p.startswith(inside + "/")]
        assert files, f"COPY {source}: nothing in the build context"
        for path in files:
            relative = Path(path).relative_to(inside) if path != inside else Path(Path(path).name)
            if path == inside and not dest.endswith("/"):
                target = workdir / dest
            else:
                target = workdir / dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / path, target)


def rehearse_builder(dockerfile: Path, root: Path) -> Path:
    """Replay the builder stage in `root`; the venv it leaves."""
    instructions = [i for i in parse_dockerfile(dockerfile.read_text()) if i.stage == 0]
    context = build_context()
    env = dict(os.environ)
    workdir = root / "src"
    venv = root / "venv"
    synced = 0
    for instruction in instructions:
        if instruction.keyword == "ENV":
            env.update(env_pairs(instruction.args))
        elif instruction.keyword == "WORKDIR":
            workdir = root / instruction.args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            copy_instruction(instruction.args, context, workdir)
        elif instruction.keyword == "RUN" and instruction.args.startswith("uv "):
            command = shlex.split(instruction.args)
            done = subprocess.run(
                [str(UV), *command[1:]],
                cwd=workdir,
                # The image's venv path and Python, moved to this machine; hard links from
                # uv's cache instead of copies, and no ahead-of-time bytecode: both only
                # cost time here (the import below compiles what it loads).
                env={
                    **env,
                    "UV_PROJECT_ENVIRONMENT": str(venv),
                    "UV_PYTHON": sys.executable,
                    "UV_LINK_MODE": "hardlink",
                    "UV_COMPILE_BYTECODE": "0",
                },
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, f"{instruction.args}\n{done.stderr[-3000:]}"
            synced += 1
        elif instruction.keyword == "RUN":
            # Installing uv itself: its version is checked against the Makefile's elsewhere.
            assert "pip install" in instruction.args and "uv==" in instruction.args
    assert synced == 2
    return venv


def entry_module(dockerfile: Path) -> str:
    (entrypoint,) = [
        i.args for i in parse_dockerfile(dockerfile.read_text()) if i.keyword == "ENTRYPOINT"
    ]
    return entrypoint.split('"')[-2]  # ["python", "-m", "<module>"]


def test_the_rehearsal_uses_the_images_uv() -> None:
    wanted = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert wanted
    shown = subprocess.run([str(UV), "--version"], capture_output=True, text=True, check=True)
    assert shown.stdout.split()[1] == wanted[1]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.stem)
def test_the_builder_stage_makes_a_venv_that_runs_the_image(
    dockerfile: Path, tmp_path: Path
) -> None:
    venv = rehearse_builder(dockerfile, tmp_path)
    python = venv / "bin" / "python"
    module = entry_module(dockerfile)
    probe = (
        f"import importlib.util, {module}; "
        f"print({module}.__file__); print(importlib.util.find_spec('pytest') is not None)"
    )
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    done = subprocess.run(
        [str(python), "-c", probe], cwd=tmp_path, env=clean_env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    where, has_pytest = done.stdout.split()
    # Installed into the venv, not an editable link to the copied sources.
    assert Path(where).is_relative_to(venv), where
    assert has_pytest == "False"  # --no-dev
    if module == "misa_simulator":
        assert_simulator_serves(python, tmp_path, clean_env)
    else:  # imports the whole app (settings come later, at `serve`)
        shown = subprocess.run(
            [str(python), "-m", module, "--help"], env=clean_env, capture_output=True, text=True
        )
        assert shown.returncode == 0 and "serve" in shown.stdout and "migrate" in shown.stdout


def assert_simulator_serves(python: Path, tmp_path: Path, env: dict[str, str]) -> None:
    """The simulator image's command, started for real: it answers its health check."""
    import time

    import httpx

    (port,) = free_ports(1)
    process = subprocess.Popen(
        [str(python), "-m", "misa_simulator"],
        env={
            **env,
            "MISA_SIM_PORT": str(port),
            "MISA_SIM_STATE_FILE": str(tmp_path / "state.json"),
        },
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "simulator.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, (tmp_path / "simulator.log").read_text()
                assert time.monotonic() < deadline, "the simulator never answered"
                time.sleep(0.2)
        assert answer.status_code == 200
    finally:
        process.terminate()
        process.wait(10)
