"""The dashboard: one server-rendered page (Vietnamese first, `?lang=en` for English)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from api.auth import PageUser
from api.deps import AreaCatalog, AreasDep, StoreDep
from api.reports.i18n import t, unit
from api.schemas import MentionOut, SearchOut, TopIssuesOut, area_full_name, clean_highlight
from api.services import build_top, resolve_area, select_period_key
from langnghe.records import CITY_AREA_ID, to_city_time
from nlp.taxonomy import labels
from nlp.text import fold
from storage.base import mention_filters

router = APIRouter(tags=["dashboard"])
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

UI: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Lắng Nghe — Ý kiến người dân TP.HCM",
        "tagline": "Những vấn đề người dân quan tâm nhất, theo khu vực, từ báo chí và mạng xã hội",
        "area": "Khu vực", "period": "Kỳ", "day": "Hôm nay", "week": "Tuần này", "date": "Ngày",
        "show": "Xem", "city_group": "Toàn thành phố",
        "fd_group": "Quận, huyện cũ (trước 1/7/2025)", "ward_group": "Phường, xã, đặc khu hiện nay",
        "top": "10 vấn đề nổi bật", "period_day": "ngày", "period_week": "tuần",
        "empty": "Chưa có xếp hạng cho khu vực và kỳ này.",
        "topic": "Lĩnh vực", "department": "Cơ quan phụ trách", "score": "Điểm",
        "score_parts": "Thành phần điểm", "mentions": "lượt nhắc", "sources": "nguồn",
        "sentiment": "Sắc thái", "evidence": "Dẫn chứng", "keywords": "Từ khóa",
        "search": "Tìm ý kiến", "search_placeholder": "Ví dụ: ngập nước, kẹt xe, rác thải…",
        "search_button": "Tìm", "results": "kết quả", "no_results": "Không tìm thấy ý kiến nào.",
        "prev": "Trang trước", "next": "Trang sau", "page": "Trang",
        "search_in": "trong khu vực đang chọn", "error": "Lỗi", "loading": "Đang tải…",
        "language": "English", "language_href": "en", "api_docs": "Tài liệu API",
        "footer": "Dữ liệu công khai; mã nguồn mở.", "old_hcmc": "TP.HCM cũ",
        "export": "Xuất kết quả", "check_routing": "cần kiểm tra phân công",
        "check_routing_hint": "Mô hình chưa chắc ý kiến này thuộc cơ quan nào (độ tin cậy {score})",
    },
    "en": {
        "title": "Lắng Nghe — Ho Chi Minh City residents' voices",
        "tagline": "What residents care about most, by area, from the press and social media",
        "area": "Area", "period": "Period", "day": "Today", "week": "This week", "date": "Date",
        "show": "Show", "city_group": "Whole city",
        "fd_group": "Former districts (before 1 July 2025)",
        "ward_group": "Current wards and communes",
        "top": "Top 10 issues", "period_day": "day", "period_week": "week",
        "empty": "No ranking yet for this area and period.",
        "topic": "Topic", "department": "Responsible agency", "score": "Score",
        "score_parts": "Score parts", "mentions": "mentions", "mentions_one": "mention",
        "sources": "sources", "sources_one": "source",
        "sentiment": "Sentiment", "evidence": "Evidence", "keywords": "Keywords",
        "search": "Search mentions", "search_placeholder": "e.g. ngập nước, kẹt xe, rác thải…",
        "search_button": "Search", "results": "results", "no_results": "No mentions found.",
        "prev": "Previous", "next": "Next", "page": "Page",
        "search_in": "in the selected area", "error": "Error", "loading": "Loading…",
        "language": "Tiếng Việt", "language_href": "vi", "api_docs": "API docs",
        "footer": "Public data; open source.", "old_hcmc": "former HCMC",
        "export": "Export results", "check_routing": "check routing",
        "check_routing_hint": "The model is unsure which agency this mention belongs to (confidence {score})",
    },
}

SCORE_PARTS: dict[str, dict[str, str]] = {
    "vi": {"volume": "Số lượt nhắc", "sources": "Độ đa dạng nguồn", "negativity": "Mức tiêu cực",
           "growth": "Tăng trưởng", "recency": "Độ mới", "severity": "Mức nghiêm trọng", "reach": "Độ lan tỏa",
           "engagement": "Tương tác"},
    "en": {"volume": "Volume", "sources": "Source diversity", "negativity": "Negativity",
           "growth": "Growth", "recency": "Recency", "severity": "Severity", "engagement": "Engagement",
           "reach": "Reach"},
}

_NUMBER = re.compile(r"(\d+)")


def _natural(name: str) -> list[Any]:
    """Sort key: accent-folded, numbers by value ("Quận 2" before "Quận 10")."""
    return [int(part) if part.isdigit() else part for part in _NUMBER.split(fold(name))]


def display_name(area: Any) -> str:
    """'Phường Bến Thành', 'Quận 7', 'Huyện Củ Chi' when the area knows its full name."""
    return area_full_name(area)


def area_groups(areas: AreaCatalog, lang: str,
                allowed: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
    """Areas for the selector: the city, the former district-level units, the current wards and
    communes; the last two grouped by the province they belonged to before 1 July 2025. Only
    the areas `allowed` accepts (the caller's scope) are listed."""
    ui = UI[lang]
    city: list[Any] = []
    former: dict[str, list[Any]] = {}
    current: dict[str, list[Any]] = {}
    for area in areas.all():
        if allowed is not None and not allowed(area.id):
            continue
        province = getattr(area, "former_province", None) or ""
        if area.level == "city":
            city.append(area)
        elif area.level == "former_district":
            former.setdefault(province, []).append(area)
        elif area.level == "ward":
            current.setdefault(province, []).append(area)
    groups: list[dict[str, Any]] = [{"label": ui["city_group"], "areas": city}] if city else []
    for title, table in ((ui["fd_group"], former), (ui["ward_group"], current)):
        for province in sorted(table, key=lambda p: (p != "", _natural(p))):
            where = province or ui["old_hcmc"]
            members = sorted(table[province], key=lambda a: _natural(display_name(a)))
            groups.append({"label": f"{title} — {where}", "areas": members})
    return groups


templates.env.globals["display_name"] = display_name
templates.env.globals["unit"] = unit


def safe_url(url: str | None) -> str | None:
    """Only http(s) links are rendered as links."""
    return url if url and url.lower().startswith(("http://", "https://")) else None


def highlight_html(snippet: str | None) -> Markup:
    """A search snippet as markup: text escaped, only its <mark>…</mark> tags kept."""
    return Markup(clean_highlight(snippet) or "")


def city_time(moment: datetime, fmt: str = "%d/%m/%Y %H:%M") -> str:
    """Format a datetime in Ho Chi Minh City time."""
    return to_city_time(moment).strftime(fmt)


templates.env.filters["safe_url"] = safe_url
templates.env.filters["city_time"] = city_time
templates.env.filters["highlight"] = highlight_html


def _message(exc: Exception) -> str:
    if isinstance(exc, HTTPException):
        return str(exc.detail)
    if isinstance(exc, RequestValidationError):
        return "; ".join(str(err.get("msg", "")) for err in exc.errors())
    return str(exc)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard(
    request: Request,
    store: StoreDep,
    areas: AreasDep,
    user: PageUser,
    area: str | None = None,
    period: str = "day",
    date: str | None = None,
    lang: str = "vi",
    q: str | None = None,
) -> HTMLResponse:
    """The dashboard page; the top-10 and the first page of a search are rendered on the server,
    and a small script refreshes them through the API without reloading. It holds to the
    caller's scope: an area account sees its areas only, a department account its issues."""
    lang = "en" if lang == "en" else "vi"
    scope = user.scope
    area = (area or scope.home_area or CITY_AREA_ID)[:64]
    period = period if period in ("day", "week") else "day"
    q = (q or "").strip()[:500]
    error: str | None = None
    status = 200
    top: TopIssuesOut | None = None
    results: SearchOut | None = None
    try:
        found = resolve_area(areas, area)
        if not scope.allows_area(area):
            raise HTTPException(403, detail="Không có quyền xem khu vực này / this area is outside your scope")
        key = select_period_key(store, period, (date or "")[:10] or None)
        top = build_top(store, found, period, key)
        if not scope.unrestricted:
            top.issues = [it for it in top.issues if scope.allows_issue(store.get_issue(it.issue_id))]
        if q:
            page = store.search(q, scope.restrict(mention_filters(area=area)), limit=20)
            results = SearchOut(total=page.total, page=1, page_size=20,
                                items=[MentionOut.from_mention(h.mention, h.highlight) for h in page.hits])
    except (HTTPException, RequestValidationError) as exc:
        error = _message(exc)
        status = exc.status_code if isinstance(exc, HTTPException) else 422
    context = {
        "lang": lang, "ui": UI[lang], "labels": labels(lang), "parts": SCORE_PARTS[lang],
        "groups": area_groups(areas, lang, scope.allows_area), "area": area,
        "nav_ui": t(lang), "nav": "top", "period": period, "date": date or "",
        "q": q, "top": top, "results": results, "error": error,
        "data": {"ui": UI[lang], "labels": labels(lang), "parts": SCORE_PARTS[lang], "lang": lang},
    }
    response = templates.TemplateResponse(request, "index.html", context, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    return response
