"""The search language of communications staff (in the manner of Brandwatch/Meltwater queries).

    ngập nước                      both words (AND is implied), with or without accents
    "kẹt xe"                       the exact phrase
    ngap*                          a prefix (at least 2 letters)
    kẹt xe OR ùn tắc               either side (AND binds tighter than OR)
    rác NOT kênh, rác -kênh        exclude
    (ngập OR triều cường) AND "Nguyễn Hữu Cảnh"
    source:vnexpress.net  area:fd:quan-7  area:"Quận 7"  topic:flooding  department:construction
    sentiment:negative  from:2025-11-01  to:2025-11-20  issue:iss-123

Operators are written in capitals (AND, OR, NOT); lower-case "and/or/not" are words. Field
filters combine with everything else (``topic:flooding OR sentiment:negative``). The parser is
lenient about structure — an unclosed quote or bracket closes at the end, a dangling operator is
ignored — and strict about values: an unknown topic, department, sentiment, area or a bad date is
a QueryError naming it. Matching is accent-insensitive (nlp.text.fold).

`parse` gives an AST; `to_expression` compiles it to the backend-neutral boolean expression of
`storage.sqlite_boolean`; `matches` evaluates it on one mention in Python (any backend).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from langnghe.records import Mention
from nlp.text import fold

CITY_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_QUERY_CHARS = 1000
MAX_TERMS = 32
MAX_DEPTH = 8
FIELDS = ("source", "area", "topic", "department", "sentiment", "from", "to", "issue")
FIELD_ALIASES = {"nguon": "source", "khuvuc": "area", "linhvuc": "topic", "coquan": "department",
                 "sacthai": "sentiment", "tu": "from", "den": "to", "date_from": "from", "date_to": "to",
                 "vande": "issue", "issue_id": "issue"}
_TOKEN = re.compile(r"[^\W_]+")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class QueryError(ValueError):
    """A query with a bad field value; the message is bilingual and names the problem."""


# --- AST ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Term:
    """Folded words that must be adjacent (one word, a hyphenated word or a quoted phrase)."""

    tokens: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class Field:
    name: str  # one of FIELDS
    value: str  # as written (area: the resolved area id; from/to: ISO datetime, UTC)


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Term | Field | And | Or | Not


# --- tokens ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Tok:
    kind: str  # "word", "phrase", "field", "and", "or", "not", "lp", "rp"
    text: str = ""
    field: str = ""


_LEX = re.compile(r'\s*(?:(\()|(\))|"([^"]*)"?|([^\s()"]+))')
_FIELD_WORD = re.compile(r"^([A-Za-z_]+):(.*)$", re.S)


def _lex(query: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    text = query[:MAX_QUERY_CHARS]
    while pos < len(text):
        m = _LEX.match(text, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
        lp, rp, phrase, word = m.groups()
        if lp:
            toks.append(_Tok("lp"))
        elif rp:
            toks.append(_Tok("rp"))
        elif phrase is not None:
            toks.append(_Tok("phrase", phrase))
        elif word is not None:
            if word in ("AND", "&&"):
                toks.append(_Tok("and"))
            elif word in ("OR", "||"):
                toks.append(_Tok("or"))
            elif word == "NOT":
                toks.append(_Tok("not"))
            else:
                fm = _FIELD_WORD.match(word)
                name = fm and FIELD_ALIASES.get(fold(fm.group(1)), fold(fm.group(1)))
                if fm and name in FIELDS:
                    value = fm.group(2)
                    if value == "" and pos < len(text) and text[pos] == '"':  # field:"quoted value"
                        end = text.find('"', pos + 1)
                        end = len(text) if end < 0 else end
                        value, pos = text[pos + 1:end], end + 1
                    toks.append(_Tok("field", value.strip(), name))
                elif word == "-" and text[pos:pos + 1] in ('"', "("):  # -"phrase", -(group)
                    toks.append(_Tok("not"))
                elif word.startswith("-") and len(word) > 1 and _TOKEN.search(fold(word[1:])):
                    toks.append(_Tok("not"))
                    toks.extend(_lex(word[1:]))
                else:
                    toks.append(_Tok("word", word))
    return toks


# --- parser ------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, toks: list[_Tok], resolver: FieldResolver) -> None:
        self.toks = toks
        self.i = 0
        self.terms = 0
        self.resolver = resolver

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def parse(self) -> Node | None:
        node = self.or_expr(0)
        while self.peek() is not None:  # stray ')' and what follows: keep parsing, AND it in
            self.i += 1
            more = self.or_expr(0)
            node = _and(node, more)
        return node

    def or_expr(self, depth: int) -> Node | None:
        parts = [self.and_expr(depth)]
        while (tok := self.peek()) is not None and tok.kind == "or":
            self.i += 1
            parts.append(self.and_expr(depth))
        kept = [p for p in parts if p is not None]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else Or(tuple(kept))

    def and_expr(self, depth: int) -> Node | None:
        parts: list[Node] = []
        while (tok := self.peek()) is not None and tok.kind not in ("or", "rp"):
            if tok.kind == "and":
                self.i += 1
                continue
            node = self.unary(depth)
            if node is not None:
                parts.append(node)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self, depth: int) -> Node | None:
        tok = self.peek()
        assert tok is not None
        if tok.kind == "not":
            self.i += 1
            if self.peek() is None or self.peek().kind in ("or", "rp", "and"):  # type: ignore[union-attr]
                return None  # dangling NOT
            inner = self.unary(depth)
            return None if inner is None else Not(inner)
        if tok.kind == "lp":
            self.i += 1
            if depth >= MAX_DEPTH:
                raise QueryError(f"Quá nhiều ngoặc lồng nhau (tối đa {MAX_DEPTH}) / brackets nested "
                                 f"too deep (at most {MAX_DEPTH})")
            inner = self.or_expr(depth + 1)
            if (close := self.peek()) is not None and close.kind == "rp":
                self.i += 1
            return inner
        self.i += 1
        if tok.kind == "field":
            return self.resolver.field(tok.field, tok.text)
        return self.text(tok.text, phrase=tok.kind == "phrase")

    def text(self, raw: str, *, phrase: bool) -> Node | None:
        tokens = _TOKEN.findall(fold(raw))
        if not tokens:
            return None
        room = MAX_TERMS - self.terms
        if room <= 0:
            return None
        tokens = tokens[:room]
        self.terms += len(tokens)
        prefix = not phrase and raw.endswith("*") and len(tokens[-1]) >= 2
        return Term(tuple(tokens), prefix)


def _and(a: Node | None, b: Node | None) -> Node | None:
    if a is None:
        return b
    if b is None:
        return a
    return And((*(a.children if isinstance(a, And) else (a,)), *(b.children if isinstance(b, And) else (b,))))


# --- field values ------------------------------------------------------------------------------

class FieldResolver:
    """Checks and normalises field values: taxonomy codes, area ids or names, dates."""

    def __init__(self, areas: Any = None) -> None:
        self.areas = areas
        self._area_names: dict[str, str] | None = None

    def field(self, name: str, value: str) -> Field:
        if not value:
            raise QueryError(f"Trường '{name}:' thiếu giá trị / field '{name}:' has no value")
        if name in ("topic", "department", "sentiment"):
            return Field(name, self._code(name, value))
        if name == "area":
            return Field(name, self._area(value))
        if name in ("from", "to"):
            return Field(name, _bound(value, name, end=name == "to").isoformat())
        if name == "source":
            return Field(name, value.strip().lower()[:200])
        return Field(name, value.strip()[:128])

    @staticmethod
    def _code(name: str, value: str) -> str:
        from nlp.taxonomy import DEPARTMENTS, SENTIMENT_LABELS, TOPICS

        table: dict[str, Any] = {"topic": TOPICS, "department": DEPARTMENTS,
                                 "sentiment": SENTIMENT_LABELS}[name]
        code = value.strip().lower()
        if code in table:
            return code
        folded = _TOKEN.findall(fold(value))
        for key, label in table.items():  # also the Vietnamese or English label, accents optional
            names = [getattr(label, "vi", None), getattr(label, "en", None)]
            if any(n and _TOKEN.findall(fold(str(n))) == folded for n in names):
                return str(key)
        raise QueryError(f"Giá trị '{value}' không hợp lệ cho {name}: / unknown {name} '{value}' "
                         f"(one of: {', '.join(table)})")

    def _area(self, value: str) -> str:
        value = value.strip()
        if self.areas is None:
            return value
        if self.areas.get(value) is not None:
            return value
        if self._area_names is None:
            from api.schemas import area_full_name

            names: dict[str, str] = {}
            for area in self.areas.all():  # full names first win over bare ones ("Quận 1")
                names.setdefault(fold(area_full_name(area)), area.id)
            for area in self.areas.all():
                names.setdefault(fold(area.name), area.id)
            self._area_names = names
        found = self._area_names.get(fold(value))
        if found is None:
            raise QueryError(f"Không tìm thấy khu vực '{value}' / unknown area '{value}'")
        return found


def _bound(value: str, name: str, *, end: bool) -> datetime:
    """A date (a whole day in city time; `to` includes it) or an ISO datetime (naive = city time)."""
    try:
        if _DATE.match(value):
            day = date.fromisoformat(value)
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(0), tzinfo=CITY_TZ).astimezone(UTC)
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise QueryError(f"Ngày không hợp lệ cho {name}: '{value}' / {name}: must be YYYY-MM-DD or an "
                         "ISO datetime") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CITY_TZ)
    if end:
        moment += timedelta(microseconds=1)
    return moment.astimezone(UTC)


def parse(query: str | None, areas: Any = None) -> Node | None:
    """The AST of a query; None when nothing searchable is left (e.g. only symbols)."""
    if not query or not query.strip():
        return None
    return _Parser(_lex(query), FieldResolver(areas)).parse()


# --- compile -----------------------------------------------------------------------------------

_FILTER_FIELD = {"source": "source", "area": "area", "topic": "topic", "department": "department",
                 "sentiment": "sentiment", "issue": "issue_id"}


def field_filter(node: Field) -> dict[str, Any]:
    """A field term as a storage.base filter condition."""
    if node.name == "from":
        return {"field": "published_at", "operator": ">=", "value": node.value}
    if node.name == "to":  # `to` bounds are stored exclusive
        return {"field": "published_at", "operator": "<", "value": node.value}
    return {"field": _FILTER_FIELD[node.name], "operator": "==", "value": node.value}


def to_expression(node: Node) -> dict[str, Any]:
    """The AST as a `storage.sqlite_boolean` expression."""
    if isinstance(node, Term):
        return {"op": "TEXT", "tokens": list(node.tokens), "prefix": node.prefix}
    if isinstance(node, Field):
        return {"op": "FILTER", "filter": field_filter(node)}
    if isinstance(node, Not):
        return {"op": "NOT", "args": [to_expression(node.child)]}
    op = "AND" if isinstance(node, And) else "OR"
    return {"op": op, "args": [to_expression(c) for c in node.children]}


def to_text(node: Node) -> str:
    """The AST written back in the query language (normalised; for display and logs)."""
    if isinstance(node, Term):
        words = " ".join(node.tokens)
        return (f'"{words}"' if len(node.tokens) > 1 else words) + ("*" if node.prefix else "")
    if isinstance(node, Field):
        return f'{node.name}:"{node.value}"' if " " in node.value else f"{node.name}:{node.value}"
    if isinstance(node, Not):
        return "NOT " + to_text(node.child)
    joiner = " AND " if isinstance(node, And) else " OR "
    return "(" + joiner.join(to_text(c) for c in node.children) + ")"


# --- evaluate in Python ------------------------------------------------------------------------

def _words(mention: Mention) -> list[str]:
    return _TOKEN.findall(fold(mention.title)) + ["\u0000"] + _TOKEN.findall(fold(mention.text))


def _has_term(words: list[str], term: Term) -> bool:
    n = len(term.tokens)
    for i in range(len(words) - n + 1):
        if all(words[i + k] == term.tokens[k] for k in range(n - 1)):
            last = words[i + n - 1]
            if last.startswith(term.tokens[-1]) if term.prefix else last == term.tokens[-1]:
                return True
    return False


def matches(node: Node, mention: Mention, _words_cache: list[list[str]] | None = None) -> bool:
    """Whether one mention matches the AST (the same semantics as the SQLite search)."""
    cache = _words_cache if _words_cache is not None else []
    if isinstance(node, Term):
        if not cache:
            cache.append(_words(mention))
        return _has_term(cache[0], node)
    if isinstance(node, Field):
        if node.name in ("from", "to"):
            moment = mention.published_at.astimezone(UTC)
            bound = datetime.fromisoformat(node.value)
            return moment >= bound if node.name == "from" else moment < bound
        if node.name == "area":
            return node.value in mention.areas
        value = {"source": mention.source, "topic": mention.topic, "department": mention.department,
                 "sentiment": mention.sentiment, "issue": mention.issue_id}[node.name]
        return value == node.value
    if isinstance(node, Not):
        return not matches(node.child, mention, cache)
    if isinstance(node, And):
        return all(matches(c, mention, cache) for c in node.children)
    return any(matches(c, mention, cache) for c in node.children)


def positive_terms(node: Node, negated: bool = False) -> list[Term]:
    """The terms that make a mention match (not those under a NOT), for highlighting."""
    if isinstance(node, Term):
        return [] if negated else [node]
    if isinstance(node, Field):
        return []
    if isinstance(node, Not):
        return positive_terms(node.child, not negated)
    return [t for c in node.children for t in positive_terms(c, negated)]
