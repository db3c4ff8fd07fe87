"""Item pipelines and the downloader middleware that make a crawl incremental.

Enabled in `crawlers.settings`: `DuplicateFilterPipeline` (drops an article seen twice in one
crawl), `MentionPipeline` (article → `Mention`, written in batches to the SQLite store given by
the ``LANGNGHE_DB_PATH`` setting) and `SkipStoredMiddleware` (articles already stored are not
fetched again).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem, IgnoreRequest, NotConfigured

from crawlers.urls import source_of
from langnghe.records import Mention, mention_id, parse_datetime, utcnow
from nlp.text import normalize
from storage.base import Store

logger = logging.getLogger(__name__)


def open_store(db_path: str | Path) -> Store:
    """The SQLite store at `db_path` (parent directories created)."""
    from storage.sqlite import SQLiteStore

    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(path)


def source_for(url: str, sources: dict[str, str] | None = None) -> str:
    """The source name of an article URL: from `sources` (keys: a URL prefix, ``host:port`` or a
    host, e.g. a demo site on 127.0.0.1 standing for a real paper), else the host without www."""
    if sources:
        parts = urlsplit(url)
        for key, name in sources.items():
            if key.startswith(("http://", "https://")) and url.startswith(key):
                return name
        for key in (parts.netloc.lower(), (parts.hostname or "").lower()):
            if key in sources:
                return sources[key]
    return source_of(url)


def item_to_mention(item: dict[str, Any], sources: dict[str, str] | None = None) -> Mention:
    """Build the `Mention` of an article item (canonical URL → id and source)."""
    url = item["url"]
    title = normalize(item.get("title") or "")
    text = normalize(item.get("text") or "")
    lead = normalize(item.get("lead") or "")
    if lead and lead[:60] not in text and lead != title:
        text = f"{lead}\n\n{text}" if text else lead
    published = item.get("published_at")
    published_dt = published if hasattr(published, "tzinfo") else parse_datetime(published)
    crawled = utcnow()
    authors = [a for a in item.get("authors") or [] if a]
    return Mention(
        id=mention_id(url), source=source_for(url, sources), url=url, title=title, text=text,
        published_at=published_dt or crawled, crawled_at=crawled,
        language=item.get("language") or "vi", author=", ".join(authors) or None,
    )


class DuplicateFilterPipeline:
    """Drop items whose canonical URL was already seen in this crawl."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.seen: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DuplicateFilterPipeline:
        return cls(crawler)

    def process_item(self, item: dict[str, Any], spider: Spider | None = None) -> dict[str, Any]:
        url = item.get("url")
        if not url:
            raise DropItem("item without a URL")
        if url in self.seen:
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value("langnghe/skipped/duplicate")
            raise DropItem(f"duplicate article in this crawl: {url}")
        self.seen.add(url)
        return item


class MentionPipeline:
    """Write each article as a `Mention` to the store, ``LANGNGHE_BATCH_SIZE`` at a time."""

    def __init__(self, crawler: Crawler, db_path: str, batch_size: int = 50,
                 sources: dict[str, str] | None = None) -> None:
        self.crawler = crawler
        self.sources = dict(sources or {})
        self.db_path = db_path
        self.batch_size = max(1, batch_size)
        self.buffer: list[Mention] = []
        self.store: Store | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MentionPipeline:
        db_path = crawler.settings.get("LANGNGHE_DB_PATH")
        if not db_path:
            raise NotConfigured("LANGNGHE_DB_PATH is not set")
        return cls(crawler, str(db_path), crawler.settings.getint("LANGNGHE_BATCH_SIZE", 50),
                   crawler.settings.getdict("LANGNGHE_SOURCES"))

    def open_spider(self, spider: Spider | None = None) -> None:
        self.store = open_store(self.db_path)

    def close_spider(self, spider: Spider | None = None) -> None:
        try:
            self.flush()
        finally:
            if self.store is not None:
                self.store.close()
                self.store = None

    def process_item(self, item: dict[str, Any], spider: Spider | None = None) -> dict[str, Any]:
        try:
            mention = item_to_mention(item, self.sources)
        except (KeyError, ValueError) as exc:
            raise DropItem(f"cannot build a mention from {item.get('url')}: {exc}") from exc
        if not mention.text or not mention.title:
            raise DropItem(f"article without title or text: {mention.url}")
        self.buffer.append(mention)
        if len(self.buffer) >= self.batch_size:
            self.flush()
        return item

    def flush(self) -> None:
        """Write the buffered mentions in one batch."""
        if not self.buffer or self.store is None:
            return
        batch, self.buffer = self.buffer, []
        result = self.store.write_mentions(batch)
        stats = self.crawler.stats
        if stats is not None:
            stats.inc_value("langnghe/stored/inserted", result.inserted)
            stats.inc_value("langnghe/stored/updated", result.updated)
            stats.inc_value("langnghe/stored/unchanged", result.unchanged)
        logger.info("stored %d mentions (%d new, %d updated, %d unchanged)", len(batch),
                    result.inserted, result.updated, result.unchanged)


class SkipStoredMiddleware:
    """Downloader middleware: do not fetch an article whose mention is already stored.

    Applies to requests marked ``meta["langnghe_article"]``; off when ``LANGNGHE_RECRAWL`` is true.
    """

    def __init__(self, crawler: Crawler, db_path: str) -> None:
        self.crawler = crawler
        self.db_path = db_path
        self.store: Store | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SkipStoredMiddleware:
        db_path = crawler.settings.get("LANGNGHE_DB_PATH")
        if not db_path or crawler.settings.getbool("LANGNGHE_RECRAWL"):
            raise NotConfigured("no store to check, or re-crawl requested")
        mw = cls(crawler, str(db_path))
        crawler.signals.connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    def _store(self) -> Store | None:
        if self.store is None and Path(self.db_path).exists():
            self.store = open_store(self.db_path)
        return self.store

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if not request.meta.get("langnghe_article"):
            return None
        store = self._store()
        if store is None:
            return None
        canonical = request.meta.get("canonical_url") or request.url
        if store.get_mention(mention_id(canonical)) is not None:
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value("langnghe/skipped/already_stored")
            raise IgnoreRequest(f"already stored: {canonical}")
        return None

    def spider_closed(self, spider: Spider) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
