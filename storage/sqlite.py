"""Embedded storage backend: one SQLite file (WAL), FTS5 full-text search over folded text.

Design in short (the schema itself is in `storage.migrations`):

* One connection per thread (`storage.connections`); writes run in ``BEGIN IMMEDIATE`` transactions,
  serialised in-process by a lock and across processes by SQLite's busy timeout.
* Writes are idempotent by mention id and batched in one transaction (``executemany``).
* Search indexes ``nlp.text.fold`` of title and text in an external-content FTS5 table, so
  'ngap nuoc', 'Ngập Nước' and 'ngập nước' all find "ngập nước". The highlight is cut from the
  ORIGINAL text, with the matched words wrapped in ``<mark>…</mark>`` and the rest HTML-escaped.
* Datetimes are stored as UTC ISO strings with a fixed width (sortable) and read back aware.

Query syntax (sanitised, never an FTS5 error): plain words are ANDed; ``"quoted words"`` must be
adjacent; a trailing ``*`` makes a word a prefix (``ngap*``, at least 2 characters). Everything
else (operators, brackets, quotes out of place, SQL) is treated as text and reduced to words.
A query that is None or blank behaves as no query (newest first); a non-blank query with no
searchable word returns zero hits.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from langnghe.records import PERIODS, Issue, Location, Mention, RankingEntry, utcnow
from nlp.text import fold
from storage.base import (
    FilterError,
    Filters,
    SearchHit,
    SearchPage,
    WriteResult,
    check_filter_value,
    ts,
    validate_filters,
)
from storage.connections import SQLiteConnections
from storage.migrations import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)

__all__ = [
    "SCHEMA_VERSION", "SQLiteStore", "SchemaVersionError", "open_store", "parse_query",
    "make_highlight",
]

_CHUNK = 500  # ids per "IN (...)" (SQLite's default limit on variables is 32766; stay small)
MAX_QUERY_TERMS = 32  # words kept from a search query; the rest is ignored
MAX_QUERY_CHARS = 2000  # characters of a search query that are read
SNIPPET_CHARS = 240  # length of a highlight cut from a long text
TITLE_WEIGHT, TEXT_WEIGHT = 2.0, 1.0  # bm25 column weights

_MENTION_COLUMNS = (
    "id", "source", "url", "title", "text", "published_at", "crawled_at", "language", "author",
    "civic", "civic_score", "sentiment", "sentiment_score", "topic", "department", "topic_score",
    "department_score", "locations", "areas", "issue_id", "processed_at", "story_id",
)
_CRAWL_FIELDS = ("source", "url", "title", "text", "published_at", "language", "author",
                 "story_id")
_ENRICHMENT_FIELDS = (
    "civic", "civic_score", "sentiment", "sentiment_score", "topic", "department", "topic_score",
    "department_score", "locations", "areas", "issue_id", "processed_at",
)
_ISSUE_COLUMNS = (
    "id", "label", "topic", "department", "area_ids", "keywords", "first_seen", "last_seen",
    "mention_count",
)
_RANKING_COLUMNS = (
    "area_id", "period", "period_key", "rank", "issue_id", "score", "score_parts", "mention_count",
    "source_count", "sentiment_counts", "evidence_ids",
)
# filter field -> column of `mentions m` (``area`` is handled through mention_areas)
_FILTER_COLUMNS = {
    "topic": "m.topic", "department": "m.department", "sentiment": "m.sentiment",
    "source": "m.source", "civic": "m.civic", "issue_id": "m.issue_id", "language": "m.language",
    "published_at": "m.published_at",
}
_FOLD_PROBE = "ĐđÀÁẢÃẠàáảãạĂẮẰẲẴẶăắằẳẵặÂẤẦẨẪẬâấầẩẫậÈÉẺẼẸèéẻẽẹÊẾỀỂỄỆêếềểễệÌÍỈĨỊìíỉĩị" \
    "ÒÓỎÕỌòóỏõọÔỐỒỔỖỘôốồổỗộƠỚỜỞỠỢơớờởỡợÙÚỦŨỤùúủũụƯỨỪỬỮỰưứừửữựỲÝỶỸỴỳýỷỹỵ Quận 7 HCM"


class SchemaVersionError(RuntimeError):
    """The database file was written by a newer version of Lắng Nghe than this one."""


# ---------------------------------------------------------------------------------------------
# values




def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _mention_values(m: Mention) -> dict[str, Any]:
    """A mention as the column values of `mentions`; raises ValueError on a malformed mention."""
    if not isinstance(m, Mention):
        raise ValueError(f"expected a Mention, got {type(m).__name__}")
    if not isinstance(m.id, str) or not m.id:
        raise ValueError(f"mention id must be a non-empty string, got {m.id!r}")
    for name in ("source", "url", "title", "text", "language"):
        if not isinstance(getattr(m, name), str):
            raise ValueError(f"mention {m.id}: {name} must be a string")
    for name in ("published_at", "crawled_at"):
        if not isinstance(getattr(m, name), datetime):
            raise ValueError(f"mention {m.id}: {name} must be a datetime")
    if m.processed_at is not None and not isinstance(m.processed_at, datetime):
        raise ValueError(f"mention {m.id}: processed_at must be a datetime or None")
    return {
        "id": m.id, "source": m.source, "url": m.url, "title": m.title, "text": m.text,
        "published_at": ts(m.published_at), "crawled_at": ts(m.crawled_at),
        "language": m.language, "author": m.author,
        "civic": None if m.civic is None else int(bool(m.civic)),
        "civic_score": None if m.civic_score is None else float(m.civic_score),
        "sentiment": m.sentiment,
        "sentiment_score": None if m.sentiment_score is None else float(m.sentiment_score),
        "topic": m.topic, "department": m.department,
        "topic_score": None if m.topic_score is None else float(m.topic_score),
        "department_score": None if m.department_score is None else float(m.department_score),
        "locations": _json([loc.to_dict() if isinstance(loc, Location) else loc for loc in m.locations]),
        "areas": _json(list(dict.fromkeys(m.areas))),
        "issue_id": m.issue_id,
        "processed_at": None if m.processed_at is None else ts(m.processed_at),
        "story_id": m.story_id,
    }


def _row_to_mention(row: sqlite3.Row) -> Mention:
    published_at, crawled_at = _dt(row["published_at"]), _dt(row["crawled_at"])
    assert published_at is not None and crawled_at is not None
    return Mention(
        id=row["id"], source=row["source"], url=row["url"], title=row["title"], text=row["text"],
        published_at=published_at, crawled_at=crawled_at, language=row["language"],
        author=row["author"],
        civic=None if row["civic"] is None else bool(row["civic"]),
        civic_score=row["civic_score"], sentiment=row["sentiment"],
        sentiment_score=row["sentiment_score"], topic=row["topic"], department=row["department"],
        topic_score=row["topic_score"], department_score=row["department_score"],
        locations=[Location.from_dict(d) for d in json.loads(row["locations"])],
        areas=list(json.loads(row["areas"])), issue_id=row["issue_id"],
        processed_at=_dt(row["processed_at"]), story_id=row["story_id"],
    )


def _issue_values(issue: Issue) -> dict[str, Any]:
    if not isinstance(issue, Issue) or not isinstance(issue.id, str) or not issue.id:
        raise ValueError(f"expected an Issue with a non-empty id, got {issue!r}")
    return {
        "id": issue.id, "label": issue.label, "topic": issue.topic, "department": issue.department,
        "area_ids": _json(list(issue.area_ids)), "keywords": _json(list(issue.keywords)),
        "first_seen": ts(issue.first_seen), "last_seen": ts(issue.last_seen),
        "mention_count": int(issue.mention_count),
    }


def _row_to_issue(row: sqlite3.Row) -> Issue:
    first_seen, last_seen = _dt(row["first_seen"]), _dt(row["last_seen"])
    assert first_seen is not None and last_seen is not None
    return Issue(
        id=row["id"], label=row["label"], topic=row["topic"], department=row["department"],
        area_ids=list(json.loads(row["area_ids"])), keywords=list(json.loads(row["keywords"])),
        first_seen=first_seen, last_seen=last_seen, mention_count=row["mention_count"],
    )


def _row_to_ranking(row: sqlite3.Row) -> RankingEntry:
    return RankingEntry(
        area_id=row["area_id"], period=row["period"], period_key=row["period_key"], rank=row["rank"],
        issue_id=row["issue_id"], score=row["score"], score_parts=json.loads(row["score_parts"]),
        mention_count=row["mention_count"], source_count=row["source_count"],
        sentiment_counts=json.loads(row["sentiment_counts"]),
        evidence_ids=list(json.loads(row["evidence_ids"])),
    )


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# ---------------------------------------------------------------------------------------------
# filters -> SQL (values are always bound parameters)


def _filter_value(field_name: str, value: Any, *, nullable: bool) -> Any:
    """A condition's value as stored here (civic as 0/1)."""
    checked = check_filter_value(field_name, value, nullable=nullable)
    return int(checked) if isinstance(checked, bool) else checked


