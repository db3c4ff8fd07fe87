"""The work behind the endpoints and the dashboard: area lookup, periods, top-10 assembly, dates."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError

from api.deps import AreaCatalog
from api.schemas import AreaRef, EvidenceOut, SentimentSplit, TopIssueOut, TopIssuesOut, area_full_name
from langnghe.records import period_key, utcnow
from storage.base import Store

CITY_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def invalid(param: str, message: str, value: Any) -> NoReturn:
    """Raise a 422 in FastAPI's validation format for one query parameter."""
    raise RequestValidationError([
        {"type": "value_error", "loc": ("query", param), "msg": message, "input": value}
    ])


def resolve_area(areas: AreaCatalog, area_id: str) -> Any:
    """The area with this id, or a 404 with a bilingual message."""
    area = areas.get(area_id)
    if area is None:
        raise HTTPException(
            status_code=404,
            detail=f"Không tìm thấy khu vực '{area_id}' / Unknown area '{area_id}' "
                   "(xem/see /api/v1/areas)",
        )
    return area


def parse_day(value: str, param: str = "date") -> date:
    """A calendar date written YYYY-MM-DD, or a 422."""
    if not _DATE.match(value):
        invalid(param, f"Ngày phải có dạng YYYY-MM-DD / date must be YYYY-MM-DD, got {value!r}", value)
    try:
        return date.fromisoformat(value)
    except ValueError:
        invalid(param, f"Ngày không tồn tại / not a real date: {value!r}", value)


def city_noon(day: date) -> datetime:
    """Midday of a calendar day in city time (safely inside that day and its ISO week)."""
    return datetime.combine(day, time(12), tzinfo=CITY_TZ)


def select_period_key(store: Store, period: str, value: str | None) -> str:
    """The period key for a `date` parameter: the day or ISO week containing it; without a date,
    the newest period with a stored ranking, or the current one when there is none."""
    if value is None or value == "":
        keys = store.ranking_keys(period)
        return keys[0] if keys else period_key(period, utcnow())
    week = _WEEK.match(value)
    if week:
        if period != "week":
            invalid("date", "Mã tuần (YYYY-Www) chỉ dùng với period=week / "
                            "a week key (YYYY-Www) needs period=week", value)
        year, number = int(week.group(1)), int(week.group(2))
        try:
            monday = date.fromisocalendar(year, number, 1)
        except ValueError:
            invalid("date", f"Tuần không tồn tại / not a real ISO week: {value!r}", value)
        return period_key("week", city_noon(monday))
    return period_key(period, city_noon(parse_day(value)))


def area_ref(area: Any) -> AreaRef:
    return AreaRef(id=area.id, name=area.name, full_name=area_full_name(area),
                   level=area.level)


def build_top(store: Store, area: Any, period: str, key: str, limit: int = 10) -> TopIssuesOut:
    """The stored top issues of one area and period, with their issue details and evidence."""
    entries = store.top_issues(area.id, period, key, limit)
    evidence_ids = list(dict.fromkeys(eid for entry in entries for eid in entry.evidence_ids))
    mentions = {m.id: m for m in store.get_mentions(evidence_ids)} if evidence_ids else {}
    issues: list[TopIssueOut] = []
    for entry in entries:
        issue = store.get_issue(entry.issue_id)
        counts = entry.sentiment_counts or {}
        issues.append(TopIssueOut(
            rank=entry.rank,
            issue_id=entry.issue_id,
            label=issue.label if issue else entry.issue_id,
            topic=issue.topic if issue else None,
            department=issue.department if issue else None,
            score=entry.score,
            score_parts=dict(entry.score_parts or {}),
            mention_count=entry.mention_count,
            source_count=entry.source_count,
            sentiment=SentimentSplit(negative=int(counts.get("negative", 0)),
                                     neutral=int(counts.get("neutral", 0)),
                                     positive=int(counts.get("positive", 0))),
            keywords=list(issue.keywords) if issue else [],
            evidence=[EvidenceOut.from_mention(mentions[eid]) for eid in entry.evidence_ids
                      if eid in mentions],
        ))
    issues.sort(key=lambda item: item.rank)
    return TopIssuesOut(area=area_ref(area), period=period, period_key=key, issues=issues)


def parse_bound(value: str | None, param: str, *, end: bool) -> datetime | None:
    """A search bound: a date (a whole day in city time; `end` makes it exclusive the next day)
    or a datetime (naive ones are city time; `end` makes it inclusive)."""
    if value is None or value == "":
        return None
    if _DATE.match(value):
        day = parse_day(value, param)
        if end:
            day += timedelta(days=1)
        return datetime.combine(day, time(0), tzinfo=CITY_TZ)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        invalid(param, "Phải là ngày YYYY-MM-DD hoặc thời điểm ISO 8601 / must be an ISO date "
                       f"or datetime, got {value!r}", value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CITY_TZ)
    return moment + timedelta(microseconds=1) if end else moment
