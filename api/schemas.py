"""Output schemas of the API (pydantic), separate from the internal records."""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from langnghe.records import Issue, Mention
from nlp.text import fold

_MARK = re.compile(r"(</?mark>)")


def clean_highlight(snippet: str | None) -> str | None:
    """A search snippet as safe HTML: the text escaped once, only <mark>…</mark> kept as markup
    (whether or not the backend had escaped it already)."""
    if snippet is None:
        return None
    parts = _MARK.split(html.unescape(snippet))
    return "".join(p if p in ("<mark>", "</mark>") else html.escape(p, quote=False) for p in parts)


def area_full_name(area: Any) -> str:
    """'Phường Bến Thành', 'Quận 7', 'Thành phố Hồ Chí Minh': the kind once, before the name."""
    name = str(area.name)
    full = getattr(area, "full_name", None)
    kind = str(getattr(area, "kind", None) or "")
    if not full or (kind and fold(name).startswith(fold(kind))):
        return name
    return str(full)


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    mentions: int = Field(description="Number of stored mentions")


class AreaOut(BaseModel):
    """An area: the city, a former district-level unit or a current ward/commune."""

    id: str = Field(examples=["hcmc", "fd:quan-7", "w:26734"])
    name: str = Field(examples=["Bến Thành", "Quận 7"])
    full_name: str | None = Field(default=None, examples=["Phường Bến Thành", "Huyện Củ Chi"])
    level: str = Field(description="city | former_district | ward")
    kind: str | None = Field(default=None, description="e.g. phường, xã, đặc khu, quận, huyện")
    former_province: str | None = None
    parent_ids: list[str] = Field(default_factory=list)
    related_ids: list[str] = Field(default_factory=list, description="old ↔ new units mapping")

    @classmethod
    def from_area(cls, area: Any) -> AreaOut:
        return cls(
            id=area.id, name=area.name, full_name=area_full_name(area), level=area.level,
            kind=getattr(area, "kind", None),
            former_province=getattr(area, "former_province", None),
            parent_ids=list(getattr(area, "parent_ids", None) or []),
            related_ids=list(getattr(area, "related_ids", None) or []),
        )


class AreaRef(BaseModel):
    id: str
    name: str
    full_name: str | None = None
    level: str


class SentimentSplit(BaseModel):
    negative: int = 0
    neutral: int = 0
    positive: int = 0


class EvidenceOut(BaseModel):
    """A representative mention of an issue."""

    id: str
    title: str
    url: str
    source: str
    published_at: datetime
    sentiment: str | None = None

    @classmethod
    def from_mention(cls, m: Mention) -> EvidenceOut:
        return cls(id=m.id, title=m.title, url=m.url, source=m.source, published_at=m.published_at,
                   sentiment=m.sentiment)


class TopIssueOut(BaseModel):
    """One line of a top-10."""

    rank: int
    issue_id: str
    label: str
    topic: str | None
    department: str | None
    score: float
    score_parts: dict[str, float]
    mention_count: int
    source_count: int
    sentiment: SentimentSplit
    keywords: list[str]
    evidence: list[EvidenceOut]


class TopIssuesOut(BaseModel):
    area: AreaRef
    period: str = Field(examples=["day", "week"])
    period_key: str = Field(examples=["2025-11-20", "2025-W47"])
    issues: list[TopIssueOut]


class PeriodKeysOut(BaseModel):
    period: str
    keys: list[str] = Field(description="Period keys with a stored ranking, newest first")


class MentionOut(BaseModel):
    """A mention as listed by search."""

    id: str
    title: str
    url: str
    source: str
    published_at: datetime
    sentiment: str | None = None
    topic: str | None = None
    department: str | None = None
    department_score: float | None = Field(
        default=None, description="Probability of the named department; below 0.5: a routing to check")
    areas: list[str] = Field(default_factory=list)
    highlight: str | None = Field(
        default=None,
        description="With a query: HTML snippet, text escaped, the matched words in <mark>…</mark>")
    snippet: str = Field(default="", description="Start of the text, plain (no markup)")

    @classmethod
    def from_mention(cls, m: Mention, highlight: str | None = None) -> MentionOut:
        text = " ".join(m.text.split())
        snippet = text if len(text) <= 240 else text[:240].rsplit(" ", 1)[0] + " …"
        return cls(id=m.id, title=m.title, url=m.url, source=m.source, published_at=m.published_at,
                   sentiment=m.sentiment, topic=m.topic, department=m.department,
                   department_score=m.department_score, areas=list(m.areas),
                   highlight=clean_highlight(highlight), snippet=snippet)


class SearchOut(BaseModel):
    total: int
    page: int
    page_size: int
    items: list[MentionOut]


class IssueOut(BaseModel):
    """An issue with its most recent mentions."""

    id: str
    label: str
    topic: str
    department: str | None
    area_ids: list[str]
    keywords: list[str]
    first_seen: datetime
    last_seen: datetime
    mention_count: int
    mentions: list[MentionOut]

    @classmethod
    def from_issue(cls, issue: Issue, mentions: list[MentionOut]) -> IssueOut:
        return cls(id=issue.id, label=issue.label, topic=issue.topic, department=issue.department,
                   area_ids=list(issue.area_ids), keywords=list(issue.keywords),
                   first_seen=issue.first_seen, last_seen=issue.last_seen,
                   mention_count=issue.mention_count, mentions=mentions)


class ErrorOut(BaseModel):
    detail: str = Field(examples=["Không tìm thấy khu vực 'xyz' / Unknown area 'xyz'"])


class ValidationErrorOut(BaseModel):
    message: str = Field(description="All problems in one sentence, Vietnamese then English")
    detail: list[dict[str, Any]]
