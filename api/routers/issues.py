"""Issues: the ranked top-10 of an area, and one issue with its mentions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from api.auth.deps import CurrentUser, forbid_unless
from api.auth.models import Scope
from api.deps import AreasDep, StoreDep
from api.schemas import ErrorOut, IssueOut, MentionOut, PeriodKeysOut, TopIssuesOut
from api.services import build_top, resolve_area, select_period_key
from langnghe.records import CITY_AREA_ID
from storage.base import Store, mention_filters

router = APIRouter(prefix="/api/v1/issues", tags=["issues"])

Period = Literal["day", "week"]


@router.get("/top", response_model=TopIssuesOut, responses={404: {"model": ErrorOut}},
            summary="Top issues of an area")
def top_issues(
    user: CurrentUser,
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
    """The ranked issues of one area for one day or ISO week, with score parts and evidence.
    Area accounts get 403 outside their area; department accounts see their department's issues."""
    found = resolve_area(areas, area)
    forbid_unless(user.scope.allows_area(found.id))
    key = select_period_key(store, period, date)
    if user.scope.unrestricted:
        return build_top(store, found, period, key, limit)
    return scoped_top(store, found, period, key, limit, user.scope)


def scoped_top(store: Store, area: Any, period: str, key: str, limit: int,
               scope: Scope) -> TopIssuesOut:
    """The top issues restricted to a scope: issues outside it and evidence outside it left out
    (ranks keep their city-wide numbers)."""
    top = build_top(store, area, period, key, 50)
    kept = []
    for item in top.issues:
        if not scope.allows_issue(store.get_issue(item.issue_id)):
            continue
        allowed = {m.id for m in store.get_mentions([e.id for e in item.evidence]) if scope.allows_mention(m)}
        item.evidence = [e for e in item.evidence if e.id in allowed]
        kept.append(item)
    top.issues = kept[:limit]
    return top


@router.get("/periods", response_model=PeriodKeysOut, summary="Periods with a stored ranking")
def ranking_periods(
    _: CurrentUser,
    store: StoreDep,
    period: Annotated[Period, Query()] = "day",
) -> PeriodKeysOut:
    """Period keys that have a ranking, newest first."""
    return PeriodKeysOut(period=period, keys=store.ranking_keys(period))


@router.get("/{issue_id}", response_model=IssueOut, responses={404: {"model": ErrorOut}},
            summary="One issue and its recent mentions")
def get_issue(
    user: CurrentUser,
    store: StoreDep,
    issue_id: Annotated[str, Path(max_length=128)],
    limit: Annotated[int, Query(ge=1, le=100, description="How many recent mentions")] = 20,
) -> IssueOut:
    """An issue's details and its newest mentions (403 outside the caller's scope; an area
    account sees only the issue's mentions inside its area)."""
    issue = store.get_issue(issue_id)
    if issue is None:
        raise HTTPException(404, detail=f"Không tìm thấy vấn đề '{issue_id}' / Unknown issue '{issue_id}'")
    forbid_unless(user.scope.allows_issue(issue))
    page = store.search(None, user.scope.restrict(mention_filters(issue_id=issue_id)), limit=limit)
    return IssueOut.from_issue(issue, [MentionOut.from_mention(h.mention, h.highlight) for h in page.hits])
