"""The department's morning briefing: on day D, what was said on day D−1 about the issues in the
department's charge, which issues are new or rising against the 7 days before, and the negative
mentions that need a response. As a web page, an HTML e-mail and plain text."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from api.reports.charts import sparkline
from api.reports.data import city_day, day_start, mentions_between
from api.reports.i18n import lang_of, t, unit
from api.reports.render import render
from langnghe.records import Issue, Mention, utcnow
from nlp.taxonomy import DEPARTMENTS, department_name
from storage.base import Filters, Store

BASELINE_DAYS = 7
MAX_NEGATIVE = 15
RISING_FACTOR = 2.0
ROUTING_CHECK_BELOW = 0.5  # department_score under which a mention's routing is marked for a person to check


def needs_routing_check(m: Mention) -> bool:
    """True when the classifier was unsure of `m`'s department (department_score below
    ROUTING_CHECK_BELOW); mentions classified before the score was stored (None) are not marked."""
    return m.department_score is not None and m.department_score < ROUTING_CHECK_BELOW


@dataclass
class IssueLine:
    """One issue's figures in the briefing window."""

    issue_id: str
    label: str
    issue: Issue | None
    mentions: list[Mention]
    baseline: int  # mentions in the BASELINE_DAYS before the window
    series: list[int]  # mentions per day, baseline days then the window day
    is_new: bool = False
    is_rising: bool = False

    @property
    def count(self) -> int:
        return len(self.mentions)

    @property
    def negative(self) -> int:
        return sum(1 for m in self.mentions if m.sentiment == "negative")

    @property
    def positive(self) -> int:
        return sum(1 for m in self.mentions if m.sentiment == "positive")

    @property
    def neutral(self) -> int:
        return self.count - self.negative - self.positive

    @property
    def baseline_avg(self) -> float:
        return self.baseline / BASELINE_DAYS

    @property
    def sources(self) -> int:
        return len({m.source for m in self.mentions})


@dataclass
class BriefingData:
    department: str
    day: date  # the morning the briefing is for
    since: date  # the day it covers (day − 1)
    scoped: bool
    issues: list[IssueLine] = field(default_factory=list)
    negatives: list[Mention] = field(default_factory=list)
    total: int = 0
    negative_total: int = 0
    unassigned: int = 0

    @property
    def new(self) -> list[IssueLine]:
        return [line for line in self.issues if line.is_new]

    @property
    def rising(self) -> list[IssueLine]:
        return [line for line in self.issues if line.is_rising]


@dataclass
class Briefing:
    """A rendered briefing."""

    html: str
    text: str
    subject: str
    data: BriefingData


def check_department(department: str) -> str:
    """The department code, or ValueError naming the known ones."""
    if department not in DEPARTMENTS:
        raise ValueError(f"unknown department {department!r}; expected one of {sorted(DEPARTMENTS)}")
    return department


def briefing_data(store: Store, department: str, day: date, *, scope: Filters | None = None) -> BriefingData:
    """Collect the figures: mentions of `department` (within the caller's `scope`, a store filter)
    on day − 1 and in the BASELINE_DAYS before it, grouped by issue."""
    check_department(department)
    since = day - timedelta(days=1)
    first = since - timedelta(days=BASELINE_DAYS)
    window: dict[str, list[Mention]] = defaultdict(list)
    baseline: dict[str, list[int]] = defaultdict(lambda: [0] * (BASELINE_DAYS + 1))
    data = BriefingData(department=department, day=day, since=since, scoped=bool(scope))
    negatives: list[Mention] = []
    for m in mentions_between(store, first, since, department=department, scope=scope):
        offset = (city_day(m.published_at) - first).days
        if not 0 <= offset <= BASELINE_DAYS:
            continue
        if m.issue_id:
            baseline[m.issue_id][offset] += 1
        if offset == BASELINE_DAYS:
            data.total += 1
            if m.sentiment == "negative":
                data.negative_total += 1
                negatives.append(m)
            if m.issue_id:
                window[m.issue_id].append(m)
            else:
                data.unassigned += 1
    window_start = day_start(since)
    for issue_id, members in window.items():
        issue = store.get_issue(issue_id)
        series = baseline[issue_id]
        before = sum(series[:BASELINE_DAYS])
        line = IssueLine(issue_id=issue_id, label=issue.label if issue else issue_id, issue=issue,
                         mentions=sorted(members, key=lambda m: m.published_at, reverse=True),
                         baseline=before, series=series)
        line.is_new = issue is not None and issue.first_seen >= window_start
        line.is_rising = (not line.is_new and line.count >= 2
                          and line.count >= RISING_FACTOR * max(line.baseline_avg, 0.5))
        data.issues.append(line)
    data.issues.sort(key=lambda ln: (-ln.count, -ln.negative, ln.label))
    negatives.sort(key=lambda m: (-(m.sentiment_score or 0.0), -m.published_at.timestamp()))
    data.negatives = negatives[:MAX_NEGATIVE]
    return data


def subject_of(data: BriefingData, lang: str) -> str:
    name = department_name(data.department, lang)
    if lang == "en":
        words, issues, negative = t("en"), len(data.issues), data.negative_total
        return (f"[Lắng Nghe] Morning briefing {data.day:%d/%m/%Y} — {name}: {issues} "
                f"{unit(words, 'issues', issues)}, {len(data.new)} new, {negative} negative "
                f"{unit(words, 'mentions', negative)}")
    return (f"[Lắng Nghe] Bản tin sáng {data.day:%d/%m/%Y} — {name}: {len(data.issues)} vấn đề, "
            f"{len(data.new)} mới, {data.negative_total} ý kiến tiêu cực")


def build_department_briefing(store: Store, department: str, day: date | None = None, *,
                              lang: str = "vi", scope: Filters | None = None, base_url: str = "",
                              web: bool = False) -> Briefing:
    """The briefing of `department` for the morning of `day` (default: today, city time), as
    HTML (`web` links the site's stylesheet and navigation; otherwise self-contained, for e-mail),
    plain text and an e-mail subject."""
    lang = lang_of(lang)
    day = day or city_day(utcnow())
    data = briefing_data(store, department, day, scope=scope)
    words = t(lang)
    subject = subject_of(data, lang)
    context: dict[str, Any] = {
        "lang": lang, "ui": words, "data": data, "base_url": base_url.rstrip("/"), "web": web,
        "department_label": department_name(department, lang),
        "sparks": {ln.issue_id: sparkline(ln.series, label=f"{ln.label}: {ln.series}") for ln in data.issues},
        "generated": utcnow(), "subject": subject, "check_routing": needs_routing_check,
    }
    return Briefing(html=render("briefing.html", **context), text=render("briefing.txt", **context),
                    subject=subject, data=data)

