"""The weekly leadership digest: city-wide and per-former-district top-10 with week-over-week
changes, totals, charts and the ward map, as HTML (web page or self-contained e-mail), PDF and
plain text. `build_weekly_digest` is what the scheduler and the endpoint call."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from api.reports.charts import comparison_bars, sentiment_chart, volume_chart
from api.reports.data import (
    TopChange,
    area_counts,
    city_day,
    daily_series,
    mentions_between,
    previous_week,
    top_with_changes,
    week_bounds,
    week_key_of,
)
from api.reports.geo import choropleth_svg
from api.reports.i18n import lang_of, t
from api.reports.pdf import PdfError, PdfUnavailable, html_to_pdf
from api.reports.render import render
from langnghe.records import CITY_AREA_ID, Issue, utcnow
from nlp.taxonomy import labels, topic_name
from storage.base import Filters, Store

log = logging.getLogger(__name__)
CHART_DAYS = 28


@dataclass
class WeekTotals:
    mentions: int = 0
    negative: int = 0
    issues: int = 0
    topics: Counter[str] = field(default_factory=Counter)

    @property
    def negative_share(self) -> float:
        return self.negative / self.mentions if self.mentions else 0.0


@dataclass
class AreaTop:
    area_id: str
    name: str
    changes: list[TopChange]
    mentions: int


@dataclass
class Digest:
    """A rendered digest; `pdf_bytes` is None when no PDF renderer is installed (logged)."""

    html: str
    pdf_bytes: bytes | None
    subject: str
    text: str = ""
    week_key: str = ""
    email_html: str = ""


def current_week_key() -> str:
    return week_key_of(city_day(utcnow()))


def last_complete_week_key() -> str:
    """The ISO week before the current one (what a Monday-morning digest reports on)."""
    return previous_week(current_week_key())


def _totals(store: Store, first: date, last: date, **scope: Any) -> WeekTotals:
    totals = WeekTotals()
    issues: set[str] = set()
    for m in mentions_between(store, first, last, **scope):
        totals.mentions += 1
        totals.negative += m.sentiment == "negative"
        if m.topic:
            totals.topics[m.topic] += 1
        if m.issue_id:
            issues.add(m.issue_id)
    totals.issues = len(issues)
    return totals


def _area_catalog() -> Any | None:
    try:
        from nlp.areas import load_areas
    except ImportError:  # pragma: no cover - the gazetteer is part of the project
        return None
    return load_areas()


def digest_context(store: Store, week_key: str, *, lang: str = "vi", area: str | None = None,
                   scope: Filters | None = None, keep: Callable[[str], bool] | None = None,
                   base_url: str = "") -> dict[str, Any]:
    """Everything the digest templates show. `area` centres it on one area (an area account's
    home); `scope` (store filter) and `keep` (issue id → bool) hold it to a caller's scope."""
    lang = lang_of(lang)
    words = t(lang)
    first, last = week_bounds(week_key)
    prev_key = previous_week(week_key)
    prev_first, prev_last = week_bounds(prev_key)
    where: dict[str, Any] = {"area": area} if area else {}
    where["scope"] = scope
    catalog = _area_catalog()
    main_area = area or CITY_AREA_ID

    def area_name(area_id: str) -> str:
        found = catalog.get(area_id) if catalog is not None else None
        if found is None:
            return area_id
        return str(getattr(found, "full_name", None) or getattr(found, "name", area_id))

    now, before = _totals(store, first, last, **where), _totals(store, prev_first, prev_last, **where)
    city = top_with_changes(store, main_area, "week", week_key, prev_key, prev_first, prev_last, keep=keep)
    ward_totals, _ = area_counts(store, first, last, **where)
    fd_totals, _ = area_counts(store, first, last, prefix="fd:", **where)
    area_tops: list[AreaTop] = []
    fd_ids = [a for a, _ in fd_totals.most_common()]
    if area:
        fd_ids = []  # the main list already is this area's
    for fd in fd_ids:
        changes = top_with_changes(store, fd, "week", week_key, prev_key, prev_first, prev_last, keep=keep)
        if changes:
            area_tops.append(AreaTop(fd, area_name(fd), changes, fd_totals[fd]))
    issue_ids = {c.entry.issue_id for c in city} | {c.entry.issue_id for a in area_tops for c in a.changes}
    issues: dict[str, Issue] = {}
    for issue_id in issue_ids:
        found = store.get_issue(issue_id)
        if found is not None:
            issues[issue_id] = found
    series = daily_series(store, last - timedelta(days=CHART_DAYS - 1), last, **where)
    names = labels(lang)["sentiment"]
    topic_rows = [(topic_name(code, lang), now.topics[code], before.topics[code])
                  for code, _ in (now.topics + before.topics).most_common(8)]
    subject = (f"[Lắng Nghe] Weekly digest {week_key}: {now.mentions} mentions "
               f"({now.mentions - before.mentions:+d} on last week)" if lang == "en" else
               f"[Lắng Nghe] Bản tin tuần {week_key}: {now.mentions} lượt nhắc "
               f"({now.mentions - before.mentions:+d} so với tuần trước)")
    return {
        "lang": lang, "ui": words, "week_key": week_key, "prev_key": prev_key, "first": first,
        "last": last, "now": now, "before": before, "city": city, "area_tops": area_tops,
        "issues": issues, "main_area": main_area, "main_area_name": area_name(main_area),
        "scoped": area is not None, "base_url": base_url.rstrip("/"), "subject": subject,
        "generated": utcnow(), "topic_rows": topic_rows,
        "volume_svg": volume_chart(series, title=words["volume_title"], names=names),
        "sentiment_svg": sentiment_chart(series, title=words["sentiment_title"], axis_label=words["net_axis"]),
        "topics_svg": comparison_bars(topic_rows, title=words["by_topic"], now_label=words["this_week"],
                                      before_label=words["last_week"]) if topic_rows else "",
        "map_svg": choropleth_svg(ward_totals, view="core", width=760, title=words["map_title"],
                                  href=None, unit=words["mentions"]),
    }


def build_weekly_digest(store: Store, week_key: str | None = None, *, lang: str = "vi", pdf: bool = True,
                        area: str | None = None, scope: Filters | None = None,
                        keep: Callable[[str], bool] | None = None, base_url: str = "",
                        web: bool = False) -> Digest:
    """The digest of ISO week `week_key` ('YYYY-Www'; default: the last complete week). The HTML
    is self-contained (inline CSS and SVG) unless `web`; the PDF is printed from the self-contained
    HTML by Chromium (None, with a warning logged, when Chromium is missing or fails)."""
    week_key = week_key or last_complete_week_key()
    context = digest_context(store, week_key, lang=lang, area=area, scope=scope, keep=keep,
                             base_url=base_url)
    standalone = render("digest.html", **context, web=False)
    html = render("digest.html", **context, web=True, nav="digest") if web else standalone
    pdf_bytes: bytes | None = None
    if pdf:
        try:
            pdf_bytes = html_to_pdf(standalone)
        except (PdfUnavailable, PdfError) as exc:
            log.warning("digest %s: no PDF (%s)", week_key, exc)
    return Digest(html=html, pdf_bytes=pdf_bytes, subject=context["subject"],
                  text=render("digest.txt", **context), week_key=week_key, email_html=standalone)
