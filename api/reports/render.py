"""One Jinja environment for the reports (briefings, digests): autoescaped HTML, plain text, and
the stylesheet inlined for e-mail and PDF (the web pages link it instead, under a strict CSP)."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from api.reports.i18n import unit
from langnghe.records import to_city_time
from nlp.taxonomy import department_name, sentiment_name, topic_name

API_DIR = Path(__file__).resolve().parent.parent
TEMPLATES = API_DIR / "templates"
REPORT_CSS = API_DIR / "static" / "report.css"


def fmt_day(value: date | datetime, lang: str = "vi") -> str:
    """dd/mm/yyyy (both languages: the city's usage)."""
    if isinstance(value, datetime):
        value = to_city_time(value).date()
    return value.strftime("%d/%m/%Y")


def fmt_time(value: datetime) -> str:
    return to_city_time(value).strftime("%d/%m/%Y %H:%M")


def safe_url(url: str | None) -> str | None:
    """Only http(s) links are rendered as links."""
    return url if url and url.lower().startswith(("http://", "https://")) else None


def pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def signed(value: int | float) -> str:
    return f"{value:+d}" if isinstance(value, int) else f"{value:+.1f}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(("html", "htm", "xml"), default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(day=fmt_day, time=fmt_time, safe_url=safe_url, pct=pct, signed=signed)
    env.globals.update(topic_name=topic_name, department_name=department_name,
                       sentiment_name=sentiment_name, unit=unit)
    return env


def css() -> str:
    """The report stylesheet, for inlining."""
    return REPORT_CSS.read_text(encoding="utf-8")


def render(template: str, **context: Any) -> str:
    """Render a report template; `web` (default False) links the stylesheet instead of inlining it."""
    context.setdefault("web", False)
    if not context["web"]:
        context.setdefault("inline_css", Markup(css()))
    return environment().get_template(template).render(**context)
