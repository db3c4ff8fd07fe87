"""Learning curves of the n-gram (linear) heads: dev figures against the share of training data.

What would more annotation buy? This trains `langnghe model train`'s linear backend (no encoder:
the adapter has seen all training items, so only the n-gram heads can be retrained on a part) on a
seeded fraction of the civic train items, or of VLSP 2016 train, and prints the dev figures. The
dev splits stay as they are (the VLSP dev split is cut before the fraction is taken).

    python bench/learning_curve.py --data ../shared civic 0.25 0.5 0.75 1 --seeds 0 1
    python bench/learning_curve.py --data ../shared vlsp 0.25 0.5 0.75 1 --seeds 0 1

Figures: docs/models.md, "What more data would do". Each run takes about 1.5 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path
from typing import Any

import nlp.training as training

FIGURES = {"department": "civic_dev.department.accuracy", "topic": "civic_dev.topic.macro_f1",
           "vlsp": "vlsp_dev.sentiment.macro_f1", "vsfc": "vsfc_dev.sentiment.macro_f1"}


def run(shared: Path, subset: str, fraction: float, seed: int) -> dict[str, Any]:
    """Train the linear heads with `fraction` of one training set (`civic` or `vlsp`); dev figures."""
    load_civic, load_sets = training.load_civic, training.load_sentiment_sets

    def civic(shared_dir: Path, split: str) -> list[dict[str, Any]]:
        rows = load_civic(shared_dir, split)
        if split == "train" and subset == "civic":
            rows = random.Random(seed).sample(rows, round(len(rows) * fraction))
        return rows

    def sets(shared_dir: Path, split_seed: int, dev_fraction: float = 0.1) -> dict[str, Any]:
        out = load_sets(shared_dir, split_seed, dev_fraction)
        if subset == "vlsp":
            rows = out["vlsp_train"]
            out["vlsp_train"] = random.Random(seed).sample(rows, round(len(rows) * fraction))
        return out

    training.load_civic, training.load_sentiment_sets = civic, sets  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory(prefix="curve-") as out:
            cfg = training.TrainConfig(encoder_spec=None, adapter_file=None)
            training.train(shared, Path(out), seed=0, config=cfg)
            headline = json.loads((Path(out) / "scores.json").read_text())["headline"]
    finally:
        training.load_civic, training.load_sentiment_sets = load_civic, load_sets
    return {"subset": subset, "fraction": fraction, "seed": seed,
            **{name: headline[key] for name, key in FIGURES.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("subset", choices=("civic", "vlsp"))
    parser.add_argument("fractions", nargs="+", type=float)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--data", type=Path, default=Path("../shared"))
    args = parser.parse_args()
    for fraction in args.fractions:
        for seed in args.seeds if fraction < 1 else [0]:
            print(json.dumps(run(args.data, args.subset, fraction, seed)), flush=True)


if __name__ == "__main__":
    main()
