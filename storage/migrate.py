"""Copy an embedded SQLite store into another store (a search engine): idempotent and resumable.

Mentions are read in rowid order in batches; after each batch the position is saved in the
TARGET's job state (``migrate:<source id>``), so an interrupted run resumes after the last batch
written. Writes are idempotent (same id -> unchanged), so re-running, or resuming a batch that was
half-written, never duplicates anything. Issues, rankings (every period, every area) and job
state follow once all mentions are in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from langnghe.records import PERIODS, Issue
from storage.base import Store, WriteResult
from storage.factory import open_store_url, redact
from storage.sqlite import SQLiteStore, _row_to_issue, _row_to_mention, _row_to_ranking

log = logging.getLogger(__name__)

STATE_PREFIX = "migrate:"


@dataclass
class MigrationStats:
    """What one run did."""

    mentions_read: int = 0
    mentions: WriteResult = field(default_factory=WriteResult)
    issues: WriteResult = field(default_factory=WriteResult)
    rankings: int = 0
    states: int = 0
    batches: int = 0
    resumed_from: int | None = None  # source rowid the run started after, when it resumed
    seconds: float = 0.0

    @property
    def docs_per_second(self) -> float:
        return self.mentions_read / self.seconds if self.seconds else 0.0


def _add(total: WriteResult, part: WriteResult) -> None:
    total.inserted += part.inserted
    total.updated += part.updated
    total.unchanged += part.unchanged


def source_key(path: Path) -> str:
    return STATE_PREFIX + hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:16]


def migrate(sqlite_path: str | Path, target: str | Store, *, batch_size: int = 1000, restart: bool = False,
            on_batch: Callable[[MigrationStats], None] | None = None) -> MigrationStats:
    """Copy everything from the SQLite file into `target` (a store URL or an open store).

    `restart` ignores a saved position (everything is re-read; still nothing is duplicated).
    `on_batch` is called after each batch is written and its position saved.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    path = Path(sqlite_path)
    if not path.exists():
        raise FileNotFoundError(f"no SQLite store at {path}")
    started = time.perf_counter()
    source = SQLiteStore(path)
    dest = open_store_url(target) if isinstance(target, str) else target
    stats = MigrationStats()
    key = source_key(path)
    refresh_writes = getattr(dest, "refresh_writes", None)
    try:
        if refresh_writes is not None:
            dest.refresh_writes = False  # type: ignore[attr-defined]  # bulk load: refresh at the end
        saved = None if restart else dest.get_state(key)
        position = int(json.loads(saved)["rid"]) if saved else 0
        if position:
            stats.resumed_from = position
            log.info("resuming the migration of %s after row %d", path, position)
        conn = source._conn()
        while True:
            rows = conn.execute("SELECT * FROM mentions WHERE rid > ? ORDER BY rid LIMIT ?",
                                (position, batch_size)).fetchall()
            if not rows:
                break
            _add(stats.mentions, dest.write_mentions(_row_to_mention(r) for r in rows))
            stats.mentions_read += len(rows)
            stats.batches += 1
            position = int(rows[-1]["rid"])
            dest.set_state(key, json.dumps({"rid": position, "done": False}))
            if on_batch is not None:
                on_batch(stats)
        issues: list[Issue] = [_row_to_issue(r) for r in conn.execute("SELECT * FROM issues ORDER BY id")]
        _add(stats.issues, dest.write_issues(issues))
        for period in PERIODS:
            for period_key in source.ranking_keys(period):
                entries = [_row_to_ranking(r) for r in conn.execute(
                    "SELECT * FROM rankings WHERE period = ? AND period_key = ? ORDER BY area_id, rank",
                    (period, period_key))]
                stats.rankings += dest.replace_rankings(period, period_key, entries)
        for row in conn.execute("SELECT key, value FROM state ORDER BY key"):
            if not str(row["key"]).startswith(STATE_PREFIX):
                dest.set_state(row["key"], row["value"])
                stats.states += 1
        dest.set_state(key, json.dumps({"rid": position, "done": True}))
    finally:
        refresh = getattr(dest, "refresh", None)
        if callable(refresh):  # make what was written visible, also after an interruption
            refresh()
        if refresh_writes is not None:
            dest.refresh_writes = refresh_writes  # type: ignore[attr-defined]
        source.close()
        if isinstance(target, str):
            dest.close()
    stats.seconds = time.perf_counter() - started
    log.info("migrated %s -> %s: %d mentions read (%s) in %.1f s", path,
             redact(target) if isinstance(target, str) else type(target).__name__,
             stats.mentions_read, stats.mentions, stats.seconds)
    return stats
