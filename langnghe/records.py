"""The records that flow through every stage: crawl → understand → store → rank → serve.

One `Mention` is created by a crawler, enriched by the NLP pipeline, written by a store,
grouped into an `Issue` and counted in a `RankingEntry`. Everything here is plain data
with JSON round-trips, so any backend or process can carry it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

SENTIMENTS = ("negative", "neutral", "positive")
PERIODS = ("day", "week")
CITY_AREA_ID = "hcmc"


def utcnow() -> datetime:
    """Current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


def parse_datetime(value: str | datetime | None) -> datetime | None:
    """Parse an ISO 8601 string into an aware datetime; naive values are taken as UTC."""
    if value is None or value == "":
        return None
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def mention_id(canonical_url: str | None = None, *, source: str | None = None,
               native_id: str | None = None) -> str:
    """Stable id: from the canonical URL, or from source + the platform's own id."""
    if canonical_url:
        key = "url:" + canonical_url
    elif source and native_id:
        key = f"native:{source}:{native_id}"
    else:
        raise ValueError("a mention id needs a canonical URL or a source and a native id")
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:20]


@dataclass
class Location:
    """A place mentioned in a text, resolved to the areas it concerns."""

    text: str
    start: int
    end: int
    level: str  # street | ward | district | city | province | landmark
    former_district: str | None = None  # one of the 22 former district-level units, as GUIDE.md names them
    ward: str | None = None  # current (2025) ward/commune name
    area_ids: list[str] = field(default_factory=list)
    in_hcmc: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Location:
        return cls(
            text=data["text"], start=int(data["start"]), end=int(data["end"]),
            level=data.get("level", "unknown"), former_district=data.get("former_district"),
            ward=data.get("ward"), area_ids=list(data.get("area_ids") or []),
            in_hcmc=bool(data.get("in_hcmc", True)),
        )


@dataclass
class Mention:
    """One public text about the city: an article, a post, a comment, a hotline report."""

    id: str
    source: str  # e.g. "vnexpress.net", "facebook:page/123", "hotline-1022"
    url: str
    title: str
    text: str
    published_at: datetime
    crawled_at: datetime = field(default_factory=utcnow)
    language: str = "vi"
    author: str | None = None
    story_id: str | None = None  # syndication: copies of one story in several outlets share it
    # enrichment (filled by nlp.pipeline); None means "not yet processed"
    civic: bool | None = None
    civic_score: float | None = None
    sentiment: str | None = None
    sentiment_score: float | None = None
    topic: str | None = None
    department: str | None = None
    # probability of the named topic / department (0.0 when not_civic / none): a low
    # department_score marks a routing a person should check
    topic_score: float | None = None
    department_score: float | None = None
    locations: list[Location] = field(default_factory=list)
    areas: list[str] = field(default_factory=list)  # area ids at every level, city included
    issue_id: str | None = None
    processed_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("published_at", "crawled_at", "processed_at"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                setattr(self, name, parse_datetime(value))

    @property
    def content(self) -> str:
        """Title and body as one text, the input of the models."""
        return f"{self.title}\n{self.text}" if self.title else self.text

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("published_at", "crawled_at", "processed_at"):
            value = getattr(self, name)
            data[name] = value.isoformat() if value is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Mention:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["locations"] = [
            loc if isinstance(loc, Location) else Location.from_dict(loc)
            for loc in known.get("locations") or []
        ]
        known["areas"] = list(known.get("areas") or [])
        return cls(**known)


@dataclass
class Issue:
    """A concrete concern: mentions of one topic in one place that talk about the same thing."""

    id: str
    label: str
    topic: str
    department: str | None
    area_ids: list[str]
    keywords: list[str]
    first_seen: datetime
    last_seen: datetime
    mention_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["first_seen"] = self.first_seen.isoformat()
        data["last_seen"] = self.last_seen.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Issue:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["first_seen"] = parse_datetime(known["first_seen"])
        known["last_seen"] = parse_datetime(known["last_seen"])
        return cls(**known)


@dataclass
class RankingEntry:
    """One line of a top-10: an issue's rank in one area for one day or ISO week."""

    area_id: str
    period: str  # "day" | "week"
    period_key: str  # "2025-11-20" or "2025-W47"
    rank: int
    issue_id: str
    score: float
    score_parts: dict[str, float]  # volume, sources, negativity, growth, ... (explains the score)
    mention_count: int
    source_count: int
    sentiment_counts: dict[str, int]  # negative / neutral / positive
    evidence_ids: list[str]  # representative mention ids, best first

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RankingEntry:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def period_key(period: str, when: datetime) -> str:
    """The key of the day ("2025-11-20") or ISO week ("2025-W47") containing `when` (city time)."""
    local = to_city_time(when)
    if period == "day":
        return local.date().isoformat()
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    raise ValueError(f"unknown period {period!r}; expected one of {PERIODS}")


def to_city_time(when: datetime) -> datetime:
    """Convert to Ho Chi Minh City time (UTC+7, no daylight saving)."""
    from zoneinfo import ZoneInfo

    return when.astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
