"""Issue discovery on embeddings: the BERTopic path (optional extra) and the fallback path.

Both paths end in `nlp.issues.group_issues`, which gives issues their identity (stable ids,
existing issues matched by dense centroid and keyword overlap, sticky members) and buckets by
topic and place. What discovery adds:

* **Vectors.** `get_embedder()` returns the shared encoder (``nlp.encoder.get_encoder()``,
  multilingual-e5-small) when it loads, else `LsaEmbedder`: TF-IDF over accent-folded syllable
  uni+bigrams (Vietnamese stopwords dropped) → TruncatedSVD, L2-normalised, fitted on the
  bundled demo corpus (real VNTC news) — no optional dependency, no download. Vectors are cached
  per mention id + text hash (`nlp.embedding_cache`), so a day's re-run does not re-encode.
* **Similarity.** ``(1 − w)·cos_tfidf + w·cos_dense`` (w = `DiscoveryConfig.dense_weight`).
* **BERTopic (backend "bertopic").** BERTopic with injected sub-models (UMAP, HDBSCAN, a
  Vietnamese CountVectorizer, the same embeddings precomputed), fitted per batch with a fixed
  seed; its outliers reduced by embedding similarity; its clusters then act as a prior in the
  grouping (same BERTopic cluster: similarity + `partition_bonus`). ``language="english"`` is never
  used: the vectoriser keeps Vietnamese letters and drops Vietnamese stopwords.
* **Outliers.** A mention left alone joins the most similar issue with several members when the
  cosine reaches `reassign_threshold`.
* **Issue life.** `maintain_issues` closes issues not seen for `stale_days`, merges near-duplicate
  open issues of one bucket (dense centroid cosine ≥ `merge_threshold` and a shared key phrase)
  and splits an issue whose recent members form two distant groups; every event is recorded once
  (`IssueStateDB.events`) and the status kept in ``nlp_issue_state`` until `Issue` has fields.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer

from langnghe.records import Issue, Mention
from nlp.embedding_cache import (
    Embedder,
    IssueState,
    IssueStateDB,
    cached_embeddings,
    embedder_name,
    mention_text,
)
from nlp.issues import (
    DEFAULT_THRESHOLD,
    IssueAssignment,
    _district_key,
    eligible,
    features,
    group_issues,
    issue_from_members,
    issue_id_for,
    main_area,
    make_vectorizer,
    phrases,
)
from nlp.text import fold

log = logging.getLogger(__name__)

DEMO_CORPUS = Path(__file__).resolve().parents[1] / "langnghe" / "data" / "demo_corpus.jsonl.gz"
VI_TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"  # letters only (Vietnamese included), 2+ characters


# (threshold, reassign threshold) per kind of vectors, measured on the replayed stream
# (docs/ranking.md): e5 cosines run higher than LSA ones, so its threshold is higher
DEFAULT_LEVELS: dict[str, tuple[float, float]] = {
    "words": (DEFAULT_THRESHOLD, 0.2), "lsa": (0.4, 0.36), "encoder": (0.5, 0.46),
}


@dataclass
class DiscoveryConfig:
    """Settings of discovery; the defaults are the ones evaluated in docs/ranking.md."""

    backend: str = "auto"  # auto | bertopic | fallback | lexical
    # None: the default of the vectors in use (DEFAULT_LEVELS); reassign 0 turns the pass off
    threshold: float | None = None
    dense_weight: float = 0.35
    reassign_threshold: float | None = None
    partition_bonus: float = 0.08
    min_cluster_size: int = 3
    seed: int = 42
    stale_days: float = 14.0
    merge_threshold: float = 0.9
    split_threshold: float = 0.35
    split_min_members: int = 3


# --------------------------------------------------------------------------- embedders


def _lsa_analyzer(doc: str) -> list[str]:
    return features(doc)


class LsaEmbedder:
    """TF-IDF (folded syllable uni+bigrams) → TruncatedSVD, L2-normalised rows (float32)."""

    def __init__(self, n_components: int = 256, seed: int = 42) -> None:
        self.n_components = n_components
        self.seed = seed
        self.name = f"lsa-{n_components}-unfitted"
        self._vec: Any = None
        self._svd: TruncatedSVD | None = None

    def fit(self, texts: Sequence[str]) -> LsaEmbedder:
        texts = [t for t in texts if t and t.strip()]
        if len(texts) < 3:
            raise ValueError("LSA needs at least 3 texts to fit")
        vec = make_vectorizer()
        X = vec.fit_transform([_lsa_analyzer(t) for t in texts])
        k = max(2, min(self.n_components, X.shape[0] - 1, X.shape[1] - 1))
        svd = TruncatedSVD(n_components=k, random_state=self.seed, algorithm="randomized", n_iter=7)
        svd.fit(X)
        self._vec, self._svd = vec, svd
        digest = hashlib.sha1("\x1f".join(texts).encode("utf-8")).hexdigest()[:10]
        self.name = f"lsa-{k}-{digest}-s{self.seed}"
        return self

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if self._vec is None or self._svd is None:
            raise RuntimeError("LsaEmbedder is not fitted")
        X = self._vec.transform([_lsa_analyzer(t) for t in texts])
        Z = np.asarray(self._svd.transform(X), dtype=np.float32)
        norms = np.linalg.norm(Z, axis=1, keepdims=True)
        return Z / np.where(norms > 0, norms, 1.0)


def bundled_corpus_texts(path: Path = DEMO_CORPUS) -> list[str]:
    """Texts of the bundled demo corpus (real VNTC news, MIT), the LSA fallback's fitting set."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [f"{r.get('title', '')}\n{str(r.get('text', ''))[:1500]}" for r in rows]


