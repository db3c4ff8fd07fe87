"""Search and export for the API and the pages: the query language, restricted to the caller's
scope, on any Store (boolean SQL on SQLite, an evaluation in Python elsewhere)."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator
from typing import Any

from api.auth.models import Scope
from api.query_language import Node, matches, parse, to_expression
from langnghe.records import Mention, to_city_time
from storage.base import Filters, SearchHit, SearchPage, Store

MAX_SCAN = 20_000  # mentions read by the in-Python evaluation (non-SQLite backends)
EXPORT_MAX_ROWS = 10_000
EXPORT_BATCH = 500
CSV_COLUMNS = ("id", "published_at", "source", "url", "title", "sentiment", "topic", "department",
               "areas", "issue_id", "text")


def run_search(store: Store, query: str | None, *, scope: Scope, filters: Filters | None = None,
               areas: Any = None, limit: int = 20, offset: int = 0, node: Node | None = None) -> SearchPage:
    """Mentions matching `query` (the query language) and `filters`, inside `scope` — search
    results are silently restricted to what the caller may see. Raises QueryError for a bad field
    value. A non-blank query with nothing searchable finds nothing."""
    if node is None and query and query.strip():
        node = parse(query, areas)
        if node is None:
            return SearchPage(total=0)
    restricted = scope.restrict(filters)
    if node is None:
        return store.search(None, restricted or None, limit=limit, offset=offset)
    try:
        from storage.sqlite import SQLiteStore
        from storage.sqlite_boolean import search_boolean
    except ImportError:  # pragma: no cover - the SQLite backend is always there today
        SQLiteStore = None  # type: ignore[assignment,misc]  # noqa: N806
    if SQLiteStore is not None and isinstance(store, SQLiteStore):
        return search_boolean(store, to_expression(node), restricted or None, limit=limit, offset=offset)
    hits: list[SearchHit] = []
    total = 0
    candidates = itertools.islice(store.iter_mentions(restricted or None), MAX_SCAN)
    newest_first = sorted(candidates, key=lambda m: m.published_at, reverse=True)
    for mention in newest_first:
        if matches(node, mention):
            if offset <= total < offset + limit:
                hits.append(SearchHit(mention))
            total += 1
    return SearchPage(total=total, hits=hits)


def iter_results(store: Store, query: str | None, *, scope: Scope, filters: Filters | None = None,
                 areas: Any = None, max_rows: int = EXPORT_MAX_ROWS) -> Iterator[Mention]:
    """Every matching mention (at most `max_rows`), read page by page."""
    node = parse(query, areas) if query and query.strip() else None
    if query and query.strip() and node is None:
        return
    sent = 0
    offset = 0
    while sent < max_rows:
        size = min(EXPORT_BATCH, max_rows - sent)
        page = run_search(store, None, scope=scope, filters=filters, areas=areas, limit=size,
                          offset=offset, node=node)
        for hit in page.hits:
            yield hit.mention
        sent += len(page.hits)
        offset += len(page.hits)
        if len(page.hits) < size:
            return


def _cell(value: str) -> str:
    """A CSV cell safe to open in a spreadsheet (no formula injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export_row(m: Mention) -> dict[str, Any]:
    return {"id": m.id, "published_at": to_city_time(m.published_at).isoformat(), "source": m.source,
            "url": m.url, "title": m.title, "sentiment": m.sentiment, "topic": m.topic,
            "department": m.department, "areas": list(m.areas), "issue_id": m.issue_id, "text": m.text}


def csv_chunks(mentions: Iterator[Mention]) -> Iterator[bytes]:
    """CSV (UTF-8 with BOM, so spreadsheet programs read Vietnamese correctly), row by row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield ("\ufeff" + buffer.getvalue()).encode("utf-8")
    for m in mentions:
        buffer.seek(0)
        buffer.truncate()
        row = export_row(m)
        writer.writerow([_cell(" ".join(row[c]) if c == "areas" else str(row[c] if row[c] is not None else ""))
                         for c in CSV_COLUMNS])
        yield buffer.getvalue().encode("utf-8")


def json_chunks(mentions: Iterator[Mention]) -> Iterator[bytes]:
    """A JSON array, one mention at a time."""
    yield b"["
    first = True
    for m in mentions:
        yield (b"" if first else b",") + b"\n" + json.dumps(export_row(m), ensure_ascii=False).encode("utf-8")
        first = False
    yield b"\n]\n"
