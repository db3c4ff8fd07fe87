"""NewsSpider: RSS/Atom feeds and sitemaps → article pages → extracted articles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from crawlers.extraction import ExtractionError, charset_from_content_type, extract_article, parse_date_value
from crawlers.feeds import FeedEntry, FeedError, parse_feed, parse_sitemap
from crawlers.state import CrawlState
from crawlers.urls import URLError, canonicalize_url, looks_like_article_url

STATS_PREFIX = "langnghe"


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _split(value: str | list[str] | None) -> list[str]:
    if not value:
        return []
    items = value if isinstance(value, list) else value.split(",")
    return [v.strip() for v in items if v and v.strip()]


class NewsSpider(scrapy.Spider):
    """Crawl news articles listed in feeds (``-a feeds=URL,URL``), sitemaps (``-a sitemaps=…``),
    section pages (``-a sections=…``) or the registry's sources (``-a sources=vnexpress.net,…``).

    Every article link is canonicalised; the page is extracted with `extract_article`; pages that
    are not articles or are blocked are skipped with a logged reason (and counted in the stats
    under ``langnghe/skipped/<reason>``). The feed's title and date fill in what a page lacks.

    With a store (``LANGNGHE_DB_PATH``), every article URL found is written to the crawl frontier
    before it is requested, and marked done once stored or refused: a crawl that was killed re-queues
    what it had found and not stored, even if the feeds have moved on since.
    """

    name = "news"

    def __init__(self, feeds: str | list[str] | None = None, sitemaps: str | list[str] | None = None,
                 max_articles: int | str | None = None, sections: str | list[str] | None = None,
                 sources: str | list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feeds = _split(feeds)
        self.sitemaps = _split(sitemaps)
        self.sections = _split(sections)
        for name in _split(sources):
            from crawlers.sources import load_registry

            source = load_registry().get(name)
            if source.is_forum:
                raise ValueError(f"{name} is a forum: crawl it with the forum spider")
            self.feeds += list(source.feeds)
            self.sitemaps += list(source.sitemaps)
            self.sections += list(source.sections)
        self.max_articles = int(max_articles) if max_articles else None
        self._queued = 0
        self._seen: set[str] = set()
        self._state: CrawlState | None = None
        if not self.feeds and not self.sitemaps and not self.sections:
            raise ValueError("NewsSpider needs feeds=URL[,URL], sitemaps=URL[,URL], sections=… or sources=…")

    @property
    def state(self) -> CrawlState | None:
        """The crawl frontier's store (None without ``LANGNGHE_DB_PATH``)."""
        if self._state is None and self.crawler is not None:
            db = self.crawler.settings.get("LANGNGHE_DB_PATH")
            if db:
                self._state = CrawlState(db)
        return self._state

    def closed(self, reason: str) -> None:
        if self._state is not None:
            self._state.close()

    # ---- helpers

    def _inc(self, key: str, count: int = 1) -> None:
        if self.crawler is not None and self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"{STATS_PREFIX}/{key}", count)

    def _skip(self, reason: str, url: str, detail: str) -> None:
        self.logger.info("skipped %s (%s): %s", url, reason, detail)
        self._inc(f"skipped/{reason}")

    def _article_request(self, entry: FeedEntry, base_url: str) -> scrapy.Request | None:
        try:
            canonical = canonicalize_url(urljoin(base_url, entry.url))
        except URLError as exc:
            self._skip("bad_url", entry.url, str(exc))
            return None
        if canonical in self._seen:
            self._inc("skipped/duplicate_link")
            return None
        if self.max_articles is not None and self._queued >= self.max_articles:
            return None
        self._seen.add(canonical)
        self._queued += 1
        # dont_filter: whether to fetch is decided by the frontier and the store, not by Scrapy's
        # fingerprints (which a killed crawl may have written for requests it never finished)
        return scrapy.Request(
            canonical, callback=self.parse_article, errback=self.on_error, dont_filter=True,
            meta={"langnghe_article": True, "canonical_url": canonical,
                  "feed_entry": {"title": entry.title, "published_at": entry.published_at,
                                 "summary": entry.summary}},
        )

    def _queue(self, entries: list[FeedEntry], base_url: str) -> list[scrapy.Request]:
        """Article requests for `entries`, written to the frontier first."""
        requests = [r for r in (self._article_request(e, base_url) for e in entries) if r is not None]
        if self.state is not None and requests:
            self.state.add_pending(self.name, [(r.url, {"title": r.meta["feed_entry"]["title"],
                                                        "published_at": r.meta["feed_entry"]["published_at"]})
                                               for r in requests])
        return requests

    def _done(self, url: str | None) -> None:
        if url and self.state is not None:
            self.state.mark_done([url])

    # ---- requests

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.state is not None:
            pending = self.state.pending(self.name)
            if pending:
                self.logger.info("resuming %d article URLs found by an earlier crawl and not stored yet",
                                 len(pending))
                self._inc("frontier/resumed", len(pending))
            entries = [FeedEntry(url=url, title=meta.get("title"),
                                 published_at=parse_date_value(meta.get("published_at")))
                       for url, meta in pending]
            for request in self._queue(entries, ""):
                yield request
        for url in self.sections:
            yield scrapy.Request(url, callback=self.parse_section, errback=self.on_error, dont_filter=True,
                                 meta={"langnghe_kind": "section"})
        for url in self.feeds:
            yield scrapy.Request(url, callback=self.parse_feed, errback=self.on_error, dont_filter=True,
                                 meta={"langnghe_kind": "feed"})
        for url in self.sitemaps:
            yield scrapy.Request(url, callback=self.parse_sitemap, errback=self.on_error, dont_filter=True,
                                 meta={"langnghe_kind": "sitemap"})

    def parse_feed(self, response: Response) -> Iterator[scrapy.Request]:
        """Article requests for the items of one RSS/Atom feed; a non-feed is logged and skipped."""
        try:
            entries = parse_feed(response.body)
        except FeedError as exc:
            self.logger.warning("feed skipped, not a valid RSS/Atom feed: %s (%s)", response.url, exc)
            self._inc("feeds/invalid")
            return
        self._inc("feeds/ok")
        self._inc("feeds/entries", len(entries))
        self.logger.info("feed %s: %d entries", response.url, len(entries))
        yield from self._queue(entries, response.url)

    def parse_section(self, response: Response) -> Iterator[scrapy.Request]:
        """Article requests for the links of a section (listing) page that look like articles."""
        if not isinstance(response, TextResponse):
            return
        entries = []
        for href in response.xpath("//a/@href").getall():
            url = urljoin(response.url, href)
            if looks_like_article_url(url, response.url):
                entries.append(FeedEntry(url=url))
        self._inc("sections/ok")
        self.logger.info("section %s: %d article links", response.url, len(entries))
        yield from self._queue(entries, response.url)

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        """Article requests for a sitemap's URLs; sub-sitemaps of an index are followed."""
        try:
            doc = parse_sitemap(response.body)
        except FeedError as exc:
            self.logger.warning("sitemap skipped, not a valid sitemap: %s (%s)", response.url, exc)
            self._inc("sitemaps/invalid")
            return
        self._inc("sitemaps/ok")
        for loc in doc.sitemaps:
            yield scrapy.Request(urljoin(response.url, loc), callback=self.parse_sitemap,
                                 errback=self.on_error, meta={"langnghe_kind": "sitemap"})
        yield from self._queue(doc.entries, response.url)

    def parse_article(self, response: Response) -> Iterator[dict[str, Any]]:
        """One article item, or nothing (with a logged reason) for pages that are not articles."""
        canonical = response.meta.get("canonical_url") or canonicalize_url(response.url)
        if not isinstance(response, TextResponse):
            self._skip("not_html", response.url, "response is not text/HTML")
            self._done(canonical)
            return
        if urlsplit(response.url).path in ("", "/") and urlsplit(canonical).path not in ("", "/"):
            self._skip("soft_404", response.url, f"{canonical} redirected to the front page")
            self._done(canonical)
            return
        content_type = response.headers.get(b"Content-Type")
        try:
            article = extract_article(response.body, canonical,
                                      http_charset=charset_from_content_type(content_type))
        except ExtractionError as exc:
            self._skip(exc.reason, response.url, str(exc))
            self._done(canonical)
            return
        feed: dict[str, Any] = response.meta.get("feed_entry") or {}
        published = article.published_at or feed.get("published_at")
        title = article.title or feed.get("title") or ""
        if published is None:
            self._inc("missing_date")
        yield {
            "url": canonical,
            "fetched_url": response.url,
            "title": title,
            "text": article.text,
            "lead": article.lead or feed.get("summary"),
            "published_at": published,
            "authors": article.authors,
            "tags": article.tags,
            "section": article.section,
            "language": article.language,
            "kind": "article",
            "frontier_url": canonical,
            "http_etag": _header(response, b"ETag"),
            "http_last_modified": _header(response, b"Last-Modified"),
        }

    def on_error(self, failure: Failure) -> None:
        """Count and log a failed request; requests ignored on purpose are not errors."""
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        if request is not None and request.meta.get("langnghe_article"):
            self._done(request.meta.get("canonical_url") or request.url)  # a final outcome: not retried
        if failure.check(IgnoreRequest):
            return
        kind = request.meta.get("langnghe_kind", "article") if request is not None else "article"
        self.logger.warning("%s request failed: %s (%s)", kind, url, failure.getErrorMessage())
        self._inc(f"errors/{failure.type.__name__ if failure.type else 'unknown'}")
