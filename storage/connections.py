"""Connections to one SQLite file shared by threads: one connection per thread (WAL, autocommit
mode, rows as `sqlite3.Row` unless told otherwise), one writer at a time, and a close that ends them
all."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


RowFactory = type[sqlite3.Row] | Callable[[sqlite3.Cursor, tuple[Any, ...]], object] | None


class SQLiteConnections:
    """Per-thread connections to `path`; `write()` is one BEGIN IMMEDIATE … COMMIT transaction.

    `synchronous` is the ``PRAGMA synchronous`` level of every connection; `row_factory` is set on
    every connection (default `sqlite3.Row`; None gives plain tuples); `label` names the database in
    errors."""

    def __init__(self, path: Path, *, timeout: float = 30.0, synchronous: str = "NORMAL",
                 label: str = "database", row_factory: RowFactory = sqlite3.Row) -> None:
        self.path = path
        self.label = label
        self._timeout = timeout
        self._synchronous = synchronous
        self._row_factory = row_factory
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._closed = False

    def get(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use); RuntimeError once closed."""
        if self._closed:
            raise RuntimeError(f"{self.label} {self.path} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = self._row_factory
            conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            with self._lock:
                if self._closed:
                    conn.close()
                    raise RuntimeError(f"{self.label} {self.path} is closed")
                self._connections.append(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on any error)."""
        conn = self.get()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every thread's connection; nothing can be opened afterwards."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing is best effort
                log.exception("closing a connection to %s", self.path)