@lru_cache(maxsize=1)
def fallback_embedder(seed: int = 42) -> LsaEmbedder:
    """The LSA embedder fitted on the bundled corpus (deterministic; cached per process)."""
    return LsaEmbedder(seed=seed).fit(bundled_corpus_texts())


def get_embedder(*, prefer_encoder: bool = True) -> Embedder:
    """The shared encoder when it loads, else the LSA fallback (logged)."""
    if prefer_encoder:
        try:
            from nlp import encoder as _encoder

            enc: Embedder = _encoder.get_encoder()
            return enc
        except Exception as exc:  # noqa: BLE001 - any failure means "use the fallback"
            log.info("shared encoder unavailable (%s): using the LSA fallback embedder", exc)
    return fallback_embedder()


# --------------------------------------------------------------------------- BERTopic


def _vi_terms(doc: str) -> list[str]:
    """Lower-case Vietnamese uni+bigrams without stopwords, never across punctuation."""
    return [surface.lower() for _, surface in phrases(doc)]


def vietnamese_vectorizer(*, min_df: int = 1, analyzer: str = "phrases") -> CountVectorizer:
    """The CountVectorizer for BERTopic's topic words.

    ``analyzer="phrases"`` (default): `nlp.issues.phrases` (letters of every script kept,
    single- and multi-syllable stopwords dropped, bigrams within a clause). ``"words"``: sklearn's
    word analyzer with a Vietnamese-letter token pattern, the stopword list and (1, 2)-grams.
    """
    if analyzer == "phrases":
        return CountVectorizer(analyzer=_vi_terms, min_df=min_df)
    from nlp.issues import stopwords

    single = sorted(w for w in stopwords() if " " not in w)
    return CountVectorizer(token_pattern=VI_TOKEN_PATTERN, stop_words=single, ngram_range=(1, 2),
                           lowercase=True, min_df=min_df)


def bertopic_available() -> bool:
    try:
        import bertopic  # noqa: F401
        import hdbscan  # noqa: F401
        import umap  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


