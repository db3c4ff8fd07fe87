"""NewsSpider: RSS/Atom feeds and sitemaps → article pages → extracted articles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urljoin

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from crawlers.extraction import ExtractionError, charset_from_content_type, extract_article
from crawlers.feeds import FeedEntry, FeedError, parse_feed, parse_sitemap
from crawlers.urls import URLError, canonicalize_url

STATS_PREFIX = "langnghe"


def _split(value: str | list[str] | None) -> list[str]:
    if not value:
        return []
    items = value if isinstance(value, list) else value.split(",")
    return [v.strip() for v in items if v and v.strip()]


class NewsSpider(scrapy.Spider):
    """Crawl news articles listed in feeds (``-a feeds=URL,URL``) and sitemaps (``-a sitemaps=…``).

    Every article link is canonicalised; the page is extracted with `extract_article`; pages that
    are not articles or are blocked are skipped with a logged reason (and counted in the stats
    under ``langnghe/skipped/<reason>``). The feed's title and date fill in what a page lacks.
    """

    name = "news"

    def __init__(self, feeds: str | list[str] | None = None, sitemaps: str | list[str] | None = None,
                 max_articles: int | str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feeds = _split(feeds)
        self.sitemaps = _split(sitemaps)
        self.max_articles = int(max_articles) if max_articles else None
        self._queued = 0
        if not self.feeds and not self.sitemaps:
            raise ValueError("NewsSpider needs feeds=URL[,URL] or sitemaps=URL[,URL]")

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
        if self.max_articles is not None and self._queued >= self.max_articles:
            return None
        self._queued += 1
        return scrapy.Request(
            canonical, callback=self.parse_article, errback=self.on_error,
            meta={"langnghe_article": True, "canonical_url": canonical,
                  "feed_entry": {"title": entry.title, "published_at": entry.published_at,
                                 "summary": entry.summary}},
        )

    # ---- requests

    async def start(self) -> AsyncIterator[scrapy.Request]:
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
        for entry in entries:
            request = self._article_request(entry, response.url)
            if request is not None:
                yield request

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
        for entry in doc.entries:
            request = self._article_request(entry, response.url)
            if request is not None:
                yield request

    def parse_article(self, response: Response) -> Iterator[dict[str, Any]]:
        """One article item, or nothing (with a logged reason) for pages that are not articles."""
        canonical = response.meta.get("canonical_url") or canonicalize_url(response.url)
        if not isinstance(response, TextResponse):
            self._skip("not_html", response.url, "response is not text/HTML")
            return
        content_type = response.headers.get(b"Content-Type")
        try:
            article = extract_article(response.body, canonical,
                                      http_charset=charset_from_content_type(content_type))
        except ExtractionError as exc:
            self._skip(exc.reason, response.url, str(exc))
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
        }

    def on_error(self, failure: Failure) -> None:
        """Count and log a failed request; requests ignored on purpose are not errors."""
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        if failure.check(IgnoreRequest):
            return
        kind = request.meta.get("langnghe_kind", "article") if request is not None else "article"
        self.logger.warning("%s request failed: %s (%s)", kind, url, failure.getErrorMessage())
        self._inc(f"errors/{failure.type.__name__ if failure.type else 'unknown'}")
