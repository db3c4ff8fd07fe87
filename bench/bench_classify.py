"""Classification throughput (mentions/s) for comment-length and article-length texts.

    python bench/bench_classify.py [--seconds 8] [--batch-size 256] [--models models]
                                   [--backends linear,hybrid]

Texts are synthesised from a fixed vocabulary of civic Vietnamese sentences (seeded), so the run
needs no shared data. Measures the classifier heads alone and classify_file end to end (with the
location resolver when `nlp.locations` is available). Keeps the whole run under about a minute.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nlp.classifiers import TextClassifiers  # noqa: E402
from nlp.classify import classify_file  # noqa: E402

SENTENCES = [
    "Đường Nguyễn Hữu Cảnh ngập sâu sau cơn mưa lớn, xe chết máy hàng loạt",
    "Người dân phản ánh rác thải bốc mùi hôi thối ở hẻm 42 đường Lê Văn Sỹ, quận 3",
    "Kẹt xe kéo dài hàng giờ ở cửa ngõ sân bay Tân Sơn Nhất vào giờ cao điểm",
    "UBND phường đã sửa xong đèn chiếu sáng, người dân rất hài lòng",
    "Bệnh viện quá tải, bệnh nhân phải nằm ghép hai ba người một giường",
    "Thủ tục cấp sổ hồng kéo dài nhiều tháng, cán bộ hẹn tới hẹn lui",
    "Công an quận Bình Tân bắt giữ nhóm cướp giật điện thoại của người đi đường",
    "Giá điện tăng khiến nhiều hộ gia đình lao động nghèo gặp khó khăn",
    "Hàng chục học sinh nhập viện nghi ngộ độc thực phẩm sau bữa ăn bán trú",
    "Vỉa hè bị lấn chiếm làm nơi buôn bán, người đi bộ phải xuống lòng đường",
    "Thành phố triển khai dịch vụ công trực tuyến cho thủ tục đăng ký hộ tịch",
    "Triều cường dâng cao gây ngập nhiều tuyến đường ở huyện Nhà Bè và quận 7",
]


def make_texts(n: int, words: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts: list[str] = []
        while sum(len(p.split()) for p in parts) < words:
            parts.append(rng.choice(SENTENCES))
        out.append(" ".join(" ".join(parts).split()[:words]) + ".")
    return out


def measure(models: TextClassifiers, texts: list[str], batch_size: int, seconds: float) -> float:
    models.predict(texts[:8], batch_size=batch_size)  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        models.predict(texts, batch_size=batch_size)
        done += len(texts)
    return done / (time.perf_counter() - start)


def measure_file(texts: list[str], models_dir: Path, batch_size: int, backend: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        inp.write_text("".join(json.dumps({"id": str(i), "text": t}, ensure_ascii=False) + "\n"
                               for i, t in enumerate(texts)), encoding="utf-8")
        classify_file(inp, out, models_dir, batch_size=batch_size, backend=backend)  # warm-up
        start = time.perf_counter()
        n = classify_file(inp, out, models_dir, batch_size=batch_size, backend=backend)
        return n / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="time per measurement")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--backends", default="linear,hybrid",
                        help="comma-separated: linear (n-gram heads), hybrid (+ encoder heads)")
    args = parser.parse_args()
    rows = []
    for backend in args.backends.split(","):
        models = TextClassifiers.load(args.models, backend=backend)
        # the encoder path is slower: fewer texts, so that the run stays short (but enough that
        # loading the artifacts, ~0.2 s, does not dominate the end-to-end figure)
        scale = 1 if backend == "linear" else 2
        for label, words, n in (("comment (~20 words)", 20, 2048), ("article (~500 words)", 500, 512)):
            texts = make_texts(max(16, n // scale), words, seed=words)
            heads = measure(models, texts, args.batch_size, args.seconds)
            file_rate = measure_file(texts if scale > 1 else texts[: len(texts) // 4], args.models,
                                     args.batch_size, backend)
            rows.append((backend, label, heads, file_rate))
    print(f"{'backend':<8} {'texts':<22} {'heads (mentions/s)':>20} {'classify_file (mentions/s)':>28}")
    for backend, label, heads, file_rate in rows:
        print(f"{backend:<8} {label:<22} {heads:>20,.1f} {file_rate:>28,.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
