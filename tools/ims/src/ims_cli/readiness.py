"""Polling HTTP health endpoints until every one answers 200."""

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

_POLL_INTERVAL_S = 0.25
_BODY_SNIPPET = 160


@dataclass(frozen=True, slots=True)
class HttpCheck:
    name: str
    url: str


class HttpWaiter:
    """Waits for every check to answer 200, remembering what each answered last."""

    def __init__(self, checks: Sequence[HttpCheck]) -> None:
        self._checks = list(checks)
        self._last: dict[str, str] = {check.name: "no answer yet" for check in self._checks}
        self._body: dict[str, str] = {}
        self._done: set[str] = set()

    def pending(self, *, with_body: bool = False) -> list[tuple[str, str]]:
        """(name, last answer) of each check that has not answered 200 yet.

        The answer's body is left out unless asked for: it is the service's own text and
        may contain the word reserved for the stack's ready line.
        """
        return [
            (c.name, self._describe(c.name, with_body))
            for c in self._checks
            if c.name not in self._done
        ]

    def _describe(self, name: str, with_body: bool) -> str:
        body = self._body.get(name, "") if with_body else ""
        return f"{self._last[name]} {body}".rstrip()

    async def wait_all(
        self,
        *,
        progress: Callable[[], None] | None = None,
        progress_every_s: float = 15.0,
    ) -> None:
        # Local addresses only: never through a proxy from the environment.
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            waiters = [asyncio.create_task(self._wait_one(client, c)) for c in self._checks]
            try:
                while True:
                    done, _ = await asyncio.wait(waiters, timeout=progress_every_s)
                    for task in done:
                        task.result()
                    if len(done) == len(waiters):
                        return
                    if progress is not None:
                        progress()
            finally:
                for task in waiters:
                    task.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)

    async def _wait_one(self, client: httpx.AsyncClient, check: HttpCheck) -> None:
        while True:
            try:
                response = await client.get(check.url)
            except httpx.HTTPError as exc:
                self._last[check.name] = _describe_error(exc)
                self._body.pop(check.name, None)
            else:
                if response.status_code == 200:
                    self._done.add(check.name)
                    return
                self._last[check.name] = f"HTTP {response.status_code}"
                self._body[check.name] = " ".join(response.text.split())[:_BODY_SNIPPET]
            await asyncio.sleep(_POLL_INTERVAL_S)


def _describe_error(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer within 2 s"
    return f"{type(exc).__name__}: {exc}"