def bertopic_partition(
    docs: Sequence[str],
    embeddings: np.ndarray,
    *,
    seed: int = 42,
    min_cluster_size: int = 3,
    umap_model: Any = None,
    hdbscan_model: Any = None,
    vectorizer_model: Any = None,
    outlier_threshold: float = 0.5,
) -> tuple[np.ndarray, dict[int, list[str]]]:
    """BERTopic cluster labels (−1: outlier) of `docs` and each cluster's top words.

    Sub-models are injectable; the defaults: UMAP (cosine, 5 dims, seeded), HDBSCAN
    (`min_cluster_size`), the Vietnamese vectoriser. Outliers are reduced by embedding
    similarity (``reduce_outliers(strategy="embeddings")``) above `outlier_threshold`.
    """
    from bertopic import BERTopic
    from hdbscan import HDBSCAN
    from umap import UMAP

    n = len(docs)
    if n < max(2 * min_cluster_size, 6):
        return np.full(n, -1, dtype=np.int64), {}
    umap_model = umap_model or UMAP(n_neighbors=min(15, n - 1), n_components=5, min_dist=0.0,
                                    metric="cosine", random_state=seed, init="random")
    hdbscan_model = hdbscan_model or HDBSCAN(min_cluster_size=min_cluster_size, min_samples=1,
                                             metric="euclidean", cluster_selection_method="leaf",
                                             prediction_data=True)
    model = BERTopic(embedding_model=None, umap_model=umap_model, hdbscan_model=hdbscan_model,
                     vectorizer_model=vectorizer_model or vietnamese_vectorizer(),
                     language="multilingual", calculate_probabilities=False, verbose=False)
    topics, _ = model.fit_transform(list(docs), embeddings=np.asarray(embeddings, dtype=np.float32))
    labels = np.asarray(topics, dtype=np.int64)
    if (labels == -1).any() and (labels >= 0).any():
        try:
            reduced = model.reduce_outliers(list(docs), list(labels), strategy="embeddings",
                                            embeddings=np.asarray(embeddings), threshold=outlier_threshold)
            labels = np.asarray(reduced, dtype=np.int64)
        except Exception as exc:  # noqa: BLE001 - keep the unreduced labels
            log.warning("BERTopic outlier reduction failed: %s", exc)
    words: dict[int, list[str]] = {}
    for t in sorted(set(labels.tolist()) - {-1}):
        words[t] = [w for w, _ in (model.get_topic(t) or [])][:10]
    return labels, words


# --------------------------------------------------------------------------- discovery


@dataclass
class DiscoveryResult:
    assignment: IssueAssignment
    backend: str
    embedder: str
    outliers: int = 0  # eligible mentions alone in their issue after the outlier pass
    partition_words: dict[int, list[str]] = field(default_factory=dict)


def _blend(old: IssueState | None, new: np.ndarray, n_new: int, n_total_old_members: int) -> np.ndarray:
    if old is None or old.centroid is None or len(old.centroid) != len(new):
        return new
    keep = max(0, n_total_old_members - n_new)
    v = old.centroid * keep + new * n_new
    norm = float(np.linalg.norm(v))
    return (v / norm).astype(np.float32) if norm > 0 else new


