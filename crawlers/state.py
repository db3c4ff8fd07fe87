"""The crawler's own bookkeeping, in ``crawl_*`` tables beside the store's tables.

The store (`storage.base.Store`) keeps mentions; what only the crawler needs lives here, in the same
SQLite file (WAL, a separate connection, tables created on first use):

* ``crawl_frontier``: article URLs discovered and not yet stored. A crawl killed with SIGKILL
  re-queues them on the next start, even when the feed that listed them has moved on.
* ``crawl_pages``: per canonical URL the ETag, Last-Modified, publication and last fetch time, for
  conditional re-fetches (``If-None-Match`` / ``If-Modified-Since``) inside the re-crawl window.
* ``crawl_stories``: per mention its content fingerprints (SHA-1, SimHash) and the story it belongs
  to (syndication grouping, see `crawlers.dedup`).
* ``crawl_threads``: per forum thread the last page seen, so growing threads are re-read from there.
* ``crawl_hotline``: per 1022 report its status, category and location as exported.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from storage.connections import SQLiteConnections

SCHEMA = """
CREATE TABLE IF NOT EXISTS crawl_frontier (
    url TEXT PRIMARY KEY, spider TEXT NOT NULL, meta TEXT NOT NULL DEFAULT '{}',
    discovered_at REAL NOT NULL, done_at REAL
);
CREATE INDEX IF NOT EXISTS crawl_frontier_pending ON crawl_frontier (spider, done_at);
CREATE TABLE IF NOT EXISTS crawl_pages (
    url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, published_at TEXT,
    fetched_at REAL NOT NULL, content_hash TEXT
);
CREATE TABLE IF NOT EXISTS crawl_stories (
    mention_id TEXT PRIMARY KEY, story_id TEXT NOT NULL, source TEXT NOT NULL,
    content_hash TEXT NOT NULL, simhash INTEGER NOT NULL,
    b0 INTEGER NOT NULL, b1 INTEGER NOT NULL, b2 INTEGER NOT NULL, b3 INTEGER NOT NULL,
    b4 INTEGER NOT NULL, b5 INTEGER NOT NULL, published_at TEXT
);
CREATE INDEX IF NOT EXISTS crawl_stories_hash ON crawl_stories (content_hash);
CREATE INDEX IF NOT EXISTS crawl_stories_story ON crawl_stories (story_id);
CREATE INDEX IF NOT EXISTS crawl_stories_b0 ON crawl_stories (b0);
CREATE INDEX IF NOT EXISTS crawl_stories_b1 ON crawl_stories (b1);
CREATE INDEX IF NOT EXISTS crawl_stories_b2 ON crawl_stories (b2);
CREATE INDEX IF NOT EXISTS crawl_stories_b3 ON crawl_stories (b3);
CREATE INDEX IF NOT EXISTS crawl_stories_b4 ON crawl_stories (b4);
CREATE INDEX IF NOT EXISTS crawl_stories_b5 ON crawl_stories (b5);
CREATE TABLE IF NOT EXISTS crawl_threads (
    url TEXT PRIMARY KEY, last_page INTEGER NOT NULL, posts INTEGER NOT NULL DEFAULT 0,
    checked_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS crawl_hotline (
    native_id TEXT PRIMARY KEY, mention_id TEXT NOT NULL, status TEXT, category TEXT,
    location TEXT, row_hash TEXT NOT NULL, imported_at REAL NOT NULL
);
"""


@dataclass
class PageInfo:
    """What the last fetch of a URL returned."""

    url: str
    etag: str | None
    last_modified: str | None
    published_at: datetime | None
    fetched_at: float
    content_hash: str | None = None


@dataclass
class StoryRow:
    mention_id: str
    story_id: str
    source: str
    content_hash: str
    simhash: int
    published_at: str | None = None


def _signed(value: int) -> int:
    """A 64-bit unsigned value as SQLite's signed INTEGER."""
    return value - (1 << 64) if value >= (1 << 63) else value


def _unsigned(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def bands(simhash: int, count: int = 6) -> list[int]:
    """`count` disjoint bit-bands of a 64-bit SimHash (11, 11, 11, 11, 10, 10 bits): two hashes
    within Hamming distance < `count` share at least one band (pigeonhole)."""
    widths = [11, 11, 11, 11, 10, 10][:count]
    out, shift = [], 0
    for width in widths:
        out.append((simhash >> shift) & ((1 << width) - 1))
        shift += width
    return out


class CrawlState:
    """The ``crawl_*`` tables of one SQLite file. Thread-safe (one connection per thread)."""

    def __init__(self, db_path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(db_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self._db = self._connections()
        self._db.get().executescript(SCHEMA)

    def _connections(self) -> SQLiteConnections:
        return SQLiteConnections(self.path, timeout=self.timeout, row_factory=None, label="crawl state")

    def close(self) -> None:
        """Close every thread's connection; a later call opens new ones."""
        self._db.close()
        self._db = self._connections()

    # ---- frontier

    def add_pending(self, spider: str, items: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Record discovered URLs (url, meta) not stored yet; known URLs are left as they are."""
        now = time.time()
        rows = [(url, spider, json.dumps(meta, default=str, ensure_ascii=False), now) for url, meta in items]
        if not rows:
            return 0
        with self._db.write() as conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO crawl_frontier (url, spider, meta, discovered_at) "
                             "VALUES (?, ?, ?, ?)", rows)
            return conn.total_changes - before

    def mark_done(self, urls: Sequence[str]) -> None:
        """URLs whose article is stored, or that are no article (never retried)."""
        if not urls:
            return
        now = time.time()
        with self._db.write() as conn:
            conn.executemany("UPDATE crawl_frontier SET done_at = ? WHERE url = ? AND done_at IS NULL",
                             [(now, u) for u in urls])

    def pending(self, spider: str, limit: int = 100_000) -> list[tuple[str, dict[str, Any]]]:
        """URLs discovered by `spider` and not done, oldest first."""
        rows = self._db.get().execute(
            "SELECT url, meta FROM crawl_frontier WHERE spider = ? AND done_at IS NULL "
            "ORDER BY discovered_at LIMIT ?", (spider, limit)).fetchall()
        return [(url, json.loads(meta)) for url, meta in rows]

    # ---- pages (conditional GET)

    def page(self, url: str) -> PageInfo | None:
        row = self._db.get().execute("SELECT url, etag, last_modified, published_at, fetched_at, content_hash "
                                     "FROM crawl_pages WHERE url = ?", (url,)).fetchone()
        if row is None:
            return None
        published = datetime.fromisoformat(row[3]) if row[3] else None
        return PageInfo(row[0], row[1], row[2], published, row[4], row[5])

    def record_pages(self, pages: Sequence[PageInfo]) -> None:
        if not pages:
            return
        with self._db.write() as conn:
            conn.executemany(
                "INSERT INTO crawl_pages (url, etag, last_modified, published_at, fetched_at, content_hash) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(url) DO UPDATE SET etag = excluded.etag, "
                "last_modified = excluded.last_modified, "
                "published_at = COALESCE(excluded.published_at, crawl_pages.published_at), "
                "fetched_at = excluded.fetched_at, "
                "content_hash = COALESCE(excluded.content_hash, crawl_pages.content_hash)",
                [(p.url, p.etag, p.last_modified, p.published_at.isoformat() if p.published_at else None,
                  p.fetched_at, p.content_hash) for p in pages])

    def touch_page(self, url: str) -> None:
        """A fetch that found the page unchanged (HTTP 304)."""
        with self._db.write() as conn:
            conn.execute("UPDATE crawl_pages SET fetched_at = ? WHERE url = ?", (time.time(), url))

    # ---- stories

    def story(self, mention_id: str) -> StoryRow | None:
        row = self._db.get().execute("SELECT mention_id, story_id, source, content_hash, simhash, published_at "
                                     "FROM crawl_stories WHERE mention_id = ?", (mention_id,)).fetchone()
        return StoryRow(row[0], row[1], row[2], row[3], _unsigned(row[4]), row[5]) if row else None

    def by_content_hash(self, content_hash: str) -> list[StoryRow]:
        rows = self._db.get().execute("SELECT mention_id, story_id, source, content_hash, simhash, published_at "
                                      "FROM crawl_stories WHERE content_hash = ?", (content_hash,)).fetchall()
        return [StoryRow(r[0], r[1], r[2], r[3], _unsigned(r[4]), r[5]) for r in rows]

    def simhash_candidates(self, simhash: int, limit: int = 2000) -> list[StoryRow]:
        """Stored fingerprints sharing at least one band with `simhash`."""
        values = bands(simhash)
        where = " OR ".join(f"b{i} = ?" for i in range(len(values)))
        rows = self._db.get().execute(
            f"SELECT mention_id, story_id, source, content_hash, simhash, published_at FROM crawl_stories "
            f"WHERE {where} LIMIT ?", (*values, limit)).fetchall()
        return [StoryRow(r[0], r[1], r[2], r[3], _unsigned(r[4]), r[5]) for r in rows]

    def record_stories(self, rows: Sequence[StoryRow]) -> None:
        if not rows:
            return
        with self._db.write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO crawl_stories (mention_id, story_id, source, content_hash, simhash, "
                "b0, b1, b2, b3, b4, b5, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r.mention_id, r.story_id, r.source, r.content_hash, _signed(r.simhash), *bands(r.simhash),
                  r.published_at) for r in rows])

    def story_members(self, story_id: str) -> list[StoryRow]:
        rows = self._db.get().execute("SELECT mention_id, story_id, source, content_hash, simhash, published_at "
                                      "FROM crawl_stories WHERE story_id = ? ORDER BY published_at",
                                      (story_id,)).fetchall()
        return [StoryRow(r[0], r[1], r[2], r[3], _unsigned(r[4]), r[5]) for r in rows]

    def story_ids(self, mention_ids: Sequence[str]) -> dict[str, str]:
        """mention id → story id, for the ids that have one."""
        out: dict[str, str] = {}
        conn = self._db.get()
        for i in range(0, len(mention_ids), 500):
            chunk = list(mention_ids[i:i + 500])
            marks = ",".join("?" * len(chunk))
            for mid, sid in conn.execute(f"SELECT mention_id, story_id FROM crawl_stories "
                                         f"WHERE mention_id IN ({marks})", chunk):
                out[mid] = sid
        return out

    # ---- forum threads

    def thread_page(self, url: str) -> int | None:
        row = self._db.get().execute("SELECT last_page FROM crawl_threads WHERE url = ?", (url,)).fetchone()
        return int(row[0]) if row else None

    def record_thread(self, url: str, last_page: int, posts: int) -> None:
        with self._db.write() as conn:
            conn.execute("INSERT INTO crawl_threads (url, last_page, posts, checked_at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT(url) DO UPDATE SET last_page = MAX(last_page, excluded.last_page), "
                         "posts = excluded.posts, checked_at = excluded.checked_at",
                         (url, last_page, posts, time.time()))

    # ---- hotline

    def hotline_rows(self, native_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """native id → (row hash, status) of reports already imported."""
        out: dict[str, tuple[str, str | None]] = {}
        conn = self._db.get()
        for i in range(0, len(native_ids), 500):
            chunk = list(native_ids[i:i + 500])
            marks = ",".join("?" * len(chunk))
            for nid, row_hash, status in conn.execute(
                    f"SELECT native_id, row_hash, status FROM crawl_hotline WHERE native_id IN ({marks})", chunk):
                out[nid] = (row_hash, status)
        return out

    def record_hotline(self, rows: Sequence[tuple[str, str, str | None, str | None, str | None, str]]) -> None:
        """Rows of (native id, mention id, status, category, location, row hash)."""
        if not rows:
            return
        now = time.time()
        with self._db.write() as conn:
            conn.executemany("INSERT OR REPLACE INTO crawl_hotline (native_id, mention_id, status, category, "
                             "location, row_hash, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [(*r, now) for r in rows])

    def hotline_status(self, native_id: str) -> str | None:
        row = self._db.get().execute("SELECT status FROM crawl_hotline WHERE native_id = ?", (native_id,)).fetchone()
        return row[0] if row else None
