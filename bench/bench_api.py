"""Latency of the top-10 and search endpoints on a store of generated mentions, over real HTTP.

    python bench/bench_api.py --mentions 100000 --requests 300

Generates mentions (Vietnamese civic texts over the city's areas and topics, spread over 14
days), writes them to a SQLite store, runs the ranking job, starts the API with uvicorn on
127.0.0.1 and times sequential requests from a client in the same process.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import uvicorn

from api.main import create_app
from langnghe.records import Location, Mention, mention_id, utcnow
from nlp.areas import load_areas
from nlp.discovery import DiscoveryConfig
from nlp.ranking import update_rankings
from storage.sqlite import SQLiteStore

TOPICS = {
    "flooding": ("construction", ["ngập nước", "triều cường", "mưa lớn gây ngập", "cống thoát nước tắc"]),
    "traffic": ("construction", ["kẹt xe", "ùn tắc giao thông", "xe buýt trễ chuyến", "tai nạn giao thông"]),
    "environment": ("agriculture_environment", ["rác thải bốc mùi", "khói bụi", "tiếng ồn karaoke", "kênh ô nhiễm"]),
    "urban_order": ("commune_pc", ["lấn chiếm vỉa hè", "hàng rong", "quảng cáo trái phép"]),
    "utilities": ("construction", ["cúp nước", "mất điện", "nước sinh hoạt đục"]),
    "land_housing": ("agriculture_environment", ["chậm cấp sổ hồng", "giải tỏa đền bù", "xây dựng trái phép"]),
}
STREETS = ["Nguyễn Hữu Cảnh", "Điện Biên Phủ", "Cách Mạng Tháng Tám", "Lê Văn Việt", "Huỳnh Tấn Phát",
           "Kinh Dương Vương", "Phan Văn Trị", "Quang Trung", "Nguyễn Văn Linh", "Xa lộ Hà Nội"]
SOURCES = ["vnexpress.net", "tuoitre.vn", "thanhnien.vn", "nld.com.vn", "plo.vn", "sggp.org.vn",
           "voz.vn", "facebook:page/quan7", "hotline-1022"]


def generate(count: int, seed: int = 7) -> list[Mention]:
    rng = random.Random(seed)
    areas = load_areas()
    wards = [a for a in areas.by_level("ward")]
    now = utcnow()
    mentions = []
    for i in range(count):
        topic = rng.choice(list(TOPICS))
        department, phrases = TOPICS[topic]
        phrase = rng.choice(phrases)
        ward = rng.choice(wards)
        districts = areas.former_districts_of_ward(ward.id)
        street = rng.choice(STREETS)
        title = f"{phrase.capitalize()} trên đường {street}, {ward.name}"
        text = (f"Người dân {ward.name} phản ánh tình trạng {phrase} kéo dài nhiều ngày trên đường {street}. "
                f"Chính quyền địa phương cho biết sẽ kiểm tra và xử lý trong tuần (bài {i}).")
        area_ids = ["hcmc", *[d.id for d in districts], ward.id]
        url = f"https://{rng.choice(SOURCES)}/bai-{i}.html"
        mentions.append(Mention(
            id=mention_id(url), source=url.split("/")[2], url=url, title=title, text=text,
            published_at=now - timedelta(minutes=rng.randrange(14 * 24 * 60)),
            civic=True, civic_score=0.9, sentiment=rng.choice(["negative"] * 3 + ["neutral", "positive"]),
            sentiment_score=0.8, topic=topic, department=department,
            locations=[Location(text=ward.name, start=0, end=len(ward.name), level="ward", ward=ward.name,
                                area_ids=area_ids)],
            areas=area_ids, processed_at=now,
        ))
    return mentions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(client: httpx.Client, paths: list[str]) -> list[float]:
    out = []
    for path in paths:
        t0 = time.perf_counter()
        response = client.get(path)
        out.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mentions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--db", type=Path, default=None, help="reuse/keep the store here")
    args = parser.parse_args()

    db = args.db or Path(tempfile.mkdtemp()) / "bench.sqlite3"
    store = SQLiteStore(db)
    if store.count_mentions() < args.mentions:
        t0 = time.perf_counter()
        mentions = generate(args.mentions)
        store.write_mentions(mentions)
        print(f"write {args.mentions} mentions: {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        summary = update_rankings(store, days=14, config=DiscoveryConfig(backend="lexical"))
        print(f"ranking job (group + rank 14 days): {time.perf_counter() - t0:.1f}s {summary}")

    port = free_port()
    app = create_app(store, auth_required=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    rng = random.Random(1)
    areas = ["hcmc", *[a.id for a in load_areas().all() if a.level != "city"]]
    queries = ["ngap nuoc", "kẹt xe", "rac thai", "\"lấn chiếm vỉa hè\"", "cup nuoc", "Nguyễn Hữu Cảnh"]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        timed(client, ["/api/v1/issues/top?area=hcmc"] * 10)  # warm up
        top = [f"/api/v1/issues/top?area={rng.choice(areas)}&period={rng.choice(['day', 'week'])}"
               for _ in range(args.requests)]
        search = [f"/api/v1/mentions/search?q={rng.choice(queries)}"
                  + (f"&area={rng.choice(areas)}" if rng.random() < 0.5 else "")
                  for _ in range(args.requests)]
        print(f"\nstore: {store.count_mentions()} mentions, {len(store.list_issues())} issues")
        print("| endpoint | requests | p50 ms | p95 ms | p99 ms | mean ms |")
        print("|---|---|---|---|---|---|")
        for name, paths in (("top-10", top), ("search", search)):
            lat = timed(client, paths)
            print(f"| {name} | {len(lat)} | {percentile(lat, 50):.1f} | {percentile(lat, 95):.1f} | "
                  f"{percentile(lat, 99):.1f} | {statistics.mean(lat):.1f} |")
    server.should_exit = True
    store.close()


if __name__ == "__main__":
    main()
