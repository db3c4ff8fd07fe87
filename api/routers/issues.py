"""Issues: the ranked top-10 of an area, and one issue with its mentions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import AreasDep, StoreDep
from api.schemas import ErrorOut, IssueOut, MentionOut, PeriodKeysOut, TopIssuesOut
from api.services import build_top, resolve_area, select_period_key
from langnghe.records import CITY_AREA_ID
from storage.base import mention_filters

router = APIRouter(prefix="/api/v1/issues", tags=["issues"])

Period = Literal["day", "week"]


@router.get("/top", response_model=TopIssuesOut, responses={404: {"model": ErrorOut}},
            summary="Top issues of an area")
def top_issues(
    store: StoreDep,
    areas: AreasDep,
    area: Annotated[str, Query(max_length=64, description="Area id: hcmc, fd:<slug> or w:<code>")]
    = CITY_AREA_ID,
    period: Annotated[Period, Query(description="day or ISO week")] = "day",
    date: Annotated[str | None, Query(
        max_length=10, description="YYYY-MM-DD (for week: the ISO week containing it; YYYY-Www also "
                                   "accepted). Default: the newest period with a ranking")] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> TopIssuesOut:
    """The ranked issues of one area for one day or ISO week, with score parts and evidence."""
    found = resolve_area(areas, area)
    key = select_period_key(store, period, date)
    return build_top(store, found, period, key, limit)


@router.get("/periods", response_model=PeriodKeysOut, summary="Periods with a stored ranking")
def ranking_periods(
    store: StoreDep,
    period: Annotated[Period, Query()] = "day",
) -> PeriodKeysOut:
    """Period keys that have a ranking, newest first."""
    return PeriodKeysOut(period=period, keys=store.ranking_keys(period))


@router.get("/{issue_id}", response_model=IssueOut, responses={404: {"model": ErrorOut}},
            summary="One issue and its recent mentions")
def get_issue(
    store: StoreDep,
    issue_id: Annotated[str, Path(max_length=128)],
    limit: Annotated[int, Query(ge=1, le=100, description="How many recent mentions")] = 20,
) -> IssueOut:
    """An issue's details and its newest mentions."""
    issue = store.get_issue(issue_id)
    if issue is None:
        raise HTTPException(404, detail=f"Không tìm thấy vấn đề '{issue_id}' / Unknown issue '{issue_id}'")
    page = store.search(None, mention_filters(issue_id=issue_id), limit=limit)
    return IssueOut.from_issue(issue, [MentionOut.from_mention(h.mention, h.highlight) for h in page.hits])
