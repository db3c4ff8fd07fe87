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

from nlp.classifiers import Featurizer, TextClassifiers, prepare
from nlp.taxonomy import CIVIC_TOPICS, DEPARTMENTS, SENTIMENT_LABELS

log = logging.getLogger(__name__)

CIVIC_DEPARTMENTS = tuple(code for code in DEPARTMENTS if code != "none")
SENTIMENTS = tuple(SENTIMENT_LABELS)

# VNTC sections used as weak "not civic" examples (the annotated set shows that politics_society,
# law, health and life hold most of the civic news, so those are left out).
WEAK_NOT_CIVIC_SECTIONS = ("sports", "world", "computing", "culture", "science")


@dataclass
class TrainConfig:
    """Hyper-parameters (chosen once on the civic dev set; see the model card)."""

    seed: int = 0
    featurizer: Featurizer = field(default_factory=Featurizer)
    civic_c: float = 30.0
    topic_c: float = 100.0
    department_c: float = 3.0
    sentiment_c: float = 4.0
    civic_threshold: float = 0.5
    weak_per_section: int = 300  # VNTC items per not-civic section
    weak_weight: float = 0.1
    weak_max_chars: int = 800  # title + lead, like the annotated items
    civic_sentiment_weight: float = 8.0  # weight of a civic item relative to a review sentence
    review_per_set: int = 5000  # sentences taken from each review sentiment set
    vlsp_dev_fraction: float = 0.1
    max_iter: int = 2000


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
    }


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

    def __init__(self, featurizer: Featurizer) -> None:
        self.featurizer = featurizer
        self.idf: np.ndarray | None = None

    def fit_idf(self, texts: Iterable[str]) -> np.ndarray:
        prepared = [prepare(t) for t in texts]
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

        prepared = [prepare(t) for t in texts]
        parts = []
        for start in range(0, len(prepared), 512):
            b = self.featurizer.transform(prepared[start: start + 512], self.idf)
            parts.append(sparse.csr_matrix((b.vals, (b.rows, b.cols)),
                                           shape=(b.n_docs, self.featurizer.n_features)))
        if not parts:
            return sparse.csr_matrix((0, self.featurizer.n_features), dtype=np.float32)
        return sparse.vstack(parts).tocsr()


