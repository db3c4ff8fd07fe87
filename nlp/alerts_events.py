"""Emerging-issue events: an issue whose volume in an area jumps against its own baseline.

Consumed by the alerting (api side): call `detect_emerging(store, now)` after each ranking
update; it returns only events not raised before (they are stored, unique per issue, area,
period and period key, in ``nlp_emerging``), so each jump alerts once.

Rule (EMM NewsBrief style, counts of distinct stories): for each issue ranked in an area's top
list for the current city day, ``observed`` = its distinct stories in that area today,
``baseline`` = its mean daily distinct stories in that area over the `baseline_days` days
before, ``ratio = (observed + 1) / (baseline + 1)``. An event is raised when
``observed ≥ min_observed`` and ``ratio ≥ min_ratio``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from typing import Any

from langnghe.records import parse_datetime, period_key, to_city_time, utcnow
from nlp.embedding_cache import IssueStateDB
from nlp.issues import eligible
from nlp.ranking import CITY_TZ, _areas, story_of
from storage.base import Store, mention_filters

MIN_OBSERVED = 3
MIN_RATIO = 3.0
BASELINE_DAYS = 7


@dataclass(frozen=True)
class EmergingEvent:
    """One jump of one issue in one area; `period` is the period key ("2025-11-20")."""

    issue_id: str
    area_id: str
    period: str
    observed: int
    baseline: float
    ratio: float
    detected_at: datetime

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["detected_at"] = self.detected_at.isoformat()
        return data


def emerging_candidates(store: Store, now: datetime, *, min_observed: int = MIN_OBSERVED,
                        min_ratio: float = MIN_RATIO, baseline_days: int = BASELINE_DAYS
                        ) -> list[EmergingEvent]:
    """Every (issue, area) of today's stored rankings that passes the rule (nothing stored)."""
    day = to_city_time(now).date()
    key = period_key("day", now)
    start = datetime.combine(day, time(), CITY_TZ)
    base_start = start - timedelta(days=baseline_days)
    ranked: dict[str, set[str]] = defaultdict(set)  # issue → areas where it is ranked today
    areas_today: set[str] = set()
    for m in store.iter_mentions(mention_filters(civic=True, since=start, until=start + timedelta(days=1))):
        if eligible(m) and m.issue_id:
            areas_today.update(_areas(m))
    for area in sorted(areas_today):
        for e in store.top_issues(area, "day", key):
            ranked[e.issue_id].add(area)
    events: list[EmergingEvent] = []
    for issue_id in sorted(ranked):
        today: dict[str, set[str]] = defaultdict(set)
        before: dict[str, set[str]] = defaultdict(set)
        for m in store.iter_mentions(mention_filters(issue_id=issue_id, since=base_start,
                                                     until=start + timedelta(days=1))):
            bucket = today if m.published_at >= start else before
            for area in _areas(m):
                bucket[area].add(story_of(m))
        for area in sorted(ranked[issue_id]):
            observed = len(today.get(area, ()))
            baseline = len(before.get(area, ())) / baseline_days
            ratio = (observed + 1) / (baseline + 1)
            if observed >= min_observed and ratio >= min_ratio:
                events.append(EmergingEvent(issue_id, area, key, observed, round(baseline, 4),
                                            round(ratio, 4), now))
    return events


def detect_emerging(store: Store, now: datetime | None = None, *, db: IssueStateDB | None = None,
                    **rule: Any) -> list[EmergingEvent]:
    """New emerging-issue events for the city day of `now` (stored so each is raised once)."""
    now = now or utcnow()
    own = db is None
    db = db or IssueStateDB.for_store(store)
    try:
        found = emerging_candidates(store, now, **rule)
        rows = [(e.issue_id, e.area_id, "day", e.period, e.observed, e.baseline, e.ratio,
                 e.detected_at.isoformat()) for e in found]
        return [found[k] for k in db.insert_emerging(rows)]
    finally:
        if own:
            db.close()


def stored_events(store: Store, since: datetime | None = None) -> list[EmergingEvent]:
    """Events raised so far (optionally since a time), oldest first."""
    db = IssueStateDB.for_store(store)
    try:
        out = []
        for issue_id, area_id, _period, key, observed, baseline, ratio, at in db.emerging_since(since):
            when = parse_datetime(at)
            assert when is not None
            out.append(EmergingEvent(issue_id, area_id, key, int(observed), float(baseline), float(ratio), when))
        return out
    finally:
        db.close()


__all__ = ["EmergingEvent", "detect_emerging", "emerging_candidates", "stored_events"]