def _compile_filters(filters: Filters | None, params: list[Any], published: str = "m.published_at") -> str:
    """SQL boolean expression over `mentions m` for a validated filter; appends its parameters.

    `published` is the column that published_at conditions compare (``a.published_at`` when the
    query is driven by mention_areas, so its index serves date ranges too).
    """
    if not filters:
        return "1"
    if "conditions" in filters:
        parts = [_compile_filters(cond, params, published) for cond in filters["conditions"]]
        op = filters["operator"]
        if op == "AND":
            return "(" + " AND ".join(parts) + ")" if parts else "1"
        if op == "OR":
            return "(" + " OR ".join(parts) + ")" if parts else "0"
        # NOT: negation of the AND of its conditions (as Haystack); NOT of nothing matches nothing
        return "(NOT (" + " AND ".join(parts) + "))" if parts else "0"
    name, op, value = filters["field"], filters["operator"], filters.get("value")
    if name == "area":
        return _compile_area(op, value, params)
    column = published if name == "published_at" else _FILTER_COLUMNS[name]
    if op in ("==", "!="):
        params.append(_filter_value(name, value, nullable=True))
        return f"{column} IS ?" if op == "==" else f"{column} IS NOT ?"
    if op in ("in", "not in"):
        values = [_filter_value(name, v, nullable=True) for v in (value or ())]
        has_null = any(v is None for v in values)
        values = [v for v in values if v is not None]
        params.extend(values)
        marks = ",".join("?" * len(values))
        if op == "in":
            parts = [f"{column} IN ({marks})"] if values else []
            parts += [f"{column} IS NULL"] if has_null else []
            return "(" + " OR ".join(parts) + ")" if parts else "0"
        if has_null:  # NULL excluded explicitly
            if not values:
                return f"{column} IS NOT NULL"
            return f"({column} IS NOT NULL AND {column} NOT IN ({marks}))"
        return f"({column} IS NULL OR {column} NOT IN ({marks}))" if values else "1"
    params.append(_filter_value(name, value, nullable=False))  # >, >=, <, <= on published_at
    return f"{column} {op} ?"


