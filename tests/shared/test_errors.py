"""Problem+json for every failure, in Vietnamese on request, never a bare 500."""

import httpx
import jsonschema
from fastapi import FastAPI
from pydantic import BaseModel

from shared.errors import (
    PROBLEM_JSON,
    PROBLEM_REF,
    PROBLEM_SCHEMA,
    FieldError,
    ProblemError,
    install_error_handlers,
    json_path,
    problem_responses,
)
from shared.web import CorrelationIdMiddleware


class Body(BaseModel):
    credit_days: int
    items: list[int]


def app() -> FastAPI:
    application = FastAPI()
    install_error_handlers(application)
    application.add_middleware(CorrelationIdMiddleware)

    @application.post("/things")
    async def things(body: Body) -> dict[str, int]:
        return {"n": body.credit_days}

    @application.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail 0912345678")

    return application


def test_json_path() -> None:
    assert json_path(("body", "delivery_addresses", 1, "phone")) == "delivery_addresses[1].phone"
    assert json_path(("query", "limit")) == "limit"
    assert json_path(("body",)) == "body"


async def test_validation_errors_name_fields_in_the_callers_language() -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app()), base_url="http://t"
    ) as client:
        en = await client.post("/things", json={"items": [1, "x"]})
        vi = await client.post(
            "/things", json={"items": [1, "x"]}, headers={"Accept-Language": "vi-VN,vi;q=0.9"}
        )
    assert en.status_code == vi.status_code == 422
    assert en.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in en.json()["errors"]} == {"credit_days", "items[1]"}
    messages = {e["field"]: e["message"] for e in vi.json()["errors"]}
    assert messages["credit_days"] == "Trường này là bắt buộc."
    assert vi.json()["title"] == "Dữ liệu không hợp lệ"


async def test_unexpected_errors_are_problems_without_internals_and_carry_the_correlation_id() -> (
    None
):
    transport = httpx.ASGITransport(app=app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/boom", headers={"x-correlation-id": "req-42"})
        unknown = await client.get("/nowhere")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret" not in response.text and "0912345678" not in response.text
    assert (
        unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    )
    assert unknown.headers["x-correlation-id"]


def test_problem_responses_document_problem_json_bodies() -> None:
    """Issue 8's fuzzer: error answers must be in the OpenAPI document, as what they are."""
    responses = problem_responses(404, 428)
    assert set(responses) == {404, 428}
    for response in responses.values():
        assert response["description"]
        assert response["content"] == {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
    problem = ProblemError(
        422, "Invalid", "x", "validation-error", [FieldError("phone", "bad", "c")]
    )
    jsonschema.validate(problem.body(), PROBLEM_SCHEMA)
    jsonschema.validate(ProblemError(404, "Not Found").body(), PROBLEM_SCHEMA)
