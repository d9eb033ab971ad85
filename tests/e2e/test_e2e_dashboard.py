"""``GET /_local/dashboard``: the synthesized dashboard drawn from what the local functions emitted,
checked in headless Chromium (DOM after its scripts ran, a screenshot, pixels of a chart)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.e2e.browser import dump_dom, png_pixels, screenshot
from tests.e2e.conftest import REPO, wait_for

pytestmark = pytest.mark.e2e

ITEMS = [{"sku": "SKU-DASH-1", "quantity": 1, "unit_price": "3.50"}]
SERIES_BLUE = (0x1F, 0x77, 0xB4)  # the page's first series colour


def _synthesized_titles() -> set[str]:
    """Titles of the metric widgets in the template the runtime loaded (not a second list)."""
    template = json.loads((REPO / ".local" / "cdk.out" / "Cairn.template.json").read_text())
    [dashboard] = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    body = "".join(p if isinstance(p, str) else "" for p in dashboard["Properties"]["DashboardBody"]["Fn::Join"][1])
    return set(re.findall(r'"title":"([^"]+)"', body)) - {"Alarms"}


def test_dashboard_draws_the_synthesized_widgets_with_data(cairn, staff, tmp_path):
    alice = cairn.token("dash-alice")
    for _ in range(4):
        status, _, created = cairn.request("POST", "/orders", {"items": ITEMS, "currency": "USD"}, alice)
        assert status == 201, created
        assert cairn.request("GET", f"/orders/{created['order_id']}", token=alice)[0] in (200, 404)
    cairn.request("GET", "/ops/projections", token=staff)
    cairn.wait_idle()

    def data():
        code, _, body = cairn.request("GET", "/_local/dashboard/data")
        assert code == 200
        widgets = {w["title"]: w for d in body["dashboards"] for w in d["widgets"] if w["type"] == "metric"}
        lag = widgets.get("OrdersProjections: lag")
        return (body, widgets) if lag and any(s["points"] for s in lag["series"]) else None

    body, widgets = wait_for("the projection's lag metric on the dashboard", data, timeout=60)
    assert set(widgets) == _synthesized_titles()
    with_data = {title for title, w in widgets.items() if any(s["points"] for s in w["series"])}
    for title in ("API requests", "Command latency (ms)", "OrdersProjections: lag", "Errors", "Duration p99 (ms)"):
        assert title in with_data, (title, sorted(with_data))
    requests = widgets["API requests"]["series"][0]
    assert sum(v for _, v in requests["points"]) >= 5
    lag = widgets["OrdersProjections: lag"]
    assert any(a["label"].endswith("LagAlarm") or "Lag" in a["label"] for a in lag["annotations"])  # threshold line
    assert {a["state"] for a in body["alarms"]} <= {"OK", "ALARM"} and len(body["alarms"]) > 10

    page = f"{cairn.api}/_local/dashboard"
    dom = dump_dom(page)
    assert 'data-rendered="1"' in dom
    for title in ("API requests", "OrdersProjections: lag"):
        assert f'data-title="{title}"' in dom
    assert dom.count('class="series"') >= 5  # polylines/points drawn from real series

    shot = screenshot(f"{page}?only=API%20requests", tmp_path / "api.png", width=700, height=300)
    width, height, rows = png_pixels(shot)
    blue = sum(
        1 for row in rows for x in range(0, width * 3, 3)
        if abs(row[x] - SERIES_BLUE[0]) < 40 and abs(row[x + 1] - SERIES_BLUE[1]) < 40 and abs(row[x + 2] - SERIES_BLUE[2]) < 40
    )
    assert blue > 30, f"no series drawn in the chart area ({blue} pixels of the series colour)"

    full = screenshot(page, Path(tmp_path / "dashboard.png"), width=1500, height=2600)
    assert full.stat().st_size > 20_000
    if os.environ.get("CAIRN_DOCS_SCREENSHOT"):  # refresh docs/ops.md's picture
        (REPO / "docs" / "img").mkdir(exist_ok=True)
        (REPO / "docs" / "img" / "dashboard.png").write_bytes(full.read_bytes())
