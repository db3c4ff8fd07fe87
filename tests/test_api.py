"""The HTTP API and the dashboard, over a real SQLite store filled through the Store interface."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from langnghe.records import Issue, Mention, RankingEntry, mention_id
from nlp.taxonomy import DEPARTMENTS, TOPICS, department_name, labels, topic_name
from tests.auth_helpers import logged_in

SQLiteStore = pytest.importorskip("storage.sqlite").SQLiteStore

try:
    from nlp.areas import load_areas
except ImportError:  # pragma: no cover - the gazetteer module is another room's
    load_areas = None  # type: ignore[assignment]

needs_areas = pytest.mark.skipif(load_areas is None, reason="nlp/areas.py (the gazetteer) is not there yet")

VN = ZoneInfo("Asia/Ho_Chi_Minh")
BEN_THANH = "w:26743"  # Phường Bến Thành (from former Quận 1)
TAN_HUNG = "w:27475"  # Phường Tân Hưng (from former Quận 7)
THANH_MY_TAY = "w:26956"  # Phường Thạnh Mỹ Tây (from former Bình Thạnh)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of November 2025, city time."""
    return datetime(2025, 11, day, hour, minute, tzinfo=VN)


def mention(slug: str, source: str, title: str, text: str, published: datetime, *, topic: str,
            department: str, sentiment: str, areas: list[str], issue_id: str | None = None,
            department_score: float = 0.9) -> Mention:
    url = f"https://{source}/{slug}.html"
    return Mention(
        id=mention_id(url), source=source, url=url, title=title, text=text, published_at=published,
        civic=topic != "not_civic", civic_score=0.9, sentiment=sentiment, sentiment_score=0.8,
        topic=topic, department=department, department_score=department_score, areas=["hcmc", *areas],
        issue_id=issue_id, processed_at=published + timedelta(minutes=5),
    )


FLOOD_1 = mention(
    "ngap-sau-nguyen-huu-canh", "vnexpress.net", "Ngập nước sâu trên đường Nguyễn Hữu Cảnh sau mưa lớn",
    "Cơn mưa lớn chiều 19/11 khiến đường Nguyễn Hữu Cảnh (quận Bình Thạnh cũ) ngập nước sâu gần nửa mét, "
    "nhiều xe máy chết máy giữa dòng.", at(20, 7, 30), topic="flooding", department="construction",
    sentiment="negative", areas=["fd:binh-thanh", THANH_MY_TAY], issue_id="iss-ngap-nhc")
FLOOD_2 = mention(
    "nguoi-dan-buc-xuc-ngap", "tuoitre.vn", "Người dân bức xúc vì ngập nước kéo dài",
    "Cư dân phường Thạnh Mỹ Tây phản ánh tình trạng ngập nước kéo dài sau mỗi trận mưa, "
    "dù tuyến cống mới đã thi công xong.", at(20, 9, 0), topic="flooding", department="construction",
    sentiment="negative", areas=["fd:binh-thanh", THANH_MY_TAY], issue_id="iss-ngap-nhc")
FLOOD_Q7 = mention(
    "trieu-cuong-quan-7", "thanhnien.vn", "Triều cường gây ngập nước nhiều tuyến đường Quận 7",
    "Đỉnh triều cường vượt báo động III khiến đường Huỳnh Tấn Phát, Trần Xuân Soạn ngập nước "
    "vào giờ tan tầm.", at(19, 23, 30), topic="flooding", department="construction",
    sentiment="negative", areas=["fd:quan-7", TAN_HUNG], issue_id="iss-trieu-q7")
TRAFFIC = mention(
    "ket-xe-tan-son-nhat", "vnexpress.net", "Kẹt xe nghiêm trọng ở cửa ngõ sân bay Tân Sơn Nhất",
    "Hàng nghìn phương tiện nhích từng mét trên đường Trường Sơn, hành khách phải đi bộ kéo vali "
    "vào nhà ga.", at(20, 18, 0), topic="traffic", department="construction", sentiment="negative",
    areas=["fd:tan-binh"], issue_id="iss-ket-xe-tsn")
