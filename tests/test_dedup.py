"""Registry, URL variants, page-kind refusals, SimHash near-duplicates and syndication grouping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawlers.dedup import StoryIndex, content_hash, hamming, simhash, story_sources
from crawlers.extraction import LoginWall, SoftNotFound, extract_article
from crawlers.sources import RegistryError, load_registry, parse_registry
from crawlers.state import CrawlState
from crawlers.urls import canonicalize_url, looks_like_article_url
from langnghe.demo_site import load_corpus


def test_registry_has_the_city_outlets_with_feeds_and_rules() -> None:
    reg = load_registry()
    assert len(reg) >= 20
    for name in ("vnexpress.net", "tuoitre.vn", "thanhnien.vn", "sggp.org.vn", "nld.com.vn", "plo.vn", "dantri.com.vn",
                 "vietnamnet.vn", "znews.vn", "laodong.vn", "vov.vn", "vtv.vn", "tienphong.vn", "baochinhphu.vn",
                 "hcmcpv.org.vn", "en.sggp.org.vn", "hochiminhcity.gov.vn", "voz.vn", "tinhte.vn"):
        assert name in reg.names(), name
    assert reg.get("vnexpress.net").feeds[0] == "https://vnexpress.net/rss/tin-moi-nhat.rss"
    assert reg.for_url("https://m.vnexpress.net/x-1.html").name == "vnexpress.net"  # type: ignore[union-attr]
    assert reg.for_url("https://www.sggp.org.vn/x.html").name == "sggp.org.vn"  # type: ignore[union-attr]
    assert reg.get("voz.vn").is_forum and reg.get("voz.vn").forum_engine == "xenforo"
    assert "plo.vn" in reg.rules() and not reg.get("vnexpress.net").verified
    with pytest.raises(KeyError, match="unknown source"):
        reg.get("nope.vn")


@pytest.mark.parametrize(("doc", "message"), [
    ({"sources": [{"name": "a.vn", "feeds": ["ftp://a.vn/rss"]}]}, "not an http"),
    ({"sources": [{"name": "a.vn"}]}, "at least one feed"),
    ({"sources": [{"name": "a.vn", "feeds": ["https://a.vn/r"], "rules": {"body": "//p["}}]}, "not valid XPath"),
    ({"sources": [{"name": "a.vn", "feeds": ["https://a.vn/r"]}, {"name": "a.vn", "feeds": ["https://a.vn/r"]}]},
     "listed twice"),
    ({"sources": [{"name": "a.vn", "kind": "blog", "feeds": ["https://a.vn/r"]}]}, "kind must be"),
])
def test_registry_errors_name_the_entry(doc: dict, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        parse_registry(doc)


@pytest.mark.parametrize(("url", "expected"), [
    ("https://amp.thanhnien.vn/amp/nguoi-dan-185251.html?utm_source=zalo&zarsrc=1", "https://thanhnien.vn/nguoi-dan-185251.html"),
    ("https://m.tuoitre.vn/ngap-nuoc-2025112009.htm?fbclid=x&gidzl=1#comment", "https://tuoitre.vn/ngap-nuoc-2025112009.htm?gidzl=1"),
    ("https://vietnamnet.vn/tin-a-2468.html/amp?vn_source=home", "https://vietnamnet.vn/tin-a-2468.html"),
])
def test_url_variants_fold_into_one(url: str, expected: str) -> None:
    assert canonicalize_url(url) == expected


def test_article_links_on_section_pages() -> None:
    base = "https://tuoitre.vn/thoi-su.htm"
    assert looks_like_article_url("/nguoi-dan-phan-anh-ngap-nuoc-2025112009.htm", None) is False  # relative: no host
    assert looks_like_article_url("https://tuoitre.vn/nguoi-dan-phan-anh-ngap-nuoc-2025112009.htm", base)
    assert not looks_like_article_url("https://tuoitre.vn/tag/ngap-nuoc-12345.htm", base)
    assert not looks_like_article_url("https://vnexpress.net/nguoi-dan-phan-anh-ngap-4954454.html", base)


LOGIN = """<html><head><title>Đăng nhập để đọc tiếp - Báo X</title></head><body><h1>Bài viết dành cho thành viên</h1>
<form action="/login" method="post"><input type="text" name="u"><input type="password" name="p"></form></body></html>"""
FRONT = """<html><head><title>Báo X - Tin tức</title><meta property="og:url" content="https://baox.vn/">
<meta property="og:type" content="article"></head><body><h1>Tin nóng trong ngày</h1><article>
<p>Nội dung trang chủ được trả về thay cho bài viết đã bị gỡ, với danh sách tin mới nhất của báo hôm nay.</p>
<p>Tin thứ hai trên trang chủ, kèm nhiều đường dẫn tới các chuyên mục khác của báo.</p></article></body></html>"""


def test_login_wall_and_front_page_served_for_an_article_are_refused() -> None:
    with pytest.raises(LoginWall):
        extract_article(LOGIN, "https://baox.vn/thoi-su/bai-viet-123456.html")
    with pytest.raises(SoftNotFound, match="front page"):
        extract_article(FRONT, "https://baox.vn/thoi-su/bai-da-go-123456.html")


def _texts() -> list[str]:
    return [item["text"] for item in load_corpus()[:40] if len(item["text"].split()) > 150]


def test_simhash_separates_near_duplicates_from_other_texts() -> None:
    texts = _texts()
    a, b = texts[0], texts[1]
    paragraphs = a.split(". ")
    republished = "Theo TTXVN. " + a + " (Nguồn: Báo Người Lao Động)"
    trimmed = ". ".join(paragraphs[:-1])
    assert content_hash(a) == content_hash(a.upper().replace(".", " . "))
    assert hamming(simhash(a), simhash(republished)) <= 3
    assert hamming(simhash(a), simhash(trimmed)) <= 7
    assert hamming(simhash(a), simhash(b)) > 12
    distances = [hamming(simhash(x), simhash(y)) for x, y in zip(texts, texts[1:], strict=False)]
    assert min(distances) > 12  # different articles never look alike


def test_story_index_groups_syndication_and_drops_same_source_duplicates(tmp_path: Path) -> None:
    state = CrawlState(tmp_path / "db.sqlite3")
    index = StoryIndex(state)
    texts = _texts()
    now = datetime.now(UTC)
    first = index.assign("m1", "tuoitre.vn", texts[0], now)
    assert first.kind == "new" and first.story_id == "m1"
    other = index.assign("m2", "tuoitre.vn", texts[1], now)
    assert other.kind == "new" and other.story_id == "m2"
    index.flush()
    synd = index.assign("m3", "nld.com.vn", "Theo TTXVN. " + texts[0], now + timedelta(hours=2))
    assert synd.kind == "syndicated" and synd.story_id == "m1"
    dup = index.assign("m4", "tuoitre.vn", texts[0] + " ", now)
    assert dup.is_duplicate and dup.duplicate_of == "m1"
    late = index.assign("m5", "vtv.vn", texts[0], now + timedelta(days=30))  # same text a month later
    assert late.kind == "new" and late.story_id == "m5"
    index.flush()
    assert index.assign("m1", "tuoitre.vn", texts[0], now).kind == "same"  # re-crawl, text unchanged
    assert story_sources(state, "m1") == ["tuoitre.vn", "nld.com.vn"]
    assert state.story_ids(["m1", "m2", "m3", "m4"]) == {"m1": "m1", "m2": "m2", "m3": "m1"}
