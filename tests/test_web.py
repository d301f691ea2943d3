"""The one error renderer and the bearer check every router shares."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from traceglider.config import load
from traceglider.errors import BadRequest, StorageError, TooManyRequests, Unavailable
from traceglider.web import INVALID_KEY, MISSING_KEY, check_bearer, error_response, plausible_errors


def _app() -> TestClient:
    app = FastAPI()
    settings = load(env={"TG_API_TOKEN": "s3cret"})

    @app.get("/storage")
    @plausible_errors
    def storage() -> None:
        raise StorageError("S3 unreachable")

    @app.get("/busy")
    @plausible_errors
    async def busy() -> None:
        raise TooManyRequests("slow down")

    @app.get("/spool")
    @plausible_errors
    def spool() -> None:
        raise Unavailable("the spool is full", retry_after=30)

    @app.get("/bad")
    @plausible_errors
    def bad() -> None:
        raise BadRequest("no such metric")

    @app.get("/private")
    @plausible_errors
    def private(request: Request) -> dict[str, bool]:
        check_bearer(settings, request)
        return {"ok": True}

    return TestClient(app)


def test_a_storage_failure_is_a_503_that_says_when_to_retry() -> None:
    answer = _app().get("/storage")
    assert answer.status_code == 503
    assert answer.json() == {"error": "storage unavailable: S3 unreachable"}
    assert answer.headers["retry-after"] == "5"


@pytest.mark.parametrize(("path", "status", "retry_after"), [("/busy", 429, "5"), ("/spool", 503, "30"),
                                                            ("/bad", 400, None)])
def test_every_refusal_carries_retry_after_and_its_own_wins(path: str, status: int, retry_after: str | None) -> None:
    answer = _app().get(path)
    assert answer.status_code == status
    assert answer.headers.get("retry-after") == retry_after


def test_the_renderer_keeps_the_callers_headers_under_the_errors_own() -> None:
    answer = error_response(Unavailable("later", retry_after=9), {"Access-Control-Allow-Origin": "https://a.example",
                                                                  "Retry-After": "1"})
    assert answer.headers["access-control-allow-origin"] == "https://a.example"
    assert answer.headers["retry-after"] == "9"


def test_the_bearer_check_answers_plausibles_messages() -> None:
    client = _app()
    assert client.get("/private").json() == {"error": MISSING_KEY}
    assert client.get("/private", headers={"Authorization": "Bearer nope"}).json() == {"error": INVALID_KEY}
    assert client.get("/private", headers={"Authorization": "Bearer s3cret"}).json() == {"ok": True}
