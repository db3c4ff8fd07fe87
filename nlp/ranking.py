"""Rank issues: the top-10 of every area for every day and ISO week (Ho Chi Minh City time).

Who takes part: civic mentions (``civic is True``, topic other than ``not_civic``) that carry an
``issue_id``, published inside the period. Every area id found on those mentions gets its own
ranking: the city (``hcmc``), former districts (``fd:…``) and wards (``w:…``). In area *a* an
issue is measured on its mentions that concern *a* (``a in mention.areas``) only.

Rankings by department: every mention with a department (other than ``none``) also counts in
the city-wide ranking of the area id ``dept:<department code>`` (e.g. ``dept:construction``).

Score of issue *i* in area *a* for period *P* (each part is returned, already weighted, in
``RankingEntry.score_parts``; the score is their sum)::

    volume     = 1.00 · ln(1 + n)                    n  = distinct STORIES of i in a during P
                                                          (a mention's ``story_id``, else its id:
                                                          syndicated copies count once)
    reach      = 0.30 · ln(1 + c − n)                c  = mentions (copies included)
    sources    = 0.60 · ln(1 + s)                    s  = distinct sources among them
    negativity = 0.50 · neg / c                      neg = mentions with negative sentiment
    growth     = 0.40 · tanh(ln((1 + n) / (1 + p)))  p  = stories of i in a during the previous
                                                          period of the same length
    recency    = 0.25 · 2^(−(end − last) / (len / 2)) last = newest mention, end = end of P,
                                                          len = length of P (1 or 7 days)

Volume dominates (a logarithm, so 8 reports beat 2 but 80 do not bury everything else), broad
coverage by distinct sources and a negative tone push an issue up, a rise against the previous
period pushes up and a fall pulls down (tanh keeps it within ±0.4), and recency breaks ties in
favour of what is still happening at the end of the period. Recency is taken at the end of the
period, never at "now", so a ranking recomputed later is identical. Ties: score, then n, then
s, then issue id.

``sentiment_counts`` counts negative / neutral / positive (a mention without a sentiment counts
as neutral). ``evidence_ids``: up to 5 mentions, one per distinct source first, each source's
most central mention (cosine of its title + lead to the issue's centroid in the period), then
the next most central; ties go to the most recent.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from langnghe.records import (
    PERIODS,
    SENTIMENTS,
    Issue,
    Mention,
    RankingEntry,
    period_key,
    to_city_time,
    utcnow,
)
from nlp.issues import eligible, features, make_vectorizer
from storage.base import Store, mention_filters

if TYPE_CHECKING:
    from nlp.embedding_cache import IssueStateDB

log = logging.getLogger(__name__)

CITY_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
WEIGHTS: dict[str, float] = {
    "volume": 1.0, "reach": 0.3, "sources": 0.6, "negativity": 0.5, "growth": 0.4, "recency": 0.25,
}
DEPT_PREFIX = "dept:"
MAX_EVIDENCE = 5
_LEAD_CHARS = 300


# --------------------------------------------------------------------------- periods


def period_bounds(period: str, key: str) -> tuple[datetime, datetime]:
    """[start, end) of a day ("2025-11-20") or ISO week ("2025-W47") in city time (aware)."""
    if period == "day":
        try:
            day = date.fromisoformat(key)
        except ValueError as exc:
            raise ValueError(f"bad day key {key!r}; expected YYYY-MM-DD") from exc
        start = datetime.combine(day, time(), CITY_TZ)
        return start, start + timedelta(days=1)
    if period == "week":
        try:
            year, week = key.split("-W")
            day = date.fromisocalendar(int(year), int(week), 1)
        except ValueError as exc:
            raise ValueError(f"bad week key {key!r}; expected YYYY-Www") from exc
        start = datetime.combine(day, time(), CITY_TZ)
        return start, start + timedelta(days=7)
    raise ValueError(f"unknown period {period!r}; expected one of {PERIODS}")


def previous_key(period: str, key: str) -> str:
    """The key of the period just before (same length)."""
    start, end = period_bounds(period, key)
    return period_key(period, start - (end - start))


# --------------------------------------------------------------------------- scoring


def _in_period(m: Mention, start: datetime, end: datetime) -> bool:
    return start <= m.published_at < end


def _rankable(mentions: Iterable[Mention], start: datetime, end: datetime, *, report: bool = True
              ) -> list[Mention]:
    """The grouped civic mentions of a period; `report` logs how many ungrouped ones were left out
    (off for the previous period: it is read only for growth, and on a new store it predates the
    first grouping)."""
    seen: dict[str, Mention] = {}
    skipped = 0
    for m in mentions:
        if not eligible(m) or not _in_period(m, start, end):
            continue
        if not m.issue_id:
            skipped += 1
            continue
        seen[m.id] = m
    if skipped and report:
        log.info("ranking: %d civic mentions without an issue left out (group them first)", skipped)
    return sorted(seen.values(), key=lambda m: (m.published_at, m.id))


def story_of(m: Mention) -> str:
    """The story a mention reports (syndicated copies share one); its own id when unknown."""
    return str(getattr(m, "story_id", None) or m.id)


def _areas(m: Mention) -> list[str]:
    out = list(dict.fromkeys(m.areas or ["hcmc"]))
    if m.department and m.department != "none":
        out.append(DEPT_PREFIX + m.department)
    return out


def _centrality(mentions: list[Mention]) -> dict[str, float]:
    """Cosine of each mention's title + lead to its issue's centroid (within this period)."""
    if not mentions:
        return {}
    docs = [features(f"{m.title}\n{m.title}\n{m.text[:_LEAD_CHARS]}") for m in mentions]
    if not any(docs):
        return {m.id: 0.0 for m in mentions}
    X = make_vectorizer().fit_transform(docs).tocsr()
    out: dict[str, float] = {}
    groups: dict[str, list[int]] = defaultdict(list)
    for k, m in enumerate(mentions):
        groups[str(m.issue_id)].append(k)
    for rows in groups.values():
        sub = X[rows]
        centroid = np.asarray(sub.sum(axis=0)).ravel()
        norm = float(np.linalg.norm(centroid)) or 1.0
        sims = np.asarray(sub @ (centroid / norm)).ravel()
        for k, r in enumerate(rows):
            out[mentions[r].id] = round(float(sims[k]), 6)
    return out


def _evidence(members: list[Mention], centrality: dict[str, float]) -> list[str]:
    order = sorted(members, key=lambda m: (-centrality.get(m.id, 0.0), -m.published_at.timestamp(), m.id))
    picked: list[str] = []
    sources: set[str] = set()
    for m in order:  # one per source first
        if m.source not in sources:
            sources.add(m.source)
            picked.append(m.id)
    picked += [m.id for m in order if m.id not in picked]
    return picked[:MAX_EVIDENCE]


def score_parts(n: int, sources: int, negative: int, previous: int, age_seconds: float,
                period_seconds: float, *, copies: int | None = None) -> dict[str, float]:
    """The weighted parts of a score (see the module docstring), rounded to 6 decimals.

    `n` counts distinct stories, `copies` all mentions (default `n`: no syndication)."""
    half = period_seconds / 2.0
    c = n if copies is None else max(copies, n)
    raw = {
        "volume": math.log1p(n),
        "reach": math.log1p(c - n),
        "sources": math.log1p(sources),
        "negativity": negative / c if c else 0.0,
        "growth": math.tanh(math.log((1 + n) / (1 + previous))),
        "recency": 2.0 ** (-max(0.0, age_seconds) / half),
    }
    return {k: round(WEIGHTS[k] * v, 6) for k, v in raw.items()}


def rank_mentions(
    mentions: Iterable[Mention],
    period: str,
    key: str,
    *,
    previous: Iterable[Mention] = (),
    limit: int = 10,
    areas: set[str] | None = None,
) -> list[RankingEntry]:
    """Rankings of every area for one period from in-memory mentions (already grouped).

    `mentions` outside the period are ignored; `previous` holds the mentions of the previous
    period (for growth; others are ignored). Entries are ordered by area id, then rank.
    `areas` restricts the output to those area ids (incremental updates).
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    start, end = period_bounds(period, key)
    prev_start = start - (end - start)
    current = _rankable(mentions, start, end)
    prev_stories: dict[tuple[str, str], set[str]] = defaultdict(set)
    for m in _rankable(previous, prev_start, start, report=False):
        for area in _areas(m):
            if areas is None or area in areas:
                prev_stories[(area, str(m.issue_id))].add(story_of(m))
    cells: dict[str, dict[str, list[Mention]]] = defaultdict(lambda: defaultdict(list))
    for m in current:
        for area in _areas(m):
            if areas is None or area in areas:
                cells[area][str(m.issue_id)].append(m)
    wanted = {id(m) for area_cells in cells.values() for ms in area_cells.values() for m in ms}
    centrality = _centrality([m for m in current if id(m) in wanted])
    period_seconds = (end - start).total_seconds()
    entries: list[RankingEntry] = []
    for area in sorted(cells):
        scored = []
        for issue_id, members in cells[area].items():
            n = len(members)
            stories = len({story_of(m) for m in members})
            n_sources = len({m.source for m in members})
            sentiments = Counter(m.sentiment if m.sentiment in SENTIMENTS else "neutral" for m in members)
            last = max(m.published_at for m in members)
            parts = score_parts(stories, n_sources, sentiments["negative"],
                                len(prev_stories.get((area, issue_id), ())),
                                (end - last).total_seconds(), period_seconds, copies=n)
            score = round(sum(parts.values()), 6)
            scored.append((score, stories, n, n_sources, issue_id, parts, sentiments, members))
        scored.sort(key=lambda t: (-t[0], -t[1], -t[2], -t[3], t[4]))
        for rank, (score, _stories, n, n_sources, issue_id, parts, sentiments, members) in enumerate(
                scored[:limit], start=1):
            entries.append(RankingEntry(
                area_id=area, period=period, period_key=key, rank=rank, issue_id=issue_id,
                score=score, score_parts=parts, mention_count=n, source_count=n_sources,
                sentiment_counts={s: int(sentiments[s]) for s in SENTIMENTS},
                evidence_ids=_evidence(members, centrality),
            ))
    return entries


