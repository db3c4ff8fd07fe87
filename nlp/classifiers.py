"""Civic relevance, sentiment, topic and department classifiers: linear models over hashed n-grams.

Run time needs numpy only. The artifacts in ``models/`` are plain arrays (``.npz``, never pickles)
plus JSON metadata, written by :mod:`nlp.training` (``langnghe train``).

Features (:class:`Featurizer`), computed for a whole batch at once with vectorised numpy:

* word unigrams and bigrams of the lower-cased text with tone marks, and again of the folded text
  (no tone marks), so text typed without diacritics still matches;
* character 2–5-grams of the folded text;
* each block weighted ``(1 + log tf) * idf`` and L2-normalised, the blocks then combined.

Every feature is hashed (``zlib.crc32`` for words, a polynomial hash for character n-grams, both
mixed with splitmix64) into ``2**n_bits`` buckets: no vocabulary to store or to keep in step.
"""

from __future__ import annotations

import json
import logging
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nlp.normalize_vi import is_unaccented, prepare_for_model
from nlp.text import fold

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
BACKENDS = ("linear", "hybrid", "encoder")
META_FILE = "classifiers.json"
ARRAYS_FILE = "classifiers.npz"
HEADS = ("civic", "sentiment", "topic", "department")

_U64 = np.uint64
_MASK32 = 0xFFFFFFFF
_WORD = re.compile(r"\w+", re.UNICODE)
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)

# One salt per feature kind, so that a word and a character n-gram never share a hash by design.
_SALT_WORD, _SALT_BIGRAM, _SALT_FWORD, _SALT_FBIGRAM, _SALT_CHAR = 1, 2, 3, 4, 16

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


class ModelsMissingError(FileNotFoundError):
    """The trained artifacts are not where they were looked for."""


