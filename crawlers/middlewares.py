"""Downloader middlewares: retries with exponential backoff, and incremental (conditional) fetching.

* `BackoffRetryMiddleware` replaces Scrapy's RetryMiddleware: a retried request waits
  ``RETRY_BACKOFF_BASE * 2**n`` seconds (capped by ``RETRY_BACKOFF_MAX``, at least the server's
  ``Retry-After``) before it is sent again, instead of going straight back into the queue.
* `IncrementalMiddleware` (alias `SkipStoredMiddleware`): an article already stored is not fetched
  again, unless it was published within the re-crawl window (``LANGNGHE_RECRAWL_HOURS``) and last
  fetched more than ``LANGNGHE_RECRAWL_MIN_INTERVAL_S`` ago: then it is fetched with
  ``If-None-Match``/``If-Modified-Since``, and a 304 answer ends the request (``not_modified``).
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response

from crawlers.state import CrawlState
from langnghe.records import mention_id, utcnow

logger = logging.getLogger(__name__)
NOT_BEFORE = "langnghe_not_before"


def retry_after_seconds(value: bytes | str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - utcnow()).total_seconds()) if when.tzinfo else None


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retries, spaced by exponential backoff with jitter (and Retry-After)."""

    def __init__(self, settings: object) -> None:
        super().__init__(settings)  # type: ignore[arg-type]
        get = settings.getfloat  # type: ignore[attr-defined]
        self.base = get("RETRY_BACKOFF_BASE", 1.0)
        self.cap = get("RETRY_BACKOFF_MAX", 60.0)

    def _delay(self, retry_times: int, response: Response | None) -> float:
        delay = min(self.cap, self.base * (2 ** max(0, retry_times - 1)))
        delay *= random.uniform(0.75, 1.25)
        if response is not None:
            asked = retry_after_seconds(response.headers.get(b"Retry-After"))
            if asked is not None:
                delay = max(delay, min(asked, self.cap))
        return delay

    def _with_backoff(self, result: Request | Response | None, response: Response | None) -> Request | Response | None:
        if isinstance(result, Request):
            delay = self._delay(int(result.meta.get("retry_times", 1)), response)
            result.meta[NOT_BEFORE] = time.monotonic() + delay
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value("langnghe/retries/backoff")
            logger.debug("retry of %s in %.1f s", result.url, delay)
        return result

    def process_response(self, request: Request, response: Response,
                         spider: Spider | None = None) -> Request | Response:
        result = super().process_response(request, response)
        return self._with_backoff(result, response) or response

    def process_exception(self, request: Request, exception: Exception,
                          spider: Spider | None = None) -> Request | Response | None:
        return self._with_backoff(super().process_exception(request, exception), None)


class BackoffDelayMiddleware:
    """Holds a request marked by `BackoffRetryMiddleware` until its backoff has passed."""

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        not_before = request.meta.get(NOT_BEFORE)
        if not not_before:
            return None
        wait = float(not_before) - time.monotonic()
        if wait > 0:
            from scrapy.utils.defer import maybe_deferred_to_future
            from twisted.internet import reactor
            from twisted.internet.task import deferLater

            await maybe_deferred_to_future(deferLater(reactor, wait, lambda: None))
        return None


class IncrementalMiddleware:
    """Skip stored articles; re-fetch recent ones conditionally (see the module docstring)."""

    def __init__(self, crawler: Crawler, db_path: str) -> None:
        self.crawler = crawler
        self.db_path = db_path
        settings = crawler.settings
        self.window = timedelta(hours=settings.getfloat("LANGNGHE_RECRAWL_HOURS", 48))
        self.min_interval = settings.getfloat("LANGNGHE_RECRAWL_MIN_INTERVAL_S", 3600)
        self.store = None
        self.state: CrawlState | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IncrementalMiddleware:
        db_path = crawler.settings.get("LANGNGHE_DB_PATH")
        if not db_path or crawler.settings.getbool("LANGNGHE_RECRAWL"):
            raise NotConfigured("no store to check, or a full re-crawl requested")
        mw = cls(crawler, str(db_path))
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    def _inc(self, key: str) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"langnghe/{key}")

    def _open(self) -> bool:
        if self.store is None:
            if not Path(self.db_path).exists():
                return False
            from crawlers.pipelines import open_store

            self.store = open_store(self.db_path)  # type: ignore[assignment]
            self.state = CrawlState(self.db_path)
        return True

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if not request.meta.get("langnghe_article") or not self._open():
            return None
        assert self.store is not None and self.state is not None
        canonical = request.meta.get("canonical_url") or request.url
        mention = self.store.get_mention(mention_id(canonical))
        page = self.state.page(canonical)
        if mention is None and not (page and (page.content_hash or "").startswith("dup:")):
            return None  # new, or fetched and refused before (not an article, an error): try again
        published = page.published_at if page and page.published_at else None
        if published is None and mention is not None:
            published = mention.published_at
        recent = published is not None and utcnow() - published <= self.window
        last = page.fetched_at if page else (mention.crawled_at.timestamp() if mention else 0.0)
        fetched_ago = time.time() - last
        if recent and fetched_ago >= self.min_interval:
            request.meta["langnghe_recrawl"] = True
            if page is not None and page.etag:
                request.headers[b"If-None-Match"] = page.etag.encode("latin-1", "ignore")
            if page is not None and page.last_modified:
                request.headers[b"If-Modified-Since"] = page.last_modified.encode("latin-1", "ignore")
            self._inc("recrawl/requested")
            return None
        self._inc("skipped/already_stored")
        raise IgnoreRequest(f"already stored: {canonical}")

    def process_response(self, request: Request, response: Response,
                         spider: Spider | None = None) -> Response:
        if response.status == 304 and request.meta.get("langnghe_recrawl"):
            if self._open() and self.state is not None:
                self.state.touch_page(request.meta.get("canonical_url") or request.url)
            self._inc("recrawl/not_modified")
            raise IgnoreRequest(f"not modified: {request.url}")
        return response

    def spider_closed(self, spider: Spider) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        if self.state is not None:
            self.state.close()
            self.state = None


SkipStoredMiddleware = IncrementalMiddleware  # the first wave's name
