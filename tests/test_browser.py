"""The pages in a real headless Chromium (Debian's, driven by Playwright) against the app served by
uvicorn on loopback: log in, open the top-10, open an issue, search, export, switch language,
the map, a briefing and a digest; screenshots of each (into docs/screenshots/ when
LANGNGHE_UPDATE_SCREENSHOTS=1, else into the test's temporary folder)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from storage.sqlite import SQLiteStore
from tests.browser.app import PASSWORD, build_app
from tests.browser.data import END_DAY, populate
from tests.browser.server import browser, chromium_executable, serve

expect = pytest.importorskip("playwright.sync_api").expect
pytestmark = [
    pytest.mark.integration, pytest.mark.slow,
    pytest.mark.skipif(chromium_executable() is None, reason="no system Chromium (.ci/setup-browser.sh)"),
]

DOCS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SQLiteStore, Path]]:
    folder = tmp_path_factory.mktemp("browser")
    store = SQLiteStore(folder / "store.db")
    populate(store)
    app, accounts = build_app(store, folder / "accounts.db")
    shots = DOCS if os.environ.get("LANGNGHE_UPDATE_SCREENSHOTS") == "1" else folder / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    with serve(app) as base:
        yield base, store, shots
    accounts.close()
    store.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as instance:
        yield instance


def login(page: Any, base: str, email: str, target: str) -> None:
    page.goto(base + target)
    assert "/login" in page.url
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(base + target)


def test_leadership_journey(site: tuple[str, SQLiteStore, Path], chromium: Any) -> None:
    base, store, shots = site
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN", accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(f"{msg.text} {msg.location}")
            if msg.type == "error" and "favicon.ico" not in str(msg.location) else None)  # (the login page has none)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    # log in, land on the week's top-10
    login(page, base, "lanh.dao@example.org", "/?period=week")
    top = store.top_issues("hcmc", "week", "2025-W47", 10)
    labels = page.locator("#top-list .issue h3").all_inner_texts()
    first = store.get_issue(top[0].issue_id)
    assert len(labels) == 10 and first is not None and labels[0] == first.label
    assert page.locator("html").get_attribute("lang") == "vi"
    page.screenshot(path=str(shots / "top10.png"))

    # the selector refreshes through the API without reloading
    page.select_option("#area", "fd:quan-7")
    expect(page.locator("#top-context")).to_contain_text("Quận 7")
    assert "Huỳnh Tấn Phát" in page.locator("#top-list").inner_text()
    page.select_option("#area", "hcmc")
    expect(page.locator("#top-context")).to_contain_text("Hồ Chí Minh")

    # search, accent-insensitive, with highlights
    page.fill("#q", "ngap nuoc")
    with page.expect_response(lambda r: "/api/v1/mentions/search" in r.url) as answer:
        page.click("#search-form button[type=submit]")
    page.wait_for_selector("#search-results li mark")
    assert page.locator("#search-results li").count() > 0
    # a routing the model is unsure of is marked to check, and only those
    unsure = [it for it in answer.value.json()["items"] if (it.get("department_score") or 1.0) < 0.5]
    assert unsure
    expect(page.locator("#search-results .badge.check")).to_have_count(len(unsure))
    expect(page.locator("#search-results .badge.check").first).to_have_text("cần kiểm tra phân công")
    marks = " ".join(page.locator("#search-results mark").all_inner_texts()).lower()
    assert "ngập" in marks or "nước" in marks
    page.locator("section.search").screenshot(path=str(shots / "search.png"))

    # export what was searched
    with page.expect_download() as download_info:
        page.click("#export-csv")
    exported = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert rows and any("Ngập" in (r.get("title") or "") or "ngập" in (r.get("text") or "") for r in rows)

    # open the first issue
    page.goto(base + "/?period=week")
    page.click("#top-list .issue h3 a >> nth=0")
    page.wait_for_url(f"{base}/issues/{top[0].issue_id}?lang=vi")
    assert page.locator("#issue-label").inner_text() == first.label
    assert page.locator("svg.chart.volume rect").count() > 5
    assert page.locator("#issue-mentions li").count() == 20
    page.screenshot(path=str(shots / "issue.png"), full_page=True)

    # switch language
    page.click("#lang-link")
    page.wait_for_url("**lang=en**")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Mentions per day by sentiment" in page.content()

    # the map; a ward links to its top-10
    page.goto(base + "/map")
    assert page.locator("svg.map path.w").count() > 100
    assert page.locator('svg.map path.w[data-id="w:26956"]').get_attribute("data-value") != "0"
    page.screenshot(path=str(shots / "map.png"), full_page=True)
    page.locator('svg.map a:has(path[data-id="w:26956"])').dispatch_event("click")
    page.wait_for_url("**area=w:26956**")
    assert "Thạnh Mỹ Tây" in page.locator("#top-context").inner_text()

    # trends, the digest, a briefing
    page.goto(base + "/trends?days=30")
    page.screenshot(path=str(shots / "trends.png"), full_page=True)
    page.goto(base + "/digests/2025-W47")
    assert page.locator("#city-top tr[data-issue]").count() == 10
    page.screenshot(path=str(shots / "digest.png"), full_page=True)
    day = (END_DAY + timedelta(days=1)).isoformat()
    page.goto(f"{base}/briefings/construction?day={day}")
    assert page.locator("#rising li").count() >= 2
    page.screenshot(path=str(shots / "briefing.png"), full_page=True)
    assert not errors, errors
    context.close()


def test_department_account_sees_only_its_department(site: tuple[str, SQLiteStore, Path], chromium: Any) -> None:
    base, store, shots = site
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    page = context.new_page()
    login(page, base, "so.y.te@example.org", "/?period=week")
    text = page.locator("#top-list").inner_text()
    assert "ngộ độc" in text and "Nguyễn Hữu Cảnh" not in text
    page.goto(base + "/briefings")
    assert "/briefings/food_safety" in page.url
    response = page.goto(f"{base}/briefings/construction")
    assert response is not None and response.status == 403
    flood = next(i.id for i in store.list_issues() if "Nguyễn Hữu Cảnh" in i.label)
    response = page.goto(f"{base}/issues/{flood}")
    assert response is not None and response.status == 404
    context.close()
