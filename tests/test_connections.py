"""Per-thread SQLite connections (`storage.connections`) and the two side stores built on them:
the crawler's ``crawl_*`` tables (`crawlers.state.CrawlState`) and the issue engine's ``nlp_*``
tables (`nlp.embedding_cache.IssueStateDB`)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from crawlers.state import SCHEMA as CRAWL_SCHEMA
from crawlers.state import CrawlState, PageInfo
from nlp.embedding_cache import _SCHEMA as ISSUE_SCHEMA
from nlp.embedding_cache import IssueStateDB
from storage.connections import SQLiteConnections

T = TypeVar("T")


def _in_thread(fn: Callable[[], T]) -> T:
    """Run `fn` in a new thread and return its result (or raise its error)."""
    out: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join(30)
    if errors:
        raise errors[0]
    return out[0]


def test_connections_one_per_thread_and_close_ends_all(tmp_path: Path) -> None:
    db = SQLiteConnections(tmp_path / "c.sqlite3", label="test db")
    main = db.get()
    assert db.get() is main
    other = _in_thread(db.get)
    assert other is not main
    assert main.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert isinstance(main.execute("SELECT 1 AS one").fetchone(), sqlite3.Row)
    db.close()
    for conn in (main, other):
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
    with pytest.raises(RuntimeError, match="test db .* is closed"):
        db.get()
    with pytest.raises(RuntimeError, match="is closed"):
        _in_thread(db.get)


def test_connections_write_commits_or_rolls_back_and_row_factory_option(tmp_path: Path) -> None:
    db = SQLiteConnections(tmp_path / "c.sqlite3", row_factory=None, synchronous="FULL")
    try:
        conn = db.get()
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        with db.write() as w:
            w.execute("CREATE TABLE t (x INTEGER)")
            w.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(ValueError), db.write() as w:
            w.execute("INSERT INTO t VALUES (2)")
            raise ValueError("boom")
        assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]  # plain tuples, 2 rolled back
        assert _in_thread(lambda: db.get().execute("SELECT COUNT(*) FROM t").fetchone()) == (1,)
    finally:
        db.close()


def test_crawl_state_threads_close_and_reuse(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "db.sqlite3"
    state = CrawlState(path)
    assert state.add_pending("news", [("https://a.vn/1.html", {"k": 1})]) == 1
    # another thread writes through its own connection; the main thread sees it
    assert _in_thread(lambda: state.add_pending("news", [("https://a.vn/2.html", {})])) == 1
    assert [u for u, _ in state.pending("news")] == ["https://a.vn/1.html", "https://a.vn/2.html"]
    conns = list(state._db._connections)
    assert len(conns) == 2 and conns[0] is not conns[1]
    state.close()
    for conn in conns:  # every thread's connection is closed, not only the caller's
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
    state.mark_done(["https://a.vn/1.html"])  # usable again after close, as before
    assert state.pending("news") == [("https://a.vn/2.html", {})]
    state.close()


def test_crawl_state_reads_a_file_written_without_wal(tmp_path: Path) -> None:
    """A file made by the same schema on a plain (rollback-journal) connection keeps its rows."""
    path = tmp_path / "old.sqlite3"
    raw = sqlite3.connect(path)
    raw.executescript(CRAWL_SCHEMA)
    raw.execute("INSERT INTO crawl_pages VALUES ('https://a.vn/x.html', 'e1', NULL, "
                "'2025-01-02T03:04:05+00:00', 100.0, 'h1')")
    raw.execute("INSERT INTO crawl_threads VALUES ('https://f.vn/t/1', 7, 70, 5.0)")
    raw.commit()
    raw.close()
    state = CrawlState(path)
    try:
        page = state.page("https://a.vn/x.html")
        assert page == PageInfo("https://a.vn/x.html", "e1", None, datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
                                100.0, "h1")
        assert state.thread_page("https://f.vn/t/1") == 7
        state.record_thread("https://f.vn/t/1", 9, 90)
        assert state.thread_page("https://f.vn/t/1") == 9
    finally:
        state.close()


def test_issue_state_db_threads_close_reuse_and_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite3"
    raw = sqlite3.connect(path)  # the tables as an earlier version left them, with a row
    for stmt in ISSUE_SCHEMA:
        raw.execute(stmt)
    raw.execute("INSERT INTO nlp_emerging VALUES ('i1', 'q1', 'day', '2025-01-02', 5, 1.5, 3.3, "
                "'2025-01-02T00:00:00+00:00')")
    raw.commit()
    raw.close()
    db = IssueStateDB(path)
    vec = np.arange(4, dtype=np.float32)
    _in_thread(lambda: db.put_vectors("m", [("a", "h", vec)]))
    np.testing.assert_array_equal(db.get_vectors("m", [("a", "h")])["a"], vec)
    rows = db.emerging_since()
    assert rows == [("i1", "q1", "day", "2025-01-02", 5, 1.5, 3.3, "2025-01-02T00:00:00+00:00")]
    assert type(rows[0]) is tuple
    conns = list(db._db._connections)
    assert len(conns) == 2
    db.close()
    for conn in conns:
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
    assert db.count_vectors("m") == 1  # reopens after close, nothing lost
    db.close()
