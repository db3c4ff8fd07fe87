"""A local news site for crawler tests: the real saved pages of ../shared/pages, generated RSS and
Atom feeds pointing to them, a robots.txt, and pages served with wrong or missing charsets.

Served on 127.0.0.1 (a free port) by a threaded http.server; every request path is recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

from langnghe.records import parse_datetime

SHARED_PAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "pages"
VNEXPRESS_FILE = "dau-bung-keo-dai-phat-hien-ung-thu-lymphoma-ruot-non-4954454"

CHALLENGE_HTML = """<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="refresh" content="390"></head><body><div class="main-wrapper" role="main">
<h1>vnexpress.net</h1><h2>Checking if the site connection is secure</h2>
<p>vnexpress.net needs to review the security of your connection before proceeding. Please enable
JavaScript and cookies to continue.</p>
<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1"></script></div></body></html>"""


def shared_pages_available() -> bool:
    return (SHARED_PAGES / "vnexpress" / f"{VNEXPRESS_FILE}.html").exists()


@dataclass
class Page:
    body: bytes
    content_type: str


@dataclass
class ExpectedArticle:
    path: str
    title: str | None  # None: not given in the expected values
    published_at: str | None = None
    contains: str | None = None  # a phrase the stored text must contain


@dataclass
class NewsSite:
    """The pages of the test site, what the crawl should store, and what it must not."""

    pages: dict[str, Page] = field(default_factory=dict)
    expected: list[ExpectedArticle] = field(default_factory=list)
    not_stored: list[str] = field(default_factory=list)  # paths that must not become mentions
    # paths serving the same article: exactly one of them is stored, it matches the expectation
    duplicates: list[tuple[list[str], ExpectedArticle]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    base_url: str = ""

    def url(self, path: str) -> str:
        return self.base_url + path


def _strip_charset(html: bytes) -> bytes:
    """The page with every charset declaration removed from its markup."""
    html = re.sub(rb"<meta[^>]*charset[^>]*>", b"", html, flags=re.IGNORECASE)
    return html


def _rss(items: list[tuple[str, str, str | None]], title: str = "Tin mới") -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>',
             f"<title>{escape(title)}</title><link>http://127.0.0.1/</link><description>test</description>"]
    for link, item_title, date in items:
        parts.append(f"<item><title>{escape(item_title)}</title><link>{escape(link)}</link>")
        if date:
            dt = parse_datetime(date)
            assert dt is not None
            parts.append(f"<pubDate>{format_datetime(dt)}</pubDate>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


def _atom(items: list[tuple[str, str, str | None]]) -> bytes:
    parts = ['<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">',
             "<title>Atom</title><id>urn:test</id><updated>2025-10-22T12:00:00Z</updated>"]
    for link, item_title, date in items:
        parts.append(f"<entry><title>{escape(item_title)}</title>"
                     f'<link rel="alternate" href="{escape(link)}"/>'
                     f"<id>{escape(link)}</id><updated>{date or '2025-10-22T12:00:00Z'}</updated></entry>")
    parts.append("</feed>")
    return "".join(parts).encode("utf-8")


def build_site(base_url: str) -> NewsSite:
    """Pages from ../shared/pages plus generated feeds; `base_url` like 'http://127.0.0.1:PORT'."""
    site = NewsSite(base_url=base_url)
    html = "text/html; charset=utf-8"

    vne = (SHARED_PAGES / "vnexpress" / f"{VNEXPRESS_FILE}.html").read_bytes()
    expected_file = SHARED_PAGES / "vnexpress" / f"{VNEXPRESS_FILE}.expected.json"
    vne_expected = json.loads(expected_file.read_text())["V1"]
    site.pages[f"/suc-khoe/{VNEXPRESS_FILE}.html"] = Page(vne, html)
    site.expected.append(ExpectedArticle(f"/suc-khoe/{VNEXPRESS_FILE}.html", vne_expected["title"],
                                         vne_expected["publishing_date"].replace(" ", "T"), "lymphoma"))

    plo = json.loads((SHARED_PAGES / "plo" / "expected.json").read_text())
    plo_items = []
    for exp in plo.values():
        data = (SHARED_PAGES / "plo" / exp["file"]).read_bytes()
        path = "/plo/" + exp["file"]
        site.pages[path] = Page(data, html)
        plo_items.append((path, exp, data))
        site.expected.append(ExpectedArticle(path, exp.get("title"), exp.get("published_at"),
                                             exp.get("first_paragraph_starts_with")))
    # the first plo article with a title, served twice more: with a wrong charset header and
    # without any charset at all (bytes are UTF-8 in both cases)
    path0, exp0, data0 = next(item for item in plo_items if "title" in item[1])
    bare = _strip_charset(data0)
    site.pages["/charset/wrong-latin1.html"] = Page(bare, "text/html; charset=iso-8859-1")
    site.pages["/charset/none.html"] = Page(bare, "text/html")
    # the three copies decode to the same text: one is stored, two are dropped as duplicates
    group = [path0, "/charset/wrong-latin1.html", "/charset/none.html"]
    site.expected = [e for e in site.expected if e.path != path0]
    site.duplicates.append((group, ExpectedArticle(path0, exp0["title"], exp0.get("published_at"),
                                                   exp0.get("first_paragraph_starts_with"))))

    legacy = SHARED_PAGES / "legacy-2012"
    site.pages["/2012/dantri-tet.html"] = Page((legacy / "dantri1.html").read_bytes(), html)
    site.expected.append(ExpectedArticle("/2012/dantri-tet.html",
                                         "Chốt lịch nghỉ lễ Tết 2013 của công chức, viên chức", None,
                                         "công chức, viên chức sẽ được nghỉ 9 ngày"))
    site.pages["/2012/thanh-nien.html"] = Page((legacy / "thanhnien.homepage.html").read_bytes(), html)
    site.pages["/2012/vnexpress-trang-chu.html"] = Page((legacy / "vnexpress.hompage.html").read_bytes(),
                                                        html)
    site.pages["/cham-soc/bai-viet.html"] = Page(CHALLENGE_HTML.encode(), html)
    site.pages["/private/bi-mat.html"] = Page((legacy / "nld1.html").read_bytes(), html)
    site.not_stored += ["/2012/thanh-nien.html", "/2012/vnexpress-trang-chu.html", "/cham-soc/bai-viet.html",
                        "/private/bi-mat.html"]

    site.pages["/robots.txt"] = Page(b"User-agent: *\nDisallow: /private/\n", "text/plain")
    items = [
        (base_url + f"/suc-khoe/{VNEXPRESS_FILE}.html?utm_source=rss&utm_medium=feed", "Tiêu đề RSS", None),
        (base_url + f"/suc-khoe/{VNEXPRESS_FILE}.html#box_comment", "Tiêu đề RSS (bản sao)", None),
        *[(base_url + p, "Feed title", None) for p, _, _ in plo_items],
        (base_url + "/charset/wrong-latin1.html", "Sai bảng mã", None),
        (base_url + "/charset/none.html", "Không khai báo bảng mã", None),
        # the legacy page has only a date in its metadata; the feed gives one too
        (base_url + "/2012/dantri-tet.html", "Chốt lịch nghỉ Tết", "2012-12-25T08:30:00+07:00"),
        (base_url + "/2012/thanh-nien.html", "Trang chủ", None),
        (base_url + "/cham-soc/bai-viet.html", "Bài bị chặn", None),
        (base_url + "/private/bi-mat.html", "Bài cấm", None),
    ]
    site.pages["/rss/tin-moi.rss"] = Page(_rss(items), "application/rss+xml; charset=utf-8")
    site.pages["/atom/tin-moi.xml"] = Page(
        _atom([(base_url + "/2012/vnexpress-trang-chu.html", "Trang chủ VnExpress", None)]),
        "application/atom+xml")
    site.pages["/rss/hong.rss"] = Page(b"<html><body><h1>502 Bad Gateway</h1><p>nginx</p>", "text/html")
    return site


class _Handler(BaseHTTPRequestHandler):
    site: NewsSite

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        self.site.requests.append(path)
        page = self.site.pages.get(path)
        if page is None:
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"not found")
            return
        self.send_response(200)
        self.send_header("Content-Type", page.content_type)
        self.send_header("Content-Length", str(len(page.body)))
        self.end_headers()
        self.wfile.write(page.body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet server
        return


@contextmanager
def serve_site() -> Iterator[NewsSite]:
    """Start the test site on 127.0.0.1 (free port); yield it; stop it."""
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    site = build_site(base)
    handler.site = site  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ---------------------------------------------------------------------------- generated sites
# Distinct articles from the bundled demo corpus (langnghe/data), for crawls that need many pages:
# kill-and-resume, conditional re-fetches, backoff and the benchmark.


@dataclass
class GeneratedSite:
    """Articles /<outlet>/<n>.html (a few outlets), one RSS feed per outlet, ETag/Last-Modified
    answers with 304 for unchanged pages, an optional per-article delay, and 429 answers for the
    first tries of chosen paths."""

    pages: dict[str, Page] = field(default_factory=dict)
    feeds: dict[str, list[str]] = field(default_factory=dict)  # feed path → article paths
    delay: float = 0.0
    throttled: dict[str, int] = field(default_factory=dict)  # path → 429 answers still to give
    requests: list[tuple[float, str, int]] = field(default_factory=list)  # (time, path, status)
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base_url + path

    def feed_urls(self) -> list[str]:
        return [self.url(p) for p in self.feeds]

    def article_paths(self) -> list[str]:
        return [p for paths in self.feeds.values() for p in paths]

    def fetched(self, path: str, status: int | None = 200) -> int:
        return sum(1 for _, p, s in self.requests if p == path and (status is None or s == status))

    def set_feed(self, feed_path: str, article_paths: list[str]) -> None:
        """Serve `feed_path` listing only `article_paths` (a feed that moved on)."""
        now = datetime.now(UTC).isoformat()
        self.pages[feed_path] = Page(_rss([(self.url(p), f"Bài {p}", now) for p in article_paths]),
                                     "application/rss+xml; charset=utf-8")
        self.feeds[feed_path] = list(article_paths)


def build_generated_site(base_url: str, per_outlet: int, outlets: tuple[str, ...] = ("tuoitre",),
                         *, now: datetime | None = None, distinct: bool = True) -> GeneratedSite:
    """`per_outlet` articles for each outlet. `distinct`: every outlet gets other texts; otherwise
    every outlet republishes the same texts (syndication)."""
    from langnghe.demo_site import OUTLET_NAMES, article_html, load_corpus

    corpus = load_corpus()
    now = now or datetime.now(UTC)
    site = GeneratedSite(base_url=base_url)
    names = list(OUTLET_NAMES)
    for k, outlet in enumerate(outlets):
        paths = []
        for i in range(per_outlet):
            index = (k * per_outlet + i) if distinct else i
            item = corpus[index % len(corpus)]
            published = now - timedelta(minutes=5 + i)
            path = f"/{outlet}/bai-{i}.html"
            html = article_html(item, published, names[k % len(names)] if outlet not in OUTLET_NAMES else outlet)
            site.pages[path] = Page(html.encode("utf-8"), "text/html; charset=utf-8")
            paths.append(path)
        site.set_feed(f"/{outlet}/rss.xml", paths)
    site.pages["/robots.txt"] = Page(b"User-agent: *\nAllow: /\n", "text/plain")
    return site


class _GeneratedHandler(BaseHTTPRequestHandler):
    site: GeneratedSite
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
        with self.site.lock:
            self.site.requests.append((time.monotonic(), self.path.split("?", 1)[0], status))

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        site = self.site
        page = site.pages.get(path)
        if page is None:
            self._answer(404, b"not found", {"Content-Type": "text/plain"})
            return
        is_article = path.endswith(".html")
        with site.lock:
            left = site.throttled.get(path, 0)
            if left:
                site.throttled[path] = left - 1
        if left:
            self._answer(429, b"too many requests", {"Content-Type": "text/plain", "Retry-After": "1"})
            return
        if is_article and site.delay:
            time.sleep(site.delay)
        etag = '"' + hashlib.sha1(page.body).hexdigest()[:16] + '"'
        last_modified = "Mon, 24 Nov 2025 08:00:00 GMT"
        if self.headers.get("If-None-Match") == etag:
            self._answer(304, b"", {"ETag": etag})
            return
        self._answer(200, page.body, {"Content-Type": page.content_type, "ETag": etag,
                                      "Last-Modified": last_modified})

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet server
        return


@contextmanager
def serve_generated(per_outlet: int, outlets: tuple[str, ...] = ("tuoitre",), *, delay: float = 0.0,
                    distinct: bool = True) -> Iterator[GeneratedSite]:
    """Start a generated site on 127.0.0.1 (free port); yield it; stop it."""
    handler = type("GeneratedHandler", (_GeneratedHandler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    site = build_generated_site(f"http://127.0.0.1:{server.server_address[1]}", per_outlet, outlets,
                                distinct=distinct)
    site.delay = delay
    handler.site = site  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class StaticSite:
    """Fixed pages by path (mutable between crawls) and the paths requested."""

    pages: dict[str, Page] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    base_url: str = ""

    def url(self, path: str) -> str:
        return self.base_url + path


class _StaticHandler(BaseHTTPRequestHandler):
    site: StaticSite

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("#", 1)[0]
        self.site.requests.append(path)
        page = self.site.pages.get(path) or self.site.pages.get(path.split("?", 1)[0])
        body, status, ctype = (page.body, 200, page.content_type) if page else (b"not found", 404, "text/plain")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet server
        return


@contextmanager
def serve_static(pages: dict[str, Page] | None = None) -> Iterator[StaticSite]:
    """Serve `pages` (path → Page) on 127.0.0.1 (free port); pages may be added once started."""
    handler = type("StaticHandler", (_StaticHandler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    site = StaticSite(pages=dict(pages or {}), base_url=f"http://127.0.0.1:{server.server_address[1]}")
    site.pages.setdefault("/robots.txt", Page(b"User-agent: *\nDisallow: /login/\n", "text/plain"))
    handler.site = site  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