BUS = mention(
    "xe-buyt-dien-ben-thanh", "nld.com.vn", "Tuyến xe buýt điện mới từ Bến Thành được khen",
    "Hành khách khen xe buýt điện sạch sẽ, đúng giờ, giá vé hợp lý trên tuyến Bến Thành – Thủ Đức.",
    at(18, 10, 0), topic="traffic", department="construction", sentiment="positive",
    areas=["fd:quan-1", BEN_THANH], issue_id="iss-ket-xe-tsn")
WASTE = mention(
    "rac-kenh-nhieu-loc", "facebook:page/123", "Rác thải ùn ứ trên kênh Nhiêu Lộc – Thị Nghè",
    "Rác nổi kín mặt kênh đoạn qua Quận 3, mùi hôi bốc lên mỗi chiều.", at(20, 12, 0),
    topic="environment", department="agriculture_environment", sentiment="neutral",
    areas=["fd:quan-3"], issue_id="iss-rac-kenh")
XSS = mention(
    "xss", "example.org", "<script>alert('x')</script> Cúp điện",
    "Nội dung có thẻ <img src=x onerror=alert(1)> trong bài.", at(17, 8, 0), topic="utilities",
    department="industry_trade", sentiment="negative", areas=["fd:quan-1"], issue_id="iss-xss")
WATER_STREETS = ["Lê Văn Sỹ", "Cách Mạng Tháng Tám", "Nguyễn Trãi", "Phan Đăng Lưu", "Âu Cơ"]
WATER = [
    mention(f"cup-nuoc-{i}", "hotline-1022", f"Cúp nước sinh hoạt kéo dài trên đường {street} (phản ánh {i})",
            f"Người dân đường {street} phản ánh bị cúp nước sinh hoạt từ sáng, chưa có thông báo.",
            at(10, 6) + timedelta(hours=i), topic="utilities", department="construction",
            sentiment="negative", areas=["fd:quan-3"])
    for i, street in enumerate(WATER_STREETS * 5)
]
ALL_MENTIONS = [FLOOD_1, FLOOD_2, FLOOD_Q7, TRAFFIC, BUS, WASTE, XSS, *WATER]

ISSUES = [
    Issue("iss-ngap-nhc", "Ngập sâu đường Nguyễn Hữu Cảnh sau mưa lớn", "flooding", "construction",
          ["hcmc", "fd:binh-thanh", THANH_MY_TAY], ["ngập nước", "Nguyễn Hữu Cảnh", "mưa lớn"],
          at(20, 7, 30), at(20, 9), 2),
    Issue("iss-trieu-q7", "Triều cường gây ngập đường Huỳnh Tấn Phát", "flooding", "construction",
          ["hcmc", "fd:quan-7", TAN_HUNG], ["triều cường", "Huỳnh Tấn Phát"], at(19, 23, 30),
          at(19, 23, 30), 1),
    Issue("iss-ket-xe-tsn", "Ùn tắc cửa ngõ sân bay Tân Sơn Nhất", "traffic", "construction",
          ["hcmc", "fd:tan-binh"], ["kẹt xe", "Tân Sơn Nhất"], at(18, 10), at(20, 18), 2),
    Issue("iss-rac-kenh", "Rác thải ùn ứ kênh Nhiêu Lộc – Thị Nghè", "environment", "agriculture_environment",
          ["hcmc", "fd:quan-3"], ["rác", "kênh Nhiêu Lộc"], at(20, 12), at(20, 12), 1),
    Issue("iss-xss", "<script>alert('issue')</script> Mất điện", "utilities", "industry_trade",
          ["hcmc", "fd:quan-1"], ["mất điện"], at(17, 8), at(17, 8), 1),
]


def entry(area: str, period: str, key: str, rank: int, issue: str, score: float, mentions: int,
          sources: int, sentiment: tuple[int, int, int], evidence: list[Mention]) -> RankingEntry:
    return RankingEntry(
        area_id=area, period=period, period_key=key, rank=rank, issue_id=issue, score=score,
        score_parts={"volume": round(score * 0.5, 3), "sources": round(score * 0.3, 3),
                     "negativity": round(score * 0.2, 3)},
        mention_count=mentions, source_count=sources,
        sentiment_counts=dict(zip(("negative", "neutral", "positive"), sentiment, strict=True)),
        evidence_ids=[m.id for m in evidence],
    )