def _compile_area(op: str, value: Any, params: list[Any]) -> str:
    values = list(value) if op in ("in", "not in") else [value]
    for v in values:
        if not isinstance(v, str):
            raise FilterError(f"area: expected an area id string, got {v!r}")
    if not values:
        return "0" if op == "in" else "1"
    params.extend(values)
    cond = "x.area_id = ?" if len(values) == 1 else f"x.area_id IN ({','.join('?' * len(values))})"
    negate = "NOT " if op in ("!=", "not in") else ""
    # correlated: one lookup in mention_areas(mention_rid, area_id) per candidate mention
    return f"{negate}EXISTS (SELECT 1 FROM mention_areas x WHERE x.mention_rid = m.rid AND {cond})"


_AREA_JOIN = "mention_areas a JOIN mentions m ON m.rid = a.mention_rid"


@dataclass
class _Plan:
    """FROM and WHERE of a mention query, and the columns that order it by publication."""

    source: str
    where: str
    params: list[Any]
    published: str = "m.published_at"
    rid: str = "m.rid"
    needs_mentions: bool = True  # False: the count can be read from mention_areas alone

    @property
    def rows_source(self) -> str:
        """FROM clause for selecting mention rows (always joins mentions)."""
        return self.source if self.needs_mentions else _AREA_JOIN

    def count_sql(self) -> str:
        return f"SELECT COUNT(*) FROM {self.source} WHERE {self.where}"


def _plan(filters: Filters | None) -> _Plan:
    """Compile a validated filter. An ``area == X`` condition at the top (alone or in the top AND)
    drives the query from the (area_id, published_at) index of mention_areas, so "newest of
    area X" and "area X since D" read an index range instead of scanning mentions."""
    area: Any = None
    rest: Filters | None = filters
    if not filters:
        pass
    elif "conditions" not in filters and filters.get("field") == "area" and filters.get("operator") == "==":
        area, rest = filters.get("value"), None
    elif filters.get("operator") == "AND" and "conditions" in filters:
        for i, cond in enumerate(filters["conditions"]):
            if "conditions" not in cond and cond.get("field") == "area" and cond.get("operator") == "==":
                others = filters["conditions"][:i] + filters["conditions"][i + 1:]
                area, rest = cond.get("value"), {"operator": "AND", "conditions": others}
                break
    if area is None:
        params: list[Any] = []
        return _Plan("mentions m", _compile_filters(filters, params), params)
    if not isinstance(area, str):
        raise FilterError(f"area: expected an area id string, got {area!r}")
    params = [area]
    where = "a.area_id = ? AND " + _compile_filters(rest, params, "a.published_at")
    needs_mentions = "m." in where
    source = _AREA_JOIN if needs_mentions else "mention_areas a"
    return _Plan(source, where, params, "a.published_at", "a.mention_rid", needs_mentions)


# ---------------------------------------------------------------------------------------------
# search queries and highlights

_TOKEN = re.compile(r"[^\W_]+")
_QUERY_PART = re.compile(r'"([^"]*)"?|([^\s"]+)')


@dataclass
class ParsedQuery:
    """A user's query reduced to safe FTS5 syntax and the folded words to highlight."""

    match: str | None  # FTS5 MATCH expression; None when nothing searchable is left
    # each searched word or phrase: its folded tokens, and whether the last one is a prefix
    terms: list[tuple[tuple[str, ...], bool]] = field(default_factory=list)


