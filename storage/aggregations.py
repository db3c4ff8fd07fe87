"""Facets, date histograms and top-10 issue aggregations for ANY `Store`, computed in Python.

`SearchEngineStore` answers the same questions with engine aggregations (storage.query_builder);
these functions define the expected answers (the tests compare both) and serve the embedded
store, where a scan of the matching mentions is fast enough for one machine.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import Any

from langnghe.records import to_city_time
from storage.base import Filters, Store
from storage.query_builder import FACET_FIELDS


def _ranked(counter: Counter[Any], size: int) -> list[tuple[Any, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:size]


def facets(store: Store, filters: Filters | None = None, fields: tuple[str, ...] = FACET_FIELDS,
           size: int = 10) -> dict[str, list[tuple[Any, int]]]:
    """Top `size` values of each field among the matching mentions, count desc then value asc."""
    counters: dict[str, Counter[Any]] = {name: Counter() for name in fields}
    for name in fields:
        if name not in FACET_FIELDS:
            raise ValueError(f"unknown facet {name!r}; expected one of {FACET_FIELDS}")
    for m in store.iter_mentions(filters):
        for name in fields:
            if name == "area":
                counters[name].update(list(dict.fromkeys(m.areas)))
            else:
                value = getattr(m, name)
                if value is not None:
                    counters[name][value] += 1
    return {name: _ranked(counters[name], size) for name in fields}


def _bucket(day: date, interval: str) -> date:
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def date_histogram(store: Store, filters: Filters | None = None, interval: str = "day"
                   ) -> list[tuple[str, int, dict[str, int]]]:
    """Mentions per city-time day/week/month: ``[(first day, count, {sentiment: count}), …]``."""
    if interval not in ("day", "week", "month"):
        raise ValueError("interval must be day, week or month")
    counts: Counter[date] = Counter()
    sentiments: dict[date, Counter[str]] = defaultdict(Counter)
    for m in store.iter_mentions(filters):
        key = _bucket(to_city_time(m.published_at).date(), interval)
        counts[key] += 1
        if m.sentiment is not None:
            sentiments[key][m.sentiment] += 1
    return [(key.isoformat(), counts[key], dict(sentiments[key])) for key in sorted(counts)]


def top_issues_by_group(store: Store, group_by: str = "area", filters: Filters | None = None,
                        size: int = 10, groups: int = 200) -> dict[str, list[dict[str, Any]]]:
    """Top `size` issues by mention count in each area or department (with distinct sources and
    negative mentions), for the `groups` largest groups."""
    if group_by not in ("area", "department"):
        raise ValueError("group_by must be 'area' or 'department'")
    group_counts: Counter[str] = Counter()
    issue_counts: dict[str, Counter[str]] = defaultdict(Counter)
    sources: dict[tuple[str, str], set[str]] = defaultdict(set)
    negative: Counter[tuple[str, str]] = Counter()
    for m in store.iter_mentions(filters):
        if m.issue_id is None:
            continue
        keys = list(dict.fromkeys(m.areas)) if group_by == "area" else (
            [m.department] if m.department is not None else [])
        for key in keys:
            group_counts[key] += 1
            issue_counts[key][m.issue_id] += 1
            sources[(key, m.issue_id)].add(m.source)
            negative[(key, m.issue_id)] += m.sentiment == "negative"
    out: dict[str, list[dict[str, Any]]] = {}
    for key, _ in _ranked(group_counts, groups):
        out[key] = [{"issue_id": issue, "mentions": count, "sources": len(sources[(key, issue)]),
                     "negative": negative[(key, issue)]} for issue, count in _ranked(issue_counts[key], size)]
    return out
