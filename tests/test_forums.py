"""Forum threads: XenForo 2 fixtures (voz.vn-style), the 2012 tinhte.vn XenForo 1 page, and a
crawl of a local forum that follows pagination and picks up a growing thread where it left off."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from crawlers.forums import ForumParseError, parse_forum, parse_thread
from crawlers.run import run_crawl
from langnghe.records import mention_id
from storage.sqlite import SQLiteStore

from .crawl_server import Page, serve_static

FORUMS = Path(__file__).parent / "fixtures" / "crawl" / "forums"
PAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "pages"
SLUG = "duong-kha-van-can-ngap-nang-sau-mua-chieu-nay.987654"
THREAD = f"https://voz.vn/t/{SLUG}/"
FAST = {"DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False, "LOG_LEVEL": "INFO"}


def test_xenforo2_thread_page_gives_posts_with_author_time_and_pagination() -> None:
    page = parse_thread((FORUMS / "voz-thread-page-1.html").read_bytes(), THREAD)
    assert page.engine == "xenforo2"
    assert page.title == "Đường Kha Vạn Cân ngập nặng sau mưa chiều nay"
    assert page.forum == "Điểm báo" and page.thread_url == THREAD
    assert (page.page, page.last_page) == (1, 2)
    assert page.next_url == THREAD + "page-2"
    assert [p.author for p in page.posts] == ["tuanbui", "meoluoi", "hoangsaigon"]
    assert [p.position for p in page.posts] == [1, 2, 3]
    first = page.posts[0]
    assert first.published_at == datetime.fromisoformat("2025-11-20T17:42:10+07:00")
    assert first.url == "https://voz.vn/posts/30100001/"
    assert first.text.split("\n") == ["Mưa có 30 phút mà đoạn Kha Vạn Cân gần cầu Gò Dưa ngập tới bánh xe.",
                                      "Xe máy chết máy nằm la liệt, có ai đi qua đó không?"]
    reply = page.posts[2]
    # the quoted post, the signature, reactions and "Click to expand..." are not the reply's text
    assert reply.text == "Năm nào cũng vậy, làm cống mãi không xong. Phường Linh Chiểu cũ khổ nhất."
    assert reply.quotes == ["30100007"]
    assert all("Sài Gòn không vội" not in p.text and "Like" not in p.text for p in page.posts)
    last = parse_thread((FORUMS / "voz-thread-page-2.html").read_bytes(), THREAD + "page-2")
    assert (last.page, last.last_page, last.next_url) == (2, 2, None)
    assert [p.position for p in last.posts] == [21, 22]


def test_forum_listing_lists_threads_with_their_last_page() -> None:
    links, next_url = parse_forum((FORUMS / "voz-forum-diem-bao.html").read_bytes(), "https://voz.vn/f/diem-bao.33/")
    assert [link.url for link in links] == ["https://voz.vn/t/noi-quy-box-diem-bao.900001/", THREAD]
    assert links[1].last_page == 2 and links[1].title.startswith("Đường Kha Vạn Cân")
    assert next_url is None


@pytest.mark.skipif(not (PAGES / "legacy-2012" / "tinhte1.html").exists(), reason="../shared/pages is absent")
def test_tinhte_2012_xenforo1_thread() -> None:
    page = parse_thread((PAGES / "legacy-2012" / "tinhte1.html").read_bytes(), "http://www.tinhte.vn/threads/1739393/")
    assert page.engine == "xenforo1"
    assert "Chuyện giữa 2 người trên Facebook" in page.title
    assert page.forum == "Dịch vụ trực tuyến"
    assert (page.page, page.last_page) == (1, 4)
    assert page.next_url == "http://www.tinhte.vn/threads/1739393/page-2"
    assert len(page.posts) == 20
    first = page.posts[0]
    assert first.author == "cuLong" and first.position == 1
    assert first.published_at == datetime.fromisoformat("2012-12-14T16:18:00+07:00")
    assert first.text.startswith("Có rất nhiều điều thú vị với Facebook")
    assert [p.position for p in page.posts] == list(range(1, 21))
    assert all(p.published_at and p.published_at.year == 2012 for p in page.posts)
    assert page.posts[3].text == "hay nhỉ"


def test_not_a_thread() -> None:
    with pytest.raises(ForumParseError):
        parse_thread(b"<html><body><form><input type='password' name='password'></form></body></html>",
                     "https://voz.vn/t/x.1/")


def _grown_page_2_and_3() -> tuple[bytes, bytes]:
    """Page 2 now has a page 3 after it; page 3 holds two new replies."""
    page2 = (FORUMS / "voz-thread-page-2.html").read_text(encoding="utf-8")
    nav_old = f'<li class="pageNav-page pageNav-page--current"><a href="/t/{SLUG}/page-2">2</a></li></ul>'
    nav_new = (f'<li class="pageNav-page pageNav-page--current"><a href="/t/{SLUG}/page-2">2</a></li>'
               f'<li class="pageNav-page "><a href="/t/{SLUG}/page-3">3</a></li></ul>'
               f'<a href="/t/{SLUG}/page-3" class="pageNav-jump pageNav-jump--next">Next</a>')
    assert nav_old in page2
    grown2 = page2.replace(nav_old, nav_new)
    page3 = grown2.replace("30100203", "30100305").replace("30100240", "30100311")
    page3 = page3.replace(">#21<", ">#41<").replace(">#22<", ">#42<")
    page3 = page3.replace("rác và bùn còn đầy mặt đường", "phường đã cho xe hút bùn tới")
    page3 = page3.replace("Đã gọi 1022 phản ánh", "Cảm ơn bác đã gọi 1022")
    page3 = page3.replace(nav_new, nav_new.replace("pageNav-page--current", "").replace(
        f'<li class="pageNav-page "><a href="/t/{SLUG}/page-3">3</a>',
        f'<li class="pageNav-page pageNav-page--current"><a href="/t/{SLUG}/page-3">3</a>'))
    page3 = re.sub(r'<a href="[^"]*" class="pageNav-jump pageNav-jump--next">Next</a>', "", page3)
    return grown2.encode(), page3.encode()


@pytest.mark.integration
@pytest.mark.slow
def test_forum_crawl_follows_pages_and_resumes_growing_thread(tmp_path: Path) -> None:
    html = "text/html; charset=utf-8"
    pages = {
        "/f/diem-bao.33/": Page((FORUMS / "voz-forum-diem-bao.html").read_bytes(), html),
        f"/t/{SLUG}/": Page((FORUMS / "voz-thread-page-1.html").read_bytes(), html),
        f"/t/{SLUG}/page-2": Page((FORUMS / "voz-thread-page-2.html").read_bytes(), html),
    }
    db = tmp_path / "db.sqlite3"
    with serve_static(pages) as site:
        settings = {**FAST, "LANGNGHE_SOURCES": {site.base_url.removeprefix("http://"): "voz.vn"}}
        first = run_crawl([], db, spider="forum", forums=[site.url("/f/diem-bao.33/")], settings=settings,
                          timeout=120)
        assert first.returncode == 0 and first.inserted == 5, first.log[-3000:]
        assert first.raw.get("langnghe/forum/pages") == 2
        grown2, page3 = _grown_page_2_and_3()
        site.pages[f"/t/{SLUG}/page-2"] = Page(grown2, html)
        site.pages[f"/t/{SLUG}/page-3"] = Page(page3, html)
        site.requests.clear()
        second = run_crawl([], db, spider="forum", forums=[site.url("/f/diem-bao.33/")], settings=settings,
                           timeout=120)
        requested = list(site.requests)
    assert second.inserted == 2 and second.unchanged == 2, second.log[-3000:]
    assert f"/t/{SLUG}/" not in requested  # the thread resumed at its last known page
    assert f"/t/{SLUG}/page-2" in requested and f"/t/{SLUG}/page-3" in requested
    store = SQLiteStore(db)
    try:
        assert store.count_mentions() == 7
        post = store.get_mention(mention_id(f"{site.base_url}/posts/30100015/"))
        assert post is not None
        assert post.source == "voz.vn" and post.author == "hoangsaigon"
        assert post.title == "Đường Kha Vạn Cân ngập nặng sau mưa chiều nay"
        assert post.published_at == datetime.fromisoformat("2025-11-20T18:05:44+07:00")
        assert post.text == "Năm nào cũng vậy, làm cống mãi không xong. Phường Linh Chiểu cũ khổ nhất."
    finally:
        store.close()