DAY_20 = [
    entry("hcmc", "day", "2025-11-20", 1, "iss-ngap-nhc", 3.2, 2, 2, (2, 0, 0), [FLOOD_1, FLOOD_2]),
    entry("hcmc", "day", "2025-11-20", 2, "iss-ket-xe-tsn", 2.1, 1, 1, (1, 0, 0), [TRAFFIC]),
    entry("hcmc", "day", "2025-11-20", 3, "iss-rac-kenh", 1.4, 1, 1, (0, 1, 0), [WASTE]),
    entry("fd:binh-thanh", "day", "2025-11-20", 1, "iss-ngap-nhc", 3.2, 2, 2, (2, 0, 0), [FLOOD_2, FLOOD_1]),
]
DAY_19 = [entry("hcmc", "day", "2025-11-19", 1, "iss-trieu-q7", 1.9, 1, 1, (1, 0, 0), [FLOOD_Q7]),
          entry("fd:quan-7", "day", "2025-11-19", 1, "iss-trieu-q7", 1.9, 1, 1, (1, 0, 0), [FLOOD_Q7])]
DAY_17 = [entry("hcmc", "day", "2025-11-17", 1, "iss-xss", 0.9, 1, 1, (1, 0, 0), [XSS])]
WEEK_47 = [
    entry("hcmc", "week", "2025-W47", 1, "iss-ket-xe-tsn", 4.4, 2, 2, (1, 0, 1), [TRAFFIC, BUS]),
    entry("hcmc", "week", "2025-W47", 2, "iss-ngap-nhc", 4.0, 2, 2, (2, 0, 0), [FLOOD_1]),
    entry("hcmc", "week", "2025-W47", 3, "iss-trieu-q7", 1.9, 1, 1, (1, 0, 0), [FLOOD_Q7]),
]
WEEK_46 = [entry("hcmc", "week", "2025-W46", 1, "iss-rac-kenh", 0.5, 1, 1, (0, 1, 0), [WASTE])]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    db = SQLiteStore(tmp_path_factory.mktemp("api") / "langnghe.sqlite3")
    written = db.write_mentions(ALL_MENTIONS)
    assert written.inserted == len(ALL_MENTIONS)
    db.write_issues(ISSUES)
    for period, key, entries in (("day", "2025-11-20", DAY_20), ("day", "2025-11-19", DAY_19),
                                 ("day", "2025-11-17", DAY_17), ("week", "2025-W47", WEEK_47),
                                 ("week", "2025-W46", WEEK_46)):
        db.replace_rankings(period, key, entries)
    yield db
    db.close()


@pytest.fixture(scope="module")
def client(store: Any) -> Iterator[TestClient]:
    """A client logged in as an administrator (sees everything)."""
    with TestClient(create_app(store)) as c:
        yield logged_in(c)


