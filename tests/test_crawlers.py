"""End-to-end crawls of a local news site built from the real saved pages (../shared/pages)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crawlers.feeds import FeedError, parse_feed, parse_sitemap
from crawlers.run import CrawlStats, run_crawl
from crawlers.urls import URLError, canonicalize_url, source_of
from langnghe.records import Mention, mention_id, parse_datetime

from .crawl_server import NewsSite, serve_site, shared_pages_available

Crawled = tuple[Path, CrawlStats, CrawlStats]
FAST = {"DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False, "LOG_LEVEL": "INFO"}

needs_pages = pytest.mark.skipif(not shared_pages_available(),
                                 reason="../shared/pages (saved news pages) is absent")


# ---------------------------------------------------------------------------- unit: URLs and feeds


@pytest.mark.parametrize(("url", "expected"), [
    ("HTTPS://VnExpress.net:443/a-b-123.html?utm_source=fb&utm_medium=x&fbclid=abc#box",
     "https://vnexpress.net/a-b-123.html"),
    ("https://m.vnexpress.net/a-b-123.html", "https://vnexpress.net/a-b-123.html"),
    ("https://plo.vn/bai-viet-post1.html/amp", "https://plo.vn/bai-viet-post1.html"),
    ("https://plo.vn/bai-viet-post1.html?amp", "https://plo.vn/bai-viet-post1.html"),
    ("http://example.com:80/x?b=2&a=1&gclid=9", "http://example.com/x?a=1&b=2"),
    ("http://127.0.0.1:8080/x y", "http://127.0.0.1:8080/x%20y"),
    ("https://www.thanhnien.vn", "https://www.thanhnien.vn/"),
])
def test_canonicalize_url(url: str, expected: str) -> None:
    assert canonicalize_url(url) == expected


def test_canonicalize_url_is_idempotent_and_rejects_non_http() -> None:
    url = canonicalize_url("https://M.Tuoitre.vn/tin/abc.htm?z=1&a=%C4%91&utm_campaign=q")
    assert canonicalize_url(url) == url
    assert url == "https://tuoitre.vn/tin/abc.htm?a=%C4%91&z=1"
    with pytest.raises(URLError):
        canonicalize_url("mailto:toasoan@vnexpress.net")
    assert source_of("https://www.plo.vn/a") == "plo.vn"


def test_parse_rss_atom_and_sitemap() -> None:
    rss = (b"<?xml version='1.0'?><rss version='2.0'><channel><item><title>A</title>"
           b"<link>https://x.vn/a.html</link><pubDate>Thu, 06 Feb 2025 20:30:48 +0700</pubDate></item>"
           b"<item><title>B</title><guid>https://x.vn/b.html</guid></item></channel></rss>")
    entries = parse_feed(rss)
    assert [e.url for e in entries] == ["https://x.vn/a.html", "https://x.vn/b.html"]
    assert entries[0].published_at == parse_datetime("2025-02-06T20:30:48+07:00")
    atom = (b"<feed xmlns='http://www.w3.org/2005/Atom'><entry><title>C</title>"
            b"<link rel='alternate' href='https://x.vn/c.html'/><published>2025-10-01T01:00:00Z</published>"
            b"</entry></feed>")
    assert parse_feed(atom)[0].url == "https://x.vn/c.html"
    with pytest.raises(FeedError):
        parse_feed(b"<html><body>502 Bad Gateway")
    with pytest.raises(FeedError):
        parse_feed(b"<html><body><p>ok</p></body></html>")
    sitemap = (b"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9' "
               b"xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'><url><loc>https://x.vn/d.html</loc>"
               b"<news:news><news:publication_date>2025-10-02T08:00:00+07:00</news:publication_date>"
               b"<news:title>D</news:title></news:news></url></urlset>")
    doc = parse_sitemap(sitemap)
    assert doc.entries[0].title == "D" and doc.entries[0].url == "https://x.vn/d.html"


@needs_pages
def test_real_vnexpress_rss_feed() -> None:
    from .crawl_server import SHARED_PAGES

    entries = parse_feed((SHARED_PAGES / "rss" / "vnexpress-the-gioi.rss").read_bytes())
    assert len(entries) == 1
    assert entries[0].title == "Israel nối gót Mỹ rời Hội đồng Nhân quyền LHQ"
    assert entries[0].url.endswith("-4846612.html")
    assert entries[0].published_at == parse_datetime("2025-02-06T20:30:48+07:00")


# ---------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def site() -> Iterator[NewsSite]:
    if not shared_pages_available():
        pytest.skip("../shared/pages (saved news pages) is absent")
    with serve_site() as served:
        yield served


@pytest.fixture(scope="module")
def crawled(site: NewsSite, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CrawlStats, CrawlStats]:
    """Crawl the site twice into one store; return the store path and both crawls' stats."""
    db = tmp_path_factory.mktemp("crawl") / "langnghe.sqlite3"
    feeds = [site.url("/rss/tin-moi.rss"), site.url("/atom/tin-moi.xml"), site.url("/rss/hong.rss")]
    first = run_crawl(feeds, db, settings=FAST, timeout=300)
    site.requests.clear()
    second = run_crawl(feeds, db, settings=FAST, timeout=300)
    return db, first, second


