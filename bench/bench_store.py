"""Benchmark of the SQLite store: bulk writes, re-writes, search and filtered listings.

    python bench/bench_store.py --n 100000

Generates synthetic Vietnamese mentions (random sentences from a fixed vocabulary, areas, topics,
sources over 60 days), writes them in one call and times the usual reads. Prints figures only.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from langnghe.records import Mention  # noqa: E402
from storage.base import mention_filters  # noqa: E402
from storage.sqlite import SQLiteStore  # noqa: E402

_VOCABULARY = """
ngập nước đường mưa lớn triều cường kẹt xe giao thông ùn tắc cầu rác thải ô nhiễm người dân phản ánh
chính quyền phường xã thành phố công viên bệnh viện trường học điện cấp nước giá nhà đất dự án chậm tiến
độ vỉa hè lấn chiếm tiếng ồn công trình an ninh trộm cắp cháy nổ cây xanh đèn đường kênh rạch sạt lở xe
buýt metro học phí hành chính
"""
_WORDS = _VOCABULARY.split()
_PLACES = ["Thủ Đức", "Bình Thạnh", "Quận 7", "Gò Vấp", "Tân Bình", "Bình Tân", "Quận 1", "Nhà Bè"]
_SLUGS = ["fd:thu-duc", "fd:binh-thanh", "fd:quan-7", "fd:go-vap", "fd:tan-binh", "fd:binh-tan",
          "fd:quan-1", "fd:nha-be"]
_TOPICS = ["flooding", "traffic", "waste", "environment", "health", "education", "housing", None]
_SOURCES = ["vnexpress.net", "tuoitre.vn", "thanhnien.vn", "facebook:page/1", "hotline-1022"]
_T0 = datetime(2025, 10, 1, tzinfo=UTC)


def generate_mentions(n: int, seed: int = 7) -> Iterator[Mention]:
    """`n` reproducible synthetic mentions of about 400-700 characters."""
    rng = random.Random(seed)
    for i in range(n):
        place = rng.randrange(len(_PLACES))
        sentences = [" ".join(rng.choices(_WORDS, k=rng.randint(8, 16))).capitalize() + "." for _ in range(6)]
        where = f"Tại {_PLACES[place]}, {rng.choice(_WORDS)} {rng.choice(_WORDS)}."
        sentences.insert(rng.randrange(3), where)
        published = _T0 + timedelta(minutes=rng.randrange(60 * 24 * 60))
        yield Mention(
            id=f"bench{i:07d}", source=rng.choice(_SOURCES), url=f"https://example.vn/{i}.html",
            title=" ".join(rng.choices(_WORDS, k=8)).capitalize() + f" ở {_PLACES[place]}",
            text=" ".join(sentences), published_at=published, crawled_at=published + timedelta(hours=1),
            civic=True, civic_score=0.9, sentiment=rng.choice(["negative", "neutral", "positive"]),
            sentiment_score=0.7, topic=rng.choice(_TOPICS),
            areas=["hcmc", _SLUGS[place], f"w:{26700 + i % 168}"],
            processed_at=published + timedelta(hours=2),
        )


def _timed(fn: Callable[[], Any], repeat: int = 20) -> float:
    """Median milliseconds of `fn` over `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def run(n: int, path: Path) -> None:
    mentions = list(generate_mentions(n))
    store = SQLiteStore(path)
    start = time.perf_counter()
    result = store.write_mentions(mentions)
    elapsed = time.perf_counter() - start
    print(f"write {n:,} mentions: {elapsed:.1f} s ({n / elapsed:,.0f}/s) {result}")
    sample = mentions[: min(n, 10_000)]
    start = time.perf_counter()
    result = store.write_mentions(sample)
    print(f"re-write {len(sample):,} unchanged: {time.perf_counter() - start:.2f} s {result}")
    print(f"file size: {path.stat().st_size / 1e6:.0f} MB (+ WAL)")
    since = _T0 + timedelta(days=50)
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("search 'ngap nuoc'", lambda: store.search("ngap nuoc")),
        ("search 'ngap nuoc' area=fd:quan-7",
         lambda: store.search("ngap nuoc", mention_filters(area="fd:quan-7"))),
        ("search '\"trieu cuong\" thu duc'", lambda: store.search('"trieu cuong" thu duc')),
        ("list newest (no query)", lambda: store.search(None)),
        ("list newest area=hcmc", lambda: store.search(None, mention_filters(area="hcmc"))),
        ("list newest area=w:26750 last 10 days",
         lambda: store.search(None, mention_filters(area="w:26750", since=since))),
        ("count topic=flooding", lambda: store.count_mentions(mention_filters(topic="flooding"))),
        ("get_mentions 20 ids", lambda: store.get_mentions([m.id for m in mentions[:: max(1, n // 20)]])),
        ("top_issues", lambda: store.top_issues("hcmc", "day", "2025-11-20")),
    ]
    for name, fn in cases:
        print(f"{name}: {_timed(fn):.2f} ms (median)")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--path", type=Path, default=None, help="database file (default: a temporary one)")
    args = parser.parse_args()
    if args.path is not None:
        run(args.n, args.path)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run(args.n, Path(tmp) / "bench.sqlite3")


if __name__ == "__main__":
    main()
