"""Benchmark: the search-engine store on a real OpenSearch node next to the embedded SQLite store.

    python bench/bench_search_engine.py --n 1000000            # starts its own node (heap 2g)
    python bench/bench_search_engine.py --n 200000 --url opensearch+http://127.0.0.1:9200

Streams synthetic Vietnamese mentions (bench/bench_store.py's generator, plus issue ids) in
batches into both stores (bulk ingest, docs/s; OpenSearch without per-batch refresh, as the
migration does), stores one day's top-10 for 200 areas, then times the reads (median and p95
over repeated calls): full-text search, filtered listings, counts, the stored top-10, and
engine aggregations (facets, top-10 issues per area) next to the same answers computed by
storage.aggregations on SQLite (on a filtered subset: a scan of every mention is not an option).
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import _T0, generate_mentions  # noqa: E402

from langnghe.records import Mention, RankingEntry  # noqa: E402
from storage import aggregations  # noqa: E402
from storage.base import Store, mention_filters  # noqa: E402
from storage.search_engine import SearchEngineStore, connect  # noqa: E402
from storage.sqlite import SQLiteStore  # noqa: E402


def mentions_with_issues(n: int) -> Iterator[Mention]:
    for m in generate_mentions(n):
        week = (m.published_at - _T0).days // 7
        yield replace(m, issue_id=f"iss-{m.topic}-{m.areas[1]}-{week}" if m.topic else None)


def batches(n: int, size: int) -> Iterator[list[Mention]]:
    batch: list[Mention] = []
    for m in mentions_with_issues(n):
        batch.append(m)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def ranking(period_key: str = "2025-11-20") -> list[RankingEntry]:
    areas = ["hcmc"] + [f"w:{26700 + i}" for i in range(168)] + [f"fd:x{i}" for i in range(31)]
    return [RankingEntry(area_id=a, period="day", period_key=period_key, rank=r, issue_id=f"iss-{a}-{r}",
                         score=10.0 / r, score_parts={"volume": 1.0}, mention_count=20 - r, source_count=3,
                         sentiment_counts={"negative": 5, "neutral": 3, "positive": 1},
                         evidence_ids=[f"bench{r:07d}"]) for a in areas for r in range(1, 11)]


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median and p95 milliseconds of `fn` (one warm-up call first)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


def ingest(n: int, batch_size: int, engine: SearchEngineStore, sqlite: SQLiteStore | None) -> dict[str, float]:
    spent = {"engine": 0.0, "sqlite": 0.0}
    done = 0
    next_report = 100_000
    for batch in batches(n, batch_size):
        start = time.perf_counter()
        engine.write_mentions(batch)
        spent["engine"] += time.perf_counter() - start
        if sqlite is not None:
            start = time.perf_counter()
            sqlite.write_mentions(batch)
            spent["sqlite"] += time.perf_counter() - start
        done += len(batch)
        if done >= next_report:
            print(f"  {done:,} ingested (engine {done / spent['engine']:,.0f}/s"
                  + (f", sqlite {done / spent['sqlite']:,.0f}/s)" if sqlite else ")"), flush=True)
            next_report += 100_000
    start = time.perf_counter()
    engine.refresh()
    spent["engine_refresh"] = time.perf_counter() - start
    return spent


def cases(store: Store, generic_aggregations: bool) -> list[tuple[str, Callable[[], Any]]]:
    since = _T0 + timedelta(days=50)
    week = mention_filters(since=_T0 + timedelta(days=53))
    small = mention_filters(area="w:26750", since=since)
    out: list[tuple[str, Callable[[], Any]]] = [
        ("search 'ngap nuoc' (top 20)", lambda: store.search("ngap nuoc")),
        ("search 'ngap nuoc' area=fd:quan-7", lambda: store.search("ngap nuoc", mention_filters(area="fd:quan-7"))),
        ("search '\"trieu cuong\" thu duc'", lambda: store.search('"trieu cuong" thu duc')),
        ("list newest area=hcmc", lambda: store.search(None, mention_filters(area="hcmc"))),
        ("list newest area=w:26750 last 10 days", lambda: store.search(None, small)),
        ("count topic=flooding", lambda: store.count_mentions(mention_filters(topic="flooding"))),
        ("stored top-10 (top_issues hcmc)", lambda: store.top_issues("hcmc", "day", "2025-11-20")),
    ]
    if isinstance(store, SearchEngineStore):
        out += [
            ("facets, area=w:26750 last 10 days", lambda: store.facets(small)),
            ("top-10 issues per area, last 7 days (aggregation)", lambda: store.top_issues_by_group("area", week)),
            ("top-10 issues per department, all time (aggregation)",
             lambda: store.top_issues_by_group("department")),
        ]
    elif generic_aggregations:
        out += [
            ("facets, area=w:26750 last 10 days", lambda: aggregations.facets(store, small)),
            ("top-10 issues per area, last 7 days (aggregation)",
             lambda: aggregations.top_issues_by_group(store, "area", week)),
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--url", default=None, help="a running engine (default: start an OpenSearch node)")
    parser.add_argument("--heap", default="2g", help="heap of the node started here")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    node = None
    if args.url is None:
        from tests.opensearch_node import OpenSearchNode

        node = OpenSearchNode(heap=args.heap).start()
        url = f"opensearch+{node.url}"
        print(f"started OpenSearch {node.version} (heap {args.heap}) at {node.url}")
    else:
        url = args.url
    sep = "&" if "?" in url else "?"
    engine = connect(f"{url}{sep}prefix=bench", refresh=False)
    engine.drop()
    engine.ensure_indices()
    # bulk load: no refresh while loading, as OpenSearch's own advice for ingest
    engine.client.request("PUT", f"/{engine.mentions}/_settings", {"index": {"refresh_interval": "-1"}})
    tmp = tempfile.TemporaryDirectory()
    sqlite = None if args.no_sqlite else SQLiteStore(Path(tmp.name) / "bench.sqlite3")
    try:
        print(f"ingesting {args.n:,} mentions in batches of {args.batch:,} …", flush=True)
        spent = ingest(args.n, args.batch, engine, sqlite)
        engine.client.request("PUT", f"/{engine.mentions}/_settings", {"index": {"refresh_interval": "1s"}})
        engine.refresh_writes = True
        engine.replace_rankings("day", "2025-11-20", ranking())
        if sqlite is not None:
            sqlite.replace_rankings("day", "2025-11-20", ranking())
        size = engine.client.request("GET", f"/{engine.mentions}/_stats/store")["_all"]["primaries"]["store"]
        print()
        print(f"| measure ({args.n:,} mentions) | OpenSearch | SQLite |")
        print("|---|---|---|")
        eng_rate = args.n / spent["engine"]
        sql_rate = f"{args.n / spent['sqlite']:,.0f} docs/s" if sqlite else "–"
        print(f"| bulk ingest, batches of {args.batch:,} | {eng_rate:,.0f} docs/s "
              f"(+ {spent['engine_refresh']:.1f} s final refresh) | {sql_rate} |")
        sqlite_mb = f"{Path(tmp.name, 'bench.sqlite3').stat().st_size / 1e6:,.0f} MB" if sqlite else "–"
        print(f"| size on disk | {size['size_in_bytes'] / 1e6:,.0f} MB | {sqlite_mb} |")
        assert engine.count_mentions() == args.n, engine.count_mentions()
        eng_cases = dict(cases(engine, True))
        sql_cases = dict(cases(sqlite, True)) if sqlite else {}
        for name, fn in eng_cases.items():
            e50, e95 = timed(fn, args.repeat)
            if name in sql_cases:
                s50, s95 = timed(sql_cases[name], args.repeat if "aggregation" not in name else 3)
                right = f"{s50:,.1f} / {s95:,.1f} ms"
            else:
                right = "–"
            print(f"| {name} (median / p95) | {e50:,.1f} / {e95:,.1f} ms | {right} |", flush=True)
    finally:
        engine.drop()
        engine.close()
        if sqlite is not None:
            sqlite.close()
        tmp.cleanup()
        if node is not None:
            node.stop()


if __name__ == "__main__":
    main()