def problems(response: Any) -> str:
    """The 422 message, checked to name the parameter in both languages."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"].startswith("Tham số không hợp lệ / Invalid parameters")
    assert isinstance(body["detail"], list) and body["detail"]
    return str(body["message"])


# --- health, docs ------------------------------------------------------------------------------

def test_healthz_counts_stored_mentions(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "mentions": len(ALL_MENTIONS)}
    assert r.headers["x-content-type-options"] == "nosniff"


def test_docs_and_openapi_served(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "Lắng Nghe API"
    for path in ("/healthz", "/api/v1/areas", "/api/v1/issues/top", "/api/v1/issues/{issue_id}",
                 "/api/v1/mentions/search"):
        assert path in spec["paths"]
    assert "/" not in spec["paths"]  # the dashboard page is not an API operation
    params = {p["name"] for p in spec["paths"]["/api/v1/mentions/search"]["get"]["parameters"]}
    assert {"q", "area", "topic", "department", "sentiment", "source", "from", "to", "page",
            "page_size"} <= params


def test_cors_is_off_by_default(client: TestClient) -> None:
    r = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


# --- top issues --------------------------------------------------------------------------------

def test_top_issues_order_labels_counts_and_evidence(client: TestClient) -> None:
    r = client.get("/api/v1/issues/top", params={"area": "hcmc", "period": "day", "date": "2025-11-20"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["area"]["id"] == "hcmc" and body["area"]["level"] == "city"
    assert body["period"] == "day" and body["period_key"] == "2025-11-20"
    issues = body["issues"]
    assert [i["rank"] for i in issues] == [1, 2, 3]
    assert [i["issue_id"] for i in issues] == ["iss-ngap-nhc", "iss-ket-xe-tsn", "iss-rac-kenh"]
    first = issues[0]
    assert first["label"] == "Ngập sâu đường Nguyễn Hữu Cảnh sau mưa lớn"
    assert first["topic"] == "flooding" and first["department"] == "construction"
    assert first["score"] == pytest.approx(3.2)
    assert first["score_parts"] == {"volume": 1.6, "sources": 0.96, "negativity": 0.64}
    assert (first["mention_count"], first["source_count"]) == (2, 2)
    assert first["sentiment"] == {"negative": 2, "neutral": 0, "positive": 0}
    assert first["keywords"] == ["ngập nước", "Nguyễn Hữu Cảnh", "mưa lớn"]
    assert [e["id"] for e in first["evidence"]] == [FLOOD_1.id, FLOOD_2.id]
    ev = first["evidence"][0]
    assert ev["title"] == FLOOD_1.title and ev["url"] == FLOOD_1.url and ev["source"] == "vnexpress.net"
    assert ev["sentiment"] == "negative"
    assert datetime.fromisoformat(ev["published_at"]) == at(20, 7, 30)
    assert issues[2]["sentiment"] == {"negative": 0, "neutral": 1, "positive": 0}


def test_top_issues_limit(client: TestClient) -> None:
    r = client.get("/api/v1/issues/top", params={"date": "2025-11-20", "limit": 2})
    assert [i["rank"] for i in r.json()["issues"]] == [1, 2]


def test_top_default_date_is_newest_ranking(client: TestClient) -> None:
    day = client.get("/api/v1/issues/top").json()
    assert day["area"]["id"] == "hcmc" and day["period"] == "day"
    assert day["period_key"] == "2025-11-20"
    assert day["issues"][0]["issue_id"] == "iss-ngap-nhc"
    week = client.get("/api/v1/issues/top", params={"period": "week"}).json()
    assert week["period_key"] == "2025-W47"


def test_top_other_day_and_area(client: TestClient) -> None:
    body = client.get("/api/v1/issues/top", params={"date": "2025-11-19"}).json()
    assert [i["issue_id"] for i in body["issues"]] == ["iss-trieu-q7"]
    empty = client.get("/api/v1/issues/top", params={"date": "2025-11-21"}).json()
    assert empty["period_key"] == "2025-11-21" and empty["issues"] == []


@needs_areas
def test_top_for_former_district(client: TestClient) -> None:
    body = client.get("/api/v1/issues/top", params={"area": "fd:binh-thanh", "date": "2025-11-20"}).json()
    assert body["area"] == {"id": "fd:binh-thanh", "name": "Bình Thạnh", "full_name": "Quận Bình Thạnh",
                            "level": "former_district"}
    assert [i["issue_id"] for i in body["issues"]] == ["iss-ngap-nhc"]
    # evidence in the ranking's order (best first), not in storage order
    assert [e["id"] for e in body["issues"][0]["evidence"]] == [FLOOD_2.id, FLOOD_1.id]


def test_top_week_selects_iso_week_of_date(client: TestClient) -> None:
    for day in ("2025-11-17", "2025-11-20", "2025-11-23"):  # Monday, Thursday, Sunday of W47
        body = client.get("/api/v1/issues/top", params={"period": "week", "date": day}).json()
        assert body["period_key"] == "2025-W47", day
        assert [i["issue_id"] for i in body["issues"]] == ["iss-ket-xe-tsn", "iss-ngap-nhc", "iss-trieu-q7"]
        assert body["issues"][0]["sentiment"] == {"negative": 1, "neutral": 0, "positive": 1}
    sunday_before = client.get("/api/v1/issues/top", params={"period": "week", "date": "2025-11-16"}).json()
    assert sunday_before["period_key"] == "2025-W46"
    assert [i["issue_id"] for i in sunday_before["issues"]] == ["iss-rac-kenh"]
    by_key = client.get("/api/v1/issues/top", params={"period": "week", "date": "2025-W47"}).json()
    assert by_key["period_key"] == "2025-W47"


def test_top_unknown_area_is_404_in_both_languages(client: TestClient) -> None:
    r = client.get("/api/v1/issues/top", params={"area": "fd:quan-99"})
    assert r.status_code == 404
    detail = r.json()["detail"]
    assert "Không tìm thấy khu vực 'fd:quan-99'" in detail and "Unknown area 'fd:quan-99'" in detail


@pytest.mark.parametrize(("params", "needle"), [
    ({"period": "month"}, "period: Input should be 'day' or 'week'"),
    ({"date": "20/11/2025"}, "date: Ngày phải có dạng YYYY-MM-DD / date must be YYYY-MM-DD"),
    ({"date": "2025-02-30"}, "date: Ngày không tồn tại / not a real date"),
    ({"date": "2025-W47"}, "date: Mã tuần (YYYY-Www) chỉ dùng với period=week"),
    ({"period": "week", "date": "2025-W60"}, "not a real ISO week"),
    ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
    ({"limit": 51}, "limit: Input should be less than or equal to 50"),
    ({"limit": "ten"}, "limit: Input should be a valid integer"),
])
def test_top_bad_parameters_are_422(client: TestClient, params: dict[str, Any], needle: str) -> None:
    assert needle in problems(client.get("/api/v1/issues/top", params=params))


def test_periods_list(client: TestClient) -> None:
    assert client.get("/api/v1/issues/periods").json() == {
        "period": "day", "keys": ["2025-11-20", "2025-11-19", "2025-11-17"]}
    assert client.get("/api/v1/issues/periods", params={"period": "week"}).json()["keys"] == [
        "2025-W47", "2025-W46"]


# --- one issue ---------------------------------------------------------------------------------

def test_issue_details_with_recent_mentions(client: TestClient) -> None:
    r = client.get("/api/v1/issues/iss-ket-xe-tsn")
    assert r.status_code == 200
    body = r.json()
    assert body["label"] == "Ùn tắc cửa ngõ sân bay Tân Sơn Nhất"
    assert body["topic"] == "traffic" and body["mention_count"] == 2
    assert body["keywords"] == ["kẹt xe", "Tân Sơn Nhất"]
    assert [m["id"] for m in body["mentions"]] == [TRAFFIC.id, BUS.id]  # newest first
    assert body["mentions"][1]["sentiment"] == "positive"
    assert "fd:quan-1" in body["mentions"][1]["areas"]


def test_unknown_issue_is_404(client: TestClient) -> None:
    r = client.get("/api/v1/issues/khong-co")
    assert r.status_code == 404
    assert "Unknown issue 'khong-co'" in r.json()["detail"]


# --- search ------------------------------------------------------------------------------------

def search(client: TestClient, **params: Any) -> dict[str, Any]:
    if "from_" in params:
        params["from"] = params.pop("from_")
    r = client.get("/api/v1/mentions/search", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_search_is_accent_insensitive_with_highlight(client: TestClient) -> None:
    body = search(client, q="ngap nuoc")
    assert body["total"] == 3
    assert {m["id"] for m in body["items"]} == {FLOOD_1.id, FLOOD_2.id, FLOOD_Q7.id}
    for item in body["items"]:
        assert "<mark>ngập</mark> <mark>nước</mark>" in item["highlight"]
        assert item["topic"] == "flooding"
        assert item["department_score"] == 0.9  # how sure the routing is (below 0.5: to check)
    assert search(client, q="NGẬP Nước")["total"] == 3


def test_search_filters(client: TestClient) -> None:
    q7 = search(client, q="ngap nuoc", area="fd:quan-7")
    assert [m["id"] for m in q7["items"]] == [FLOOD_Q7.id]
    assert q7["items"][0]["areas"] == ["hcmc", "fd:quan-7", TAN_HUNG]
    traffic = search(client, topic="traffic")
    assert [m["id"] for m in traffic["items"]] == [TRAFFIC.id, BUS.id]  # no q: newest first
    positive = search(client, topic="traffic", sentiment="positive")
    assert [m["id"] for m in positive["items"]] == [BUS.id]
    env = search(client, department="agriculture_environment")
    assert [m["id"] for m in env["items"]] == [WASTE.id]
    assert search(client, source="hotline-1022")["total"] == len(WATER)
    assert search(client, q="ngap nuoc", topic="traffic")["total"] == 0


def test_search_date_range_uses_city_days(client: TestClient) -> None:
    # FLOOD_Q7 is 19/11 23:30 in the city (16:30 UTC): inside "to=2025-11-19", outside "from=2025-11-20"
    upto_19 = search(client, q="ngap nuoc", to="2025-11-19")
    assert [m["id"] for m in upto_19["items"]] == [FLOOD_Q7.id]
    from_20 = search(client, q="ngap nuoc", from_="2025-11-20")
    assert {m["id"] for m in from_20["items"]} == {FLOOD_1.id, FLOOD_2.id}
    same_day = search(client, from_="2025-11-20", to="2025-11-20")
    assert {m["id"] for m in same_day["items"]} == {FLOOD_1.id, FLOOD_2.id, TRAFFIC.id, WASTE.id}
    # datetimes: naive ones are city time; `to` includes its own instant
    window = search(client, from_="2025-11-20T09:00", to="2025-11-20T12:00")
    assert [m["id"] for m in window["items"]] == [WASTE.id, FLOOD_2.id]
    utc = search(client, from_="2025-11-20T02:00:00+00:00", to="2025-11-20T02:00:00Z")
    assert [m["id"] for m in utc["items"]] == [FLOOD_2.id]


def test_search_pagination(client: TestClient) -> None:
    pages = [search(client, q="cup nuoc", page=p, page_size=10) for p in (1, 2, 3, 4)]
    assert [p["total"] for p in pages] == [25] * 4
    assert [len(p["items"]) for p in pages] == [10, 10, 5, 0]
    assert (pages[2]["page"], pages[2]["page_size"]) == (3, 10)
    ids = [m["id"] for p in pages for m in p["items"]]
    assert len(set(ids)) == 25 and set(ids) == {m.id for m in WATER}
    newest = search(client, source="hotline-1022", page_size=3)
    assert [m["id"] for m in newest["items"]] == [m.id for m in WATER[::-1][:3]]


def test_search_snippet_and_escaping(client: TestClient) -> None:
    body = search(client, q="cup dien")
    assert [m["id"] for m in body["items"]] == [XSS.id]
    item = body["items"][0]
    assert "<script>" not in item["highlight"] and "&lt;script&gt;" in item["highlight"]
    assert "<mark>Cúp</mark> <mark>điện</mark>" in item["highlight"]
    plain = search(client, source="example.org")["items"][0]
    assert plain["highlight"] is None and plain["snippet"].startswith("Nội dung có thẻ")


@pytest.mark.parametrize(("params", "needle"), [
    ({"q": "x" * 501}, "q: String should have at most 500 characters"),
    ({"page_size": 101}, "page_size: Input should be less than or equal to 100"),
    ({"page_size": 0}, "page_size: Input should be greater than or equal to 1"),
    ({"page": 0}, "page: Input should be greater than or equal to 1"),
    ({"topic": "weather"}, "topic: Input should be 'flooding', 'traffic'"),
    ({"department": "mayor"}, "department: Input should be 'construction'"),
    ({"sentiment": "angry"}, "sentiment: Input should be 'negative', 'neutral' or 'positive'"),
    ({"from": "hôm qua"}, "from: Phải là ngày YYYY-MM-DD hoặc thời điểm ISO 8601"),
    ({"to": "2025-13-01"}, "to: Ngày không tồn tại / not a real date"),
    ({"from": "2025-11-20", "to": "2025-11-19"}, "'to' must not be before 'from'"),
])
def test_search_bad_parameters_are_422(client: TestClient, params: dict[str, Any], needle: str) -> None:
    assert needle in problems(client.get("/api/v1/mentions/search", params=params))


def test_search_unknown_area_is_404(client: TestClient) -> None:
    r = client.get("/api/v1/mentions/search", params={"area": "w:00000"})
    assert r.status_code == 404 and "Unknown area 'w:00000'" in r.json()["detail"]


def test_search_query_of_symbols_only_finds_nothing(client: TestClient) -> None:
    assert search(client, q="\"') OR 1=1 --")["total"] == 0


# --- areas -------------------------------------------------------------------------------------

@needs_areas
def test_areas_list(client: TestClient) -> None:
    areas = client.get("/api/v1/areas").json()
    by_id = {a["id"]: a for a in areas}
    assert by_id["hcmc"]["level"] == "city"
    assert by_id["hcmc"]["full_name"] == "Thành phố Hồ Chí Minh"  # the kind is not repeated
    q7 = by_id["fd:quan-7"]
    assert q7["name"] == "Quận 7" and q7["level"] == "former_district" and q7["kind"] == "quận"
    assert TAN_HUNG in q7["related_ids"] and q7["parent_ids"] == ["hcmc"]
    assert by_id[TAN_HUNG]["related_ids"] == ["fd:quan-7"]
    assert by_id[TAN_HUNG]["full_name"] == "Phường Tân Hưng"
    wards = client.get("/api/v1/areas", params={"level": "ward"}).json()
    assert len(wards) == 168 and {a["level"] for a in wards} == {"ward"}
    assert by_id["w:26743"]["name"] == "Bến Thành"
    fds = client.get("/api/v1/areas", params={"level": "former_district"}).json()
    assert {"fd:quan-7", "fd:binh-thanh", "fd:thu-duc"} <= {a["id"] for a in fds}
    assert "level: Input should be 'city', 'former_district' or 'ward'" in problems(
        client.get("/api/v1/areas", params={"level": "district"}))


def test_areas_fallback_without_gazetteer(store: Any) -> None:
    from api.deps import CityOnlyCatalog

    with TestClient(create_app(store, areas=CityOnlyCatalog())) as c:
        logged_in(c)
        assert [a["id"] for a in c.get("/api/v1/areas").json()] == ["hcmc"]
        assert c.get("/api/v1/issues/top", params={"area": "fd:quan-7"}).status_code == 404


# --- dashboard ---------------------------------------------------------------------------------

def test_dashboard_renders_vietnamese_page(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<html lang="vi">' in html
    assert "Lắng Nghe — Ý kiến người dân TP.HCM" in html
    assert '<select id="area" name="area">' in html and '<option value="hcmc" selected>' in html
    assert "Hôm nay" in html and "Tuần này" in html and 'type="date"' in html
    assert 'value="2025-11-20"' in html  # the newest ranked day
    assert 'type="search"' in html and 'maxlength="500"' in html
    # the top-10, in order, with Vietnamese display names
    positions = [html.index(issue.label) for issue in ISSUES[:4] if issue.id != "iss-trieu-q7"]
    assert positions == sorted(positions)
    assert "Ngập nước, triều cường" in html and "Sở Xây dựng" in html
    assert "Sở Nông nghiệp và Môi trường" in html
    assert f'href="{FLOOD_1.url}"' in html and "Tiêu cực 2" in html
    assert "Số lượt nhắc: 1.60" in html  # score parts in the tooltip
    # only local resources, and a strict content security policy
    assert re.findall(r'(?:src|href)="(?:https?:)?//', html.split("<ol", 1)[0]) == []
    assert '<script src="/static/app.js" defer>' in html and 'href="/static/style.css"' in html
    assert "script-src 'self'" in r.headers["content-security-policy"]


@needs_areas
def test_dashboard_area_selector_groups(client: TestClient) -> None:
    html = client.get("/").text
    assert '<optgroup label="Quận, huyện cũ (trước 1/7/2025) — TP.HCM cũ">' in html
    assert '<optgroup label="Phường, xã, đặc khu hiện nay — TP.HCM cũ">' in html
    assert '<option value="fd:quan-7">Quận 7</option>' in html
    assert f'<option value="{BEN_THANH}">Phường Bến Thành</option>' in html
    assert html.index(">Quận 3<") < html.index(">Quận 10<")  # natural order
    assert len(re.findall(r'<option value="w:\d{5}"', html)) == 168
    assert "— Thành phố Hồ Chí Minh, ngày 2025-11-20" in html and "Thành phố Thành phố" not in html


def test_dashboard_english_and_week(client: TestClient) -> None:
    html = client.get("/", params={"lang": "en", "period": "week", "date": "2025-11-18"}).text
    assert '<html lang="en">' in html and "Today" in html and "This week" in html
    assert "Traffic and congestion" in html and "Department of Construction" in html
    assert "2025-W47" in html
    assert html.index("Ùn tắc cửa ngõ sân bay Tân Sơn Nhất") < html.index(ISSUES[0].label)
    counts = re.findall(r"· (\d+ \w+) · (\d+ \w+)", html)
    assert ("2 mentions", "2 sources") in counts and ("1 mention", "1 source") in counts
    assert "1 mentions" not in html and "1 sources" not in html
    vietnamese = client.get("/", params={"period": "week", "date": "2025-11-18"}).text
    assert "1 lượt nhắc · 1 nguồn" in vietnamese and "2 lượt nhắc · 2 nguồn" in vietnamese


def test_dashboard_escapes_data(client: TestClient) -> None:
    html = client.get("/", params={"date": "2025-11-17"}).text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;issue&#39;)&lt;/script&gt; Mất điện" in html
    found = client.get("/", params={"q": "cup dien"}).text
    assert "<script>alert" not in found and "<img src=x" not in found
    assert "<mark>Cúp</mark> <mark>điện</mark>" in found


def test_dashboard_search_and_errors(client: TestClient) -> None:
    html = client.get("/", params={"q": "ngap nuoc"}).text
    assert "3 kết quả" in html and FLOOD_Q7.title in html
    bad = client.get("/", params={"area": "fd:quan-99"})
    assert bad.status_code == 404 and "Không tìm thấy khu vực" in bad.text and "<select" in bad.text
    worse = client.get("/", params={"date": "hôm nay"})
    assert worse.status_code == 422 and "YYYY-MM-DD" in worse.text


def test_dashboard_does_not_render_unsafe_links(store: Any, tmp_path: Path) -> None:
    bad = mention("js", "example.org", "Liên kết lạ", "Bài có liên kết javascript.", at(16, 9),
                  topic="other_civic", department="city_pc", sentiment="neutral", areas=[])
    bad.url = "javascript:alert(1)"
    db = SQLiteStore(tmp_path / "links.sqlite3")
    db.write_mentions([bad])
    db.write_issues([Issue("iss-js", "Liên kết lạ", "other_civic", "city_pc", ["hcmc"], [], at(16, 9),
                           at(16, 9), 1)])
    db.replace_rankings("day", "2025-11-16", [entry("hcmc", "day", "2025-11-16", 1, "iss-js", 1.0, 1, 1,
                                                    (0, 1, 0), [bad])])
    with TestClient(create_app(db)) as c:
        html = logged_in(c).get("/").text
        assert "Liên kết lạ" in html and "javascript:" not in html
    db.close()


def test_static_assets_are_local(client: TestClient) -> None:
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
        assert re.findall(r"https?://(?!www\.w3\.org/2000/svg)", r.text) == []
        assert "@import" not in r.text


# --- the app's own store -----------------------------------------------------------------------

def test_create_app_opens_and_closes_the_configured_store(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from langnghe.config import get_settings

    db = tmp_path / "data" / "own.sqlite3"
    monkeypatch.setenv("LANGNGHE_DB_PATH", str(db))
    get_settings.cache_clear()
    try:
        app = create_app()
        with TestClient(app) as c:
            logged_in(c)
            assert c.get("/healthz").json() == {"status": "ok", "mentions": 0}
            assert c.get("/api/v1/issues/top").json()["issues"] == []
            assert app.state.store is not None
        assert app.state.store is None and db.exists()
    finally:
        get_settings.cache_clear()


# --- taxonomy ----------------------------------------------------------------------------------

def test_taxonomy_matches_the_annotation_guide() -> None:
    assert list(TOPICS) == [
        "flooding", "traffic", "infrastructure", "environment", "land_housing", "urban_order",
        "public_security", "admin_services", "health", "food_safety", "education", "utilities",
        "livelihood", "other_civic", "not_civic"]
    assert len(DEPARTMENTS) == 18 and "commune_pc" in DEPARTMENTS and "none" in DEPARTMENTS
    assert topic_name("flooding") == "Ngập nước, triều cường"
    assert topic_name("flooding", "en") == "Flooding and tides"
    assert department_name("police") == "Công an Thành phố" and department_name("xyz") == "xyz"
    assert topic_name(None) == ""
    assert labels("en")["sentiment"]["negative"] == "Negative"
