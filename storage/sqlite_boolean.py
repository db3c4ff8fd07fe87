"""Boolean full-text search on the SQLite store (AND, OR, NOT, phrases, prefixes, filters).

The expression is backend-neutral, in the spirit of the Haystack filters of `storage.base`:

* ``{"op": "TEXT", "tokens": ["ngap", "nuoc"], "prefix": False}``: the folded words, adjacent
  (a phrase); with ``prefix`` the last word is a prefix;
* ``{"op": "FILTER", "filter": <a storage.base filter>}``: a condition on the mention's fields;
* ``{"op": "AND" | "OR", "args": [...]}`` and ``{"op": "NOT", "args": [expr]}``.

Text-only parts become one FTS5 MATCH expression in which every word is a quoted string made
only of letters and digits (no user syntax ever reaches FTS5's parser); fields become SQL over
``mentions``. When the expression is a conjunction with a positive text part, that part drives
the query through the full-text index and results come by bm25 relevance with highlights;
otherwise newest first.

It uses SQLiteStore's connection and filter compiler (same package), adding no table.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from storage.base import FilterError, Filters, SearchHit, SearchPage, validate_filters
from storage.sqlite import (
    TEXT_WEIGHT,
    TITLE_WEIGHT,
    ParsedQuery,
    SQLiteStore,
    _compile_filters,
    _row_to_mention,
    make_highlight,
)

log = logging.getLogger(__name__)

Expr = dict[str, Any]
_SAFE_TOKEN = re.compile(r"^[^\W_]+$")
MAX_NODES = 200


class ExpressionError(ValueError):
    """A boolean expression that does not follow the format above."""


def validate_expression(expr: Expr, _count: list[int] | None = None) -> None:
    """Raise ExpressionError when `expr` is malformed (or larger than MAX_NODES nodes)."""
    count = _count if _count is not None else [0]
    count[0] += 1
    if count[0] > MAX_NODES:
        raise ExpressionError(f"expression has more than {MAX_NODES} nodes")
    if not isinstance(expr, dict):
        raise ExpressionError(f"expected a dict node, got {type(expr).__name__}")
    op = expr.get("op")
    if op == "TEXT":
        tokens = expr.get("tokens")
        if not isinstance(tokens, list | tuple) or not tokens:
            raise ExpressionError("TEXT needs a non-empty list of tokens")
        for token in tokens:
            if not isinstance(token, str) or not _SAFE_TOKEN.match(token):
                raise ExpressionError(f"TEXT token must be letters/digits only, got {token!r}")
    elif op == "FILTER":
        try:
            validate_filters(expr.get("filter"))
        except FilterError as exc:
            raise ExpressionError(str(exc)) from exc
    elif op in ("AND", "OR"):
        args = expr.get("args")
        if not isinstance(args, list) or not args:
            raise ExpressionError(f"{op} needs a non-empty list of args")
        for arg in args:
            validate_expression(arg, count)
    elif op == "NOT":
        args = expr.get("args")
        if not isinstance(args, list) or len(args) != 1:
            raise ExpressionError("NOT takes exactly one arg")
        validate_expression(args[0], count)
    else:
        raise ExpressionError(f"unknown op {op!r}")


def _text_only(expr: Expr) -> bool:
    op = expr["op"]
    if op == "TEXT":
        return True
    if op == "FILTER":
        return False
    return all(_text_only(a) for a in expr["args"])


def _fts(expr: Expr) -> str | None:
    """FTS5 MATCH syntax for a text-only expression, or None when FTS5 cannot say it (a NOT
    with nothing positive beside it)."""
    op = expr["op"]
    if op == "TEXT":
        return '"' + " ".join(expr["tokens"]) + '"' + ("*" if expr.get("prefix") else "")
    if op == "NOT":
        return None
    if op == "OR":
        parts = [_fts(a) for a in expr["args"]]
        if any(p is None for p in parts):
            return None
        return "(" + " OR ".join(p for p in parts if p) + ")"
    positives = [a for a in expr["args"] if a["op"] != "NOT"]
    negatives = [a["args"][0] for a in expr["args"] if a["op"] == "NOT"]
    if not positives:
        return None
    pos = [_fts(a) for a in positives]
    neg = [_fts(a) for a in negatives]
    if any(p is None for p in pos) or any(n is None for n in neg):
        return None
    out = "(" + " AND ".join(p for p in pos if p) + ")"
    if neg:
        out += " NOT (" + " OR ".join(n for n in neg if n) + ")"
    return "(" + out + ")"


def _sql(expr: Expr, params: list[Any]) -> str:
    """SQL predicate over `mentions m` for any expression."""
    op = expr["op"]
    if op == "FILTER":
        return _compile_filters(expr["filter"], params)
    if _text_only(expr):
        match = _fts(expr)
        if match is not None:
            params.append(match)
            return "m.rid IN (SELECT rowid FROM mentions_fts WHERE mentions_fts MATCH ?)"
    if op == "TEXT":  # pragma: no cover - a TEXT node always has an FTS form
        raise AssertionError
    if op == "NOT":
        return "(NOT " + _sql(expr["args"][0], params) + ")"
    joiner = " AND " if op == "AND" else " OR "
    return "(" + joiner.join(_sql(a, params) for a in expr["args"]) + ")"


def positive_terms(expr: Expr, negated: bool = False) -> list[tuple[tuple[str, ...], bool]]:
    """The words and phrases that make a mention match (not those under a NOT), for highlights."""
    op = expr["op"]
    if op == "TEXT":
        return [] if negated else [(tuple(expr["tokens"]), bool(expr.get("prefix")))]
    if op == "FILTER":
        return []
    inner = negated ^ (op == "NOT")
    return [t for a in expr["args"] for t in positive_terms(a, inner)]


@dataclass
class _Split:
    match: str | None  # FTS5 expression driving the query (relevance order), or None
    rest: Expr | None  # what remains, as SQL


def _split(expr: Expr) -> _Split:
    """Pull out the text part of a top-level conjunction that FTS5 can evaluate by itself."""
    if _text_only(expr):
        match = _fts(expr)
        return _Split(match, None) if match is not None else _Split(None, expr)
    if expr["op"] != "AND":
        return _Split(None, expr)
    texts = [a for a in expr["args"] if _text_only(a)]
    others = [a for a in expr["args"] if not _text_only(a)]
    if not texts:
        return _Split(None, expr)
    match = _fts({"op": "AND", "args": texts})
    if match is None:
        return _Split(None, expr)
    rest = others[0] if len(others) == 1 else {"op": "AND", "args": others}
    return _Split(match, rest)


def search_boolean(store: SQLiteStore, expr: Expr, filters: Filters | None = None, *,
                   limit: int = 20, offset: int = 0) -> SearchPage:
    """Mentions matching `expr` AND `filters`: by relevance (with highlights) when a text part
    drives the query, else newest first."""
    validate_expression(expr)
    validate_filters(filters)
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")
    conn = store._conn()
    split = _split(expr)
    params: list[Any] = []
    where_parts = []
    if split.rest is not None:
        where_parts.append(_sql(split.rest, params))
    if filters:
        where_parts.append(_compile_filters(filters, params))
    where = " AND ".join(where_parts) or "1"
    terms = positive_terms(expr)
    highlight_query = ParsedQuery(split.match, terms) if terms else None
    try:
        if split.match is not None:
            bm25 = f"bm25(mentions_fts, {TITLE_WEIGHT}, {TEXT_WEIGHT})"
            base = ("FROM mentions_fts JOIN mentions m ON m.rid = mentions_fts.rowid "
                    f"WHERE mentions_fts MATCH ? AND {where}")
            total = conn.execute(f"SELECT COUNT(*) {base}", [split.match, *params]).fetchone()[0]
            rows = [(r, -float(r["relevance"])) for r in conn.execute(
                f"SELECT m.*, {bm25} AS relevance {base} ORDER BY relevance, m.rid DESC LIMIT ? OFFSET ?",
                [split.match, *params, limit, offset])]
        else:
            total = conn.execute(f"SELECT COUNT(*) FROM mentions m WHERE {where}", params).fetchone()[0]
            rows = [(r, 0.0) for r in conn.execute(
                f"SELECT m.* FROM mentions m WHERE {where} ORDER BY m.published_at DESC, m.rid DESC "
                "LIMIT ? OFFSET ?", [*params, limit, offset])]
    except sqlite3.OperationalError as exc:  # defensive: every word is quoted, so this should not happen
        log.warning("boolean search failed: %s", exc)
        return SearchPage(total=0)
    hits = [SearchHit(mention=_row_to_mention(r), score=score,
                      highlight=make_highlight(r["title"], r["text"], highlight_query)
                      if highlight_query else None)
            for r, score in rows]
    return SearchPage(total=int(total), hits=hits)
