"""Side tables of the issue engine, kept next to the store: cached vectors and issue state.

Mentions and issues carry no vector and (yet) no status, so this module keeps them in its own
tables, in the store's SQLite file when the store has one (``store.path``), otherwise (the
search-engine store) in the side file of the setting ``side_db_path`` (``LANGNGHE_SIDE_DB_PATH``,
default ``<data_dir>/side.sqlite3``), which every process of a deployment must share. Its schema
version is recorded under the state key ``nlp.issue_state.schema``.

Tables
------
``nlp_vectors``        one vector per (embedder name, mention id), with the hash of the text it
                       was computed from: a changed text is re-encoded, an unchanged one never.
``nlp_issue_state``    per issue: status (open | closed | merged), dense centroid, member count,
                       closed_at, merged_into and a JSON history of events.
``nlp_issue_events``   merge / split / close / reopen events, unique per (kind, issue, other).
``nlp_emerging``       emerging-issue events (see nlp.alerts_events), unique per
                       (issue, area, period, period key) so each is raised once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from langnghe.records import Mention, parse_datetime, utcnow
from storage.connections import SQLiteConnections

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
STATE_KEY = "nlp.issue_state.schema"
MAX_HASHED_CHARS = 4000

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS nlp_vectors (
        model TEXT NOT NULL, mention_id TEXT NOT NULL, text_hash TEXT NOT NULL,
        dim INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (model, mention_id)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS nlp_issue_state (
        issue_id TEXT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'open', model TEXT,
        centroid BLOB, n INTEGER NOT NULL DEFAULT 0, closed_at TEXT, merged_into TEXT,
        history TEXT NOT NULL DEFAULT '[]', updated_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS nlp_issue_state_status ON nlp_issue_state(status)",
    """CREATE TABLE IF NOT EXISTS nlp_issue_events (
        kind TEXT NOT NULL, issue_id TEXT NOT NULL, other_id TEXT NOT NULL DEFAULT '',
        at TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (kind, issue_id, other_id)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS nlp_emerging (
        issue_id TEXT NOT NULL, area_id TEXT NOT NULL, period TEXT NOT NULL,
        period_key TEXT NOT NULL, observed INTEGER NOT NULL, baseline REAL NOT NULL,
        ratio REAL NOT NULL, detected_at TEXT NOT NULL,
        PRIMARY KEY (issue_id, area_id, period, period_key)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS nlp_emerging_detected ON nlp_emerging(detected_at)",
]


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 rows (the shared encoder, LSA…)."""

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray: ...


def embedder_name(embedder: object) -> str:
    """The cache key of an embedder: its ``name`` attribute, else its class name."""
    return str(getattr(embedder, "name", None) or type(embedder).__name__)


def text_hash(text: str) -> str:
    return hashlib.sha1(text[:MAX_HASHED_CHARS].encode("utf-8")).hexdigest()[:16]


def mention_text(m: Mention, limit: int = 1500) -> str:
    """The text encoded for a mention: title, then the start of the body; tone marks restored when
    it is written without them (`nlp.accents`), so that the encoder reads Vietnamese it knows."""
    from nlp.accents import restore_if_unaccented

    text = f"{m.title}\n{(m.text or '')[:limit]}" if m.title else (m.text or "")[:limit]
    return restore_if_unaccented(text)


@dataclass
class IssueState:
    """What the issue engine remembers of an issue beyond the `Issue` record."""

    issue_id: str
    status: str = "open"  # open | closed | merged
    centroid: np.ndarray | None = None
    n: int = 0
    model: str | None = None
    closed_at: datetime | None = None
    merged_into: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class StoreLike(Protocol):
    def get_state(self, key: str) -> str | None: ...

    def set_state(self, key: str, value: str) -> None: ...


_announced: set[Path] = set()


def _side_file() -> Path:
    """The configured side file (read at call time), logged once per process and file."""
    from langnghe.config import get_settings

    path = get_settings().side_database
    if path not in _announced:
        _announced.add(path)
        log.info("the store has no file of its own: issue-engine side tables in %s", path)
    return path


class IssueStateDB:
    """The side tables in one SQLite file (thread-safe; one connection per thread)."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._timeout = timeout
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = self._connections()
        with self._db.write() as conn:
            for stmt in _SCHEMA:
                conn.execute(stmt)

    def _connections(self) -> SQLiteConnections:
        return SQLiteConnections(self.path, timeout=self._timeout, row_factory=None,
                                 label="issue-state database")

    @classmethod
    def for_store(cls, store: object, fallback: str | Path | None = None) -> IssueStateDB:
        """The side tables of `store`: in its SQLite file; for a store without one (the search
        engine), in `fallback`, else in the configured side file (setting ``side_db_path``,
        default ``<data_dir>/side.sqlite3``)."""
        path = getattr(store, "path", None)
        if path is None:
            path = fallback if fallback is not None else _side_file()
        db = cls(path)
        if hasattr(store, "get_state") and hasattr(store, "set_state"):
            try:
                if store.get_state(STATE_KEY) != str(SCHEMA_VERSION):
                    store.set_state(STATE_KEY, str(SCHEMA_VERSION))
            except Exception:  # pragma: no cover - a store without state support
                log.debug("could not record the issue-state schema version", exc_info=True)
        return db

    def close(self) -> None:
        """Close every thread's connection; a later call opens new ones."""
        self._db.close()
        self._db = self._connections()

    # -- vectors

    def get_vectors(self, model: str, items: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
        """Cached vectors of (mention id, text hash) pairs whose hash still matches."""
        out: dict[str, np.ndarray] = {}
        want = dict(items)
        ids = list(want)
        conn = self._db.get()
        for k in range(0, len(ids), 500):
            chunk = ids[k:k + 500]
            marks = ",".join("?" * len(chunk))
            for mid, h, dim, blob in conn.execute(
                    f"SELECT mention_id, text_hash, dim, vec FROM nlp_vectors "
                    f"WHERE model = ? AND mention_id IN ({marks})", (model, *chunk)):
                if want.get(mid) == h:
                    out[mid] = np.frombuffer(blob, dtype=np.float32, count=int(dim)).copy()
        return out

    def put_vectors(self, model: str, rows: Sequence[tuple[str, str, np.ndarray]]) -> None:
        if not rows:
            return
        with self._db.write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO nlp_vectors(model, mention_id, text_hash, dim, vec) "
                "VALUES (?, ?, ?, ?, ?)",
                [(model, mid, h, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes())
                 for mid, h, v in rows])

    def count_vectors(self, model: str | None = None) -> int:
        if model is None:
            return int(self._db.get().execute("SELECT COUNT(*) FROM nlp_vectors").fetchone()[0])
        return int(self._db.get().execute(
            "SELECT COUNT(*) FROM nlp_vectors WHERE model = ?", (model,)).fetchone()[0])

    # -- issue state

    def get_states(self, ids: Sequence[str] | None = None) -> dict[str, IssueState]:
        conn = self._db.get()
        rows: list[tuple[Any, ...]] = []
        cols = "issue_id, status, model, centroid, n, closed_at, merged_into, history"
        if ids is None:
            rows = conn.execute(f"SELECT {cols} FROM nlp_issue_state").fetchall()
        else:
            uniq = list(dict.fromkeys(ids))
            for k in range(0, len(uniq), 500):
                chunk = uniq[k:k + 500]
                rows += conn.execute(
                    f"SELECT {cols} FROM nlp_issue_state WHERE issue_id IN ({','.join('?' * len(chunk))})",
                    tuple(chunk)).fetchall()
        out: dict[str, IssueState] = {}
        for iid, status, model, blob, n, closed_at, merged_into, history in rows:
            out[iid] = IssueState(
                issue_id=iid, status=status, model=model,
                centroid=None if blob is None else np.frombuffer(blob, dtype=np.float32).copy(),
                n=int(n), closed_at=parse_datetime(closed_at), merged_into=merged_into,
                history=json.loads(history or "[]"))
        return out

    def put_states(self, states: Sequence[IssueState]) -> None:
        if not states:
            return
        now = utcnow().isoformat()
        with self._db.write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO nlp_issue_state(issue_id, status, model, centroid, n, "
                "closed_at, merged_into, history, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(s.issue_id, s.status, s.model,
                  None if s.centroid is None else np.asarray(s.centroid, dtype=np.float32).tobytes(),
                  int(s.n), s.closed_at.isoformat() if s.closed_at else None, s.merged_into,
                  json.dumps(s.history, ensure_ascii=False, sort_keys=True), now)
                 for s in states])

    def add_event(self, kind: str, issue_id: str, other_id: str = "", *, at: datetime,
                  detail: dict[str, Any] | None = None) -> bool:
        """Record an event once; False when the same (kind, issue, other) was recorded before."""
        with self._db.write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO nlp_issue_events(kind, issue_id, other_id, at, detail) "
                "VALUES (?, ?, ?, ?, ?)",
                (kind, issue_id, other_id, at.isoformat(),
                 json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)))
            return cur.rowcount > 0

    def events(self, issue_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT kind, issue_id, other_id, at, detail FROM nlp_issue_events"
        args: tuple[Any, ...] = ()
        if issue_id is not None:
            sql += " WHERE issue_id = ? OR other_id = ?"
            args = (issue_id, issue_id)
        rows = self._db.get().execute(sql + " ORDER BY at, kind, issue_id, other_id", args).fetchall()
        return [{"kind": k, "issue_id": i, "other_id": o, "at": a, "detail": json.loads(d)}
                for k, i, o, a, d in rows]

    # -- emerging events (written by nlp.alerts_events)

    def insert_emerging(self, rows: Sequence[tuple[Any, ...]]) -> list[int]:
        """Insert (issue, area, period, key, observed, baseline, ratio, detected_at) rows; the
        indices of the rows that were new (others had been raised before)."""
        new: list[int] = []
        with self._db.write() as conn:
            for k, row in enumerate(rows):
                cur = conn.execute("INSERT OR IGNORE INTO nlp_emerging VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
                if cur.rowcount > 0:
                    new.append(k)
        return new

    def emerging_since(self, since: datetime | None = None) -> list[tuple[Any, ...]]:
        sql = "SELECT * FROM nlp_emerging"
        args: tuple[Any, ...] = ()
        if since is not None:
            sql += " WHERE detected_at >= ?"
            args = (since.isoformat(),)
        return self._db.get().execute(sql + " ORDER BY detected_at, issue_id, area_id", args).fetchall()


def cached_embeddings(embedder: Embedder, mentions: Sequence[Mention], db: IssueStateDB | None = None,
                      *, batch_size: int = 64) -> np.ndarray:
    """Vectors of `mentions` (rows in their order): from the cache when the text is unchanged,
    otherwise encoded (once per distinct id) and written back."""
    texts = [mention_text(m) for m in mentions]
    if not mentions:
        return np.zeros((0, 0), dtype=np.float32)
    model = embedder_name(embedder)
    hashes = [text_hash(t) for t in texts]
    found = db.get_vectors(model, list(zip((m.id for m in mentions), hashes, strict=True))) if db else {}
    missing = [k for k, m in enumerate(mentions) if m.id not in found]
    if missing:
        order = list(dict.fromkeys(mentions[k].id for k in missing))
        first = {mentions[k].id: k for k in reversed(missing)}
        vecs = np.asarray(embedder.encode([texts[first[i]] for i in order], batch_size=batch_size),
                          dtype=np.float32)
        new = {i: vecs[j] for j, i in enumerate(order)}
        found.update(new)
        if db is not None:
            db.put_vectors(model, [(i, hashes[first[i]], new[i]) for i in order])
    return np.vstack([found[m.id] for m in mentions]).astype(np.float32, copy=False)


__all__ = ["Embedder", "IssueState", "IssueStateDB", "cached_embeddings", "embedder_name",
           "mention_text", "text_hash"]
