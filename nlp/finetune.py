"""End-to-end fine-tuning of a Hugging Face encoder on the civic tasks (GPU; optional extra).

    python -m nlp.finetune --model-dir /models/multilingual-e5-base --shared ../shared \\
        --out var/finetuned [--epochs 3] [--batch-size 32] [--lr 3e-5] [--max-steps N]

One shared encoder, four classification heads (civic, sentiment, topic, department) on its
mean-pooled output, trained jointly with a class-balanced cross-entropy per head; an item only
contributes to the heads it has labels for (a review sentence: sentiment only; a not-civic news
lead: civic only). The result is a plain transformers model directory (usable by
``LANGNGHE_ENCODER=hf:<dir>``; retrain the heads with ``langnghe model train`` on it) plus
``heads.npz`` with the fine-tuned head weights.

The data preparation (:func:`build_multitask_items`, :func:`class_weights`) needs numpy only and is
tested on every machine; the loop needs ``torch`` and ``transformers`` (``pip install
'langnghe[transformer]'``) and is meant for a GPU (a CPU run is only a smoke test).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlp.classifiers import HEADS
from nlp.training import (
    HEAD_CLASSES,
    TrainConfig,
    _build_examples,
    load_civic,
    load_sentiment_sets,
    load_weak_not_civic,
)

log = logging.getLogger(__name__)
IGNORE = -100  # label of a head an item has no annotation for


@dataclass
class MultiTaskItem:
    text: str
    labels: dict[str, int]  # head -> class index, IGNORE when unlabelled
    weight: float = 1.0


def build_multitask_items(examples: dict[str, list[Any]]) -> list[MultiTaskItem]:
    """Merge the per-head example lists of :func:`nlp.training._build_examples` into one item per
    distinct text, each with the labels it has (others IGNORE); weight = the largest of its weights."""
    items: dict[str, MultiTaskItem] = {}
    for head in HEADS:
        classes = list(HEAD_CLASSES[head])
        for ex in examples[head]:
            item = items.setdefault(ex.text, MultiTaskItem(ex.text, dict.fromkeys(HEADS, IGNORE), 0.0))
            item.labels[head] = classes.index(ex.label)
            item.weight = max(item.weight, float(ex.weight))
    return list(items.values())


def class_weights(items: Sequence[MultiTaskItem], head: str) -> np.ndarray:
    """Balanced class weights of one head over the items labelled for it (absent classes: 0)."""
    n = len(HEAD_CLASSES[head])
    y = np.array([it.labels[head] for it in items if it.labels[head] != IGNORE], dtype=np.int64)
    counts = np.bincount(y, minlength=n).astype(np.float64)
    present = counts > 0
    out = np.zeros(n)
    out[present] = counts.sum() / (present.sum() * counts[present])
    return out.astype(np.float32)


def load_items(shared_dir: Path, cfg: TrainConfig | None = None) -> list[MultiTaskItem]:
    cfg = cfg or TrainConfig()
    senti = load_sentiment_sets(shared_dir, cfg.seed, cfg.vlsp_dev_fraction)
    weak = load_weak_not_civic(shared_dir, cfg.weak_per_section, cfg.weak_max_chars, cfg.seed)
    return build_multitask_items(_build_examples(cfg, load_civic(shared_dir, "train"), weak, senti))


def finetune(model_dir: Path, items: Sequence[MultiTaskItem], out_dir: Path, *, epochs: float = 3.0,
             batch_size: int = 32, lr: float = 3e-5, max_tokens: int = 256, max_steps: int | None = None,
             seed: int = 0, prefix: str | None = None, device: str | None = None) -> dict[str, Any]:
    """Fine-tune `model_dir` on `items`; writes the encoder to `out_dir` and returns a summary."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(seed)
    random.seed(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    enc = AutoModel.from_pretrained(str(model_dir), local_files_only=True).to(device)
    prefix = prefix if prefix is not None else ("query: " if "e5" in Path(model_dir).name.lower() else "")
    hidden = int(enc.config.hidden_size)
    heads = torch.nn.ModuleDict({h: torch.nn.Linear(hidden, len(HEAD_CLASSES[h])) for h in HEADS}).to(device)
    losses = {h: torch.nn.CrossEntropyLoss(weight=torch.tensor(class_weights(items, h), device=device),
                                           ignore_index=IGNORE, reduction="none") for h in HEADS}
    params = list(enc.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    order = list(range(len(items)))
    steps_per_epoch = max(1, (len(order) + batch_size - 1) // batch_size)
    total = max_steps or int(steps_per_epoch * epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, total // 10))
                                              * max(0.0, 1.0 - s / total))
    enc.train()
    step, last = 0, float("nan")
    while step < total:
        random.shuffle(order)
        for start in range(0, len(order), batch_size):
            batch = [items[i] for i in order[start: start + batch_size]]
            inputs = tok([prefix + it.text for it in batch], padding=True, truncation=True,
                         max_length=max_tokens, return_tensors="pt").to(device)
            out = enc(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(out.dtype)
            pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            w = torch.tensor([it.weight for it in batch], device=device)
            loss = torch.zeros((), device=device)
            for h in HEADS:
                y = torch.tensor([it.labels[h] for it in batch], device=device)
                if (y != IGNORE).any():
                    per = losses[h](heads[h](pooled), y)
                    loss = loss + (per * w).sum() / w[y != IGNORE].sum()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            last = float(loss.detach().cpu())
            if step % 50 == 0:
                log.info("step %d/%d loss %.4f", step, total, last)
            if step >= total:
                break
    out_dir.mkdir(parents=True, exist_ok=True)
    enc.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))
    np.savez(out_dir / "heads.npz", **{f"{h}.{k}": v.detach().cpu().numpy()
                                       for h in HEADS for k, v in heads[h].state_dict().items()})
    summary = {"steps": step, "last_loss": last, "items": len(items), "device": device,
               "base_model": str(model_dir), "prefix": prefix, "max_tokens": max_tokens}
    (out_dir / "finetune.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlp.finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="a local Hugging Face model directory")
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--out", type=Path, default=Path("var/finetuned"))
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--max-steps", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    summary = finetune(args.model_dir, load_items(args.shared), args.out, epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr, max_tokens=args.max_tokens,
                       max_steps=args.max_steps)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