def parse_query(query: str) -> ParsedQuery:
    """Fold and sanitise a user query: words ANDed, "quoted phrases", trailing * for prefixes.

    Every word is emitted as an FTS5 string ("…"), made only of letters and digits, so no
    operator, bracket or quote of the user's can reach FTS5's parser.
    """
    parts: list[str] = []
    terms: list[tuple[tuple[str, ...], bool]] = []
    budget = MAX_QUERY_TERMS
    for match in _QUERY_PART.finditer(query[:MAX_QUERY_CHARS]):
        if budget <= 0:
            break
        phrase, word = match.group(1), match.group(2)
        raw = phrase if phrase is not None else word
        tokens = _TOKEN.findall(fold(raw))[:budget]
        if not tokens:
            continue
        budget -= len(tokens)
        prefix = word is not None and word.endswith("*") and len(tokens[-1]) >= 2
        parts.append('"' + " ".join(tokens) + '"' + ("*" if prefix else ""))
        terms.append((tuple(tokens), prefix))
    return ParsedQuery(" AND ".join(parts) if parts else None, terms)


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    return fold(ch)


def _folded_with_map(text: str) -> tuple[str, list[int]]:
    """fold(text) char by char, and for each folded char the index of its original char.

    For NFC Vietnamese every letter folds to exactly one char; the map keeps this exact for any
    other input too (combining marks fold to nothing, a few letters to several chars).
    """
    out: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        folded = _fold_char(ch)
        out.append(folded)
        index.extend([i] * len(folded))
    return "".join(out), index


def _match_spans(text: str, query: ParsedQuery) -> list[tuple[int, int]]:
    """Spans (in `text`) of the words and whole phrases that match the query, in text order."""
    folded, index = _folded_with_map(text)
    tokens = list(_TOKEN.finditer(folded))
    words = [t.group(0) for t in tokens]
    marked: dict[int, int] = {}  # first token -> one past the last token of a match
    for i in range(len(words)):
        for term, prefix in query.terms:
            n = len(term)
            if i + n > len(words):
                continue
            if all(words[i + k] == term[k] for k in range(n - 1)) and (
                    words[i + n - 1].startswith(term[-1]) if prefix else words[i + n - 1] == term[-1]):
                marked[i] = max(marked.get(i, 0), i + n)
    spans: list[tuple[int, int]] = []
    covered = 0
    for i in sorted(marked):
        if i < covered:  # inside a longer match already marked
            continue
        last = tokens[marked[i] - 1]
        # the span ends where the next folded char starts, so trailing combining marks are kept
        end = index[last.end()] if last.end() < len(index) else len(text)
        spans.append((index[tokens[i].start()], end))
        covered = marked[i]
    return spans


def _marked(text: str, spans: list[tuple[int, int]], start: int, end: int) -> str:
    out: list[str] = []
    pos = start
    for s, e in spans:
        if s < start or e > end:
            continue
        out.append(html.escape(text[pos:s]))
        out.append("<mark>" + html.escape(text[s:e]) + "</mark>")
        pos = e
    out.append(html.escape(text[pos:end]))
    return "".join(out)


