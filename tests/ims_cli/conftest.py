"""Fixtures of the `ims` command's tests: free ports and fake service packages."""

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

# A stand-in for a service or the simulator: `python -m <module> migrate|serve`.
# Its behaviour is steered through environment variables with its own prefix.
FAKE_APP = """
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

PREFIX = {prefix!r}
PORT_ENV = {port_env!r}


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command == "migrate":
        if os.environ.get(PREFIX + "FAKE_MIGRATE_FAIL"):
            print("boom: the migration cannot run", flush=True)
            sys.exit(3)
        print("migrated", flush=True)
        return
    status = int(os.environ.get(PREFIX + "FAKE_STATUS", "200"))
    own = {{k: v for k, v in os.environ.items() if k.startswith(PREFIX) or k == "PASSED_THROUGH"}}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/env":
                code, body = 200, json.dumps({{"pid": os.getpid(), "env": own}}).encode()
            else:
                code, body = status, b'{{"status": "fake"}}'
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    print(f"serving on {{os.environ[PORT_ENV]}}", flush=True)
    HTTPServer(("127.0.0.1", int(os.environ[PORT_ENV])), Handler).serve_forever()


main()
"""


def allocate_ports(count: int) -> list[int]:
    """`count` distinct ports that are free right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="session")
def fake_apps_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder (for PYTHONPATH) with fake_alpha, fake_beta (services) and fake_sim."""
    root = tmp_path_factory.mktemp("fake_apps")
    apps = {
        "fake_alpha": ("ALPHA_", "ALPHA_HTTP_PORT"),
        "fake_beta": ("BETA_", "BETA_HTTP_PORT"),
        "fake_sim": ("MISA_SIM_", "MISA_SIM_PORT"),
    }
    for module, (prefix, port_env) in apps.items():
        package = root / module
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "__main__.py").write_text(FAKE_APP.format(prefix=prefix, port_env=port_env))
    return root


@pytest.fixture
def ports() -> Callable[[int], list[int]]:
    return allocate_ports
