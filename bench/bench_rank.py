"""Benchmark of issue grouping and ranking on synthetic civic mentions.

    python bench/bench_rank.py --mentions 50000

Builds `--mentions` mentions over 7 days: recurring events (each a fixed set of key phrases in
one area, reported by several sources with varied wording) and unique background reports, then
times `group_issues` and `rank_mentions` (day and week) and reports how well events were
recovered (purity / inverse purity against the planted event of each mention).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from langnghe.records import Mention
from nlp.issues import group_issues
from nlp.ranking import rank_mentions

CITY = ZoneInfo("Asia/Ho_Chi_Minh")
TOPICS = {
    "flooding": ["ngập nước", "triều cường", "mưa lớn", "nước rút chậm", "thoát nước", "xe chết máy"],
    "traffic": ["ùn tắc", "kẹt xe", "tai nạn giao thông", "xe buýt", "giờ cao điểm", "đèn tín hiệu"],
    "environment": ["rác thải", "mùi hôi", "ô nhiễm", "khói bụi", "tiếng ồn", "kênh đen"],
    "infrastructure": ["ổ gà", "vỉa hè", "nắp cống", "cây xanh", "đèn chiếu sáng", "thi công chậm"],
    "public_security": ["trộm cắp", "cướp giật", "lừa đảo", "đánh nhau", "cháy nhà", "ma túy"],
    "utilities": ["mất điện", "cúp nước", "nước đục", "giá điện", "mất sóng", "nước yếu"],
}
PLACES = ["Nguyễn Hữu Cảnh", "Xô Viết Nghệ Tĩnh", "Điện Biên Phủ", "Kha Vạn Cân", "Huỳnh Tấn Phát",
          "Nguyễn Văn Linh", "Cộng Hòa", "Trường Chinh", "Lê Văn Việt", "Phạm Văn Đồng", "Quang Trung",
          "Âu Cơ", "Lũy Bán Bích", "Tỉnh Lộ 10", "Kinh Dương Vương", "Hậu Giang", "Lý Thường Kiệt"]
DISTRICTS = ["binh-thanh", "quan-7", "thu-duc", "go-vap", "tan-binh", "tan-phu", "binh-tan", "quan-8",
             "quan-12", "binh-chanh", "hoc-mon", "cu-chi", "quan-1", "quan-3", "phu-nhuan"]
_FILLER_TEXT = ("người dân phản ánh tình trạng kéo dài nhiều ngày qua chính quyền địa phương cho biết sẽ "
          "kiểm tra xử lý sớm đề nghị cơ quan chức năng vào cuộc khắc phục")
FILLER = _FILLER_TEXT.split()
_SYLLABLE_TEXT = ("an bình hòa phú thạnh lộc tân mỹ long phước hưng thới đông tây nam bắc trung hiệp "
             "xuân thuận lợi nghĩa khánh vĩnh quang minh thành sơn hải linh hoa đức tài chánh")
SYLLABLES = _SYLLABLE_TEXT.split()
SOURCES = [f"source{k}.vn" for k in range(40)] + [f"facebook:group/{k}" for k in range(60)]


def synth(n: int, seed: int = 7) -> tuple[list[Mention], dict[str, str]]:
    rng = random.Random(seed)
    start = datetime(2025, 11, 14, tzinfo=CITY)
    events = []
    for e in range(max(1, n // 12)):
        topic = rng.choice(list(TOPICS))
        district = rng.choice(DISTRICTS)
        ward = f"w:{27000 + DISTRICTS.index(district) * 10 + rng.randrange(5)}"
        name = " ".join(w.capitalize() for w in rng.sample(SYLLABLES, 2))
        spot = f"{rng.choice(['chợ', 'hẻm', 'cầu', 'chung cư', 'kênh'])} {name}"
        events.append((e, topic, district, ward, rng.sample(TOPICS[topic], 3),
                       f"{rng.choice(PLACES)} gần {spot}"))
    out: list[Mention] = []
    gold: dict[str, str] = {}
    for k in range(n):
        e, topic, district, ward, keys, place = rng.choice(events)
        words = keys[:2] + [rng.choice(keys)] + rng.sample(FILLER, 8)
        rng.shuffle(words)
        title = f"{keys[0].capitalize()} trên đường {place}, {keys[1]}"
        text = f"Đường {place} " + " ".join(words) + f" sự việc {k % 97}."
        areas = ([ward] if rng.random() < 0.6 else []) + [f"fd:{district}", "hcmc"]
        when = start + timedelta(minutes=rng.randrange(7 * 24 * 60))
        mid = f"m{k:06d}"
        out.append(Mention(id=mid, source=rng.choice(SOURCES), url=f"https://x/{mid}", title=title,
                           text=text, published_at=when, civic=True, topic=topic,
                           sentiment=rng.choice(["negative", "negative", "neutral", "positive"]),
                           department="construction", areas=areas))
        gold[mid] = f"e{e}"
    return out, gold


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mentions", type=int, default=50000)
    args = parser.parse_args()
    ms, gold = synth(args.mentions)
    t0 = time.perf_counter()
    res = group_issues(ms)
    t1 = time.perf_counter()
    for m in ms:
        m.issue_id = res.assignments[m.id]
    day = rank_mentions(ms, "day", "2025-11-20", previous=ms)
    t2 = time.perf_counter()
    week = rank_mentions(ms, "week", "2025-W47", previous=ms)
    t3 = time.perf_counter()
    clusters: dict[str, list[str]] = defaultdict(list)
    for mid, iid in res.assignments.items():
        clusters[iid].append(mid)
    events: dict[str, list[str]] = defaultdict(list)
    for mid, e in gold.items():
        events[e].append(mid)
    purity = sum(Counter(gold[m] for m in v).most_common(1)[0][1] for v in clusters.values()) / len(ms)
    inverse = sum(Counter(res.assignments[m] for m in v).most_common(1)[0][1]
                  for v in events.values()) / len(ms)
    print(f"mentions={len(ms)} planted_events={len(events)} issues={len(clusters)}")
    print(f"group_issues: {t1 - t0:.1f}s  rank day: {t2 - t1:.1f}s ({len(day)} entries)  "
          f"rank week: {t3 - t2:.1f}s ({len(week)} entries)")
    print(f"purity={purity:.3f} inverse_purity={inverse:.3f}")


if __name__ == "__main__":
    main()
