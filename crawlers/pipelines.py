"""Item pipelines and the downloader middleware that make a crawl incremental.

Enabled in `crawlers.settings`: `DuplicateFilterPipeline` (drops an article seen twice in one
crawl), `MentionPipeline` (article → `Mention`, de-duplicated and grouped into stories, written in
batches to the SQLite store given by the ``LANGNGHE_DB_PATH`` setting). The incremental downloader
middleware (stored articles are not fetched again) is `crawlers.middlewares.IncrementalMiddleware`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem, NotConfigured

from crawlers.dedup import StoryIndex
from crawlers.middlewares import IncrementalMiddleware, SkipStoredMiddleware  # noqa: F401 - re-exported
from crawlers.state import CrawlState, PageInfo
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
    """Write each article as a `Mention` to the store, ``LANGNGHE_BATCH_SIZE`` at a time.

    Before writing, each text is placed in a story (`crawlers.dedup.StoryIndex`): the same text at
    another URL of the same source is dropped as a duplicate, the same story in another source gets
    the first one's story id. After each batch is written, its URLs are marked done in the crawl
    frontier and their ETag/Last-Modified recorded for conditional re-fetches.
    """

    def __init__(self, crawler: Crawler, db_path: str, batch_size: int = 50,
                 sources: dict[str, str] | None = None, dedup: bool = True) -> None:
        self.crawler = crawler
        self.sources = dict(sources or {})
        self.db_path = db_path
        self.batch_size = max(1, batch_size)
        self.dedup = dedup
        self.buffer: list[Mention] = []
        self.done: list[str] = []
        self.pages: list[PageInfo] = []
        self.store: Store | None = None
        self.state: CrawlState | None = None
        self.stories: StoryIndex | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MentionPipeline:
        db_path = crawler.settings.get("LANGNGHE_DB_PATH")
        if not db_path:
            raise NotConfigured("LANGNGHE_DB_PATH is not set")
        return cls(crawler, str(db_path), crawler.settings.getint("LANGNGHE_BATCH_SIZE", 50),
                   crawler.settings.getdict("LANGNGHE_SOURCES"), crawler.settings.getbool("LANGNGHE_DEDUP", True))

    def _inc(self, key: str, count: int = 1) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"langnghe/{key}", count)

    def open_spider(self, spider: Spider | None = None) -> None:
        self.store = open_store(self.db_path)
        self.state = CrawlState(self.db_path)
        self.stories = StoryIndex(self.state)

    def close_spider(self, spider: Spider | None = None) -> None:
        try:
            self.flush()
        finally:
            if self.store is not None:
                self.store.close()
                self.store = None
            if self.state is not None:
                self.state.close()
                self.state = None

    def process_item(self, item: dict[str, Any], spider: Spider | None = None) -> dict[str, Any]:
        try:
            mention = item_to_mention(item, self.sources)
        except (KeyError, ValueError) as exc:
            self.done.append(item.get("url") or "")
            raise DropItem(f"cannot build a mention from {item.get('url')}: {exc}") from exc
        frontier_url = item.get("frontier_url") or item["url"]
        if not mention.text or not mention.title:
            self.done.append(frontier_url)
            raise DropItem(f"article without title or text: {mention.url}")
        if self.dedup and self.stories is not None and item.get("kind", "article") == "article":
            # forum posts and comments are not grouped: two people writing "hóng" are two mentions
            assignment = self.stories.assign(mention.id, mention.source, mention.text, mention.published_at)
            if assignment.is_duplicate:
                self.done.append(frontier_url)
                # remembered, so that the next crawl does not fetch this URL again
                self.pages.append(PageInfo(mention.url, item.get("http_etag"), item.get("http_last_modified"),
                                           mention.published_at, time.time(),
                                           content_hash=f"dup:{assignment.duplicate_of}"))
                self._inc("skipped/duplicate_content")
                raise DropItem(f"same text as stored mention {assignment.duplicate_of}: {mention.url}")
            if assignment.kind == "syndicated":
                self._inc("stories/syndicated")
            mention.story_id = assignment.story_id
        self.buffer.append(mention)
        self.done.append(frontier_url)
        if item.get("kind", "article") == "article":
            self.pages.append(PageInfo(mention.url, item.get("http_etag"), item.get("http_last_modified"),
                                       mention.published_at, time.time()))
        if len(self.buffer) >= self.batch_size:
            self.flush()
        return item

    def flush(self) -> None:
        """Write the buffered mentions in one batch, then their stories, pages and frontier marks
        (in that order: a crash in between re-fetches, it never loses)."""
        if self.store is None:
            return
        batch, self.buffer = self.buffer, []
        if batch:
            result = self.store.write_mentions(batch)
            self._inc("stored/inserted", result.inserted)
            self._inc("stored/updated", result.updated)
            self._inc("stored/unchanged", result.unchanged)
            logger.info("stored %d mentions (%d new, %d updated, %d unchanged)", len(batch),
                        result.inserted, result.updated, result.unchanged)
        if self.state is not None:
            if self.stories is not None:
                self.stories.flush()
            pages, self.pages = self.pages, []
            self.state.record_pages(pages)
            done, self.done = self.done, []
            self.state.mark_done([u for u in done if u])