def discover(
    mentions: Sequence[Mention],
    existing: Sequence[Issue] = (),
    *,
    config: DiscoveryConfig | None = None,
    embedder: Embedder | None = None,
    embeddings: Mapping[str, np.ndarray] | None = None,
    db: IssueStateDB | None = None,
    now: datetime | None = None,
) -> DiscoveryResult:
    """Group `mentions` into issues (see the module docstring); updates the state in `db`.

    `embeddings` (mention id → vector) skips encoding; otherwise `embedder` (default
    `get_embedder()`) encodes what the cache in `db` lacks. Backend "lexical" uses no vectors.
    """
    cfg = config or DiscoveryConfig()
    items = sorted({m.id: m for m in mentions if eligible(m)}.values(), key=lambda m: (m.published_at, m.id))
    backend = cfg.backend
    if backend == "auto":  # BERTopic is opt-in: on the replayed stream it was slower and less pure
        backend = "fallback"
    if backend not in ("bertopic", "fallback", "lexical"):
        raise ValueError(f"unknown discovery backend {cfg.backend!r}")
    states = db.get_states() if db is not None else {}
    # closed or merged issues absorb nothing new, unless a mention still carries their id
    carried = {m.issue_id for m in items if m.issue_id}
    live = [i for i in existing
            if states.get(i.id) is None or states[i.id].status == "open" or i.id in carried]
    if not items:
        return DiscoveryResult(IssueAssignment(), backend, "-")
    vecs: dict[str, np.ndarray] | None = None
    name = "-"
    if backend != "lexical":
        if embeddings is not None:
            vecs = {m.id: np.asarray(embeddings[m.id], dtype=np.float32) for m in items}
            name = "precomputed"
        else:
            emb = embedder or get_embedder()
            name = embedder_name(emb)
            E = cached_embeddings(emb, items, db)
            vecs = {m.id: E[k] for k, m in enumerate(items)}
    partition: dict[str, int] | None = None
    words: dict[int, list[str]] = {}
    if backend == "bertopic" and vecs is not None:
        E = np.vstack([vecs[m.id] for m in items])
        labels, words = bertopic_partition([mention_text(m) for m in items], E, seed=cfg.seed,
                                           min_cluster_size=cfg.min_cluster_size)
        partition = {m.id: int(labels[k]) for k, m in enumerate(items)}
    issue_vectors = {iid: s.centroid for iid, s in states.items()
                     if s.centroid is not None and (s.model in (None, name) or name == "precomputed")}
    kind = "words" if not vecs else ("lsa" if name.startswith("lsa-") else "encoder")
    threshold = cfg.threshold or DEFAULT_LEVELS[kind][0]
    reassign = DEFAULT_LEVELS[kind][1] if cfg.reassign_threshold is None else cfg.reassign_threshold
    res = group_issues(items, live, threshold=threshold, embeddings=vecs,
                       issue_vectors=issue_vectors, dense_weight=cfg.dense_weight if vecs else 0.0,
                       partition=partition, partition_bonus=cfg.partition_bonus,
                       reassign_threshold=reassign)
    sizes = res.members
    outliers = sum(1 for iid in res.assignments.values() if sizes.get(iid, 0) == 1)
    if db is not None:
        _record_state(db, res, states, existing, name, now)
    return DiscoveryResult(res, backend, name, outliers, words)


def _record_state(db: IssueStateDB, res: IssueAssignment, states: dict[str, IssueState],
                  existing: Sequence[Issue], model: str, now: datetime | None) -> None:
    by_id = {i.id: i for i in existing}
    updated: list[IssueState] = []
    at = now or datetime.now().astimezone()
    counts = {i.id: i.mention_count for i in res.issues}
    for iid, n_new in sorted(res.members.items()):
        old = states.get(iid)
        st = IssueState(issue_id=iid) if old is None else old
        if iid in res.centroids:
            prev_members = by_id[iid].mention_count if iid in by_id else 0
            st.centroid = _blend(old, res.centroids[iid], n_new, prev_members)
            st.model = model
        st.n = counts.get(iid, by_id[iid].mention_count if iid in by_id else n_new)
        if st.status == "closed":
            st.status = "open"
            st.closed_at = None
            st.history.append({"event": "reopened", "at": at.isoformat()})
            db.add_event("reopen", iid, at.isoformat(), at=at)
        if old is None:
            st.history.append({"event": "opened", "at": at.isoformat()})
        updated.append(st)
    db.put_states(updated)


# --------------------------------------------------------------------------- issue life


@dataclass
class MaintenanceReport:
    closed: list[str] = field(default_factory=list)
    merged: list[tuple[str, str]] = field(default_factory=list)  # (absorbed, into)
    split: list[tuple[str, str]] = field(default_factory=list)  # (original, new)
    moved_mentions: int = 0


