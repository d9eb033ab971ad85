"""Every page a person looks at, in a real browser (headless Chromium): a screenshot, and the DOM
after the page's scripts ran must show what the page is for (issue 17 defect 10: ``/docs`` used to
answer 200 with Swagger UI 4 saying "Unable to render this definition" for the OpenAPI 3.1 document).
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.browser import dump_dom, screenshot

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def docs_dom(cairn) -> str:
    return dump_dom(cairn.api + "/docs")


def test_docs_page_renders_the_api_operations(cairn, docs_dom: str):
    assert "Unable to render this definition" not in docs_dom
    assert "does not specify a valid version field" not in docs_dom
    assert 'class="swagger-ui' in docs_dom, "Swagger UI did not start"
    _, _, doc = cairn.request("GET", "/openapi.json")
    expected = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    rendered = set(
        re.findall(r'class="opblock-summary-method">(\w+)</span>.*?data-path="([^"]+)"', docs_dom, flags=re.S)
    )
    assert rendered == expected, {"missing": expected - rendered, "extra": rendered - expected}
    assert "Cairn API" in docs_dom  # the document's title, rendered by Swagger UI
    assert "Authorize" in docs_dom  # the bearer scheme was read


def test_docs_page_screenshot(cairn, tmp_path):
    png = screenshot(cairn.api + "/docs", tmp_path / "docs.png")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000  # a rendered page, not a blank one
