"""Rank issues: the top-10 of every area for every day and ISO week (Ho Chi Minh City time).

Who takes part: civic mentions (``civic is True``, topic other than ``not_civic``) that carry an
``issue_id``, published inside the period. Every area id found on those mentions gets its own
ranking: the city (``hcmc``), former districts (``fd:…``) and wards (``w:…``). In area *a* an
issue is measured on its mentions that concern *a* (``a in mention.areas``) only.

Score of issue *i* in area *a* for period *P* (each part is returned, already weighted, in
``RankingEntry.score_parts``; the score is their sum)::

    volume     = 1.00 · ln(1 + n)                    n  = distinct mentions of i in a during P
    sources    = 0.60 · ln(1 + s)                    s  = distinct sources among them
    negativity = 0.50 · neg / n                      neg = mentions with negative sentiment
    growth     = 0.40 · tanh(ln((1 + n) / (1 + p)))  p  = mentions of i in a during the previous
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
from nlp.issues import eligible, features, group_issues, make_vectorizer
from storage.base import Store, mention_filters

log = logging.getLogger(__name__)

CITY_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
WEIGHTS: dict[str, float] = {
    "volume": 1.0, "sources": 0.6, "negativity": 0.5, "growth": 0.4, "recency": 0.25,
}
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


def _rankable(mentions: Iterable[Mention], start: datetime, end: datetime) -> list[Mention]:
    seen: dict[str, Mention] = {}
    skipped = 0
    for m in mentions:
        if not eligible(m) or not _in_period(m, start, end):
            continue
        if not m.issue_id:
            skipped += 1
            continue
        seen[m.id] = m
    if skipped:
        log.info("ranking: %d civic mentions without an issue left out (group them first)", skipped)
    return sorted(seen.values(), key=lambda m: (m.published_at, m.id))


def _areas(m: Mention) -> list[str]:
    return list(dict.fromkeys(m.areas or ["hcmc"]))


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
                period_seconds: float) -> dict[str, float]:
    """The weighted parts of a score (see the module docstring), rounded to 6 decimals."""
    half = period_seconds / 2.0
    raw = {
        "volume": math.log1p(n),
        "sources": math.log1p(sources),
        "negativity": negative / n if n else 0.0,
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
) -> list[RankingEntry]:
    """Rankings of every area for one period from in-memory mentions (already grouped).

    `mentions` outside the period are ignored; `previous` holds the mentions of the previous
    period (for growth; others are ignored). Entries are ordered by area id, then rank.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    start, end = period_bounds(period, key)
    prev_start = start - (end - start)
    current = _rankable(mentions, start, end)
    prev_counts: Counter[tuple[str, str]] = Counter()
    for m in _rankable(previous, prev_start, start):
        for area in _areas(m):
            prev_counts[(area, str(m.issue_id))] += 1
    centrality = _centrality(current)
    cells: dict[str, dict[str, list[Mention]]] = defaultdict(lambda: defaultdict(list))
    for m in current:
        for area in _areas(m):
            cells[area][str(m.issue_id)].append(m)
    period_seconds = (end - start).total_seconds()
    entries: list[RankingEntry] = []
    for area in sorted(cells):
        scored = []
        for issue_id, members in cells[area].items():
            n = len(members)
            n_sources = len({m.source for m in members})
            sentiments = Counter(m.sentiment if m.sentiment in SENTIMENTS else "neutral" for m in members)
            last = max(m.published_at for m in members)
            parts = score_parts(n, n_sources, sentiments["negative"], prev_counts[(area, issue_id)],
                                (end - last).total_seconds(), period_seconds)
            score = round(sum(parts.values()), 6)
            scored.append((score, n, n_sources, issue_id, parts, sentiments, members))
        scored.sort(key=lambda t: (-t[0], -t[1], -t[2], t[3]))
        for rank, (score, n, n_sources, issue_id, parts, sentiments, members) in enumerate(
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


def update_rankings(store: Store, *, now: datetime | None = None, days: int = 7,
                    limit: int = 10) -> dict[str, object]:
    """The rank job: group the civic mentions of the last `days` city days into issues, store
    issue ids and issues, then recompute and store the rankings of every day and ISO week touched.

    Idempotent: mentions keep the issue they already carry, so a re-run stores the same issues
    and the same rankings.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    now = now or utcnow()
    today = to_city_time(now).date()
    first_day = today - timedelta(days=days - 1)
    since = datetime.combine(first_day, time(), CITY_TZ)
    until = datetime.combine(today + timedelta(days=1), time(), CITY_TZ)

    mentions = [m for m in store.iter_mentions(mention_filters(civic=True, since=since, until=until))
                if eligible(m)]
    existing: Sequence[Issue] = store.list_issues()
    assignment = group_issues(mentions, existing)
    changed = []
    for m in mentions:
        new_id = assignment.assignments.get(m.id)
        if new_id and new_id != m.issue_id:
            m.issue_id = new_id
            changed.append(m)
    if changed:
        store.update_enrichment(changed)
    written = store.write_issues(assignment.issues) if assignment.issues else None

    day_keys = [(first_day + timedelta(days=k)).isoformat() for k in range(days)]
    week_keys = sorted({period_key("week", datetime.combine(date.fromisoformat(d), time(12), CITY_TZ))
                        for d in day_keys})
    stored = 0
    for period, keys in (("day", day_keys), ("week", week_keys)):
        for key in keys:
            entries = rank_period(store, period, key, limit=limit)
            stored += store.replace_rankings(period, key, entries)
    summary: dict[str, object] = {
        "mentions": len(mentions),
        "assigned": len(changed),
        "issues_new": len(assignment.new_issue_ids),
        "issues_updated": len(assignment.issues) - len(assignment.new_issue_ids),
        "issues_written": (written.inserted + written.updated) if written else 0,
        "days": day_keys,
        "weeks": week_keys,
        "ranking_entries": stored,
    }
    log.info("rankings updated: %s", summary)
    return summary