def _bucket(issue: Issue) -> tuple[str, str]:
    areas = list(issue.area_ids) or ["hcmc"]
    return issue.topic, _district_key(areas[0], areas)


def _shares_keyword(a: Issue, b: Issue) -> bool:
    fa = {fold(k) for k in a.keywords}
    fb = {fold(k) for k in b.keywords}
    if fa & fb:
        return True
    wa = {w for k in fa for w in k.split() if len(w) > 2}
    wb = {w for k in fb for w in k.split() if len(w) > 2}
    return len(wa & wb) >= 2


def _two_means(V: np.ndarray) -> np.ndarray:
    """Deterministic 2-means on unit rows: seeds are the row farthest from the mean and the row
    farthest from that one; 10 iterations."""
    mean = V.mean(axis=0)
    a = int(np.argmin(V @ mean))
    b = int(np.argmin(V @ V[a]))
    C = np.vstack([V[a], V[b]])
    lab = np.zeros(len(V), dtype=np.int64)
    for _ in range(10):
        lab = np.argmax(V @ C.T, axis=1)
        for k in (0, 1):
            if (lab == k).any():
                c = V[lab == k].sum(axis=0)
                C[k] = c / (float(np.linalg.norm(c)) or 1.0)
    return lab


def maintain_issues(store: Any, db: IssueStateDB, *, now: datetime, config: DiscoveryConfig | None = None,
                    embedder: Embedder | None = None, window_days: float = 7.0) -> MaintenanceReport:
    """Close stale issues, merge near-duplicates, split issues that drifted apart (idempotent)."""
    from storage.base import mention_filters

    cfg = config or DiscoveryConfig()
    report = MaintenanceReport()
    issues = {i.id: i for i in store.list_issues()}
    states = db.get_states()
    changed_issues: dict[str, Issue] = {}
    changed_states: dict[str, IssueState] = {}

    def state(iid: str) -> IssueState:
        if iid not in changed_states:
            n = issues[iid].mention_count if iid in issues else 0
            changed_states[iid] = states.get(iid) or IssueState(issue_id=iid, n=n)
        return changed_states[iid]

    # 1. stale issues close
    stale_before = now - timedelta(days=cfg.stale_days)
    for iid in sorted(issues):
        st = states.get(iid)
        if issues[iid].last_seen < stale_before and (st is None or st.status == "open"):
            s = state(iid)
            s.status, s.closed_at = "closed", now
            s.history.append({"event": "closed", "at": now.isoformat(), "reason": "stale"})
            db.add_event("close", iid, now.date().isoformat(), at=now,
                         detail={"last_seen": issues[iid].last_seen.isoformat()})
            report.closed.append(iid)

    def is_open(iid: str) -> bool:
        s = changed_states.get(iid) or states.get(iid)
        return s is None or s.status == "open"

    # 2. merges: open issues of one bucket with close centroids and a shared key phrase
    by_bucket: dict[tuple[str, str], list[Issue]] = {}
    for i in issues.values():
        st = states.get(i.id)
        if is_open(i.id) and st is not None and st.centroid is not None:
            by_bucket.setdefault(_bucket(i), []).append(i)
    moves: dict[str, str] = {}
    for key in sorted(by_bucket):
        group = sorted(by_bucket[key], key=lambda i: (-i.mention_count, i.first_seen, i.id))
        for k, big in enumerate(group):
            if big.id in moves:
                continue
            for small in group[k + 1:]:
                if small.id in moves:
                    continue
                ca, cb = states[big.id].centroid, states[small.id].centroid
                assert ca is not None and cb is not None
                if len(ca) != len(cb) or float(ca @ cb) < cfg.merge_threshold:
                    continue
                if not _shares_keyword(big, small):
                    continue
                moves[small.id] = big.id
    for small_id, big_id in sorted(moves.items()):
        members = list(store.iter_mentions(mention_filters(issue_id=small_id)))
        for m in members:
            m.issue_id = big_id
        if members:
            store.update_enrichment(members)
        report.moved_mentions += len(members)
        big, small = issues[big_id], issues[small_id]
        merged = Issue.from_dict(big.to_dict())
        merged.mention_count = big.mention_count + len(members)
        merged.first_seen = min(big.first_seen, small.first_seen)
        merged.last_seen = max(big.last_seen, small.last_seen)
        merged.area_ids = list(dict.fromkeys(list(big.area_ids) + list(small.area_ids)))
        emptied = Issue.from_dict(small.to_dict())
        emptied.mention_count = 0
        changed_issues[big_id], changed_issues[small_id] = merged, emptied
        s = state(small_id)
        s.status, s.merged_into, s.closed_at = "merged", big_id, now
        s.history.append({"event": "merged_into", "into": big_id, "at": now.isoformat()})
        b = state(big_id)
        b.history.append({"event": "absorbed", "from": small_id, "at": now.isoformat()})
        db.add_event("merge", small_id, big_id, at=now, detail={"moved": len(members)})
        report.merged.append((small_id, big_id))

    # 3. splits: recent members of an open issue in two distant groups
    emb = embedder
    since = now - timedelta(days=window_days)
    for iid in sorted(issues):
        if iid in moves or not is_open(iid) or issues[iid].mention_count < 2 * cfg.split_min_members:
            continue
        members = sorted(store.iter_mentions(mention_filters(issue_id=iid, since=since)),
                         key=lambda m: (m.published_at, m.id))
        if len(members) < 2 * cfg.split_min_members:
            continue
        emb = emb or get_embedder()
        V = cached_embeddings(emb, members, db)
        lab = _two_means(V)
        sizes = np.bincount(lab, minlength=2)
        if sizes.min() < cfg.split_min_members:
            continue
        c0 = V[lab == 0].sum(axis=0)
        c1 = V[lab == 1].sum(axis=0)
        cos = float(c0 @ c1 / ((np.linalg.norm(c0) * np.linalg.norm(c1)) or 1.0))
        if cos >= cfg.split_threshold:
            continue
        keep = int(lab[0])  # the part holding the oldest recent member keeps the id
        part = [m for m, g in zip(members, lab, strict=True) if int(g) != keep]
        seed = part[0]
        new_id = issue_id_for(str(seed.topic), main_area(seed), seed.id)
        new_issue = issue_from_members(new_id, part)
        for m in part:
            m.issue_id = new_id
        store.update_enrichment(part)
        old = Issue.from_dict(issues[iid].to_dict())
        old.mention_count = max(0, old.mention_count - len(part))
        changed_issues[iid], changed_issues[new_id] = old, new_issue
        ns = state(new_id)
        cp = V[lab != keep].sum(axis=0)
        ns.centroid = (cp / (float(np.linalg.norm(cp)) or 1.0)).astype(np.float32)
        ns.model, ns.n = embedder_name(emb), len(part)
        ns.history.append({"event": "split_from", "from": iid, "at": now.isoformat()})
        state(iid).history.append({"event": "split_off", "into": new_id, "at": now.isoformat()})
        db.add_event("split", iid, new_id, at=now, detail={"moved": len(part), "cosine": round(cos, 4)})
        report.split.append((iid, new_id))
        report.moved_mentions += len(part)
    if changed_issues:
        store.write_issues(list(changed_issues.values()))
    db.put_states(list(changed_states.values()))
    return report


__all__ = [
    "DiscoveryConfig", "DiscoveryResult", "LsaEmbedder", "MaintenanceReport", "bertopic_available",
    "bertopic_partition", "bundled_corpus_texts", "discover", "fallback_embedder", "get_embedder",
    "maintain_issues", "vietnamese_vectorizer",
]