# --------------------------------------------------------------------------- store-backed


def _load(store: Store, start: datetime, end: datetime) -> list[Mention]:
    return list(store.iter_mentions(mention_filters(civic=True, since=start, until=end)))


def rank_period(store: Store, period: str, period_key: str, *, limit: int = 10) -> list[RankingEntry]:
    """Rankings of every area for one day or ISO week, from the grouped mentions in `store`."""
    start, end = period_bounds(period, period_key)
    prev_start = start - (end - start)
    return rank_mentions(_load(store, start, end), period, period_key,
                         previous=_load(store, prev_start, start), limit=limit)


def _state_db(store: Store) -> IssueStateDB:
    """The issue engine's side tables: the store's file, or the configured side file."""
    from nlp.embedding_cache import IssueStateDB

    return IssueStateDB.for_store(store)


def _apply(store: Store, mentions: Sequence[Mention], assignments: dict[str, str],
           issues: Sequence[Issue]) -> tuple[int, Any]:
    changed = []
    for m in mentions:
        new_id = assignments.get(m.id)
        if new_id and new_id != m.issue_id:
            m.issue_id = new_id
            changed.append(m)
    if changed:
        store.update_enrichment(changed)
    written = store.write_issues(issues) if issues else None
    return len(changed), written


def _periods_of(days: Iterable[date]) -> list[tuple[str, str]]:
    day_keys = sorted({d.isoformat() for d in days})
    week_keys = sorted({period_key("week", datetime.combine(date.fromisoformat(d), time(12), CITY_TZ))
                        for d in day_keys})
    return [("day", k) for k in day_keys] + [("week", k) for k in week_keys]