def _window(text: str, spans: list[tuple[int, int]], width: int) -> tuple[int, int]:
    """The stretch of about `width` chars holding the most matches, widened to whole words."""
    if len(text) <= width:
        return 0, len(text)
    best_start, best_count = 0, -1
    for s, _ in spans:
        start = max(0, s - width // 5)
        count = sum(1 for a, b in spans if a >= start and b <= start + width)
        if count > best_count:
            best_start, best_count = start, count
    start = best_start
    end = min(len(text), start + width)
    if start > 0:
        space = text.rfind(" ", 0, start + 1)
        start = space + 1 if space >= 0 and start - space < 20 else start
    if end < len(text):
        space = text.find(" ", end)
        end = space if space >= 0 and space - end < 20 else end
    return start, end


def make_highlight(title: str, text: str, query: ParsedQuery, width: int = SNIPPET_CHARS) -> str:
    """An HTML snippet of the original text with the query's words in <mark>…</mark>.

    Cut from the body where it matches, else the whole title when only the title matches, else
    the start of the body. Everything but the <mark> tags is HTML-escaped.
    """
    spans = _match_spans(text, query)
    if not spans:
        title_spans = _match_spans(title, query)
        if title_spans:
            return _marked(title, title_spans, 0, len(title))
    start, end = _window(text, spans, width)
    return ("…" if start > 0 else "") + _marked(text, spans, start, end) + ("…" if end < len(text) else "")


def _fold_fingerprint() -> str:
    """Changes when nlp.text.fold changes, so the search index is rebuilt on open."""
    return hashlib.sha1(fold(_FOLD_PROBE).encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# the store


class SQLiteStore:
    """The `storage.base.Store` protocol on one SQLite file. Safe to share between threads."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        if str(path) == ":memory:" or not str(path):
            raise ValueError("SQLiteStore needs a file path (':memory:' is not supported)")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = SQLiteConnections(self.path, timeout=timeout, label="store")
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    # -- connections and transactions

    def _conn(self) -> sqlite3.Connection:
        return self._db.get()

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on any error)."""
        return self._db.write()

    def _migrate(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"{self.path} has schema version {version}, newer than this program's "
                    f"({SCHEMA_VERSION}); upgrade Lắng Nghe to open it"
                )
            for number in range(version, SCHEMA_VERSION):
                log.info("migrating %s to schema version %d", self.path, number + 1)
                for statement in MIGRATIONS[number]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1:d}")
            row = conn.execute("SELECT value FROM meta WHERE key = 'fold'").fetchone()
            fingerprint = _fold_fingerprint()
            if row is None or row["value"] != fingerprint:
                if row is not None:
                    log.warning("text folding changed since %s was indexed: rebuilding search index",
                                self.path)
                    self._rebuild_fts(conn)
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('fold', ?)", (fingerprint,))

    def schema_version(self) -> int:
        """The schema version of the open file."""
        return int(self._conn().execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        """Close every connection of every thread; the store cannot be used afterwards."""
        self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- mentions: writes

    def write_mentions(self, mentions: Iterable[Mention]) -> WriteResult:
        """Insert or update by id, all in one transaction.

        * an id not stored yet is inserted as given;
        * the same mention again (any crawled_at) changes nothing (``unchanged``);
        * a re-crawl takes the new crawl fields (source, url, title, text, published_at, language,
          author); the enrichment stored is kept unless the incoming mention carries its own
          (``processed_at`` set). When title or text changed, ``processed_at`` is reset to NULL
          (so the mention is processed again) and ``crawled_at`` takes the new value;
          otherwise ``crawled_at`` keeps the first crawl's time.

        A malformed mention raises ValueError before anything is written.
        """
        incoming = [_mention_values(m) for m in mentions]
        result = WriteResult()
        if not incoming:
            return result
        with self._write() as conn:
            stored = self._fetch_rows(conn, "mentions", [v["id"] for v in incoming])
            current: dict[str, dict[str, Any]] = {}
            for new in incoming:
                old = current.get(new["id"]) or stored.get(new["id"])
                if old is None:
                    current[new["id"]] = new
                    result.inserted += 1
                    continue
                merged = dict(old)
                merged.update({k: new[k] for k in _CRAWL_FIELDS})
                if new["story_id"] is None:  # a writer that knows no story keeps the stored one
                    merged["story_id"] = old["story_id"]
                text_changed = old["title"] != new["title"] or old["text"] != new["text"]
                if text_changed:
                    merged["crawled_at"] = new["crawled_at"]
                if new["processed_at"] is not None:
                    merged.update({k: new[k] for k in _ENRICHMENT_FIELDS})
                elif text_changed:
                    merged["processed_at"] = None
                if all(merged[k] == old[k] for k in _MENTION_COLUMNS):
                    result.unchanged += 1
                else:
                    result.updated += 1
                current[new["id"]] = merged
            self._apply_mentions(conn, stored, current)
        return result

    def _apply_mentions(self, conn: sqlite3.Connection, stored: dict[str, dict[str, Any]],
                        current: dict[str, dict[str, Any]]) -> None:
        """Write the final state of each id: inserts, updates, FTS and area rows."""
        next_rid = conn.execute("SELECT COALESCE(MAX(rid), 0) + 1 FROM mentions").fetchone()[0]
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        fts_delete: list[tuple[int, str, str]] = []
        fts_insert: list[tuple[int, str, str]] = []
        areas_delete: list[tuple[int]] = []
        areas_insert: list[tuple[str, str, int]] = []
        for mention_id, values in current.items():
            old = stored.get(mention_id)
            if old is None:
                values = dict(values, rid=next_rid)
                next_rid += 1
                inserts.append(values)
                fts_insert.append((values["rid"], fold(values["title"]), fold(values["text"])))
            else:
                if all(values[k] == old[k] for k in _MENTION_COLUMNS):
                    continue
                values = dict(values, rid=old["rid"])
                updates.append(values)
                if values["title"] != old["title"] or values["text"] != old["text"]:
                    fts_delete.append((old["rid"], fold(old["title"]), fold(old["text"])))
                    fts_insert.append((old["rid"], fold(values["title"]), fold(values["text"])))
                if values["areas"] == old["areas"] and values["published_at"] == old["published_at"]:
                    continue
                areas_delete.append((old["rid"],))
            areas_insert.extend((area, values["published_at"], values["rid"])
                                for area in json.loads(values["areas"]))
        columns = ("rid", *_MENTION_COLUMNS)
        if inserts:
            conn.executemany(
                f"INSERT INTO mentions ({','.join(columns)}) VALUES ({','.join(':' + c for c in columns)})",
                inserts)
        if updates:
            assignments = ",".join(f"{c} = :{c}" for c in _MENTION_COLUMNS if c != "id")
            conn.executemany(f"UPDATE mentions SET {assignments} WHERE rid = :rid", updates)
        self._apply_index_rows(conn, fts_delete, fts_insert, areas_delete, areas_insert)

    @staticmethod
    def _apply_index_rows(conn: sqlite3.Connection, fts_delete: list[tuple[int, str, str]],
                          fts_insert: list[tuple[int, str, str]], areas_delete: list[tuple[int]],
                          areas_insert: list[tuple[str, str, int]]) -> None:
        if fts_delete:
            conn.executemany(
                "INSERT INTO mentions_fts(mentions_fts, rowid, title, text) VALUES ('delete', ?, ?, ?)",
                fts_delete)
        if fts_insert:
            conn.executemany("INSERT INTO mentions_fts(rowid, title, text) VALUES (?, ?, ?)", fts_insert)
        if areas_delete:
            conn.executemany("DELETE FROM mention_areas WHERE mention_rid = ?", areas_delete)
        if areas_insert:
            conn.executemany(
                "INSERT OR IGNORE INTO mention_areas(area_id, published_at, mention_rid) VALUES (?, ?, ?)",
                areas_insert)

    def update_enrichment(self, mentions: Iterable[Mention]) -> int:
        """Store the NLP fields (civic…issue_id, processed_at) of stored mentions, by id.

        Crawl fields of the given mentions are ignored. A mention without ``processed_at`` is
        stamped with the current time (it has been processed). Unknown ids are skipped (logged).
        Returns the number of stored mentions updated.
        """
        incoming: dict[str, dict[str, Any]] = {}
        for m in mentions:
            if m.processed_at is None:
                m = Mention.from_dict({**m.to_dict(), "processed_at": utcnow()})
            incoming[m.id] = _mention_values(m)
        if not incoming:
            return 0
        with self._write() as conn:
            stored = self._fetch_rows(conn, "mentions", list(incoming))
            missing = len(incoming) - len(stored)
            if missing:
                log.warning("update_enrichment: %d unknown mention id(s) skipped", missing)
            updates: list[dict[str, Any]] = []
            areas_delete: list[tuple[int]] = []
            areas_insert: list[tuple[str, str, int]] = []
            for mention_id, old in stored.items():
                values = {k: incoming[mention_id][k] for k in _ENRICHMENT_FIELDS}
                values["rid"] = old["rid"]
                updates.append(values)
                if values["areas"] != old["areas"]:
                    areas_delete.append((old["rid"],))
                    areas_insert.extend((area, old["published_at"], old["rid"])
                                        for area in json.loads(values["areas"]))
            if updates:
                assignments = ",".join(f"{c} = :{c}" for c in _ENRICHMENT_FIELDS)
                conn.executemany(f"UPDATE mentions SET {assignments} WHERE rid = :rid", updates)
            self._apply_index_rows(conn, [], [], areas_delete, areas_insert)
        return len(stored)

    @staticmethod
    def _fetch_rows(conn: sqlite3.Connection, table: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        unique = list(dict.fromkeys(ids))
        rows: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(unique):
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(f"SELECT * FROM {table} WHERE id IN ({marks})", tuple(chunk)):
                rows[row["id"]] = dict(row)
        return rows

    # -- mentions: reads

    def get_mention(self, mention_id: str) -> Mention | None:
        row = self._conn().execute("SELECT * FROM mentions WHERE id = ?", (mention_id,)).fetchone()
        return None if row is None else _row_to_mention(row)

    def get_mentions(self, ids: Sequence[str]) -> list[Mention]:
        """Mentions by id, in the order of `ids` (an id given twice comes twice); unknown ids left out."""
        conn = self._conn()
        found: dict[str, Mention] = {}
        unique = list(dict.fromkeys(ids))
        for chunk in _chunks(unique):
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(f"SELECT * FROM mentions WHERE id IN ({marks})", tuple(chunk)):
                found[row["id"]] = _row_to_mention(row)
        return [found[i] for i in ids if i in found]

    def count_mentions(self, filters: Filters | None = None) -> int:
        validate_filters(filters)
        plan = _plan(filters)
        row = self._conn().execute(plan.count_sql(), plan.params).fetchone()
        return int(row[0])

    def iter_mentions(self, filters: Filters | None = None, batch_size: int = 1000) -> Iterator[Mention]:
        """All matching mentions, oldest published first, read in batches (keyset pagination, so
        the caller may write to the store between batches)."""
        validate_filters(filters)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        plan = _plan(filters)
        after: tuple[str, int] | None = None
        while True:
            sql = f"SELECT m.* FROM {plan.rows_source} WHERE {plan.where}"
            args = list(plan.params)
            if after is not None:
                sql += f" AND ({plan.published}, {plan.rid}) > (?, ?)"
                args.extend(after)
            sql += f" ORDER BY {plan.published}, {plan.rid} LIMIT ?"
            args.append(batch_size)
            rows = self._conn().execute(sql, args).fetchall()
            for row in rows:
                yield _row_to_mention(row)
            if len(rows) < batch_size:
                return
            after = (rows[-1]["published_at"], rows[-1]["rid"])

    def unprocessed_mentions(self, limit: int = 1000) -> list[Mention]:
        """Mentions not yet enriched (processed_at is null), oldest crawled first (then by id)."""
        rows = self._conn().execute(
            "SELECT * FROM mentions WHERE processed_at IS NULL ORDER BY crawled_at, id LIMIT ?",
            (max(0, limit),)).fetchall()
        return [_row_to_mention(row) for row in rows]

    def search(self, query: str | None, filters: Filters | None = None, *, limit: int = 20,
               offset: int = 0) -> SearchPage:
        """Accent-insensitive full-text search (see the module docstring for the query syntax).

        With a query: bm25 relevance (title weighs double), ties most recently stored first,
        ``score`` = -bm25 (higher is better) and a ``highlight``. Without: newest first, no highlight.
        """
        validate_filters(filters)
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        conn = self._conn()
        if query is None or not query.strip():
            plan = _plan(filters)
            total = conn.execute(plan.count_sql(), plan.params).fetchone()[0]
            rows = conn.execute(
                f"SELECT m.* FROM {plan.rows_source} WHERE {plan.where} "
                f"ORDER BY {plan.published} DESC, {plan.rid} DESC LIMIT ? OFFSET ?",
                [*plan.params, limit, offset]).fetchall()
            return SearchPage(total=int(total), hits=[SearchHit(_row_to_mention(r)) for r in rows])
        parsed = parse_query(query)
        if parsed.match is None:
            return SearchPage(total=0)
        params: list[Any] = []
        where = _compile_filters(filters, params)  # the full-text match drives this query
        bm25 = f"bm25(mentions_fts, {TITLE_WEIGHT}, {TEXT_WEIGHT})"
        try:
            if where == "1":  # no filter: count and rank in the index alone, then read the page
                total = conn.execute("SELECT COUNT(*) FROM mentions_fts WHERE mentions_fts MATCH ?",
                                     (parsed.match,)).fetchone()[0]
                ranked = conn.execute(
                    f"SELECT rowid, {bm25} AS relevance FROM mentions_fts WHERE mentions_fts MATCH ? "
                    "ORDER BY relevance, rowid DESC LIMIT ? OFFSET ?",
                    (parsed.match, limit, offset)).fetchall()
                by_rid = self._rows_by_rid(conn, [r[0] for r in ranked])
                rows = [(by_rid[rid], relevance) for rid, relevance in ranked if rid in by_rid]
            else:
                base = ("FROM mentions_fts JOIN mentions m ON m.rid = mentions_fts.rowid "
                        f"WHERE mentions_fts MATCH ? AND {where}")
                total = conn.execute(f"SELECT COUNT(*) {base}", [parsed.match, *params]).fetchone()[0]
                rows = [(r, r["relevance"]) for r in conn.execute(
                    f"SELECT m.*, {bm25} AS relevance {base} ORDER BY relevance, m.rid DESC LIMIT ? OFFSET ?",
                    [parsed.match, *params, limit, offset])]
        except sqlite3.OperationalError as exc:  # defensive: parse_query should make this impossible
            log.warning("search query %r (FTS5 %r) failed: %s", query, parsed.match, exc)
            return SearchPage(total=0)
        hits = [
            SearchHit(mention=_row_to_mention(r), score=-float(relevance),
                      highlight=make_highlight(r["title"], r["text"], parsed))
            for r, relevance in rows
        ]
        return SearchPage(total=int(total), hits=hits)

    @staticmethod
    def _rows_by_rid(conn: sqlite3.Connection, rids: Sequence[int]) -> dict[int, sqlite3.Row]:
        found: dict[int, sqlite3.Row] = {}
        for chunk in _chunks(list(rids)):
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(f"SELECT * FROM mentions WHERE rid IN ({marks})", tuple(chunk)):
                found[row["rid"]] = row
        return found

    # -- search index maintenance

    def _rebuild_fts(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO mentions_fts(mentions_fts) VALUES ('delete-all')")
        cursor = conn.execute("SELECT rid, title, text FROM mentions ORDER BY rid")
        while True:
            rows = cursor.fetchmany(5000)
            if not rows:
                break
            conn.executemany("INSERT INTO mentions_fts(rowid, title, text) VALUES (?, ?, ?)",
                             [(r["rid"], fold(r["title"]), fold(r["text"])) for r in rows])

    def rebuild_search_index(self) -> None:
        """Re-index every mention's folded title and text (never use FTS5's own 'rebuild' here:
        the index holds folded text, not the content table's)."""
        with self._write() as conn:
            self._rebuild_fts(conn)

    def optimize(self) -> None:
        """Merge the full-text index's segments and refresh the planner's statistics."""
        with self._write() as conn:
            conn.execute("INSERT INTO mentions_fts(mentions_fts) VALUES ('optimize')")
        self._conn().execute("PRAGMA optimize")

    # -- issues and rankings

    def write_issues(self, issues: Iterable[Issue]) -> WriteResult:
        """Insert or replace issues by id, in one transaction; identical ones count as unchanged."""
        incoming = [_issue_values(i) for i in issues]
        result = WriteResult()
        if not incoming:
            return result
        with self._write() as conn:
            stored = self._fetch_rows(conn, "issues", [v["id"] for v in incoming])
            current: dict[str, dict[str, Any]] = {}
            for new in incoming:
                old = current.get(new["id"]) or stored.get(new["id"])
                if old is None:
                    result.inserted += 1
                elif all(new[k] == old[k] for k in _ISSUE_COLUMNS):
                    result.unchanged += 1
                else:
                    result.updated += 1
                current[new["id"]] = new
            changed = [v for k, v in current.items()
                       if k not in stored or any(v[c] != stored[k][c] for c in _ISSUE_COLUMNS)]
            if changed:
                assignments = ",".join(f"{c} = excluded.{c}" for c in _ISSUE_COLUMNS if c != "id")
                conn.executemany(
                    f"INSERT INTO issues ({','.join(_ISSUE_COLUMNS)}) "
                    f"VALUES ({','.join(':' + c for c in _ISSUE_COLUMNS)}) "
                    f"ON CONFLICT(id) DO UPDATE SET {assignments}", changed)
        return result

    def get_issue(self, issue_id: str) -> Issue | None:
        row = self._conn().execute("SELECT * FROM issues WHERE id = ?", (issue_id,)).fetchone()
        return None if row is None else _row_to_issue(row)

    def get_issues(self, ids: Sequence[str]) -> list[Issue]:
        """Issues by id, in the order of `ids`; unknown ids left out (an extension of the protocol)."""
        conn = self._conn()
        found: dict[str, Issue] = {}
        for chunk in _chunks(list(dict.fromkeys(ids))):
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(f"SELECT * FROM issues WHERE id IN ({marks})", tuple(chunk)):
                found[row["id"]] = _row_to_issue(row)
        return [found[i] for i in ids if i in found]

    def list_issues(self) -> list[Issue]:
        """Every issue, most recently seen first."""
        rows = self._conn().execute("SELECT * FROM issues ORDER BY last_seen DESC, id").fetchall()
        return [_row_to_issue(row) for row in rows]

    def replace_rankings(self, period: str, period_key: str, entries: Iterable[RankingEntry]) -> int:
        """Replace every ranking of one period (all areas) in one transaction; returns rows written.

        Raises ValueError (writing nothing) for an unknown period, an entry of another period,
        a rank below 1 or the same (area, rank) twice.
        """
        if period not in PERIODS:
            raise ValueError(f"unknown period {period!r}; expected one of {PERIODS}")
        rows: list[dict[str, Any]] = []
        seen: set[tuple[str, int]] = set()
        for e in entries:
            if e.period != period or e.period_key != period_key:
                raise ValueError(
                    f"entry for {e.period}/{e.period_key} given to replace {period}/{period_key}")
            if int(e.rank) < 1:
                raise ValueError(f"rank must be at least 1, got {e.rank} ({e.area_id})")
            if (e.area_id, int(e.rank)) in seen:
                raise ValueError(f"rank {e.rank} given twice for area {e.area_id}")
            seen.add((e.area_id, int(e.rank)))
            rows.append({
                "area_id": e.area_id, "period": period, "period_key": period_key, "rank": int(e.rank),
                "issue_id": e.issue_id, "score": float(e.score), "score_parts": _json(e.score_parts),
                "mention_count": int(e.mention_count), "source_count": int(e.source_count),
                "sentiment_counts": _json(e.sentiment_counts), "evidence_ids": _json(list(e.evidence_ids)),
            })
        with self._write() as conn:
            conn.execute("DELETE FROM rankings WHERE period = ? AND period_key = ?", (period, period_key))
            conn.executemany(
                f"INSERT INTO rankings ({','.join(_RANKING_COLUMNS)}) "
                f"VALUES ({','.join(':' + c for c in _RANKING_COLUMNS)})", rows)
        return len(rows)

    def top_issues(self, area_id: str, period: str, period_key: str, limit: int = 10) -> list[RankingEntry]:
        """One area's ranking for one period, by rank (the primary-key index answers it)."""
        rows = self._conn().execute(
            "SELECT * FROM rankings WHERE area_id = ? AND period = ? AND period_key = ? "
            "ORDER BY rank LIMIT ?", (area_id, period, period_key, max(0, limit))).fetchall()
        return [_row_to_ranking(row) for row in rows]

    def ranking_keys(self, period: str) -> list[str]:
        """Period keys with a stored ranking, newest first."""
        rows = self._conn().execute(
            "SELECT DISTINCT period_key FROM rankings WHERE period = ? ORDER BY period_key DESC",
            (period,)).fetchall()
        return [row[0] for row in rows]

    # -- job state

    def get_state(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_state(self, key: str, value: str) -> None:
        if not isinstance(value, str):
            raise ValueError(f"state values are strings, got {type(value).__name__}")
        with self._write() as conn:
            conn.execute(
                "INSERT INTO state(key, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (key, value, ts(utcnow())))


def open_store(path: str | Path | None = None) -> SQLiteStore:
    """Open (creating and migrating as needed) the store at `path`, default: the settings' database."""
    if path is None:
        from langnghe.config import get_settings

        path = get_settings().database
    return SQLiteStore(path)