def _fit_head(encoder: _Encoder, examples: Sequence[Example], classes: Sequence[Any], c: float,
              seed: int, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced logistic regression; returns dense weights (n_features, C or 1) and bias."""
    from sklearn.linear_model import LogisticRegression

    x_full = encoder.matrix([e.text for e in examples])
    # only the buckets present in the training texts can get a weight (L2): fit on those alone
    used = np.unique(x_full.indices)
    x = x_full[:, used]
    n_features = encoder.featurizer.n_features
    y = np.array([list(classes).index(e.label) for e in examples])
    w = np.array([e.weight for e in examples], dtype=np.float64)
    present = np.unique(y)
    # "balanced" over the weighted counts, so that down-weighted weak items do not dominate
    totals = np.bincount(y, weights=w, minlength=len(classes))
    class_w = {int(k): float(w.sum() / (len(present) * totals[k])) for k in present}
    model = LogisticRegression(C=c, class_weight=class_w, max_iter=max_iter, random_state=seed, tol=1e-4)
    model.fit(x, y, sample_weight=w)
    coef = np.asarray(model.coef_, dtype=np.float64)
    if len(classes) == 2:
        weights = np.zeros((n_features, 1))
        weights[used] = coef.T
        return weights, np.asarray(model.intercept_, dtype=np.float64)
    weights = np.zeros((n_features, len(classes)))
    bias = np.full(len(classes), -1e4)  # a class absent from training can never win
    weights[np.ix_(used, model.classes_)] = coef.T
    bias[model.classes_] = model.intercept_
    return weights, bias


def _build_examples(cfg: TrainConfig, civic_train: list[dict[str, Any]], weak: list[str],
                    senti: dict[str, list[dict[str, Any]]]) -> dict[str, list[Example]]:
    civic_items = [r for r in civic_train if r["civic"]]
    civic_ex = [Example(r["text"], bool(r["civic"])) for r in civic_train]
    civic_ex += [Example(t, False, cfg.weak_weight) for t in weak]
    sent_ex = [Example(r["text"], r["sentiment"], cfg.civic_sentiment_weight) for r in civic_train]
    for i, name in enumerate(("vsfc_train", "vlsp_train", "aivivn_train")):
        rows = _sample(senti[name], cfg.review_per_set, cfg.seed + i)
        sent_ex += [Example(r["text"], r["label"]) for r in rows if r["label"] in SENTIMENTS]
    return {
        "civic": civic_ex,
        "sentiment": sent_ex,
        "topic": [Example(r["text"], r["topic"]) for r in civic_items],
        "department": [Example(r["text"], r["department"]) for r in civic_items],
    }


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


def _evaluate_models(models: TextClassifiers, civic_dev: list[dict[str, Any]],
                     senti: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    preds = models.predict([r["text"] for r in civic_dev])
    civic_gold = [r for r, _ in zip(civic_dev, preds, strict=True)]
    civic_only = [(r, p) for r, p in zip(civic_dev, preds, strict=True) if r["civic"]]
    scores: dict[str, Any] = {
        "civic_dev": {
            # the same figures as tools/score_classify.py: civic macro-F1 over True/False, sentiment
            # macro-F1 on all items, topic macro-F1 and department accuracy on the gold-civic items
            "civic": classification_report([str(r["civic"]) for r in civic_gold],
                                           [str(p.civic) for p in preds], ["True", "False"]),
            "sentiment": classification_report([r["sentiment"] for r in civic_dev],
                                               [p.sentiment for p in preds]),
            "topic": classification_report([r["topic"] for r, _ in civic_only],
                                           [p.topic for _, p in civic_only]),
            "department": classification_report([r["department"] for r, _ in civic_only],
                                                [p.department for _, p in civic_only]),
            "topic_all_items": classification_report([r["topic"] for r in civic_dev],
                                                     [p.topic for p in preds]),
        }
    }
    for name in ("vsfc_dev", "vlsp_dev"):
        rows = senti[name]
        sp = models.predict([r["text"] for r in rows])
        scores[name] = {"sentiment": classification_report([r["label"] for r in rows],
                                                           [p.sentiment for p in sp])}
    return scores


def headline(scores: dict[str, Any]) -> dict[str, float]:
    """The few figures that gate a model (macro-F1, department accuracy)."""
    cd = scores["civic_dev"]
    return {
        "civic_dev.civic.macro_f1": cd["civic"]["macro_f1"],
        "civic_dev.sentiment.macro_f1": cd["sentiment"]["macro_f1"],
        "civic_dev.topic.macro_f1": cd["topic"]["macro_f1"],
        "civic_dev.department.accuracy": cd["department"]["accuracy"],
        "vsfc_dev.sentiment.macro_f1": scores["vsfc_dev"]["sentiment"]["macro_f1"],
        "vlsp_dev.sentiment.macro_f1": scores["vlsp_dev"]["sentiment"]["macro_f1"],
    }


def evaluate(shared_dir: Path, models_dir: Path) -> dict[str, Any]:
    """Recompute the dev scores of the artifacts in `models_dir` (same splits as at training)."""
    models = TextClassifiers.load(models_dir)
    seed = int(models.meta.get("config", {}).get("seed", 0))
    fraction = float(models.meta.get("config", {}).get("vlsp_dev_fraction", 0.1))
    senti = load_sentiment_sets(shared_dir, seed, fraction)
    scores = _evaluate_models(models, load_civic(shared_dir, "dev"), senti)
    scores["headline"] = headline(scores)
    return scores


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

    encoder = _Encoder(cfg.featurizer)
    all_texts = list(dict.fromkeys(e.text for exs in examples.values() for e in exs))
    idf = encoder.fit_idf(all_texts)
    log.info("idf over %d texts", len(all_texts))

    classes: dict[str, Sequence[Any]] = {
        "civic": (False, True), "sentiment": SENTIMENTS, "topic": CIVIC_TOPICS,
        "department": CIVIC_DEPARTMENTS,
    }
    c_of = {"civic": cfg.civic_c, "sentiment": cfg.sentiment_c, "topic": cfg.topic_c,
            "department": cfg.department_c}
    fitted: dict[str, tuple[Sequence[str], np.ndarray, np.ndarray]] = {}
    for name in ("civic", "sentiment", "topic", "department"):
        t0 = time.perf_counter()
        weights, bias = _fit_head(encoder, examples[name], classes[name], c_of[name], cfg.seed, cfg.max_iter)
        names = ["false", "true"] if name == "civic" else [str(c) for c in classes[name]]
        fitted[name] = (names, weights, bias)
        log.info("head %s: %d examples, %.1fs", name, len(examples[name]), time.perf_counter() - t0)

    config_meta = {k: v for k, v in vars(cfg).items() if k != "featurizer"}
    data_meta = {
        "civic_train": len(civic_train), "civic_dev": len(civic_dev),
        "weak_not_civic_vntc": len(weak), "weak_sections": list(WEAK_NOT_CIVIC_SECTIONS),
        "sentiment_examples": len(examples["sentiment"]),
        "vsfc_dev": len(senti["vsfc_dev"]), "vlsp_dev": len(senti["vlsp_dev"]),
    }
    meta = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "langnghe train (nlp.training.train)",
        "civic_threshold": cfg.civic_threshold, "config": config_meta, "data": data_meta,
        "featurizer": cfg.featurizer.params(),
    }
    TextClassifiers.save_arrays(models_dir, cfg.featurizer, idf, fitted, meta)
    models = TextClassifiers.load(models_dir)
    scores = _evaluate_models(models, civic_dev, senti)
    scores["headline"] = headline(scores)
    scores["train_seconds"] = round(time.perf_counter() - started, 1)
    scores["trained_at"] = meta["trained_at"]
    (models_dir / "scores.json").write_text(json.dumps(scores, ensure_ascii=False, indent=2) + "\n",
                                            encoding="utf-8")
    (models_dir / "MODEL_CARD.md").write_text(model_card(meta, scores, models_dir), encoding="utf-8")
    return scores


# -- model card --------------------------------------------------------------------------------

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
    head = scores["headline"]
    parts = [
        "# Lắng Nghe text classifiers (linear, v1)",
        "",
        "Four heads used by `nlp.classifiers.TextClassifiers`: **civic** (is this a public-affairs "
        "concern?), "
        "**sentiment** (negative | neutral | positive, civic convention: negative = a problem or harm is "
        "described), **topic** (14 civic topics; `not_civic` when civic is false) and **department** "
        "(17 HCMC agencies; `none` when civic is false). Codes: `nlp/taxonomy.py`, guide: shared "
        "`data/civic/GUIDE.md` v1.1.",
        "",
        f"- Trained: {meta['trained_at']} (UTC), seed {cfg['seed']}, in {scores.get('train_seconds', '?')} s "
        f"on CPU.",
        "- Command: `langnghe train` (or `python -m nlp.training ../shared models`); recompute the scores "
        "with `nlp.training.evaluate(shared_dir, models_dir)`.",
        f"- Artifacts: `classifiers.npz` (numpy arrays: idf, per-head used buckets, float16 weights, bias) + "
        f"`classifiers.json` (classes, feature parameters, config); {size:.1f} MB in all. No pickles; "
        "loading needs numpy only.",
        "",
        "## Method",
        "",
        "Text → `nlp.text.normalize` → hashed features (2^{n} buckets): word unigrams + bigrams of the "
        "lower-cased text with tone marks and of the folded text (no tone marks, so unaccented input "
        "works), character 2–5-grams of the folded text; sublinear tf × idf, each block L2-normalised. "
        "One L2-regularised logistic regression per head (scikit-learn, lbfgs), classes balanced over the "
        "weighted counts. Probabilities are the model's own (softmax/sigmoid). Consistency: civic false ⇒ "
        "topic `not_civic`, department `none`; civic true ⇒ the most probable civic topic and department."
        .replace("{n}", str(meta.get("featurizer", {}).get("n_bits", 20))),
        "",
        f"Hyper-parameters: C civic {cfg['civic_c']}, topic {cfg['topic_c']}, department "
        f"{cfg['department_c']}, sentiment {cfg['sentiment_c']}; civic threshold {cfg['civic_threshold']}. "
        "They were picked by a small search on the civic dev set, so the civic dev figures are slightly "
        "optimistic; the held-out set is the independent measure.",
        "",
        "## Data and licences",
        "",
        "| data | use | items | licence |",
        "|---|---|---|---|",
        "| civic/train (our annotation of VNTC, TC201805 and ViHSD texts) | all heads "
        f"| {data['civic_train']} "
        "| as the source texts (research use) |",
        f"| VNTC train, sections {', '.join(data['weak_sections'])} (title + first {cfg['weak_max_chars']} "
        f"characters) | weak \"not civic\", weight {cfg['weak_weight']} | {data['weak_not_civic_vntc']} "
        "| MIT (VNTC data) |",
        f"| UIT-VSFC train, VLSP 2016 train (less a seeded {int(cfg['vlsp_dev_fraction'] * 100)}% dev), "
        f"AIVIVN 2019 train: up to {cfg['review_per_set']} each | sentiment (civic items weigh "
        f"{cfg['civic_sentiment_weight']}×) | {data['sentiment_examples']} incl. civic | UIT research / "
        "VLSP shared task / competition data |",
        "",
        "TC201805 (GPL-3.0) is not used. No source text is stored in the artifacts: only hashed-feature "
        "weights.",
        "",
        "## Dev scores",
        "",
        "| figure | value |",
        "|---|---|",
        *[f"| {k} | {v:.3f} |" for k, v in head.items()],
        "",
        f"Civic dev: {data['civic_dev']} items; topic and department are scored on the gold-civic items, as "
        "`tools/score_classify.py` does (department: accuracy).",
        "",
    ]
    sections = [
        ("Civic dev — civic", scores["civic_dev"]["civic"]),
        ("Civic dev — sentiment", scores["civic_dev"]["sentiment"]),
        ("Civic dev — topic (gold-civic items)", scores["civic_dev"]["topic"]),
        ("Civic dev — department (gold-civic items)", scores["civic_dev"]["department"]),
        (f"UIT-VSFC dev — sentiment ({data['vsfc_dev']} items)", scores["vsfc_dev"]["sentiment"]),
        (f"VLSP 2016 seeded dev — sentiment ({data['vlsp_dev']} items)", scores["vlsp_dev"]["sentiment"]),
    ]
    for title, report in sections:
        parts += [f"### {title}", "", _table(report), ""]
    parts += [
        "## Limits",
        "",
        "- Small annotated set (782 items, mostly 2006–2018 news leads): rare topics (urban_order) and "
        "departments (science_technology, tourism, planning_architecture) are weak.",
        "- Review sentiment (students' feedback, product reviews) differs from civic sentiment; the civic "
        "dev figure is the one that matters for the product.",
        "- Bag of n-grams: no understanding of negation scope or long context; transformer heads come later.",
        "",
    ]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nlp.training [SHARED_DIR] [MODELS_DIR]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    from langnghe.config import REPO_ROOT

    shared = Path(args[0]) if args else REPO_ROOT.parent / "shared"
    models = Path(args[1]) if len(args) > 1 else REPO_ROOT / "models"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    scores = train(shared, models)
    print(json.dumps(scores["headline"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
