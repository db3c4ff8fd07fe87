"""Department morning briefings and weekly leadership digests: pages, PDF, and e-mail on demand.
A department account reads only its department's briefing; an area account reads briefings and
digests restricted to its area; leadership, communications and administrators read everything."""

from __future__ import annotations

import logging
import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from api.auth import CurrentUser, PageUser, Principal, Role
from api.deps import StoreDep
from api.mailer import MailerNotConfigured, MailError
from api.reports.briefing import build_department_briefing
from api.reports.data import city_day, week_bounds, week_key_of
from api.reports.digest import Digest, build_weekly_digest, last_complete_week_key
from api.reports.i18n import lang_of
from api.reports.mail import send_briefing, send_digest
from api.reports.pdf import PdfError, PdfUnavailable, html_to_pdf
from api.routers.pages import CSP, page
from api.services import parse_day
from langnghe.records import utcnow
from nlp.taxonomy import DEPARTMENTS, Department, department_name
from storage.base import Store

log = logging.getLogger(__name__)
router = APIRouter(tags=["reports"])

WEEK = re.compile(r"^\d{4}-W\d{2}$")
MAX_RECIPIENTS = 20


class SendRequest(BaseModel):
    """Recipients of an e-mail; only administrators may name others than themselves."""

    to: list[Annotated[str, Field(max_length=254, pattern=r"^[^@\s,;<>]+@[^@\s,;<>]+$")]] | None = Field(
        default=None, max_length=MAX_RECIPIENTS)
    lang: Annotated[str, Field(pattern="^(vi|en)$")] = "vi"


class SendResult(BaseModel):
    sent_to: list[str]
    subject: str


# --------------------------------------------------------------------------- access


def check_department_access(user: Principal, department: str) -> None:
    """A department account may open its own department's briefing only."""
    if department not in DEPARTMENTS:
        raise HTTPException(404, detail=f"Không có cơ quan '{department}' / Unknown department '{department}'")
    own = user.scope.department
    if own is not None and own != department:
        raise HTTPException(403, detail="Không có quyền xem bản tin của cơ quan khác / "
                                        "another department's briefing is outside your scope")


def digest_scope(store: Store, user: Principal) -> dict[str, Any]:
    """The digest keywords that hold it to the caller's scope."""
    scope = user.scope
    if scope.unrestricted:
        return {}

    def keep(issue_id: str) -> bool:
        return scope.allows_issue(store.get_issue(issue_id))

    return {"scope": scope.filters() or None, "keep": keep, "area": scope.home_area}


def recipients(user: Principal, body: SendRequest | None) -> list[str]:
    """Who gets the e-mail: the caller, or (administrators only) the addresses named."""
    named = [a.strip() for a in (body.to or [])] if body else []
    if named and not (user.role == Role.administrator or named == [user.email]):
        raise HTTPException(403, detail="Chỉ quản trị viên được gửi cho người khác / only administrators "
                                        "may send to other addresses")
    if named:
        return named
    if not user.email:
        raise HTTPException(422, detail="Cần địa chỉ người nhận / a recipient ('to') is required")
    return [user.email]


def parse_week(value: str) -> str:
    if not WEEK.match(value):
        raise HTTPException(422, detail=f"Mã tuần phải có dạng YYYY-Www / week must be YYYY-Www, got {value!r}")
    try:
        week_bounds(value)
    except ValueError as exc:
        raise HTTPException(422, detail=f"Tuần không tồn tại / not a real ISO week: {value!r}") from exc
    return value


def _briefing_day(day: str | None) -> date:
    return parse_day(day[:10], "day") if day else city_day(utcnow())


def _mail(send: Any, item: Any, to: list[str]) -> None:
    try:
        send(item, to)
    except MailerNotConfigured as exc:
        raise HTTPException(503, detail=f"Chưa cấu hình e-mail / e-mail is not configured: {exc}") from exc
    except MailError as exc:
        log.warning("e-mail failed: %s", exc)
        raise HTTPException(502, detail=f"Gửi e-mail thất bại / sending failed: {exc}") from exc


# --------------------------------------------------------------------------- briefings


@router.get("/briefings", response_class=HTMLResponse, include_in_schema=False)
def briefings_index(request: Request, user: PageUser, lang: str = "vi", day: str | None = None) -> Response:
    """Choose a department and a day."""
    lang = lang_of(lang)
    the_day = _briefing_day(day)
    own = user.scope.department
    if own is not None:
        return RedirectResponse(f"/briefings/{own}?lang={lang}&day={the_day}", status_code=303)
    choices = [(code, department_name(code, lang)) for code in DEPARTMENTS if code != "none"]
    return page(request, "briefings_index.html", {"lang": lang, "nav": "briefing", "choices": choices,
                                                  "day": the_day})