def _stored(db: Path) -> dict[str, Mention]:
    from storage.sqlite import SQLiteStore

    store = SQLiteStore(db)
    try:
        return {m.url: m for m in store.iter_mentions()}
    finally:
        store.close()


@pytest.mark.integration
@pytest.mark.slow
def test_crawl_stores_expected_articles(site: NewsSite, crawled: Crawled) -> None:
    db, first, _ = crawled
    assert first.returncode == 0 and first.finish_reason == "finished", first.log[-3000:]
    mentions = _stored(db)
    for exp in site.expected:
        url = canonicalize_url(site.url(exp.path))
        assert url in mentions, f"{exp.path} not stored; stored: {sorted(mentions)}"
        mention = mentions[url]
        assert mention.id == mention_id(url)
        assert mention.source == "127.0.0.1"
        if exp.title is not None:
            assert mention.title == exp.title
        assert mention.title and len(mention.text) >= 500
        if exp.published_at:
            assert mention.published_at == parse_datetime(exp.published_at), exp.path
        if exp.contains:
            assert exp.contains in mention.text, exp.path
        assert mention.language == "vi"
    vne = mentions[canonicalize_url(site.url("/suc-khoe/dau-bung-keo-dai-phat-hien-ung-thu-lymphoma-ruot-non-"
                                             "4954454.html"))]
    assert vne.author == "Lê Phương"
    assert first.inserted == len(site.expected) + len(site.duplicates) == len(mentions)


@pytest.mark.integration
@pytest.mark.slow
def test_same_article_at_three_urls_is_stored_once(site: NewsSite, crawled: Crawled) -> None:
    # the plo page, served as is, with a wrong charset header and with no charset at all: decoded
    # right, the three are the same text, so one is stored and two are dropped as duplicates
    db, first, second = crawled
    mentions = _stored(db)
    for paths, exp in site.duplicates:
        stored = [mentions[canonicalize_url(site.url(p))] for p in paths if canonicalize_url(site.url(p)) in mentions]
        assert len(stored) == 1, [m.url for m in stored]
        assert stored[0].title == exp.title
        assert exp.contains and exp.contains in stored[0].text
        assert "Ã" not in stored[0].text and "á»" not in stored[0].text
    assert first.skipped.get("duplicate_content") == 2
    # the next crawl remembers the duplicates and does not fetch them again
    assert not {p for paths, _ in site.duplicates for p in paths} & set(site.requests)


