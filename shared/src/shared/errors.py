"""RFC 9457 problem+json: one error type, one set of handlers for every service."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.logging import get_logger

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://ims.example.vn/problems/"
log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str
    code: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"field": self.field, "message": self.message}
        if self.code:
            out["code"] = self.code
        return out


@dataclass
class ProblemError(Exception):
    """A 4xx (or deliberate 5xx) answer a caller can act on."""

    status: int
    title: str
    detail: str | None = None
    type_slug: str = "about:blank"
    errors: Sequence[FieldError] = field(default_factory=list)
    headers: dict[str, str] | None = None

    def body(self) -> dict[str, Any]:
        type_uri = (
            self.type_slug if self.type_slug.startswith("about:") else PROBLEM_BASE + self.type_slug
        )
        body: dict[str, Any] = {"type": type_uri, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if self.errors:
            body["errors"] = [e.as_dict() for e in self.errors]
        return body


def not_found(what: str = "resource") -> ProblemError:
    return ProblemError(404, "Not Found", f"The {what} does not exist.", "not-found")


def conflict(detail: str) -> ProblemError:
    return ProblemError(409, "Conflict", detail, "conflict")


def forbidden(detail: str = "Your role does not allow this action.") -> ProblemError:
    return ProblemError(403, "Forbidden", detail, "forbidden")


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401, "Unauthorized", detail, "unauthorized", headers={"WWW-Authenticate": "Bearer"}
    )


def problem_response(problem: ProblemError) -> JSONResponse:
    return JSONResponse(
        problem.body(), status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
    )


def wants_vietnamese(request: Request) -> bool:
    return request.headers.get("accept-language", "").lower().lstrip().startswith("vi")


# Vietnamese wording for the request-shape errors pydantic reports.
_VI_MESSAGES = {
    "missing": "Trường này là bắt buộc.",
    "string_type": "Phải là chuỗi ký tự.",
    "int_type": "Phải là số nguyên.",
    "int_parsing": "Phải là số nguyên.",
    "bool_type": "Phải là true hoặc false.",
    "list_type": "Phải là danh sách.",
    "dict_type": "Phải là một đối tượng.",
    "model_type": "Phải là một đối tượng.",
    "extra_forbidden": "Trường này không được phép.",
    "greater_than_equal": "Giá trị quá nhỏ.",
    "less_than_equal": "Giá trị quá lớn.",
    "string_too_long": "Quá dài.",
    "string_too_short": "Không được để trống.",
    "literal_error": "Giá trị không hợp lệ.",
    "enum": "Giá trị không hợp lệ.",
    "json_invalid": "JSON không hợp lệ.",
    "uuid_parsing": "Phải là UUID hợp lệ.",
    "value_error": "Giá trị không hợp lệ.",
}


def json_path(loc: Sequence[int | str]) -> str:
    """('body', 'delivery_addresses', 1, 'phone') -> 'delivery_addresses[1].phone'."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def validation_problem(exc: RequestValidationError, *, vietnamese: bool) -> ProblemError:
    errors = []
    for err in exc.errors():
        kind = str(err.get("type", "value_error"))
        message = (
            _VI_MESSAGES.get(kind, "Giá trị không hợp lệ.") if vietnamese else str(err.get("msg"))
        )
        errors.append(FieldError(json_path(err.get("loc", ())), message, kind))
    title = "Dữ liệu không hợp lệ" if vietnamese else "Invalid request"
    return ProblemError(422, title, None, "validation-error", errors)


def _dependency_calls(dependant: Any) -> Iterator[Any]:
    yield dependant.call
    for sub in dependant.dependencies:
        yield from _dependency_calls(sub)


async def token_refusal(request: Request) -> ProblemError | None:
    """The 401 a route that needs a token owes a caller without a valid one, if it does.

    FastAPI parses a JSON body before it resolves the dependencies, so a body that does
    not parse would answer 422 before the token is checked (issue 8's security matrix):
    an unauthenticated caller gets 401 first, whatever it sends.
    """
    # Imported here: the auth dependencies raise this module's problems.
    from shared.auth.dependencies import current_principal, get_verifier

    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None or current_principal not in set(_dependency_calls(dependant)):
        return None
    try:
        await current_principal(request, get_verifier(request))
    except ProblemError as exc:
        return exc
    return None


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        refusal = await token_refusal(request)
        if refusal is not None:
            return problem_response(refusal)
        return problem_response(validation_problem(exc, vietnamese=wants_vietnamese(request)))

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem_response(
            ProblemError(
                exc.status_code,
                _reason(exc.status_code),
                str(exc.detail),
                headers=dict(exc.headers) if exc.headers else None,
            )
        )

    async def on_unavailable(_: Request, exc: Exception) -> JSONResponse:
        # Connection refused and the like: the database (or a dependency) is down.
        log.warning("dependency_unavailable", error_type=type(exc).__name__)
        return problem_response(
            ProblemError(
                503,
                "Service Unavailable",
                "A dependency is unavailable; try again.",
                headers={"Retry-After": "5"},
            )
        )

    async def on_database(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DBAPIError)
        state = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
        if state.startswith("22"):  # data exception: a value the database cannot take
            return problem_response(
                ProblemError(
                    422,
                    "Invalid value",
                    "A value in the request cannot be stored.",
                    "invalid-value",
                )
            )
        if exc.connection_invalidated or state.startswith(("08", "53", "57P0")):
            log.warning("database_unavailable", sqlstate=state)
            return problem_response(
                ProblemError(
                    503,
                    "Service Unavailable",
                    "The database is unavailable; try again.",
                    headers={"Retry-After": "5"},
                )
            )
        return await on_unexpected(request, exc)

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error_type=type(exc).__name__)
        return problem_response(ProblemError(500, "Internal Server Error", "Unexpected error."))

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(DBAPIError, on_database)
    app.add_exception_handler(OSError, on_unavailable)
    app.add_exception_handler(Exception, on_unexpected)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# ---- the problem responses in OpenAPI documents ---------------------------------------------

#: The schema of every problem+json body (`ProblemError.body`); create_app registers it.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
    },
}
PROBLEM_REF = "#/components/schemas/Problem"

_PROBLEM_MEANINGS = {
    400: "The request cannot be read (a body that is not JSON, a NUL in the URL, a bad cursor).",
    401: "No bearer token, or an invalid one.",
    403: "The caller's role does not allow this.",
    404: "The object does not exist, or the caller may not see it.",
    409: "The object's state does not allow this now.",
    412: "The If-Match version is not the current one.",
    413: "The upload is larger than the limit.",
    415: "The body's media type is not accepted.",
    422: "A value in the request is invalid; `errors` names each field.",
    428: "An If-Match header is required.",
    503: "A dependency (the database, MISA) is unavailable; retry after Retry-After.",
}
#: What every authenticated API operation may answer besides its own errors.
API_PROBLEMS = (400, 401, 422, 503)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a router or a route: each status as problem+json."""
    return {
        status: {
            "description": _PROBLEM_MEANINGS.get(status, _reason(status)),
            "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
        }
        for status in statuses
    }
