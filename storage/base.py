"""The storage interface every backend implements, and its backend-neutral filter format.

Filters follow Haystack's shape: a condition is ``{"field": F, "operator": OP, "value": V}``;
a group is ``{"operator": "AND"|"OR"|"NOT", "conditions": [...]}``. Fields of a mention:
``area`` (matches any of the mention's area ids), ``topic``, ``department``, ``sentiment``,
``source``, ``civic``, ``issue_id``, ``language``, ``published_at``. Operators: ``==``,
``!=``, ``in``, ``not in``, ``>``, ``>=``, ``<``, ``<=`` (the last four on ``published_at``,
with aware datetimes or ISO strings). `mention_filters` builds the usual AND of conditions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from langnghe.records import Issue, Mention, RankingEntry, parse_datetime

Filters = dict[str, Any]

FILTER_FIELDS = (
    "area", "topic", "department", "sentiment", "source", "civic", "issue_id", "language",
    "published_at",
)
COMPARISON_OPERATORS = ("==", "!=", "in", "not in", ">", ">=", "<", "<=")
LOGICAL_OPERATORS = ("AND", "OR", "NOT")


class FilterError(ValueError):
    """A filter that does not follow the format above."""


def validate_filters(filters: Filters | None) -> None:
    """Raise FilterError when `filters` is malformed; None and {} mean no filter."""
    if not filters:
        return
    op = filters.get("operator")
    if "conditions" in filters:
        if op not in LOGICAL_OPERATORS:
            raise FilterError(f"logical operator must be one of {LOGICAL_OPERATORS}, got {op!r}")
        if not isinstance(filters["conditions"], list):
            raise FilterError("'conditions' must be a list")
        for cond in filters["conditions"]:
            validate_filters(cond)
        return
    if filters.get("field") not in FILTER_FIELDS:
        raise FilterError(f"unknown filter field {filters.get('field')!r}")
    if op not in COMPARISON_OPERATORS:
        raise FilterError(f"comparison operator must be one of {COMPARISON_OPERATORS}, got {op!r}")
    if op in ("in", "not in") and not isinstance(filters.get("value"), list | tuple):
        raise FilterError(f"operator {op!r} needs a list value")
    if op in (">", ">=", "<", "<=") and filters["field"] != "published_at":
        raise FilterError(f"operator {op!r} applies to published_at only")


def ts(value: datetime) -> str:
    """Aware (naive = UTC) datetime -> fixed-width UTC ISO string with microseconds, sortable as text."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_filter_value(name: str, value: Any, *, nullable: bool) -> Any:
    """One condition's value in the form every backend stores: `published_at` as `ts`, `civic`
    as a bool, the other fields as strings. Raises FilterError for a value of the wrong type."""
    if value is None:
        if not nullable:
            raise FilterError(f"{name}: None is not a valid value here")
        return None
    if name == "published_at":
        try:
            parsed = parse_datetime(value)
        except (TypeError, ValueError) as exc:
            raise FilterError(f"published_at: not a datetime or ISO 8601 string: {value!r}") from exc
        assert parsed is not None
        return ts(parsed)
    if name == "civic":
        if not isinstance(value, bool) and value not in (0, 1):
            raise FilterError(f"civic: expected true or false, got {value!r}")
        return bool(value)
    if not isinstance(value, str):
        what = "an area id string" if name == "area" else "a string"
        raise FilterError(f"{name}: expected {what}, got {value!r}")
    return value


def mention_filters(
    *,
    area: str | None = None,
    topic: str | None = None,
    department: str | None = None,
    sentiment: str | None = None,
    source: str | None = None,
    civic: bool | None = None,
    issue_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Filters:
    """AND of the given conditions (None ones left out); `until` is exclusive."""
    conditions: list[Filters] = []
    for name, value in (("area", area), ("topic", topic), ("department", department),
                        ("sentiment", sentiment), ("source", source), ("civic", civic),
                        ("issue_id", issue_id)):
        if value is not None:
            conditions.append({"field": name, "operator": "==", "value": value})
    if since is not None:
        conditions.append({"field": "published_at", "operator": ">=", "value": since})
    if until is not None:
        conditions.append({"field": "published_at", "operator": "<", "value": until})
    return {"operator": "AND", "conditions": conditions} if conditions else {}


@dataclass
class WriteResult:
    """What a write did: new records, changed records, records already stored as they are."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class SearchHit:
    mention: Mention
    score: float = 0.0
    highlight: str | None = None  # a snippet with the matched words in <mark>…</mark>


@dataclass
class SearchPage:
    total: int
    hits: list[SearchHit] = field(default_factory=list)


@runtime_checkable
class Store(Protocol):
    """One storage interface, several backends (embedded SQLite, search engine)."""

    # mentions
    def write_mentions(self, mentions: Iterable[Mention]) -> WriteResult:
        """Insert or update by id. Re-writing an identical mention changes nothing; a crawl's
        re-write keeps the enrichment already stored unless the text changed."""
        ...

    def update_enrichment(self, mentions: Iterable[Mention]) -> int:
        """Store the NLP fields (civic…issue_id, processed_at) of already stored mentions."""
        ...

    def get_mention(self, mention_id: str) -> Mention | None: ...

    def get_mentions(self, ids: Sequence[str]) -> list[Mention]:
        """Mentions by id, in the order of `ids`; unknown ids are left out."""
        ...

    def count_mentions(self, filters: Filters | None = None) -> int: ...

    def iter_mentions(self, filters: Filters | None = None, batch_size: int = 1000) -> Iterator[Mention]:
        """All matching mentions, oldest published first."""
        ...

    def unprocessed_mentions(self, limit: int = 1000) -> list[Mention]:
        """Mentions not yet enriched (processed_at is null), oldest crawled first."""
        ...

    def search(self, query: str | None, filters: Filters | None = None, *, limit: int = 20,
               offset: int = 0) -> SearchPage:
        """Accent-insensitive full-text search ('ngap nuoc' finds 'ngập nước'); without a
        query, the newest matching mentions. Relevance order with a query, newest first without."""
        ...

    # issues and rankings
    def write_issues(self, issues: Iterable[Issue]) -> WriteResult: ...

    def get_issue(self, issue_id: str) -> Issue | None: ...

    def list_issues(self) -> list[Issue]: ...

    def replace_rankings(self, period: str, period_key: str, entries: Iterable[RankingEntry]) -> int:
        """Replace every ranking of one period (all areas) in one transaction."""
        ...

    def top_issues(self, area_id: str, period: str, period_key: str, limit: int = 10) -> list[RankingEntry]: ...

    def ranking_keys(self, period: str) -> list[str]:
        """Period keys with a stored ranking, newest first."""
        ...

    # state for resumable jobs (crawl cursors, last processed times …)
    def get_state(self, key: str) -> str | None: ...

    def set_state(self, key: str, value: str) -> None: ...

    def close(self) -> None: ...
