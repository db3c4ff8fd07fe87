"""Mentions: search in the query language (boolean, phrases, field filters, accent-insensitive),
with filters and pagination, and CSV/JSON export — always inside the caller's scope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.auth.deps import CurrentUser
from api.deps import AreasDep, StoreDep
from api.query_language import QueryError
from api.schemas import ErrorOut, MentionOut, SearchOut
from api.search import EXPORT_MAX_ROWS, csv_chunks, iter_results, json_chunks, run_search
from api.services import CITY_TZ, invalid, parse_bound, resolve_area
from nlp.taxonomy import Department, Sentiment, Topic
from storage.base import Filters, mention_filters

router = APIRouter(prefix="/api/v1/mentions", tags=["mentions"])

MAX_QUERY = 500
MAX_PAGE = 500
QUERY_HELP = ("Query language: words (accents optional), \"phrases\", prefix*, AND / OR / NOT (capitals), "
              "-word, (brackets), fields source: area: topic: department: sentiment: from: to: issue: "
              "(see docs/search.md)")


def _filters(areas: AreasDep, area: str | None, topic: Topic | None, department: Department | None,
             sentiment: Sentiment | None, source: str | None, from_: str | None, to: str | None) -> Filters:
    if area:
        resolve_area(areas, area)
    since = parse_bound(from_, "from", end=False)
    until = parse_bound(to, "to", end=True)
    if since and until and since >= until:
        invalid("to", "'to' phải sau 'from' / 'to' must not be before 'from'", to)
    return mention_filters(
        area=area or None,
        topic=topic.value if topic else None,
        department=department.value if department else None,
        sentiment=sentiment.value if sentiment else None,
        source=source or None,
        since=since, until=until,
    )


@router.get("/search", response_model=SearchOut, responses={404: {"model": ErrorOut}},
            summary="Search mentions")
def search_mentions(
    user: CurrentUser,
    store: StoreDep,
    areas: AreasDep,
    q: Annotated[str | None, Query(max_length=MAX_QUERY, description=QUERY_HELP)] = None,
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
    """Mentions matching `q` (relevance first when it has words) or, without, the newest matching
    mentions; only mentions inside the caller's scope."""
    filters = _filters(areas, area, topic, department, sentiment, source, from_, to)
    try:
        result = run_search(store, q, scope=user.scope, filters=filters, areas=areas, limit=page_size,
                            offset=(page - 1) * page_size)
    except QueryError as exc:
        invalid("q", str(exc), q)
    return SearchOut(
        total=result.total, page=page, page_size=page_size,
        items=[MentionOut.from_mention(h.mention, h.highlight) for h in result.hits],
    )


@router.get("/export", summary="Export matching mentions (CSV or JSON)",
            responses={200: {"content": {"text/csv": {}, "application/json": {}}}, 404: {"model": ErrorOut}})
def export_mentions(
    user: CurrentUser,
    store: StoreDep,
    areas: AreasDep,
    format: Annotated[Literal["csv", "json"], Query(description="csv (UTF-8 with BOM) or json")] = "csv",
    q: Annotated[str | None, Query(max_length=MAX_QUERY, description=QUERY_HELP)] = None,
    area: Annotated[str | None, Query(max_length=64)] = None,
    topic: Annotated[Topic | None, Query()] = None,
    department: Annotated[Department | None, Query()] = None,
    sentiment: Annotated[Sentiment | None, Query()] = None,
    source: Annotated[str | None, Query(max_length=200)] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=EXPORT_MAX_ROWS)] = EXPORT_MAX_ROWS,
) -> StreamingResponse:
    """Every matching mention in the caller's scope (at most `limit`, 10 000), streamed, in the
    search's order, with full text."""
    filters = _filters(areas, area, topic, department, sentiment, source, from_, to)
    try:
        run_search(store, q, scope=user.scope, filters=filters, areas=areas, limit=0)  # validates q
    except QueryError as exc:
        invalid("q", str(exc), q)
    rows = iter_results(store, q, scope=user.scope, filters=filters, areas=areas, max_rows=limit)
    stamp = datetime.now(CITY_TZ).strftime("%Y%m%d-%H%M")
    media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
    body = csv_chunks(rows) if format == "csv" else json_chunks(rows)
    return StreamingResponse(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="langnghe-mentions-{stamp}.{format}"',
        "Cache-Control": "no-store"})
