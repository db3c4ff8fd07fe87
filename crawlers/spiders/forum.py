"""ForumSpider: XenForo forums and threads → one item per post, pagination followed.

    python -m crawlers.run --spider forum --threads https://voz.vn/t/slug.123/ --db var/langnghe.sqlite3
    python -m crawlers.run --spider forum --sources voz.vn --db var/langnghe.sqlite3

Threads grow: the last page read of each thread is remembered (``crawl_threads``) and the next crawl
starts there, so new replies are picked up without reading the whole thread again. Posts already
stored are written again unchanged (ids from the post permalink), never twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from twisted.python.failure import Failure

from crawlers.forums import ForumParseError, page_url, parse_forum, parse_thread, thread_base
from crawlers.spiders.news import STATS_PREFIX, _split
from crawlers.state import CrawlState
from crawlers.urls import URLError, canonicalize_url


class ForumSpider(scrapy.Spider):
    """Crawl forum threads (``-a threads=URL,…``), the threads of forum listings (``-a forums=…``) or
    the registry's forum sources (``-a sources=voz.vn``)."""

    name = "forum"

    def __init__(self, threads: str | list[str] | None = None, forums: str | list[str] | None = None,
                 sources: str | list[str] | None = None, max_pages: int | str | None = None,
                 max_threads: int | str | None = None, listing_pages: int | str = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.threads = _split(threads)
        self.forums = _split(forums)
        for name in _split(sources):
            from crawlers.sources import load_registry

            source = load_registry().get(name)
            if not source.is_forum:
                raise ValueError(f"{name} is not a forum: crawl it with the news spider")
            self.forums += list(source.sections)
        self.max_pages = int(max_pages) if max_pages else 200
        self.max_threads = int(max_threads) if max_threads else None
        self.listing_pages = int(listing_pages)
        self._seen: set[str] = set()
        self._state: CrawlState | None = None
        if not self.threads and not self.forums:
            raise ValueError("ForumSpider needs threads=URL[,URL], forums=URL[,URL] or sources=NAME")

    @property
    def state(self) -> CrawlState | None:
        if self._state is None and self.crawler is not None:
            db = self.crawler.settings.get("LANGNGHE_DB_PATH")
            if db:
                self._state = CrawlState(db)
        return self._state

    def closed(self, reason: str) -> None:
        if self._state is not None:
            self._state.close()

    def _inc(self, key: str, count: int = 1) -> None:
        if self.crawler is not None and self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"{STATS_PREFIX}/{key}", count)

    def _thread_request(self, url: str) -> scrapy.Request | None:
        try:
            thread = canonicalize_url(thread_base(url))
        except URLError as exc:
            self.logger.info("skipped thread %s (bad_url): %s", url, exc)
            return None
        if thread in self._seen or (self.max_threads is not None and len(self._seen) >= self.max_threads):
            return None
        self._seen.add(thread)
        known = self.state.thread_page(thread) if self.state is not None else None
        start = known or 1
        if known:
            self._inc("forum/threads_resumed")
        return scrapy.Request(page_url(thread, start), callback=self.parse_thread_page, errback=self.on_error,
                              dont_filter=True, meta={"thread_url": thread, "pages_read": 1,
                                                      "langnghe_kind": "thread"})

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.forums:
            yield scrapy.Request(url, callback=self.parse_forum, errback=self.on_error, dont_filter=True,
                                 meta={"listing_page": 1, "langnghe_kind": "forum"})
        for url in self.threads:
            request = self._thread_request(url)
            if request is not None:
                yield request

    def parse_forum(self, response: Response) -> Iterator[scrapy.Request]:
        """Thread requests for the threads of a forum listing (and its next pages, up to `listing_pages`)."""
        links, next_url = parse_forum(response.body, response.url)
        self._inc("forum/listings")
        self.logger.info("forum %s: %d threads", response.url, len(links))
        for link in links:
            request = self._thread_request(link.url)
            if request is not None:
                yield request
        page = int(response.meta.get("listing_page", 1))
        if next_url and page < self.listing_pages:
            yield scrapy.Request(next_url, callback=self.parse_forum, errback=self.on_error, dont_filter=True,
                                 meta={"listing_page": page + 1, "langnghe_kind": "forum"})

    def parse_thread_page(self, response: Response) -> Iterator[dict[str, Any] | scrapy.Request]:
        """One item per post of a thread page; the next page requested."""
        try:
            page = parse_thread(response.body, response.url)
        except ForumParseError as exc:
            reason = "login_wall" if b'type="password"' in response.body else "no_posts"
            self.logger.info("skipped %s (%s): %s", response.url, reason, exc)
            self._inc(f"skipped/{reason}")
            return
        thread = response.meta.get("thread_url") or page.thread_url
        self._inc("forum/pages")
        for post in page.posts:
            if not post.text:
                self._inc("skipped/empty_post")
                continue
            self._inc("forum/posts")
            yield {
                "kind": "post", "url": post.url, "title": page.title, "text": post.text,
                "published_at": post.published_at, "authors": [post.author] if post.author else [],
                "language": "vi", "section": page.forum, "thread_url": thread, "position": post.position,
                "post_id": post.post_id,
            }
        if self.state is not None:
            self.state.record_thread(thread, page.page, len(page.posts))
        pages_read = int(response.meta.get("pages_read", 1))
        if page.next_url and pages_read < self.max_pages:
            yield scrapy.Request(page.next_url, callback=self.parse_thread_page, errback=self.on_error,
                                 dont_filter=True, meta={"thread_url": thread, "pages_read": pages_read + 1,
                                                         "langnghe_kind": "thread"})

    def on_error(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        if failure.check(IgnoreRequest):
            return
        self.logger.warning("forum request failed: %s (%s)", request.url if request is not None else "?",
                            failure.getErrorMessage())
        self._inc(f"errors/{failure.type.__name__ if failure.type else 'unknown'}")
