"""Server-rendered pages: an issue with its evidence and history, the ward map, trends.
Vietnamese first, `?lang=en` English; charts and map are inline SVG (no script, no CDN).
Every page holds to the caller's scope (api.auth): a department account sees its department's
mentions, an area account its area's."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.auth import CurrentUser, PageUser, Principal
from api.deps import AreasDep, StoreDep
from api.reports.charts import comparison_bars, sentiment_chart, volume_chart
from api.reports.data import area_counts, city_day, daily_series, mentions_between, week_key_of
from api.reports.geo import VIEWS, as_geojson_features, choropleth_svg, legend_bins
from api.reports.i18n import lang_of, t
from api.reports.render import environment
from api.schemas import area_full_name
from api.services import parse_day
from langnghe.records import CITY_AREA_ID, utcnow
from nlp.taxonomy import labels, topic_name
from storage.base import Store, mention_filters

router = APIRouter(tags=["pages"])
templates = Jinja2Templates(env=environment())

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
PAGE_SIZE = 20
MAX_DAYS = 180


def page(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """Render a page with the common context (language, words, navigation) and the strict CSP."""
    lang = context["lang"]
    query = dict(request.query_params)
    query["lang"] = t(lang)["other_lang"]
    from urllib.parse import urlencode

    context.setdefault("lang_href", f"{request.url.path}?{urlencode(query)}")
    context.setdefault("ui", t(lang))
    context.setdefault("labels", labels(lang))
    context.setdefault("generated", utcnow())
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    response.headers["Content-Security-Policy"] = CSP
    return response


def newest_day(store: Store) -> date:
    """The newest day with a stored ranking (the data's "today"), else today in the city."""
    keys = store.ranking_keys("day")
    return date.fromisoformat(keys[0]) if keys else city_day(utcnow())


def day_param(value: str | None, name: str, default: date) -> date:
    return parse_day(value[:10], name) if value else default


def area_name(areas: Any, area_id: str) -> str:
    area = areas.get(area_id)
    return area_full_name(area) if area is not None else area_id


def allowed_area(user: Principal, area: str | None) -> str:
    """The area a page shows: the requested one if the caller may see it; an area account's
    home area by default; 403 otherwise."""
    scope = user.scope
    if area is None or area == "":
        area = scope.home_area or CITY_AREA_ID
    if not scope.allows_area(area):
        raise HTTPException(403, detail="Không có quyền xem khu vực này / this area is outside your scope")
    return area


# --------------------------------------------------------------------------- issue page


@router.get("/issues/{issue_id}", response_class=HTMLResponse, include_in_schema=False)
def issue_page(
    request: Request,
    store: StoreDep,
    areas: AreasDep,
    user: PageUser,
    issue_id: Annotated[str, Path(max_length=128)],
    lang: str = "vi",
    page_no: Annotated[int, Query(alias="page", ge=1, le=500)] = 1,
) -> HTMLResponse:
    """One issue: what, where, who is in charge, its history (mentions per day, sentiment over
    time), where it ranks, and its mentions (newest first, 20 a page)."""
    lang = lang_of(lang)
    words = t(lang)
    issue = store.get_issue(issue_id)
    if issue is None or not user.scope.allows_issue(issue):
        return page(request, "page_error.html", {"lang": lang, "message": f"{words['no_issue']}: {issue_id}"},
                    status_code=404)
    scope = user.scope.filters() or None
    filters = mention_filters(issue_id=issue_id)
    if scope:
        filters = {"operator": "AND", "conditions": [filters, scope]}
    found = store.search(None, filters, limit=PAGE_SIZE, offset=(page_no - 1) * PAGE_SIZE)
    last = city_day(issue.last_seen)
    first = min(city_day(issue.first_seen), last - timedelta(days=13))
    first = max(first, last - timedelta(days=MAX_DAYS))
    series = daily_series(store, first - timedelta(days=1), last + timedelta(days=1), issue_id=issue_id,
                          scope=scope)
    names = labels(lang)["sentiment"]
    rankings: list[dict[str, Any]] = []
    week = week_key_of(last)
    for area_id in issue.area_ids[:12]:
        if not user.scope.allows_area(area_id):
            continue
        for period, key in (("day", last.isoformat()), ("week", week)):
            for entry in store.top_issues(area_id, period, key, 50):
                if entry.issue_id == issue_id:
                    rankings.append({"area": area_id, "area_name": area_name(areas, area_id),
                                     "period": period, "key": key, "rank": entry.rank, "score": entry.score})
    sentiments = {"negative": sum(p.negative for p in series), "neutral": sum(p.neutral for p in series),
                  "positive": sum(p.positive for p in series)}
    pages = max(1, -(-found.total // PAGE_SIZE))
    return page(request, "issue.html", {
        "lang": lang, "nav": "top", "issue": issue, "hits": found.hits, "total": found.total,
        "page_no": page_no, "pages": pages, "rankings": rankings, "sentiments": sentiments,
        "area_names": [(a, area_name(areas, a)) for a in issue.area_ids],
        "volume_svg": volume_chart(series, title=words["volume_title"], names=names),
        "sentiment_svg": sentiment_chart(series, title=words["sentiment_title"], axis_label=words["net_axis"]),
    })


# --------------------------------------------------------------------------- map


def _map_range(store: Store, start: str | None, end: str | None) -> tuple[date, date]:
    last = day_param(end, "to", newest_day(store))
    first = day_param(start, "from", last - timedelta(days=6))
    if first > last:
        raise HTTPException(422, detail="'from' phải trước 'to' / 'from' must not be after 'to'")
    if (last - first).days >= MAX_DAYS:
        first = last - timedelta(days=MAX_DAYS - 1)
    return first, last


@router.get("/map", response_class=HTMLResponse, include_in_schema=False)
def map_page(
    request: Request,
    store: StoreDep,
    areas: AreasDep,
    user: PageUser,
    lang: str = "vi",
    view: str = "core",
    metric: str = "all",
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    """Choropleth of the 168 current wards (mentions, or negative mentions, over a date range)
    with the former districts outlined; each ward links to its top-10."""
    lang = lang_of(lang)
    words = t(lang)
    view = view if view in VIEWS else "core"
    metric = metric if metric in ("all", "negative") else "all"
    first, last = _map_range(store, from_, to)
    total, negative = area_counts(store, first, last, scope=user.scope.filters() or None)
    values = negative if metric == "negative" else total
    svg = choropleth_svg(values, view=view, title=f"{words['map_title']} ({first:%d/%m} – {last:%d/%m/%Y})",
                         href=f"/?area={{id}}&lang={lang}", unit=words["mentions"])
    top_wards = [{"id": a, "name": area_name(areas, a), "value": v, "negative": negative[a]}
                 for a, v in values.most_common(10)]
    return page(request, "map.html", {
        "lang": lang, "nav": "map", "svg": svg, "view": view, "metric": metric, "first": first, "last": last,
        "bins": legend_bins(max(values.values(), default=0)), "top_wards": top_wards,
        "wards_with_data": sum(1 for v in values.values() if v),
    })


@router.get("/api/v1/map/wards", tags=["map"], summary="Mentions per ward as GeoJSON")
def map_wards(
    store: StoreDep,
    user: CurrentUser,
    from_: Annotated[str | None, Query(alias="from", max_length=10, description="YYYY-MM-DD")] = None,
    to: Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD (default: newest ranked day)")]
    = None,
    metric: Annotated[str, Query(pattern="^(all|negative)$")] = "all",
) -> dict[str, Any]:
    """The 168 ward outlines and the former districts (simplified, MIT-licensed boundaries) with
    each ward's mention count (`value`) over the date range (default: the 7 days up to `to`)."""
    first, last = _map_range(store, from_, to)
    total, negative = area_counts(store, first, last, scope=user.scope.filters() or None)
    collection = as_geojson_features(negative if metric == "negative" else total)
    collection["properties"] = {"from": first.isoformat(), "to": last.isoformat(), "metric": metric}
    return collection


# --------------------------------------------------------------------------- trends


@router.get("/trends", response_class=HTMLResponse, include_in_schema=False)
def trends_page(
    request: Request,
    store: StoreDep,
    areas: AreasDep,
    user: PageUser,
    lang: str = "vi",
    area: Annotated[str | None, Query(max_length=64)] = None,
    days: Annotated[int, Query(ge=7, le=MAX_DAYS)] = 30,
    to: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    """Volume and sentiment per day for an area, and topics against the previous period."""
    lang = lang_of(lang)
    words = t(lang)
    area = allowed_area(user, area)
    if areas.get(area) is None:
        raise HTTPException(404, detail=f"Không tìm thấy khu vực '{area}' / Unknown area '{area}'")
    last = day_param(to, "to", newest_day(store))
    first = last - timedelta(days=days - 1)
    scope = user.scope.filters() or None
    where: dict[str, Any] = {"scope": scope}
    if area != CITY_AREA_ID:
        where["area"] = area
    series = daily_series(store, first, last, **where)
    names = labels(lang)["sentiment"]
    from collections import Counter

    now: Counter[str] = Counter(m.topic for m in mentions_between(store, first, last, **where) if m.topic)
    before: Counter[str] = Counter(m.topic for m in mentions_between(
        store, first - timedelta(days=days), first - timedelta(days=1), **where) if m.topic)
    rows = [(topic_name(code, lang), now[code], before[code]) for code, _ in (now + before).most_common(10)]
    former = sorted(x.id for x in areas.all() if getattr(x, "level", "") == "former_district")
    choices = [a for a in (CITY_AREA_ID, *former) if user.scope.allows_area(a)]
    if area not in choices:
        choices.insert(0, area)
    return page(request, "trends.html", {
        "lang": lang, "nav": "trends", "area": area, "area_label": area_name(areas, area), "days": days,
        "first": first, "last": last, "choices": [(a, area_name(areas, a)) for a in choices],
        "total": sum(p.total for p in series), "negative": sum(p.negative for p in series),
        "volume_svg": volume_chart(series, title=words["volume_title"], names=names),
        "sentiment_svg": sentiment_chart(series, title=words["sentiment_title"], axis_label=words["net_axis"]),
        "topics_svg": comparison_bars(rows, title=words["by_topic"], now_label=words["last_n"].format(n=days),
                                      before_label=words["prev_n"].format(n=days)) if rows else "",
    })
