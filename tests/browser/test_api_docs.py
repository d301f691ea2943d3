"""/docs in real Chromium with every request off this server refused: Swagger UI
renders the API from the assets installed with the package."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Collector

pytestmark = pytest.mark.browser


def test_swagger_ui_renders_the_api_with_no_request_leaving_the_server(browser: Any, collector: Collector) -> None:
    context = browser.new_context()
    elsewhere: list[str] = []
    failed: list[str] = []

    def route(request_route: Any) -> None:
        if request_route.request.url.startswith(collector.origin + "/"):
            request_route.continue_()
        else:  # what an offline machine or a strict network policy does
            elsewhere.append(request_route.request.url)
            request_route.abort()

    try:
        context.route("**/*", route)
        page = context.new_page()
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(collector.origin + "/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
        assert "TraceGlider" in page.inner_text(".swagger-ui .info .title")
        page.wait_for_selector(".opblock", timeout=15_000)  # the operations of /openapi.json
        assert page.locator(".opblock").count() > 5
        assert elsewhere == [] and failed == []
    finally:
        context.close()
