"""Figures behind the pages, briefings and digests, read from any `Store`: mentions per day by
sentiment, mentions per ward, and week-over-week changes of a top-10. All days are city days."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from langnghe.records import Mention, RankingEntry, period_key, to_city_time
from storage.base import Filters, Store, mention_filters

CITY_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_SERIES_DAYS = 366


@dataclass
class DayPoint:
    """Mentions of one city day, split by sentiment (none counts as neutral)."""

    day: date
    negative: int = 0
    neutral: int = 0
    positive: int = 0

    @property
    def total(self) -> int:
        return self.negative + self.neutral + self.positive

    @property
    def net(self) -> float:
        """(positive − negative) / total, 0 without mentions."""
        return (self.positive - self.negative) / self.total if self.total else 0.0

    def add(self, sentiment: str | None) -> None:
        if sentiment == "negative":
            self.negative += 1
        elif sentiment == "positive":
            self.positive += 1
        else:
            self.neutral += 1


def day_start(day: date) -> datetime:
    """Midnight starting `day`, city time."""
    return datetime.combine(day, time(), CITY_TZ)


def city_day(moment: datetime) -> date:
    return to_city_time(moment).date()


def week_bounds(week_key: str) -> tuple[date, date]:
    """First (Monday) and last (Sunday) day of an ISO week key 'YYYY-Www'; ValueError when bad."""
    try:
        year, week = week_key.split("-W")
        monday = date.fromisocalendar(int(year), int(week), 1)
    except ValueError as exc:
        raise ValueError(f"bad week key {week_key!r}; expected YYYY-Www") from exc
    return monday, monday + timedelta(days=6)


def week_key_of(day: date) -> str:
    return period_key("week", datetime.combine(day, time(12), CITY_TZ))


def previous_week(week_key: str) -> str:
    monday, _ = week_bounds(week_key)
    return week_key_of(monday - timedelta(days=7))


def restrict(filters: Filters, scope: Filters | None) -> Filters:
    """`filters` AND `scope` (a caller's access scope in the store's filter format)."""
    if not scope:
        return filters
    if not filters:
        return scope
    return {"operator": "AND", "conditions": [filters, scope]}


def mentions_between(store: Store, first_day: date, last_day: date, *, scope: Filters | None = None,
                     **filters: Any) -> Iterable[Mention]:
    """Civic mentions published from the start of `first_day` to the end of `last_day` that
    match `filters` (mention_filters keywords: area, topic, department, sentiment, issue_id…)
    and the access `scope`."""
    filters.setdefault("civic", True)
    built = mention_filters(since=day_start(first_day), until=day_start(last_day + timedelta(days=1)),
                            **filters)
    return store.iter_mentions(restrict(built, scope))


def daily_series(store: Store, first_day: date, last_day: date, **filters: Any) -> list[DayPoint]:
    """One point per day from `first_day` to `last_day` (both included, at most a year)."""
    if last_day < first_day:
        raise ValueError("last_day is before first_day")
    if (last_day - first_day).days >= MAX_SERIES_DAYS:
        first_day = last_day - timedelta(days=MAX_SERIES_DAYS - 1)
    points = {first_day + timedelta(days=i): DayPoint(first_day + timedelta(days=i))
              for i in range((last_day - first_day).days + 1)}
    for m in mentions_between(store, first_day, last_day, **filters):
        point = points.get(city_day(m.published_at))
        if point is not None:
            point.add(m.sentiment)
    return list(points.values())


def area_counts(store: Store, first_day: date, last_day: date, *, prefix: str = "w:",
                **filters: Any) -> tuple[Counter[str], Counter[str]]:
    """Mentions and negative mentions per area id starting with `prefix` over the days."""
    total: Counter[str] = Counter()
    negative: Counter[str] = Counter()
    for m in mentions_between(store, first_day, last_day, **filters):
        for area in set(m.areas):
            if area.startswith(prefix):
                total[area] += 1
                if m.sentiment == "negative":
                    negative[area] += 1
    return total, negative


@dataclass
class TopChange:
    """An entry of this period's top-10 with how it moved since the previous period."""

    entry: RankingEntry
    previous_rank: int | None
    previous_mentions: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_new(self) -> bool:
        """Not in the previous period's list."""
        return self.previous_rank is None

    @property
    def rank_change(self) -> int | None:
        """Places gained (positive) or lost; None when new."""
        return None if self.previous_rank is None else self.previous_rank - self.entry.rank

    @property
    def mention_change(self) -> int:
        return self.entry.mention_count - self.previous_mentions


def top_with_changes(store: Store, area_id: str, period: str, key: str, previous_key: str,
                     prev_first: date, prev_last: date, limit: int = 10,
                     keep: Callable[[str], bool] | None = None) -> list[TopChange]:
    """The stored top of `key` with each issue's rank and mention count in `previous_key`
    (a count taken from the mentions when the issue was not in the previous list). `keep`
    (issue id → bool) drops entries outside a caller's scope."""
    current = [e for e in store.top_issues(area_id, period, key, limit) if keep is None or keep(e.issue_id)]
    previous = {e.issue_id: e for e in store.top_issues(area_id, period, previous_key, 50)}
    changes: list[TopChange] = []
    for entry in current:
        before = previous.get(entry.issue_id)
        if before is not None:
            count = before.mention_count
        else:
            count = store.count_mentions(mention_filters(
                issue_id=entry.issue_id, area=area_id, civic=True, since=day_start(prev_first),
                until=day_start(prev_last + timedelta(days=1))))
        changes.append(TopChange(entry, before.rank if before else None, count))
    return changes
