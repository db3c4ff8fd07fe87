"""Mentions: accent-insensitive full-text search with filters and pagination."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AreasDep, StoreDep
from api.schemas import ErrorOut, MentionOut, SearchOut
from api.services import invalid, parse_bound, resolve_area
from nlp.taxonomy import Department, Sentiment, Topic
from storage.base import mention_filters

router = APIRouter(prefix="/api/v1/mentions", tags=["mentions"])

MAX_QUERY = 500
MAX_PAGE = 500


@router.get("/search", response_model=SearchOut, responses={404: {"model": ErrorOut}},
            summary="Search mentions")
def search_mentions(
    store: StoreDep,
    areas: AreasDep,
    q: Annotated[str | None, Query(max_length=MAX_QUERY, description="Words, with or without accents")]
    = None,
    area: Annotated[str | None, Query(max_length=64)] = None,
    topic: Annotated[Topic | None, Query()] = None,
    department: Annotated[Department | None, Query()] = None,
    sentiment: Annotated[Sentiment | None, Query()] = None,
    source: Annotated[str | None, Query(max_length=200)] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40,
                                       description="ISO date or datetime (city time when naive)")] = None,
    to: Annotated[str | None, Query(max_length=40,
                                    description="ISO date (the whole day included) or datetime")] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SearchOut:
    """Mentions matching `q` (relevance first) or, without `q`, the newest matching mentions."""
    if area:
        resolve_area(areas, area)
    since = parse_bound(from_, "from", end=False)
    until = parse_bound(to, "to", end=True)
    if since and until and since >= until:
        invalid("to", "'to' phải sau 'from' / 'to' must not be before 'from'", to)
    filters = mention_filters(
        area=area or None,
        topic=topic.value if topic else None,
        department=department.value if department else None,
        sentiment=sentiment.value if sentiment else None,
        source=source or None,
        since=since, until=until,
    )
    query = q.strip() if q else None
    result = store.search(query or None, filters, limit=page_size, offset=(page - 1) * page_size)
    return SearchOut(
        total=result.total, page=page, page_size=page_size,
        items=[MentionOut.from_mention(h.mention, h.highlight) for h in result.hits],
    )