def update_rankings(store: Store, *, now: datetime | None = None, days: int = 7,
                    limit: int = 10, config: Any = None, embedder: Any = None) -> dict[str, object]:
    """The rank job: group the civic mentions of the last `days` city days into issues
    (`nlp.discovery.discover`), store issue ids and issues, close / merge / split issues
    (`maintain_issues`), then recompute and store the rankings of every day and ISO week touched.

    Idempotent: mentions keep the issue they already carry, so a re-run stores the same issues
    and the same rankings.
    """
    from nlp.discovery import DiscoveryConfig, discover, maintain_issues

    if days < 1:
        raise ValueError("days must be at least 1")
    now = now or utcnow()
    cfg = config or DiscoveryConfig()
    today = to_city_time(now).date()
    first_day = today - timedelta(days=days - 1)
    since = datetime.combine(first_day, time(), CITY_TZ)
    until = datetime.combine(today + timedelta(days=1), time(), CITY_TZ)

    db = _state_db(store)
    mentions = [m for m in store.iter_mentions(mention_filters(civic=True, since=since, until=until))
                if eligible(m)]
    existing: Sequence[Issue] = store.list_issues()
    found = discover(mentions, existing, config=cfg, embedder=embedder, db=db, now=now)
    assignment = found.assignment
    assigned, written = _apply(store, mentions, assignment.assignments, assignment.issues)
    upkeep = maintain_issues(store, db, now=now, config=cfg, embedder=embedder)

    periods = _periods_of(first_day + timedelta(days=k) for k in range(days))
    stored = 0
    for period, key in periods:
        entries = rank_period(store, period, key, limit=limit)
        stored += store.replace_rankings(period, key, entries)
    summary: dict[str, object] = {
        "mentions": len(mentions),
        "assigned": assigned,
        "issues_new": len(assignment.new_issue_ids),
        "issues_updated": len(assignment.issues) - len(assignment.new_issue_ids),
        "issues_written": (written.inserted + written.updated) if written else 0,
        "backend": found.backend,
        "embedder": found.embedder,
        "outliers": found.outliers,
        "closed": len(upkeep.closed),
        "merged": len(upkeep.merged),
        "split": len(upkeep.split),
        "days": [k for p, k in periods if p == "day"],
        "weeks": [k for p, k in periods if p == "week"],
        "ranking_entries": stored,
    }
    db.close()
    log.info("rankings updated: %s", summary)
    return summary


