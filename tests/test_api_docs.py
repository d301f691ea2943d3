"""/docs is served from assets installed with the package: every URL the page names is
this server's, and each loads."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from traceglider.app import create_app
from traceglider.config import load


def test_the_docs_page_names_only_local_urls_and_they_load(tmp_path: Path) -> None:
    settings = load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_SPOOL_DIR": str(tmp_path / "spool"),
                         "TG_COMPACT_SECONDS": "0"})
    with TestClient(create_app(settings), base_url="https://collector.test") as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        urls = set(re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text))
        assert "/openapi.json" in urls and "/docs/assets/swagger-ui-bundle.js" in urls
        assert not [u for u in urls if not u.startswith("/") or u.startswith("//")], urls
        assert not re.search(r"https?://", page.text)
        kinds = {}
        for url in urls:
            answer = client.get(url)
            assert answer.status_code == 200, url
            kinds[url] = answer.headers["content-type"]
        assert "javascript" in kinds["/docs/assets/swagger-ui-bundle.js"]
        assert kinds["/docs/assets/swagger-ui.css"].startswith("text/css")
        assert client.get("/docs/assets/swagger-ui-bundle.js").text.count("SwaggerUIBundle") > 0
        assert client.get("/openapi.json").json()["info"]["title"] == "TraceGlider"
