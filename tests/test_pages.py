"""The server-rendered pages (issue, map, trends, briefings, digests, dashboard) through the real
app over a populated SQLite store, for accounts of each kind: content checked against the store,
scope enforced (a department account sees its department only, an area account its area only)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from api.reports.data import area_counts
from storage.sqlite import SQLiteStore
from tests.browser.app import build_app, token_for
from tests.browser.data import END_DAY, populate

Env = tuple[TestClient, SQLiteStore, dict[str, dict[str, str]]]
LEADER, BUILDER, HEALTH, QUAN7 = ("lanh.dao@example.org", "so.xay.dung@example.org", "so.y.te@example.org",
                                  "quan7@example.org")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    folder = tmp_path_factory.mktemp("pages")
    store = SQLiteStore(folder / "store.db")
    populate(store)
    app, accounts = build_app(store, folder / "accounts.db")
    headers = {email: {"Authorization": f"Bearer {token_for(accounts, email)}"}
               for email in (LEADER, BUILDER, HEALTH, QUAN7)}
    with TestClient(app) as client:
        yield client, store, headers
    accounts.close()
    store.close()


def issue_id(store: SQLiteStore, fragment: str) -> str:
    return next(i.id for i in store.list_issues() if fragment in i.label)


def values(html: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r'data-id="(w:\d+)" data-value="(\d+)"', html)}


def test_pages_need_a_login(env: Env) -> None:
    client, _, _ = env
    for path in ("/", "/map", "/trends", "/briefings", "/digests", "/issues/x", "/digests/2025-W47.pdf"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")
    assert client.get("/api/v1/map/wards").status_code == 401


def test_issue_page_shows_history_and_evidence(env: Env) -> None:
    client, store, headers = env
    iid = issue_id(store, "Nguyễn Hữu Cảnh")
    response = client.get(f"/issues/{iid}", headers=headers[LEADER])
    assert response.status_code == 200
    html = response.text
    issue = store.get_issue(iid)
    assert issue is not None and issue.label in html
    total = store.count_mentions({"field": "issue_id", "operator": "==", "value": iid})
    assert f'<dd id="issue-total">{total}</dd>' in html
    days = {m.group(1): int(m.group(2)) for m in re.finditer(r'data-day="([\d-]+)" data-total="(\d+)"', html)}
    assert sum(days.values()) == total and days[END_DAY.isoformat()] == 9
    assert html.count('<li><p class="title">') == 20  # first page of the evidence
    assert "hạng 1 tại Thành phố Hồ Chí Minh" in html
    assert "Content-Security-Policy" in response.headers and "<script" not in html
    english = client.get(f"/issues/{iid}?lang=en", headers=headers[LEADER]).text
    assert "Mentions per day by sentiment" in english and "rank 1 in" in english
    assert client.get("/issues/nope", headers=headers[LEADER]).status_code == 404


def test_issue_page_holds_to_scope(env: Env) -> None:
    client, store, headers = env
    flood, poisoning = issue_id(store, "Nguyễn Hữu Cảnh"), issue_id(store, "ngộ độc")
    assert client.get(f"/issues/{flood}", headers=headers[BUILDER]).status_code == 200
    assert client.get(f"/issues/{poisoning}", headers=headers[BUILDER]).status_code == 404
    assert client.get(f"/issues/{poisoning}", headers=headers[HEALTH]).status_code == 200
    assert client.get(f"/issues/{flood}", headers=headers[QUAN7]).status_code == 404
    tide = issue_id(store, "Huỳnh Tấn Phát")
    assert client.get(f"/issues/{tide}", headers=headers[QUAN7]).status_code == 200


def test_map_page_counts_wards(env: Env) -> None:
    client, store, headers = env
    html = client.get("/map?view=all", headers=headers[LEADER]).text
    found = values(html)
    assert len(found) == 168
    expected, _ = area_counts(store, END_DAY - timedelta(days=6), END_DAY)
    assert {k: v for k, v in found.items() if v} == dict(expected)
    assert 'id="top-wards"' in html and "Phường Thạnh Mỹ Tây" in html
    negative = values(client.get("/map?metric=negative", headers=headers[LEADER]).text)
    assert all(negative[k] <= found[k] for k in negative)
    assert sum(negative.values()) < sum(v for k, v in found.items() if k in negative)
    api = client.get("/api/v1/map/wards", headers=headers[LEADER]).json()
    wards = [f for f in api["features"] if f["properties"]["level"] == "ward"]
    assert len(wards) == 168 and sum(f["properties"]["value"] for f in wards) == sum(found.values())


def test_map_holds_to_scope(env: Env) -> None:
    client, _, headers = env
    quan7 = {k: v for k, v in values(client.get("/map", headers=headers[QUAN7]).text).items() if v}
    assert quan7 and set(quan7) == {"w:27475"}  # Tân Hưng, the only ward of former Quận 7 in the data
    builder = {k for k, v in values(client.get("/map", headers=headers[BUILDER]).text).items() if v}
    assert "w:26956" in builder and "w:27142" not in builder  # the canal waste is not Construction's


def test_trends_page(env: Env) -> None:
    client, store, headers = env
    html = client.get("/trends?days=14", headers=headers[LEADER]).text
    total = int(re.search(r'<strong id="trend-total">(\d+)</strong>', html).group(1))  # type: ignore[union-attr]
    days = [int(v) for v in re.findall(r'data-total="(\d+)"', html)]
    assert len(days) == 14 and sum(days) == total > 0
    assert client.get("/trends?area=fd:binh-thanh", headers=headers[QUAN7]).status_code == 403
    own = client.get("/trends", headers=headers[QUAN7]).text
    assert "Quận 7" in own


def test_briefing_pages_and_scope(env: Env) -> None:
    client, _, headers = env
    day = (END_DAY + timedelta(days=1)).isoformat()
    page = client.get(f"/briefings/construction?day={day}", headers=headers[BUILDER])
    assert page.status_code == 200 and "Sở Xây dựng" in page.text and "Vấn đề đang tăng" in page.text
    assert client.get(f"/briefings/food_safety?day={day}", headers=headers[BUILDER]).status_code == 403
    redirect = client.get("/briefings", headers=headers[BUILDER], follow_redirects=False)
    assert redirect.status_code == 303 and redirect.headers["location"].startswith("/briefings/construction")
    assert "Sở Xây dựng" in client.get("/briefings", headers=headers[LEADER]).text
    # an area account sees a department's briefing restricted to its area
    q7 = client.get(f"/briefings/construction?day={day}", headers=headers[QUAN7]).text
    assert "Huỳnh Tấn Phát" in q7 and "Nguyễn Hữu Cảnh" not in q7
    assert client.get("/briefings/nope", headers=headers[LEADER]).status_code == 404
    assert client.get("/briefings/construction?day=2025-13-01", headers=headers[LEADER]).status_code == 422


def test_digest_pages(env: Env) -> None:
    client, store, headers = env
    index = client.get("/digests", headers=headers[LEADER]).text
    assert "/digests/2025-W47" in index
    html = client.get("/digests/2025-W47", headers=headers[LEADER]).text
    top = store.top_issues("hcmc", "week", "2025-W47", 10)
    ranked = re.findall(r'<section id="city-top">.*?</section>', html, re.S)[0]
    assert re.findall(r'data-issue="([^"]+)"', ranked) == [e.issue_id for e in top]
    assert "10 vấn đề nổi bật toàn thành phố" in html and 'class="map"' in html
    assert client.get("/digests/2025-W99", headers=headers[LEADER]).status_code == 422
    # a department account's digest lists its department's issues only
    mine = client.get("/digests/2025-W47", headers=headers[HEALTH]).text
    assert re.findall(r'data-issue="([^"]+)"', mine) and "Nguyễn Hữu Cảnh" not in mine
    assert "ngộ độc" in mine


def test_dashboard_holds_to_scope(env: Env) -> None:
    client, _, headers = env
    everything = client.get("/?period=week", headers=headers[LEADER]).text
    assert "Nguyễn Hữu Cảnh" in everything and "/issues/" in everything and 'href="/map?lang=vi"' in everything
    quan7 = client.get("/?period=week", headers=headers[QUAN7]).text
    assert "Huỳnh Tấn Phát" in quan7 and "Nguyễn Hữu Cảnh" not in quan7
    assert client.get("/?area=fd:binh-thanh", headers=headers[QUAN7]).status_code == 403
    builder = client.get("/?period=week", headers=headers[BUILDER]).text
    assert "Nguyễn Hữu Cảnh" in builder and "ngộ độc" not in builder


@pytest.mark.integration
def test_send_briefing_endpoint_without_smtp_is_503(env: Env,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from api import mailer

    client, _, headers = env
    monkeypatch.setattr(mailer, "_override", mailer.SmtpConfig(host=None))
    r = client.post("/api/v1/briefings/construction/send", headers=headers[BUILDER])
    assert r.status_code == 503
    r = client.post("/api/v1/briefings/construction/send", headers=headers[BUILDER],
                    json={"to": ["someone.else@example.org"]})
    assert r.status_code == 403
    r = client.post("/api/v1/briefings/food_safety/send", headers=headers[BUILDER])
    assert r.status_code == 403
