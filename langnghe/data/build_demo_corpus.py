"""Builds the bundled demo corpus from the VNTC news corpus (MIT) in ../shared.

Run once; the output, demo_corpus.jsonl.gz, is committed. It picks news about Ho Chi Minh City
from the society, law, health and life sections (most of them civic), plus some sport, culture
and IT items so that the demo also shows what is filtered out. Usage:

    python langnghe/data/build_demo_corpus.py ../shared/data/topics/vntc/train.jsonl.gz
"""

from __future__ import annotations

import gzip
import json
import random
import re
import sys
from pathlib import Path

OUTLETS = {"VNE": "vnexpress", "TT": "tuoitre", "TN": "thanhnien", "NLD": "nld"}
HCMC = re.compile(r"TP\.? ?HCM|TPHCM|TP Hồ Chí Minh|Sài Gòn|\bQ\.\s?\d|\bquận \d|"
                  r"Thủ Đức|Bình Thạnh|Gò Vấp|Tân Bình|Củ Chi|Nhà Bè")
CIVIC_SECTIONS = {"Chinh tri Xa hoi": 170, "Phap luat": 90, "Suc khoe": 50, "Doi song": 50}
OTHER_SECTIONS = {"The thao": 15, "Van hoa": 15, "Vi tinh": 10}


def outlet_of(doc_id: str) -> str | None:
    match = re.search(r"_\s?([A-Z]+)_", doc_id)
    return OUTLETS.get(match.group(1)) if match else None


def split_title(title: str, text: str) -> tuple[str, str]:
    """Some VNTC items hold the whole lead in `title`: keep its first sentence as the title."""
    title = re.sub(r"\s*\((NLĐ|NLÐĐ|NLĐO)\)\s*-?\s*", " ", title).strip()
    if len(title) <= 160:
        return title, text
    head = re.split(r"(?<=[.!?])\s", title, maxsplit=1)[0][:160]
    return head, text


def main(vntc_path: str) -> None:
    with gzip.open(vntc_path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    rng = random.Random(20251124)
    picked: list[dict[str, str]] = []
    for sections, need_hcmc in ((CIVIC_SECTIONS, True), (OTHER_SECTIONS, False)):
        for section, count in sections.items():
            pool = [r for r in rows if r["id"].startswith(section + "/") and outlet_of(r["id"])
                    and 400 <= len(r["text"]) <= 6000
                    and (not need_hcmc or HCMC.search(r["title"] + " " + r["text"][:1500]))]
            pool.sort(key=lambda r: r["id"])
            for r in rng.sample(pool, min(count, len(pool))):
                title, text = split_title(r["title"], r["text"])
                picked.append({"vntc_id": r["id"], "section": r["label"], "outlet": outlet_of(r["id"]) or "",
                               "title": title, "text": text})
    rng.shuffle(picked)
    out = Path(__file__).with_name("demo_corpus.jsonl.gz")
    payload = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in picked).encode("utf-8")
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0) as fh:
        fh.write(payload)  # fixed header: rebuilding gives identical bytes
    print(f"wrote {len(picked)} items to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