def _mix(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64 finaliser (wrapping uint64 arithmetic), vectorised."""
    h = h ^ (h >> _U64(30))
    h = h * _U64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> _U64(27))
    h = h * _U64(0x94D049BB133111EB)
    return h ^ (h >> _U64(31))


@dataclass(frozen=True)
class FeatureBatch:
    """Sparse features of a batch: row (document), column (bucket) and value, sorted by row;
    `cues` holds the dense cue-phrase counts per kind (:mod:`nlp.lexicon`) when a head reads them."""

    rows: IntArray
    cols: IntArray
    vals: FloatArray
    n_docs: int
    cues: Mapping[str, FloatArray] | None = None


@dataclass(frozen=True)
class Featurizer:
    """Hashed word and character n-gram features, deterministic across processes and machines."""

    n_bits: int = 20
    char_min: int = 2
    char_max: int = 5
    word_weight: float = 1.0
    char_weight: float = 1.0
    max_chars: int = 4000

    @property
    def n_features(self) -> int:
        return 1 << self.n_bits

    def params(self) -> dict[str, Any]:
        return {"n_bits": self.n_bits, "char_min": self.char_min, "char_max": self.char_max,
                "word_weight": self.word_weight, "char_weight": self.char_weight,
                "max_chars": self.max_chars}

    def _bucket(self, h: npt.NDArray[np.uint64], salt: int) -> IntArray:
        mixed = _mix(h ^ _U64(salt * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF))
        return (mixed >> _U64(64 - self.n_bits)).astype(np.int64)

    def _word_hashes(self, texts: Sequence[str], salt_uni: int, salt_bi: int) -> tuple[IntArray, IntArray]:
        """Unigram and bigram buckets of each text's words; returns (doc index, bucket)."""
        docs: list[IntArray] = []
        cols: list[IntArray] = []
        for i, text in enumerate(texts):
            tokens = _WORD.findall(text)
            if not tokens:
                continue
            h = np.fromiter((zlib.crc32(t.encode("utf-8")) for t in tokens), dtype=np.uint64,
                            count=len(tokens))
            uni = self._bucket(h, salt_uni)
            bi = self._bucket((h[:-1] << _U64(32)) | h[1:], salt_bi) if len(tokens) > 1 else uni[:0]
            both = np.concatenate([uni, bi])
            cols.append(both)
            docs.append(np.full(len(both), i, dtype=np.int64))
        if not cols:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(docs), np.concatenate(cols)

    def _char_hashes(self, folded: Sequence[str]) -> tuple[IntArray, IntArray]:
        """Character n-gram buckets over the whole batch at once (n-grams never cross documents)."""
        pieces = [" " + _NON_WORD.sub(" ", t).strip() + " " for t in folded]
        joined = "\x00".join(pieces)
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        lengths = np.array([len(p) for p in pieces], dtype=np.int64)
        # document of each code point; the separators get -1 so that no n-gram spans them
        doc_of = np.repeat(np.arange(len(pieces), dtype=np.int64), lengths + 1)[: len(codes)]
        doc_of[np.cumsum(lengths + 1)[:-1] - 1] = -1
        docs: list[IntArray] = []
        cols: list[IntArray] = []
        total = len(codes)
        h = codes.copy()
        for n in range(1, self.char_max + 1):
            if n > 1:
                h = h[:-1] * _U64(1_000_003) + codes[n - 1:]
            if n < self.char_min:
                continue
            size = total - n + 1
            if size <= 0:
                break
            start_doc = doc_of[:size]
            valid = (start_doc == doc_of[n - 1: n - 1 + size]) & (start_doc >= 0)
            cols.append(self._bucket(h[valid], _SALT_CHAR + n))
            docs.append(start_doc[valid])
        if not cols:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(docs), np.concatenate(cols)

    @staticmethod
    def _weigh(docs: IntArray, cols: IntArray, n_docs: int, n_features: int,
               idf: FloatArray | None, weight: float) -> tuple[IntArray, IntArray, FloatArray]:
        """Sublinear tf × idf, L2-normalised per document; returns sorted (row, col, value)."""
        if len(cols) == 0:
            return docs, cols, np.zeros(0, np.float32)
        keys, counts = np.unique(docs * n_features + cols, return_counts=True)
        rows, cols = keys // n_features, keys % n_features
        vals = (1.0 + np.log(counts)).astype(np.float32)
        if idf is not None:
            vals *= idf[cols]
        norms = np.sqrt(np.bincount(rows, weights=vals.astype(np.float64) ** 2, minlength=n_docs))
        vals = vals / norms[rows].astype(np.float32) * np.float32(weight)
        return rows, cols, vals.astype(np.float32)

    def transform(self, texts: Sequence[str], idf: FloatArray | None = None) -> FeatureBatch:
        """Features of already-normalised texts (see :func:`prepare`)."""
        texts = [t[: self.max_chars] for t in texts]
        lower = [t.lower() for t in texts]
        folded = [fold(t) for t in texts]
        d1, c1 = self._word_hashes(lower, _SALT_WORD, _SALT_BIGRAM)
        d2, c2 = self._word_hashes(folded, _SALT_FWORD, _SALT_FBIGRAM)
        d3, c3 = self._char_hashes(folded)
        n, nf = len(texts), self.n_features
        wr, wc, wv = self._weigh(np.concatenate([d1, d2]), np.concatenate([c1, c2]), n, nf, idf,
                                 self.word_weight)
        cr, cc, cv = self._weigh(d3, c3, n, nf, idf, self.char_weight)
        rows = np.concatenate([wr, cr])
        order = np.argsort(rows, kind="stable")
        scale = np.float32(1.0 / np.sqrt(self.word_weight**2 + self.char_weight**2))
        return FeatureBatch(rows=rows[order], cols=np.concatenate([wc, cc])[order],
                            vals=(np.concatenate([wv, cv])[order] * scale).astype(np.float32), n_docs=n)


def prepare(text: str, teencode: bool = False) -> str:
    """The model input of one text: normalised (NFC, one tone convention, tidy whitespace) and,
    with `teencode`, chat abbreviations expanded (see :mod:`nlp.normalize_vi`)."""
    return prepare_for_model(text or "", teencode=teencode)


def _softmax(z: npt.NDArray[np.float64], binary: bool) -> npt.NDArray[np.float64]:
    if binary:
        p1 = 1.0 / (1.0 + np.exp(-np.clip(z[:, 0], -500, 500)))
        return np.stack([1.0 - p1, p1], axis=1)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class DenseHead:
    """A linear classifier over sentence embeddings, fused with the n-gram head's scores:
    ``z = z_ngram + beta * z_dense`` (``hybrid``) or ``z_dense`` alone (``encoder``)."""

    weights: FloatArray  # (dim, n_columns)
    bias: FloatArray  # (n_columns,)
    beta: float

    def decision(self, emb: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        return emb.astype(np.float64) @ self.weights.astype(np.float64) + self.bias[None, :]


@dataclass
class LinearHead:
    """One linear classifier over the hashed features; weights stored for the used buckets only."""

    name: str
    classes: tuple[str, ...]
    rows: npt.NDArray[np.int32]  # bucket -> row of `weights`, -1 when the bucket has no weight
    weights: FloatArray  # (used buckets, n_classes) — one column for a binary head
    bias: FloatArray  # (n_classes,) — one value for a binary head
    cue_kind: str | None = None  # "topic"/"department": also reads those cue counts
    cue_weights: FloatArray | None = None  # (n cue classes, n_classes)

    @property
    def binary(self) -> bool:
        return self.weights.shape[1] == 1

    def decision(self, feats: FeatureBatch) -> npt.NDArray[np.float64]:
        """Raw scores, shape (n_docs, n_columns)."""
        r = self.rows[feats.cols]
        keep = r >= 0
        docs = feats.rows[keep]
        contrib = self.weights[r[keep]] * feats.vals[keep, None]
        out = np.zeros((feats.n_docs, self.weights.shape[1]), dtype=np.float64)
        if len(docs):
            # rows are sorted: sum each document's segment in one pass
            starts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
            out[docs[starts]] = np.add.reduceat(contrib, starts, axis=0)
        if self.cue_kind is not None and self.cue_weights is not None:
            if feats.cues is None or self.cue_kind not in feats.cues:
                raise ValueError(f"head {self.name!r} needs the {self.cue_kind!r} cue counts")
            out += feats.cues[self.cue_kind].astype(np.float64) @ self.cue_weights.astype(np.float64)
        return out + self.bias[None, :]

    def proba(self, feats: FeatureBatch) -> npt.NDArray[np.float64]:
        """Class probabilities, shape (n_docs, n_classes), columns in `classes` order."""
        return _softmax(self.decision(feats), self.binary)


@dataclass
class Prediction:
    """The labels of one text."""

    civic: bool
    civic_score: float
    sentiment: str
    sentiment_score: float
    topic: str
    department: str
    # probability of the named topic / department (0.0 when they are not_civic / none): low values
    # mark routings a person should check
    topic_score: float = 0.0
    department_score: float = 0.0


class TextClassifiers:
    """The four heads (civic, sentiment, topic, department) with the consistency rules applied.

    Backends: ``linear`` (hashed n-gram heads only: numpy, thousands of texts a second),
    ``hybrid`` (n-gram scores plus the sentence-encoder heads, ``z = z_ngram + beta·z_dense``) and
    ``encoder`` (encoder heads alone). Texts written without tone marks get their tone marks
    restored first for the encoder backends (`model_texts`, :mod:`nlp.accents`); a text that is
    still unaccented (no accent model) gets the n-gram scores alone (the encoder reads such text
    poorly: see the model card). ``hybrid``/``encoder`` need the
    artifacts' encoder heads and
    the encoder they were trained with (:mod:`nlp.encoder`); the embeddings of the last batch are
    kept in :attr:`last_embeddings` so that the issue clustering reuses them.
    """

    def __init__(self, featurizer: Featurizer, idf: FloatArray, heads: dict[str, LinearHead],
                 civic_threshold: float = 0.5, meta: dict[str, Any] | None = None,
                 dense: dict[str, DenseHead] | None = None, backend: str = "linear",
                 teencode: bool = False, extra: dict[str, LinearHead] | None = None) -> None:
        missing = [h for h in HEADS if h not in heads]
        if missing:
            raise ValueError(f"missing classifier heads: {missing}")
        if backend not in BACKENDS:
            raise ValueError(f"unknown classifier backend {backend!r}; use one of {BACKENDS}")
        if backend != "linear" and not (dense and all(h in dense for h in HEADS)):
            raise ValueError(f"backend {backend!r} needs encoder heads; these artifacts have none "
                             "(train them with `langnghe model train`)")
        self.featurizer = featurizer
        self.idf = idf
        self.heads = heads
        self.dense = dense or {}
        # extra n-gram heads: the text-domain gate and the per-domain sentiment experts
        self.extra = extra or {}
        self.sentiment_experts: dict[str, str] = dict((meta or {}).get("sentiment_experts") or {})
        missing_experts = [h for h in self.sentiment_experts.values() if h and h not in self.extra]
        if self.sentiment_experts and ("domain" not in self.extra or missing_experts):
            raise ValueError(f"sentiment experts need the domain head and {missing_experts}")
        # an expert that only speaks when the gate is this sure of its domain (below, its share of
        # the gate goes to the other domains): the social-comments expert
        self.expert_min_gate: dict[str, float] = {
            str(k): float(v) for k, v in ((meta or {}).get("expert_min_gate") or {}).items()}
        self.backend = backend
        self.teencode = teencode
        self.civic_threshold = civic_threshold
        # topic and department name the likeliest civic concern from this civic score up (a
        # borderline item still gets routed); below it they are not_civic / none
        self.topic_threshold = float((meta or {}).get("topic_threshold", civic_threshold))
        self.meta = meta or {}
        self.last_embeddings: npt.NDArray[np.float32] | None = None
        # texts written without tone marks get their tone marks back before an encoder backend
        # reads them (nlp.accents); None: only for the encoder backends, as the n-gram heads learnt
        # folded text themselves (restoring cost the linear backend 0.025 civic sentiment on dev)
        self.restore_accents: bool | None = None
        self.models_dir: Path | None = None  # set by `load`: where an "adapted" encoder's adapter lies
        self._encoder: Any = None
        topic = heads["topic"].classes
        dept = heads["department"].classes
        self._civic_topics = np.array([c != "not_civic" for c in topic])
        self._civic_depts = np.array([c != "none" for c in dept])
        if not self._civic_topics.any() or not self._civic_depts.any():
            raise ValueError("topic/department heads have no civic label")

    # -- persistence -------------------------------------------------------------------------
    @classmethod
    def load(cls, models_dir: Path, backend: str | None = None) -> TextClassifiers:
        """Load the artifacts written by ``langnghe train`` (numpy only, no pickles).

        `backend` defaults to ``$LANGNGHE_CLASSIFIER_BACKEND``, else the artifacts' recorded default.
        """
        models_dir = Path(models_dir)
        meta_path, arrays_path = models_dir / META_FILE, models_dir / ARRAYS_FILE
        if not meta_path.is_file() or not arrays_path.is_file():
            raise ModelsMissingError(
                f"Không tìm thấy mô hình phân loại trong {models_dir} (cần {META_FILE} và {ARRAYS_FILE}); "
                "hãy chạy `langnghe train`. / Classifier artifacts missing: run `langnghe train`.")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format_version") not in READABLE_VERSIONS:
            raise ValueError(f"unsupported classifier format {meta.get('format_version')!r} in {meta_path}; "
                             "run `langnghe train` again")
        featurizer = Featurizer(**meta["featurizer"])
        dense: dict[str, DenseHead] = {}
        with np.load(arrays_path, allow_pickle=False) as arrays:
            idf = arrays["idf"].astype(np.float32)
            heads: dict[str, LinearHead] = {}

            def linear_head(name: str, key: str, info: dict[str, Any]) -> LinearHead:
                used = arrays[f"{key}.used"].astype(np.int64)
                rows = np.full(featurizer.n_features, -1, dtype=np.int32)
                rows[used] = np.arange(len(used), dtype=np.int32)
                cue_kind = info.get("cue_kind")
                return LinearHead(
                    name=name, classes=tuple(info["classes"]), rows=rows,
                    weights=arrays[f"{key}.weights"].astype(np.float32),
                    bias=arrays[f"{key}.bias"].astype(np.float32), cue_kind=cue_kind,
                    cue_weights=arrays[f"{key}.cue_weights"].astype(np.float32) if cue_kind else None)

            for name in HEADS:
                heads[name] = linear_head(name, name, meta["heads"][name])
                if f"dense.{name}.weights" in arrays.files:
                    dense[name] = DenseHead(
                        weights=arrays[f"dense.{name}.weights"].astype(np.float32),
                        bias=arrays[f"dense.{name}.bias"].astype(np.float32),
                        beta=float(meta["heads"][name].get("beta", 1.0)))
            extra = {name: linear_head(name, f"extra.{name}", info)
                     for name, info in (meta.get("extra_heads") or {}).items()}
            for name, info in (meta.get("extra_heads") or {}).items():
                if f"dense.{name}.weights" in arrays.files:
                    dense[name] = DenseHead(
                        weights=arrays[f"dense.{name}.weights"].astype(np.float32),
                        bias=arrays[f"dense.{name}.bias"].astype(np.float32),
                        beta=float(info.get("beta", 1.0)))
        chosen = backend or os.environ.get("LANGNGHE_CLASSIFIER_BACKEND") or meta.get("default_backend",
                                                                                      "linear")
        models = cls(featurizer, idf, heads, civic_threshold=float(meta.get("civic_threshold", 0.5)),
                     meta=meta, dense=dense, backend=chosen,
                     teencode=bool(meta.get("preprocess", {}).get("teencode", False)), extra=extra)
        models.models_dir = models_dir
        return models

    @staticmethod
    def save_arrays(models_dir: Path, featurizer: Featurizer, idf: npt.NDArray[np.floating[Any]],
                    heads: Mapping[str, tuple[Sequence[str], npt.NDArray[Any], npt.NDArray[Any]]],
                    meta: dict[str, Any], weight_dtype: str = "float16",
                    dense: Mapping[str, tuple[npt.NDArray[Any], npt.NDArray[Any], float]] | None = None,
                    extra: Mapping[str, tuple[Sequence[str], npt.NDArray[Any], npt.NDArray[Any]]] | None = None,
                    cues: Mapping[str, tuple[str, npt.NDArray[Any]]] | None = None) -> None:
        """Write artifacts: `heads` maps a name to (classes, dense weights (n_features, C), bias);
        `dense` (optional) maps a name to the encoder head's (weights (dim, C), bias, beta);
        `extra` holds further n-gram heads (the domain gate, sentiment experts) in the same form;
        `cues` maps a head name to (cue kind, weights (n cue classes, C)) for heads that read them."""
        models_dir.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"idf": np.asarray(idf, dtype=np.float16)}
        meta = dict(meta, format_version=FORMAT_VERSION, featurizer=featurizer.params(),
                    heads={})
        def put(key: str, classes: Sequence[str], weights: npt.NDArray[Any], bias: npt.NDArray[Any]
                ) -> dict[str, Any]:
            used = np.flatnonzero(np.any(weights != 0, axis=1)).astype(np.int32)
            arrays[f"{key}.used"] = used
            arrays[f"{key}.weights"] = weights[used].astype(weight_dtype)
            arrays[f"{key}.bias"] = np.asarray(bias, dtype=np.float32)
            return {"classes": list(classes), "used_buckets": int(len(used))}

        for name, (classes, weights, bias) in heads.items():
            meta["heads"][name] = put(name, classes, weights, bias)
            if cues and name in cues:
                kind, cue_w = cues[name]
                arrays[f"{name}.cue_weights"] = np.asarray(cue_w, dtype=np.float32)
                meta["heads"][name]["cue_kind"] = kind
            if dense and name in dense:
                w, b, beta = dense[name]
                arrays[f"dense.{name}.weights"] = np.asarray(w, dtype=np.float32)
                arrays[f"dense.{name}.bias"] = np.asarray(b, dtype=np.float32)
                meta["heads"][name]["beta"] = float(beta)
        if extra:
            meta["extra_heads"] = {name: put(f"extra.{name}", classes, weights, bias)
                                   for name, (classes, weights, bias) in extra.items()}
            for name in extra:
                if dense and name in dense:
                    w, b, beta = dense[name]
                    arrays[f"dense.{name}.weights"] = np.asarray(w, dtype=np.float32)
                    arrays[f"dense.{name}.bias"] = np.asarray(b, dtype=np.float32)
                    meta["extra_heads"][name]["beta"] = float(beta)
        np.savez_compressed(models_dir / ARRAYS_FILE, **arrays)  # type: ignore[arg-type]
        (models_dir / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n",
                                            encoding="utf-8")

    # -- encoder -----------------------------------------------------------------------------
    @property
    def needs_embeddings(self) -> bool:
        return self.backend != "linear"

    @property
    def encoder_spec(self) -> str | None:
        """The spec of the heads' encoder (`nlp.encoder.build_encoder`); an ``adapted`` encoder is the
        one of the adapter file beside these artifacts."""
        spec = (self.meta.get("encoder") or {}).get("spec")
        if spec == "adapted" and self.models_dir is not None:
            from nlp.adapter import ADAPTER_FILE

            return f"adapted:{(Path(self.models_dir) / ADAPTER_FILE).resolve()}"
        return str(spec) if spec else None

    @property
    def encoder(self) -> Any:
        """The encoder the dense heads were trained with (loaded on first use, shared per process)."""
        if self._encoder is None:
            from nlp.encoder import get_encoder

            info = self.meta.get("encoder") or {}
            enc = get_encoder(self.encoder_spec, info.get("max_tokens"))
            if info.get("name") and enc.name != info["name"]:
                raise ValueError(f"the encoder heads were trained on {info['name']!r} but the configured "
                                 f"encoder is {enc.name!r}: retrain or use the linear backend")
            self._encoder = enc
        return self._encoder

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> npt.NDArray[np.float32]:
        """Sentence embeddings of `texts` with the heads' encoder (L2-normalised float32)."""
        return np.asarray(self.encoder.encode(list(texts), batch_size=batch_size), dtype=np.float32)

    # -- prediction --------------------------------------------------------------------------
    def features(self, texts: Sequence[str]) -> FeatureBatch:
        batch = self.featurizer.transform([prepare(t, self.teencode) for t in texts], self.idf)
        kinds = {h.cue_kind for h in (*self.heads.values(), *self.extra.values()) if h.cue_kind}
        if not kinds:
            return batch
        from nlp.lexicon import cue_counts_many

        return replace(batch, cues=cue_counts_many(texts, sorted(kinds)))

    def sentiment_proba(self, feats: FeatureBatch | None, z_general: npt.NDArray[np.float64],
                        emb: npt.NDArray[np.float32] | None = None,
                        ngram_only: npt.NDArray[np.bool_] | None = None) -> npt.NDArray[np.float64]:
        """Sentiment probabilities: without experts, the softmax of the general head; with them,
        the mixture ``sum_d p(domain d | text) * p_d(sentiment | text)``, where the domain gate
        tells civic news from students' feedback, product reviews and social comments (each domain
        has its own convention of what is neutral) and `z_general` serves the general domain. An
        expert with a minimum gate (``expert_min_gate``) takes part only from that gate value up."""
        general = _softmax(z_general, False)
        if not self.sentiment_experts:
            return general
        if feats is None:
            raise ValueError("the sentiment experts need the n-gram features")
        gate_head = self.extra["domain"]
        gate = _softmax(gate_head.decision(feats), False)
        for col, domain in enumerate(gate_head.classes):
            floor = self.expert_min_gate.get(domain)
            if floor is not None:
                gate[gate[:, col] < floor, col] = 0.0
        gate /= gate.sum(axis=1, keepdims=True)
        out = np.zeros_like(general)
        for col, domain in enumerate(gate_head.classes):
            expert = self.sentiment_experts.get(domain, "")
            p = general if not expert else _softmax(self.head_scores(expert, feats, emb, ngram_only), False)
            out += gate[:, [col]] * p
        return out

    def head_scores(self, name: str, feats: FeatureBatch | None,
                    emb: npt.NDArray[np.float32] | None,
                    ngram_only: npt.NDArray[np.bool_] | None = None) -> npt.NDArray[np.float64]:
        """Raw scores of one head under the current backend; rows in `ngram_only` (texts written
        without tone marks, where the encoder is unreliable) get the n-gram scores alone."""
        ngram_head = self.heads[name] if name in self.heads else self.extra[name]
        dense = self.dense.get(name)
        if self.backend == "linear" or emb is None or dense is None:
            assert feats is not None
            return ngram_head.decision(feats)
        z_dense = dense.decision(emb)
        if self.backend == "encoder" and (ngram_only is None or not ngram_only.any()):
            return z_dense
        assert feats is not None
        z_ngram = ngram_head.decision(feats)
        if self.backend == "encoder":
            return np.where(ngram_only[:, None], z_ngram, z_dense)  # type: ignore[index]
        if ngram_only is not None:
            z_dense = np.where(ngram_only[:, None], 0.0, z_dense)
        return z_ngram + dense.beta * z_dense

    def model_texts(self, texts: Sequence[str]) -> list[str]:
        """What the heads read: each text, with its tone marks restored when it is written without
        them (`nlp.accents`) — for the encoder backends unless ``restore_accents`` says otherwise."""
        restore = self.backend != "linear" if self.restore_accents is None else self.restore_accents
        if not restore:
            return list(texts)
        from nlp.accents import restore_if_unaccented

        return [restore_if_unaccented(t) for t in texts]

    def head_proba(self, name: str, texts: Sequence[str],
                   embeddings: npt.NDArray[np.float32] | None = None) -> npt.NDArray[np.float64]:
        """Probabilities of one head for a list of texts (columns in that head's class order)."""
        texts = self.model_texts(texts)
        emb = embeddings if embeddings is not None or not self.needs_embeddings else self.embed(texts)
        feats, ngram_only = self._ngram_inputs(texts)
        z = self.head_scores(name, feats, emb, ngram_only)
        if name == "sentiment":
            return self.sentiment_proba(feats, z, emb, ngram_only)
        return _softmax(z, self.heads[name].binary)

    def _ngram_inputs(self, texts: Sequence[str]) -> tuple[FeatureBatch | None, npt.NDArray[np.bool_] | None]:
        """The n-gram features (unless the backend never needs them) and the unaccented-text mask."""
        if self.backend == "linear":
            return self.features(texts), None
        ngram_only = np.array([is_unaccented(t) for t in texts], dtype=bool)
        if self.backend == "encoder" and not ngram_only.any() and not self.sentiment_experts:
            return None, ngram_only
        return self.features(texts), ngram_only

    def predict(self, texts: Sequence[str], batch_size: int = 256,
                embeddings: npt.NDArray[np.float32] | None = None) -> list[Prediction]:
        """Labels for each text, computed in vectorised batches of `batch_size`.

        `embeddings` (rows aligned with `texts`) skips the encoder; they must be those of
        `model_texts(texts)` (the pipeline's `mention_text` restores tone marks the same way). With an
        encoder backend the embeddings computed here are left in :attr:`last_embeddings`."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if embeddings is not None and len(embeddings) != len(texts):
            raise ValueError("embeddings must have one row per text")
        texts = self.model_texts(texts)
        out: list[Prediction] = []
        kept: list[npt.NDArray[np.float32]] = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start: start + batch_size]
            emb = None
            if self.needs_embeddings:
                emb = embeddings[start: start + batch_size] if embeddings is not None else self.embed(chunk)
                kept.append(emb)
            out.extend(self._predict_batch(chunk, emb))
        if self.needs_embeddings:
            self.last_embeddings = (np.vstack(kept) if kept else
                                    np.zeros((0, int(self.meta.get("encoder", {}).get("dim", 0))),
                                             dtype=np.float32))
        return out

    def _predict_batch(self, texts: Sequence[str], emb: npt.NDArray[np.float32] | None
                       ) -> list[Prediction]:
        feats, ngram_only = self._ngram_inputs(texts)
        proba = {name: _softmax(self.head_scores(name, feats, emb, ngram_only), self.heads[name].binary)
                 for name in HEADS if name != "sentiment"}
        proba["sentiment"] = self.sentiment_proba(feats, self.head_scores("sentiment", feats, emb, ngram_only),
                                                  emb, ngram_only)
        civic_p = proba["civic"][:, 1]
        sent_head = self.heads["sentiment"]
        sent_p = proba["sentiment"]
        topic_head, dept_head = self.heads["topic"], self.heads["department"]
        topic_p = np.where(self._civic_topics[None, :], proba["topic"], -1.0)
        dept_p = np.where(self._civic_depts[None, :], proba["department"], -1.0)
        sent_i = sent_p.argmax(axis=1)
        topic_i = topic_p.argmax(axis=1)
        dept_i = dept_p.argmax(axis=1)
        topical = civic_p >= self.topic_threshold
        preds = []
        for k in range(len(texts)):
            civic = bool(civic_p[k] >= self.civic_threshold)
            preds.append(Prediction(
                civic=civic,
                civic_score=round(float(civic_p[k]), 4),
                sentiment=sent_head.classes[sent_i[k]],
                sentiment_score=round(float(sent_p[k, sent_i[k]]), 4),
                topic=topic_head.classes[topic_i[k]] if topical[k] else "not_civic",
                department=dept_head.classes[dept_i[k]] if topical[k] else "none",
                topic_score=round(float(topic_p[k, topic_i[k]]), 4) if topical[k] else 0.0,
                department_score=round(float(dept_p[k, dept_i[k]]), 4) if topical[k] else 0.0,
            ))
        return preds