def update_incremental(store: Store, *, now: datetime | None = None, days: int = 2, limit: int = 10,
                       config: Any = None, embedder: Any = None) -> dict[str, object]:
    """The fast path (run every minute or after each crawl batch): group only the civic
    mentions of the last `days` city days that have no issue yet, matching them to the existing
    issues (dense centroid, label + key phrases), and recompute only the rankings of the days
    and ISO weeks those mentions fall in. Nothing to do → nothing written."""
    from nlp.discovery import DiscoveryConfig, discover

    now = now or utcnow()
    cfg = config or DiscoveryConfig()
    today = to_city_time(now).date()
    since = datetime.combine(today - timedelta(days=max(1, days) - 1), time(), CITY_TZ)
    until = datetime.combine(today + timedelta(days=1), time(), CITY_TZ)
    new = [m for m in store.iter_mentions(mention_filters(civic=True, since=since, until=until))
           if eligible(m) and not m.issue_id]
    summary: dict[str, object] = {"new_mentions": len(new), "periods": [], "ranking_entries": 0}
    if not new:
        return summary
    db = _state_db(store)
    horizon = since - timedelta(days=cfg.stale_days)
    existing = [i for i in store.list_issues() if i.last_seen >= horizon]
    found = discover(new, existing, config=cfg, embedder=embedder, db=db, now=now)
    assigned, _ = _apply(store, new, found.assignment.assignments, found.assignment.issues)
    periods = _periods_of(to_city_time(m.published_at).date() for m in new)
    stored = 0
    for period, key in periods:
        stored += store.replace_rankings(period, key, rank_period(store, period, key, limit=limit))
    db.close()
    summary.update({"assigned": assigned, "issues_new": len(found.assignment.new_issue_ids),
                    "periods": [f"{p}:{k}" for p, k in periods], "ranking_entries": stored})
    log.info("incremental ranking update: %s", summary)
    return summary
