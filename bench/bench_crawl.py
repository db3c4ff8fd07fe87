"""Crawl throughput: fetch + extract + de-duplicate + store, against a local site on 127.0.0.1.

The site serves distinct articles of the bundled demo corpus (langnghe/data, VNTC texts) under a few
outlets, one RSS feed each; the crawl runs the real spider, pipelines and SQLite store in a child
process (as in production). Reported: articles stored per minute, over the crawl's own elapsed time
and over the wall time including process start.

    python bench/bench_crawl.py --pages 2000 [--outlets 4] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from crawlers.run import run_crawl
    from tests.crawl_server import serve_generated

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=2000, help="articles in all")
    parser.add_argument("--outlets", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args(argv)
    outlets = ("vnexpress", "tuoitre", "thanhnien", "nld", "plo", "sggp", "dantri", "laodong")[: args.outlets]
    per_outlet = args.pages // len(outlets)
    settings = {"DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False, "LOG_LEVEL": "WARNING",
                "CONCURRENT_REQUESTS": args.concurrency, "CONCURRENT_REQUESTS_PER_DOMAIN": args.concurrency,
                "LANGNGHE_BATCH_SIZE": args.batch}
    with tempfile.TemporaryDirectory() as tmp, serve_generated(per_outlet, outlets, distinct=False) as site:
        # every outlet is its own source: the same texts across outlets are syndication (grouped, stored)
        settings["LANGNGHE_SOURCES"] = {site.url(f"/{o}/"): f"{o}.vn" for o in outlets}
        started = time.monotonic()
        stats = run_crawl(site.feed_urls(), Path(tmp) / "bench.sqlite3", settings=settings, timeout=900)
        wall = time.monotonic() - started
    stored = stats.inserted
    result = {
        "pages_requested": per_outlet * len(outlets), "stored": stored,
        "syndicated": int(stats.raw.get("langnghe/stories/syndicated", 0)),
        "crawl_s": round(stats.elapsed_s, 2), "wall_s": round(wall, 2),
        "pages_per_min_crawl": round(stored / stats.elapsed_s * 60) if stats.elapsed_s else 0,
        "pages_per_min_wall": round(stored / wall * 60) if wall else 0,
        "skipped": stats.skipped, "errors": stats.errors,
    }
    print(json.dumps(result, indent=1))
    return 0 if stored == per_outlet * len(outlets) else 1


if __name__ == "__main__":
    sys.exit(main())
