"""Is a TCP port free? Checked before anything starts, so a clash is named, not guessed at."""

import contextlib
import socket
from collections.abc import Mapping


def port_is_free(host: str, port: int) -> bool:
    """True when something could listen on host:port now (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def busy_ports(host: str, ports: Mapping[str, int]) -> dict[str, int]:
    """The parts whose port is taken by some other program."""
    return {part: port for part, port in ports.items() if not port_is_free(host, port)}


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel considers free right now (for tests and ad-hoc runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports: all held open while picked, so the kernel cannot hand
    the same one out twice (separate free_port() calls can)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            probe = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((host, 0))
            ports.append(int(probe.getsockname()[1]))
    return ports