@router.get("/briefings/{department}", response_class=HTMLResponse, include_in_schema=False)
def briefing_page(
    request: Request, store: StoreDep, user: PageUser,
    department: Annotated[str, Path(max_length=40)],
    lang: str = "vi",
    day: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    """The department's briefing for the morning of `day` (default today, city time)."""
    check_department_access(user, department)
    lang = lang_of(lang)
    the_day = _briefing_day(day)
    briefing = build_department_briefing(store, department, the_day, lang=lang,
                                         scope=user.scope.filters() or None, web=True)
    response = HTMLResponse(briefing.html)
    response.headers["Content-Security-Policy"] = CSP
    return response


@router.post("/api/v1/briefings/{department}/send", response_model=SendResult,
             summary="E-mail a department's morning briefing")
def send_briefing_now(
    request: Request, store: StoreDep, user: CurrentUser,
    department: Annotated[Department, Path()],
    day: Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD, default today")] = None,
    body: Annotated[SendRequest | None, Body()] = None,
) -> SendResult:
    """Build the briefing and e-mail it (to the caller; administrators may name recipients)."""
    check_department_access(user, department.value)
    to = recipients(user, body)
    base = str(request.base_url).rstrip("/")
    briefing = build_department_briefing(store, department.value, _briefing_day(day),
                                         lang=body.lang if body else "vi",
                                         scope=user.scope.filters() or None, base_url=base)
    _mail(send_briefing, briefing, to)
    return SendResult(sent_to=to, subject=briefing.subject)


# --------------------------------------------------------------------------- digests


@router.get("/digests", response_class=HTMLResponse, include_in_schema=False)
def digests_index(request: Request, store: StoreDep, user: PageUser, lang: str = "vi") -> HTMLResponse:
    """Weeks with a ranking, newest first."""
    lang = lang_of(lang)
    weeks = store.ranking_keys("week")[:26]
    rows = [(key, *week_bounds(key)) for key in weeks]
    return page(request, "digests_index.html", {"lang": lang, "nav": "digest", "weeks": rows,
                                                "current": week_key_of(city_day(utcnow()))})


def _digest(store: Store, user: Principal, week_key: str, lang: str, *, web: bool, pdf: bool,
            base_url: str = "") -> Digest:
    return build_weekly_digest(store, parse_week(week_key), lang=lang_of(lang), pdf=pdf, web=web,
                               base_url=base_url, **digest_scope(store, user))


@router.get("/digests/{week_key}.pdf", response_class=Response, include_in_schema=False)
def digest_pdf(store: StoreDep, user: PageUser, week_key: Annotated[str, Path(max_length=8)],
               lang: str = "vi") -> Response:
    """The digest printed to PDF (A4)."""
    digest = _digest(store, user, week_key, lang, web=False, pdf=False)
    try:
        data = html_to_pdf(digest.email_html or digest.html)
    except PdfUnavailable as exc:
        raise HTTPException(503, detail=str(exc)) from exc
    except PdfError as exc:
        raise HTTPException(500, detail=f"PDF: {exc}") from exc
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="lang-nghe-{digest.week_key}.pdf"'})


@router.get("/digests/{week_key}", response_class=HTMLResponse, include_in_schema=False)
def digest_page(request: Request, store: StoreDep, user: PageUser,
                week_key: Annotated[str, Path(max_length=8)], lang: str = "vi") -> HTMLResponse:
    """The digest of an ISO week as a web page ('latest' = the last complete week)."""
    if week_key == "latest":
        week_key = last_complete_week_key()
    digest = _digest(store, user, week_key, lang, web=True, pdf=False)
    response = HTMLResponse(digest.html)
    response.headers["Content-Security-Policy"] = CSP
    return response


@router.post("/api/v1/digests/{week_key}/send", response_model=SendResult,
             summary="E-mail the weekly digest (HTML + PDF)")
def send_digest_now(
    request: Request, store: StoreDep, user: CurrentUser,
    week_key: Annotated[str, Path(max_length=8, pattern=r"^\d{4}-W\d{2}$")],
    body: Annotated[SendRequest | None, Body()] = None,
) -> SendResult:
    """Build the digest of `week_key` with its PDF and e-mail it (to the caller; administrators
    may name recipients)."""
    to = recipients(user, body)
    digest = _digest(store, user, week_key, body.lang if body else "vi", web=False, pdf=True,
                     base_url=str(request.base_url).rstrip("/"))
    _mail(send_digest, digest, to)
    return SendResult(sent_to=to, subject=digest.subject)

