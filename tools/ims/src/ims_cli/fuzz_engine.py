"""Schemathesis over one service's app in process: every operation of its OpenAPI document,
as one user, with the checks issue 8 asks for.

Each operation gets Hypothesis-generated requests, valid ones (positive) and ones that break
the schema (negative), under a fixed seed so a run is repeatable. Path parameters are drawn
partly from `known` (ids of objects that exist), so requests reach past the 404. Failures
are collected rather than raised: a run reports every operation, not only the first broken
one, and never shrinks (shrinking would multiply the requests).
"""

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from schemathesis import APIOperation, Case
    from schemathesis.core.failures import Failure
    from starlette.types import Receive, Scope, Send

    Operation = APIOperation[Any, Any, Any, Any]
    OperationCase = Case[Operation]

DEFAULT_SEED = 8  # issue 8: any fixed number makes runs repeatable
#: Enough of a check's message to see what broke; the curl command has the rest.
_MAX_DETAIL = 600


@dataclass(frozen=True, slots=True)
class FuzzFailure:
    operation: str
    """`METHOD /path` of the OpenAPI document."""
    check: str
    """The failed check's title, e.g. "Server error"."""
    status: int | None
    message: str
    reproduce: str
    """A curl command for the failing request, without the bearer token."""

    @property
    def key(self) -> tuple[str, str, int | None]:
        return (self.operation, self.check, self.status)


@dataclass(slots=True)
class FuzzResult:
    operations: int = 0
    cases: int = 0
    failing_cases: int = 0
    failures: dict[tuple[str, str, int | None], FuzzFailure] = field(default_factory=dict)
    """The first failing case of each (operation, check, status)."""


class WithoutLifespan:
    """The app, its lifespan answered here instead: the real one starts Kafka clients, which
    this in-process run does not need. At shutdown the app's database pool is closed, on the
    event loop that used it."""

    def __init__(self, app: "FastAPI") -> None:
        self.app = app

    async def __call__(self, scope: "Scope", receive: "Receive", send: "Send") -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.app.state.runtime.engine.dispose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _checks(operation: "Operation") -> list[Callable[..., Any]]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    # /readyz answers 503 by design while a dependency is down, as the broker is here.
    server = [] if operation.path == "/readyz" else [not_a_server_error]
    return [
        *server,
        response_schema_conformance,
        status_code_conformance,
        content_type_conformance,
    ]


def load_operations(app: "FastAPI") -> list["Operation"]:
    """The operations of the app's own OpenAPI document (what `/openapi.json` serves)."""
    import schemathesis
    from schemathesis.core.result import Err

    schema = schemathesis.openapi.from_asgi("/openapi.json", WithoutLifespan(app))
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # a document schemathesis cannot read is a failure too
        operations.append(result.ok())
    return operations


_PLAIN_STRING_KEYS = {"type", "title", "description"}


def _negatable(operation: "Operation") -> bool:
    """Whether a request can break the schema at all: not when it has no body and only
    unconstrained string parameters (every string is valid). Hypothesis would search a
    long while before giving up on those."""
    if len(operation.body):
        return True
    for parameter in operation.iter_parameters():
        schema = parameter.definition.get("schema", {})
        if schema.get("type") != "string" or set(schema) - _PLAIN_STRING_KEYS:
            return True
    return False


def _strategies(operation: "Operation", known: Mapping[str, Sequence[str]]) -> Iterator[Any]:
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    modes = [GenerationMode.POSITIVE]
    if _negatable(operation):
        modes.append(GenerationMode.NEGATIVE)
    for mode in modes:
        options = [operation.as_strategy(generation_mode=mode)]
        names = {p.name for p in operation.path_parameters}
        for name in sorted(names & known.keys()):
            options += [
                operation.as_strategy(generation_mode=mode, path_parameters={name: value})
                for value in known[name]
            ]
        yield st.one_of(options)


def _failures_of(exc: BaseException) -> list["Failure"]:
    from schemathesis.core.failures import Failure, FailureGroup

    if isinstance(exc, FailureGroup):
        return [f for f in exc.exceptions if isinstance(f, Failure)]
    return [exc] if isinstance(exc, Failure) else []


def _record(
    result: FuzzResult,
    operation: "Operation",
    case: "OperationCase",
    exc: BaseException,
    status: int,
) -> None:
    result.failing_cases += 1
    for failure in _failures_of(exc):
        found = FuzzFailure(
            operation=f"{operation.method.upper()} {operation.path}",
            check=failure.title,
            status=status,
            message=(failure.message or "")[:_MAX_DETAIL],
            reproduce=case.as_curl_command(),
        )
        result.failures.setdefault(found.key, found)


def fuzz_operation(
    operation: "Operation",
    result: FuzzResult,
    *,
    headers: Mapping[str, str],
    examples: int,
    seed: int = DEFAULT_SEED,
    known: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """`examples` positive and `examples` negative requests to one operation (fewer when
    the schema leaves fewer distinct ones); adds its cases and failures to `result`."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as fixed_seed
    from hypothesis.errors import Unsatisfiable
    from schemathesis.core.failures import Failure, FailureGroup

    checks = _checks(operation)
    result.operations += 1
    for strategy in _strategies(operation, known or {}):

        @fixed_seed(seed)
        @settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
        )
        @given(case=strategy)
        def run(case: "OperationCase") -> None:
            result.cases += 1
            response = case.call(headers=dict(headers))
            try:
                case.validate_response(response, checks=checks, headers=dict(headers))
            except (Failure, FailureGroup) as exc:
                _record(result, operation, case, exc, response.status_code)

        with contextlib.suppress(Unsatisfiable):  # nothing to negate in this operation
            run()


def fuzz_app(
    app: "FastAPI",
    *,
    headers: Mapping[str, str],
    examples: int,
    seed: int = DEFAULT_SEED,
    known: Mapping[str, Sequence[str]] | None = None,
    operations: Sequence["Operation"] | None = None,
) -> FuzzResult:
    """Every operation of the app's OpenAPI document, as the caller `headers` authenticate."""
    result = FuzzResult()
    for operation in operations if operations is not None else load_operations(app):
        fuzz_operation(
            operation, result, headers=headers, examples=examples, seed=seed, known=known
        )
    return result
