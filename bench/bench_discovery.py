"""Issue discovery: the replayed-stream evaluation and the clustering-time benchmark.

Evaluation (needs ../shared/data/civic)::

    python bench/bench_discovery.py eval [--backend lexical|fallback|bertopic] [--events 15]

builds a 5-day stream from the labelled civic items: every civic item with an ``issue`` phrase
appears once (its own gold issue), and `--events` planted events (items with a former district)
get 4–7 more reports each over 1–3 days from other sources: the real title + lead, the lead
alone (a social post), the title alone, the ``issue`` phrase as a headline over the lead, and a
syndicated copy (same story id). Items sharing an ``issue`` phrase are one gold issue. Reported:
purity (each cluster's majority gold issue), the outlier rate (planted reports alone in their
issue; and every mention alone), and whether the planted events are in the city top-10 of their
days and in their district's top-10.

Benchmark::

    python bench/bench_discovery.py time --n 50000 [--backend fallback]

times discovery (vectors included) on a synthetic day of N mentions made of real civic texts
(recombined sentences, random areas and topics).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langnghe.records import Mention  # noqa: E402
from nlp.discovery import DiscoveryConfig, discover  # noqa: E402
from nlp.ranking import rank_mentions  # noqa: E402
from nlp.text import fold  # noqa: E402

CITY = ZoneInfo("Asia/Ho_Chi_Minh")
SHARED = ROOT.parent / "shared" / "data" / "civic"
START = datetime(2025, 11, 17, 7, tzinfo=CITY)  # Monday of 2025-W47
SOURCES = ["vnexpress.net", "tuoitre.vn", "thanhnien.vn", "nld.com.vn", "plo.vn", "sggp.org.vn",
           "zingnews.vn", "facebook:group/cu-dan", "hotline-1022", "dantri.com.vn"]


def civic_items(shared: Path = SHARED) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in ("train.jsonl", "dev.jsonl"):
        path = shared / name
        if path.exists():
            rows += [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return [r for r in rows if r.get("civic") and r.get("issue")]


def areas_of(row: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for loc in row.get("locations") or []:
        name = loc.get("old_district")
        if name:
            area = "fd:" + "-".join(fold(name).split())
            if area not in out:
                out.append(area)
    return out + ["hcmc"]


def _m(mid: str, source: str, title: str, text: str, row: dict[str, Any], when: datetime,
       story: str | None = None) -> Mention:
    m = Mention(id=mid, source=source, url=f"https://{source}/{mid}", title=title, text=text,
                published_at=when, civic=True, topic=row["topic"], department=row.get("department"),
                sentiment=row.get("sentiment") or "neutral", areas=areas_of(row))
    if story:
        m.story_id = story  # type: ignore[attr-defined]
    return m


def build_stream(items: list[dict[str, Any]], *, events: int = 15, days: int = 5,
                 seed: int = 7) -> tuple[list[Mention], dict[str, str], dict[str, dict[str, Any]]]:
    """(mentions, gold issue per mention id, planted events by gold id)."""
    rng = random.Random(seed)
    gold_key = {r["id"]: r["topic"] + "|" + r["issue"].strip().lower() for r in items}
    mentions: list[Mention] = []
    gold: dict[str, str] = {}
    for r in items:  # every item once, spread over the days
        title, _, lead = r["text"].partition("\n")
        when = START + timedelta(days=rng.randrange(days), minutes=rng.randrange(12 * 60))
        m = _m(r["id"], rng.choice(SOURCES), title, lead, r, when)
        mentions.append(m)
        gold[m.id] = gold_key[r["id"]]
    candidates = sorted((r for r in items if len(areas_of(r)) > 1 and "\n" in r["text"]),
                        key=lambda r: r["id"])
    planted: dict[str, dict[str, Any]] = {}
    for r in rng.sample(candidates, min(events, len(candidates))):
        title, _, lead = r["text"].partition("\n")
        base = next(m for m in mentions if m.id == r["id"])
        k = rng.randint(4, 7)
        first_day = rng.randrange(days - 1)
        span = rng.randint(1, min(3, days - first_day))
        srcs = [s for s in SOURCES if s != base.source]
        rng.shuffle(srcs)
        variants = [
            (srcs[0], title, lead, None),
            (srcs[1], "", lead, None),
            (srcs[2], title, r["issue"], None),
            (srcs[3], r["issue"], lead, None),
            (srcs[4], title, lead, f"story:{r['id']}"),  # a syndicated copy of the first report
            (srcs[5], "", f"{r['issue']}. {title}", None),
            (srcs[6], title, lead.split(",")[0], None),
        ][:k]
        base.published_at = START + timedelta(days=first_day, minutes=rng.randrange(8 * 60))
        for j, (src, t, body, story) in enumerate(variants):
            when = START + timedelta(days=first_day + rng.randrange(span), hours=1 + j,
                                     minutes=rng.randrange(60))
            m = _m(f"{r['id']}-p{j}", src, t, body, r, when, story)
            mentions.append(m)
            gold[m.id] = gold_key[r["id"]]
        if k >= 5:  # the original and its syndicated copy are one story
            base.story_id = f"story:{r['id']}"  # type: ignore[attr-defined]
        planted[gold_key[r["id"]]] = {"id": r["id"], "issue": r["issue"], "areas": areas_of(r),
                                      "reports": k + 1}
    mentions.sort(key=lambda m: (m.published_at, m.id))
    return mentions, gold, planted


def evaluate(backend: str = "fallback", events: int = 15, seed: int = 7,
             config: DiscoveryConfig | None = None, embedder: Any = None) -> dict[str, Any]:
    items = civic_items()
    if not items:
        raise SystemExit("../shared/data/civic is absent")
    mentions, gold, planted = build_stream(items, events=events, seed=seed)
    cfg = config or DiscoveryConfig(backend=backend)
    t0 = time.perf_counter()
    # replay day by day: each day is grouped with the issues found so far (identity over time)
    issues: dict[str, Any] = {}
    assign: dict[str, str] = {}
    by_day: dict[str, list[Mention]] = defaultdict(list)
    for m in mentions:
        by_day[m.published_at.date().isoformat()].append(m)
    outliers_total = 0
    for day in sorted(by_day):
        res = discover(by_day[day], list(issues.values()), config=cfg, embedder=embedder)
        for i in res.assignment.issues:
            issues[i.id] = i
        assign.update(res.assignment.assignments)
        outliers_total += res.assignment.reassigned
    seconds = time.perf_counter() - t0
    for m in mentions:
        m.issue_id = assign[m.id]
    clusters: dict[str, list[str]] = defaultdict(list)
    for mid, iid in assign.items():
        clusters[iid].append(mid)
    n = len(assign)
    purity = sum(Counter(gold[x] for x in ms).most_common(1)[0][1] for ms in clusters.values()) / n
    planted_ids = [m.id for m in mentions if gold[m.id] in planted]
    alone = [x for x in planted_ids if len(clusters[assign[x]]) == 1]
    all_alone = sum(1 for ms in clusters.values() if len(ms) == 1)
    # events recovered: a planted event's reports mostly in one issue (≥ 60 %)
    recovered = {}
    for g in planted:
        ids = [m.id for m in mentions if gold[m.id] == g]
        top_issue, cnt = Counter(assign[x] for x in ids).most_common(1)[0]
        recovered[g] = (top_issue, cnt / len(ids))
    # top-10: city per day and per week, district per week
    in_city_day = in_city_week = in_district = 0
    keys = sorted({m.published_at.date().isoformat() for m in mentions})
    day_entries = {k: rank_mentions(mentions, "day", k, previous=mentions) for k in keys}
    week = rank_mentions(mentions, "week", "2025-W47", previous=mentions)
    for g, ev in planted.items():
        iid = recovered[g][0]
        days_of = {m.published_at.date().isoformat() for m in mentions if assign[m.id] == iid}
        if any(any(e.issue_id == iid for e in day_entries[d] if e.area_id == "hcmc") for d in days_of):
            in_city_day += 1
        district = ev["areas"][0]
        if any(e.issue_id == iid for e in week if e.area_id == district):
            in_district += 1
    planted_issues = {iid for iid, _ in recovered.values()}
    in_city_week = sum(1 for e in week if e.area_id == "hcmc" and e.issue_id in planted_issues)
    return {
        "backend": cfg.backend, "mentions": n, "gold_issues": len(set(gold.values())),
        "issues": len(clusters), "planted_events": len(planted), "planted_reports": len(planted_ids),
        "purity": round(purity, 4),
        "planted_outlier_rate": round(len(alone) / max(1, len(planted_ids)), 4),
        "singleton_share": round(all_alone / n, 4),
        "gold_singleton_share": round(sum(1 for v in Counter(gold.values()).values() if v == 1) / n, 4),
        "events_recovered_60pct": sum(1 for _, share in recovered.values() if share >= 0.6),
        "events_in_city_top10_day": in_city_day, "city_week_top10_planted": in_city_week,
        "events_in_district_top10_week": in_district, "reassigned": outliers_total,
        "seconds": round(seconds, 2),
    }


def synthetic_day(n: int, seed: int = 1) -> list[Mention]:
    """N mentions of one day from recombined real civic sentences (random areas/topics)."""
    items = civic_items()
    rng = random.Random(seed)
    sentences = [s.strip() for r in items for s in r["text"].replace("\n", ". ").split(". ") if len(s) > 20]
    districts = sorted({a for r in items for a in areas_of(r) if a.startswith("fd:")})
    topics = sorted({r["topic"] for r in items})
    out = []
    day = datetime(2025, 11, 20, tzinfo=CITY)
    for k in range(n):
        title = rng.choice(sentences)
        body = ". ".join(rng.choice(sentences) for _ in range(3))
        areas = [rng.choice(districts), "hcmc"] if rng.random() < 0.7 else ["hcmc"]
        out.append(Mention(id=f"s{k:07d}", source=rng.choice(SOURCES), url=f"https://x/{k}", title=title,
                           text=body, published_at=day + timedelta(seconds=rng.randrange(86400)),
                           civic=True, topic=rng.choice(topics), sentiment="negative", areas=areas))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval")
    e.add_argument("--backend", default="fallback")
    e.add_argument("--events", type=int, default=15)
    e.add_argument("--seed", type=int, default=7)
    e.add_argument("--dense-weight", type=float)
    e.add_argument("--reassign", type=float)
    e.add_argument("--threshold", type=float)
    e.add_argument("--embedder", choices=["default", "lsa"], default="default")
    t = sub.add_parser("time")
    t.add_argument("--n", type=int, default=50000)
    t.add_argument("--backend", default="fallback")
    t.add_argument("--embedder", choices=["default", "lsa"], default="default")
    args = ap.parse_args()
    if args.cmd == "eval":
        cfg = DiscoveryConfig(backend=args.backend)
        if args.dense_weight is not None:
            cfg.dense_weight = args.dense_weight
        if args.threshold is not None:
            cfg.threshold = args.threshold
        if args.reassign is not None:
            cfg.reassign_threshold = args.reassign or None
        from nlp.discovery import fallback_embedder

        emb = fallback_embedder() if args.embedder == "lsa" else None
        print(json.dumps(evaluate(args.backend, args.events, args.seed, cfg, emb), ensure_ascii=False))
    else:
        from nlp.discovery import fallback_embedder, get_embedder

        ms = synthetic_day(args.n)
        emb = fallback_embedder() if args.embedder == "lsa" else get_embedder()
        t0 = time.perf_counter()
        res = discover(ms, config=DiscoveryConfig(backend=args.backend), embedder=emb)
        dt = time.perf_counter() - t0
        print(json.dumps({"backend": res.backend, "embedder": res.embedder, "mentions": args.n,
                          "issues": len(set(res.assignment.assignments.values())),
                          "seconds": round(dt, 1)}))



def bench_top10(periods_days: int = 365, queries: int = 2000, path: str = "/tmp/bench_top10.sqlite3"
                ) -> dict[str, Any]:
    """p50/p95 of `top_issues` on a store whose rankings table is the size a year of 1M mentions
    gives (every day and ISO week × city + 22 districts + 168 wards + 20 departments × 10)."""
    import os
    import statistics

    from langnghe.records import RankingEntry, period_key
    from storage.sqlite import SQLiteStore

    if os.path.exists(path):
        os.remove(path)
    store = SQLiteStore(path)
    areas = ["hcmc"] + [f"fd:d{k}" for k in range(22)] + [f"w:{26700 + k}" for k in range(168)] + \
        [f"dept:x{k}" for k in range(20)]
    rng = random.Random(3)
    t0 = time.perf_counter()
    day0 = datetime(2025, 1, 1, 12, tzinfo=CITY)
    keys = [("day", period_key("day", day0 + timedelta(days=d))) for d in range(periods_days)]
    keys += sorted({("week", period_key("week", day0 + timedelta(days=d))) for d in range(periods_days)})
    rows = 0
    for period, key in keys:
        entries = [RankingEntry(a, period, key, r, f"i{rng.randrange(10**9):09d}", 5.0 - r / 10,
                                {"volume": 1.0}, 3, 2, {"negative": 1, "neutral": 1, "positive": 1},
                                ["m1", "m2"]) for a in areas for r in range(1, 11)]
        rows += store.replace_rankings(period, key, entries)
    build = time.perf_counter() - t0
    lat = []
    for _ in range(queries):
        period, key = rng.choice(keys)
        area = rng.choice(areas)
        q0 = time.perf_counter()
        top = store.top_issues(area, period, key)
        lat.append((time.perf_counter() - q0) * 1000)
        assert len(top) == 10
    lat.sort()
    store.close()
    return {"ranking_rows": rows, "build_s": round(build, 1), "queries": queries,
            "p50_ms": round(statistics.median(lat), 3), "p95_ms": round(lat[int(0.95 * len(lat))], 3),
            "max_ms": round(lat[-1], 3)}


def bench_freshness(day_mentions: int = 5000, new: int = 200,
                    path: str = "/tmp/bench_fresh.sqlite3") -> dict[str, Any]:
    """Seconds from `new` freshly processed mentions to stored rankings (`update_incremental`),
    on a store already holding `day_mentions` grouped mentions of the same day."""
    import os

    from nlp.ranking import update_incremental, update_rankings
    from storage.sqlite import SQLiteStore

    for p in (path, path + "-wal", path + "-shm"):
        if os.path.exists(p):
            os.remove(p)
    store = SQLiteStore(path)
    ms = synthetic_day(day_mentions + new, seed=5)
    store.write_mentions(ms[:day_mentions])
    now = datetime(2025, 11, 20, 23, 30, tzinfo=CITY)
    t0 = time.perf_counter()
    update_rankings(store, now=now, days=1)
    full = time.perf_counter() - t0
    store.write_mentions(ms[day_mentions:])
    t1 = time.perf_counter()
    summary = update_incremental(store, now=now, days=1)
    inc = time.perf_counter() - t1
    store.close()
    return {"day_mentions": day_mentions, "new": new, "full_update_s": round(full, 1),
            "incremental_s": round(inc, 1), "summary": summary}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "top10":
        print(json.dumps(bench_top10(int(sys.argv[2]) if len(sys.argv) > 2 else 365)))
    elif len(sys.argv) > 1 and sys.argv[1] == "fresh":
        print(json.dumps(bench_freshness(*(int(a) for a in sys.argv[2:4]))))
    else:
        main()