@pytest.mark.integration
@pytest.mark.slow
def test_non_articles_blocked_and_disallowed_pages_are_not_stored(
        site: NewsSite, crawled: Crawled) -> None:
    _, first, _ = crawled
    mentions = _stored(crawled[0])
    for path in site.not_stored:
        assert canonicalize_url(site.url(path)) not in mentions, path
    assert first.skipped.get("no_article_body") == 2  # two real homepages
    assert first.skipped.get("blocked") == 1  # "Just a moment..." challenge
    assert first.skipped.get("robots_txt") == 1
    assert "skipped " + site.url("/cham-soc/bai-viet.html") + " (blocked)" in first.log
    # the duplicate feed item (same article, tracking parameters / fragment) was fetched once
    assert first.skipped.get("duplicate_link") == 1


@pytest.mark.integration
@pytest.mark.slow
def test_robots_disallowed_page_is_never_fetched(site: NewsSite,
                                                 crawled: Crawled) -> None:
    # requests are cleared between the crawls; the second crawl must also never touch /private/
    assert "/robots.txt" in site.requests
    assert not [p for p in site.requests if p.startswith("/private/")]


@pytest.mark.integration
@pytest.mark.slow
def test_invalid_feed_is_logged_and_skipped(site: NewsSite, crawled: Crawled) -> None:
    _, first, _ = crawled
    assert first.feeds_invalid == 1 and first.feeds_ok == 2
    line = next(x for x in first.log.splitlines() if "feed skipped" in x)
    assert "WARNING" in line and site.url("/rss/hong.rss") in line


@pytest.mark.integration
@pytest.mark.slow
def test_second_crawl_stores_nothing_new_and_fetches_no_stored_article(
        site: NewsSite, crawled: Crawled) -> None:
    db, first, second = crawled
    assert second.returncode == 0
    assert second.inserted == 0 and second.updated == 0
    assert second.skipped.get("already_stored") == first.inserted + first.skipped["duplicate_content"]
    stored_paths = {e.path for e in site.expected}
    assert not stored_paths & set(site.requests), "a stored article was fetched again"
    assert len(_stored(db)) == first.inserted


@pytest.mark.integration
def test_run_crawl_reports_child_failure(tmp_path: Path) -> None:
    # an unreachable feed is an error in the stats, not an exception; the crawl still finishes
    stats = run_crawl(["http://127.0.0.1:9/feed.rss"], tmp_path / "db.sqlite3",
                      settings={**FAST, "RETRY_ENABLED": False, "ROBOTSTXT_OBEY": False}, timeout=120)
    assert stats.returncode == 0
    assert stats.inserted == 0
    assert sum(stats.errors.values()) >= 1


@pytest.mark.integration
@pytest.mark.slow
def test_crawl_with_jobdir_is_resumable_state(site: NewsSite, tmp_path: Path) -> None:
    jobdir = tmp_path / "job"
    stats = run_crawl([site.url("/rss/tin-moi.rss")], tmp_path / "db.sqlite3", jobdir=jobdir,
                      settings=FAST, timeout=300)
    assert stats.returncode == 0 and stats.inserted == 4  # 6 articles, 3 of them one text
    assert (jobdir / "requests.seen").exists()  # Scrapy's persisted request fingerprints
    assert not (jobdir / "langnghe-running").exists()  # a clean end leaves no "interrupted" marker


def test_item_to_mention_source_mapping_and_lead() -> None:
    from crawlers.pipelines import item_to_mention

    item: dict[str, Any] = {
        "url": "http://127.0.0.1:8765/xa-hoi/a.html", "title": "Ngập  nước", "text": "Thân bài.",
        "lead": "Tóm tắt.", "published_at": "2025-11-20T08:15:00+07:00", "authors": ["A", "B"],
        "language": "vi"}
    mention = item_to_mention(item, {"127.0.0.1:8765": "tuoitre.vn"})
    assert mention.source == "tuoitre.vn"
    assert mention.title == "Ngập nước" and mention.text == "Tóm tắt.\n\nThân bài."
    assert mention.author == "A, B" and mention.id == mention_id("http://127.0.0.1:8765/xa-hoi/a.html")
    assert item_to_mention(item).source == "127.0.0.1"
