"""Distributed crawling: several crawler processes (or machines) share one request queue and one
duplicate filter in Redis (scrapy-redis), and write to one store.

Each process runs `DistributedNewsSpider` (crawlers.spiders.news.NewsSpider with two changes):

* article requests go through the shared Redis duplicate filter (``dont_filter=False``), so an
  article URL found by any process is fetched once by one of them, also URLs resumed from the
  crawl frontier (shared by the processes of one machine: another live process may be fetching
  them). The filter is one Redis set per UTC day (``<key>:dupefilter:<date>``, expiring after 3
  days), so the few requests a SIGKILLed crawler had in flight (at most CONCURRENT_REQUESTS; still
  pending in the frontier) are fetched again on the next day's rounds, never lost; articles
  already stored are skipped by the store check whatever the filter says;
* the spider stays open while the shared queue has work, and closes after ``LANGNGHE_IDLE_CLOSE_S``
  seconds with the queue empty (so a process started first does not quit before the others have
  queued the articles of their feeds).

Feeds themselves are fetched by every process (cheap; their article links are deduplicated).
Mentions go to the store: a SQLite file shared by the processes of one machine
(``LANGNGHE_DB_PATH``), or a search engine (``LANGNGHE_STORE_URL``) for several machines; the
crawl frontier and story index stay in the local SQLite file.

    python -m workers.cli crawl --redis redis://… --store var/langnghe.sqlite3 --feeds URL[,URL]
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider

from crawlers.feeds import FeedEntry
from crawlers.pipelines import MentionPipeline
from crawlers.spiders.news import NewsSpider
from storage.factory import is_engine_url, open_store_url, sqlite_path

log = logging.getLogger(__name__)


DUPEFILTER_DAYS = 3  # a day's duplicate filter is kept this long


def dupefilter_key(key: str, day: date | None = None) -> str:
    """The Redis set of request fingerprints for one UTC day."""
    return f"{key}:dupefilter:{(day or datetime.now(UTC).date()).isoformat()}"


def prepare_dupefilter(redis_url: str, key: str) -> str:
    """Create today's duplicate filter set with its expiry (idempotent); returns its key."""
    import redis

    name = dupefilter_key(key)
    client = redis.Redis.from_url(redis_url)
    try:
        client.sadd(name, "langnghe:created")  # not a fingerprint (those are hex digests)
        client.expire(name, DUPEFILTER_DAYS * 86400, nx=True)
    finally:
        client.close()
    return name


def redis_settings(redis_url: str, key: str = "langnghe:news", *, flush: bool = False) -> dict[str, Any]:
    """Scrapy settings for a scheduler and duplicate filter shared through Redis."""
    return {
        "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
        "SCHEDULER_PERSIST": True,  # the queue outlives a process: another one goes on with it
        "SCHEDULER_FLUSH_ON_START": flush,
        "SCHEDULER_QUEUE_KEY": f"{key}:requests",
        "SCHEDULER_DUPEFILTER_KEY": dupefilter_key(key),
        "DUPEFILTER_KEY": dupefilter_key(key),
        "REDIS_URL": redis_url,
    }


class DistributedNewsSpider(NewsSpider):
    """NewsSpider whose article URLs are deduplicated across processes (see the module docstring)."""

    name = "news-distributed"

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> DistributedNewsSpider:
        spider: DistributedNewsSpider = super().from_crawler(crawler, *args, **kwargs)
        spider.idle_close_s = crawler.settings.getfloat("LANGNGHE_IDLE_CLOSE_S", 10.0)
        spider._idle_since = None
        crawler.signals.connect(spider._on_idle, signal=signals.spider_idle)
        return spider

    idle_close_s: float = 10.0
    _idle_since: float | None = None

    def _article_request(self, entry: FeedEntry, base_url: str) -> scrapy.Request | None:
        request = super()._article_request(entry, base_url)
        return None if request is None else request.replace(dont_filter=False)

    def _on_idle(self, spider: scrapy.Spider) -> None:
        queued = _queued(self.crawler)
        now = time.monotonic()
        if queued:
            self._idle_since = None
            raise DontCloseSpider
        if self._idle_since is None:
            self._idle_since = now
        if now - self._idle_since < self.idle_close_s:
            raise DontCloseSpider
        self.logger.info("shared queue empty for %.0f s: closing", now - self._idle_since)


def _queued(crawler: Crawler) -> int:
    """Requests waiting in the shared Redis queue (scrapy-redis' scheduler has a length)."""
    engine = crawler.engine
    scheduler = getattr(engine, "scheduler", None)  # Scrapy 2.19+
    if scheduler is None and engine is not None:
        slot = getattr(engine, "slot", None) or getattr(engine, "_slot", None)
        scheduler = getattr(slot, "scheduler", None)
    try:
        return len(scheduler) if scheduler is not None else 0
    except TypeError:  # a scheduler without a length: ask whether it has anything pending
        return int(bool(scheduler.has_pending_requests()))  # type: ignore[union-attr]


class StoreURLMentionPipeline(MentionPipeline):
    """MentionPipeline writing to the store named by ``LANGNGHE_STORE_URL`` (a search engine),
    with the crawl frontier and story index in the local ``LANGNGHE_DB_PATH`` file."""

    def open_spider(self, spider: scrapy.Spider | None = None) -> None:
        super().open_spider(spider)
        url = self.crawler.settings.get("LANGNGHE_STORE_URL")
        if url and is_engine_url(url):
            if self.store is not None:
                self.store.close()
            self.store = open_store_url(url)


def run_distributed_crawl(redis_url: str, store_url: str, feeds: list[str], *, key: str = "langnghe:news",
                          idle_seconds: float = 10.0, flush: bool = False, state_db: Path | None = None,
                          settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one crawler process of a distributed crawl until the shared queue stays empty.

    Blocks (Twisted's reactor runs here: call it once per process). Returns Scrapy's stats for
    this process (pages fetched, articles stored …) as a JSON-ready dict.
    """
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    from crawlers.run import download_slots

    if not feeds:
        raise ValueError("a distributed crawl needs at least one feed URL to seed the shared queue")
    engine = is_engine_url(store_url)
    if engine:
        state = state_db or Path(tempfile.gettempdir()) / "langnghe-crawl-state.sqlite3"
    else:
        state = sqlite_path(store_url)
    s = Settings()
    s.setmodule("crawlers.settings", priority="project")
    s.set("DOWNLOAD_SLOTS", download_slots(None), priority="project")
    s.set("LANGNGHE_DB_PATH", str(Path(state).resolve()), priority="cmdline")
    s.set("LANGNGHE_IDLE_CLOSE_S", idle_seconds, priority="cmdline")
    if engine:
        s.set("LANGNGHE_STORE_URL", store_url, priority="cmdline")
        pipelines = dict(s.getdict("ITEM_PIPELINES"))
        for name, order in list(pipelines.items()):
            if name.endswith("MentionPipeline"):
                del pipelines[name]
                pipelines["workers.distributed_crawl.StoreURLMentionPipeline"] = order
        s.set("ITEM_PIPELINES", pipelines, priority="cmdline")
    prepare_dupefilter(redis_url, key)
    for name, value in {**redis_settings(redis_url, key, flush=flush), **(settings or {})}.items():
        s.set(name, value, priority="cmdline")
    process = CrawlerProcess(s, install_root_handler=False)
    crawler = process.create_crawler(DistributedNewsSpider)
    process.crawl(crawler, feeds=",".join(feeds))
    process.start()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    return json.loads(json.dumps(stats, default=str))
