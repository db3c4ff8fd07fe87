"""Group civic mentions into issues: reports of one concern, of one topic, in one place.

Only civic mentions (``civic is True``) with a topic other than ``not_civic`` take part.

How mentions are grouped
------------------------
1. **Candidates.** A mention's *main area* is its most specific area: its ward (``w:…``) if it
   has one, else its former district (``fd:…``), else the city (``hcmc``). Mentions are bucketed
   by topic and district (a ward's former district, or the ward itself when none is known; the
   city for city-level mentions). Inside a bucket a mention may join a cluster only when their
   areas are *compatible*: the same main area, or one is a former district that contains the
   other's ward (a report that names only "Bình Thạnh" can join an issue seeded in one of its
   wards; two different wards never mix; city-level mentions only join city-level issues).
2. **Similarity.** TF-IDF over accent-folded syllables (uni- and bigrams, Vietnamese stopwords
   dropped, title counted twice, sub-linear tf), cosine to each cluster's centroid.
3. **Leader clustering,** single pass, in a deterministic order (published_at, id): a mention
   joins the most similar compatible cluster whose centroid cosine reaches `threshold` (and
   whose last mention is at most `max_gap_days` older), otherwise it seeds a new cluster. The
   cost is quadratic within a bucket only, never across the whole set.
4. **Stability.** An issue's id is a hash of topic + main area of its seed (first) mention +
   the seed's id, so reprocessing the same mentions yields the same ids. A mention that already
   carries the id of an existing issue of the same topic and a compatible area stays there.
   Existing issues (``existing``) take part as clusters: their current members when they are
   in the input, otherwise a pseudo-document made of their label and keywords (matched by
   cosine, or by keyword overlap), so new reports of a known issue are absorbed by it instead of
   opening a new one.

An issue's label is the title of the member closest to the centroid; its keywords are the
top-weighted key phrases of the centroid in their original spelling; ``area_ids`` starts with
the issue's home area (the seed's main area), then the seed's areas, then the other members'
areas. An existing issue keeps its label and keywords; its counts, dates and areas are updated.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from langnghe.records import CITY_AREA_ID, Issue, Mention
from nlp.text import fold

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.22
DEFAULT_MAX_GAP_DAYS = 30.0
KEYWORD_MATCH_SHARE = 0.6  # share of an issue's keywords found in a mention to absorb it by keywords
MAX_KEYWORDS = 8
MAX_PHRASE_SYLLABLES = 4
MAX_NAME_SYLLABLES = 6
_SENTENCE_START = set(".!?:;\"“”'(-–—\n")
MAX_TEXT_CHARS = 2000
_CHUNK_ROWS = 512

STOPWORDS_PATH = Path(__file__).with_name("data") / "stopwords-vi.txt"
_TOKEN = re.compile(r"\w+", re.UNICODE)
_DIGITS = re.compile(r"^\d+$")


@dataclass
class IssueAssignment:
    """What `group_issues` decided.

    ``issues``: new issues and existing ones whose record changed (to be written);
    ``assignments``: mention id → issue id for every eligible input mention;
    ``new_issue_ids``: ids of the issues created by this call.
    """

    issues: list[Issue] = field(default_factory=list)
    assignments: dict[str, str] = field(default_factory=dict)
    new_issue_ids: set[str] = field(default_factory=set)
    # dense centroid (L2-normalised sum of the members' vectors in this call) per issue with
    # members, when embeddings were given; and the number of those members
    centroids: dict[str, np.ndarray] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)
    reassigned: int = 0  # mentions moved out of a singleton into a similar issue (outlier pass)

    def issue_of(self, mention_id: str) -> str | None:
        return self.assignments.get(mention_id)


# --------------------------------------------------------------------------- text features


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """The committed Vietnamese stopword list (lower case, NFC; multi-syllable entries spaced)."""
    words: set[str] = set()
    for line in STOPWORDS_PATH.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            words.add(unicodedata.normalize("NFC", line.lower()))
    return frozenset(words)


def phrases(text: str) -> list[tuple[str, str]]:
    """(folded feature, surface form) for each unigram and bigram of `text` that is not a stopword.

    Unigrams: no stopwords, no bare numbers, no single letters. Bigrams: adjacent syllables of one
    clause (never across punctuation or a line break), neither a single-syllable stopword, the
    pair not a stopword phrase, not two numbers.
    """
    stop = stopwords()
    nfc, folded = _aligned(text)
    spans = [(mt.start(), mt.end()) for mt in _TOKEN.finditer(nfc)]
    out: list[tuple[str, str]] = []
    prev: tuple[str, str, str] | None = None  # (lower, folded, surface) of the previous token
    prev_end = 0
    for start, end in spans:
        tok = nfc[start:end]
        low = tok.lower()
        fol = folded[start:end]
        if prev is not None and not nfc[prev_end:start].strip(" \t"):
            a_low, a_fol, a_tok = prev
            if not (a_low in stop or low in stop or (a_low.isdigit() and low.isdigit())
                    or f"{a_low} {low}" in stop):
                out.append((f"{a_fol} {fol}", f"{a_tok} {tok}"))
        if not (low in stop or low.isdigit() or len(low) < 2):
            out.append((fol, tok))
        prev, prev_end = (low, fol, tok), end
    return out


def _document(mention: Mention) -> str:
    title = mention.title or ""
    return f"{title}\n{title}\n{(mention.text or '')[:MAX_TEXT_CHARS]}"


def features(text: str) -> list[str]:
    """Folded uni- and bigram features of a text (the analyzer of the TF-IDF model)."""
    return [f for f, _ in phrases(text)]


def _identity(doc: list[str]) -> list[str]:
    return doc


def make_vectorizer() -> TfidfVectorizer:
    """TF-IDF over pre-analysed feature lists (see `features`)."""
    return TfidfVectorizer(analyzer=_identity, sublinear_tf=True, norm="l2", dtype=np.float32)


# --------------------------------------------------------------------------- areas


def main_area(mention: Mention) -> str:
    """The most specific area of a mention: ward, else former district, else the city."""
    areas = mention.areas or []
    for prefix in ("w:", "fd:"):
        for area in areas:
            if area.startswith(prefix):
                return area
    return CITY_AREA_ID


def _district_key(main: str, areas: Sequence[str]) -> str:
    """The bucket of an area: a ward's former district (first listed), else the area itself."""
    if main.startswith("w:"):
        for area in areas:
            if area.startswith("fd:"):
                return area
    return main


def compatible(main_a: str, areas_a: Iterable[str], main_b: str, areas_b: Iterable[str]) -> bool:
    """Whether two places may hold the same issue: same main area, or a district holding the ward."""
    if main_a == main_b:
        return True
    if main_a.startswith("fd:") and main_b.startswith("w:"):
        return main_a in set(areas_b)
    if main_b.startswith("fd:") and main_a.startswith("w:"):
        return main_b in set(areas_a)
    return False


def issue_id_for(topic: str, area: str, seed_mention_id: str) -> str:
    """Deterministic issue id: topic + home area + seed mention id."""
    key = f"issue:{topic}|{area}|{seed_mention_id}"
    return "i" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:19]


def eligible(mention: Mention) -> bool:
    """Civic mentions with a real topic take part in issues and rankings."""
    return mention.civic is True and bool(mention.topic) and mention.topic != "not_civic"


# --------------------------------------------------------------------------- clustering


@dataclass
class _Cluster:
    id: str
    topic: str
    home: str
    home_areas: frozenset[str]
    existing: Issue | None
    last_seen: datetime
    rows: list[int] = field(default_factory=list)  # bucket rows (members and pseudo-document)
    members: list[int] = field(default_factory=list)  # global mention indices
    norm2: float = 0.0
    keyword_folds: list[str] = field(default_factory=list)
    pseudo: bool = False
    part: int = -1  # discovery-model label of its first member (−1: none)


def _sort_key(m: Mention) -> tuple[datetime, str]:
    return (m.published_at, m.id)


def _home_of(issue: Issue) -> tuple[str, list[str]]:
    areas = list(issue.area_ids) or [CITY_AREA_ID]
    return areas[0], areas


def _keyword_hits(keyword_folds: Sequence[str], folded_text: str) -> int:
    return sum(1 for k in keyword_folds if k and re.search(rf"(?<!\w){re.escape(k)}(?!\w)", folded_text))


def group_issues(
    mentions: Sequence[Mention],
    existing: Sequence[Issue] = (),
    *,
    threshold: float = DEFAULT_THRESHOLD,
    max_gap_days: float = DEFAULT_MAX_GAP_DAYS,
    embeddings: Mapping[str, np.ndarray] | None = None,
    issue_vectors: Mapping[str, np.ndarray] | None = None,
    dense_weight: float = 0.5,
    partition: Mapping[str, int] | None = None,
    partition_bonus: float = 0.08,
    reassign_threshold: float | None = None,
) -> IssueAssignment:
    """Group eligible `mentions` into issues, reusing `existing` ones; see the module docstring.

    An existing issue's ``mention_count`` grows by the members that did not carry its id yet and
    shrinks by those that carried it and moved elsewhere, so mentions should carry the
    ``issue_id`` of their previous assignment (as stored mentions do).

    Dense vectors (optional): `embeddings` maps mention ids to L2-normalised vectors (the shared
    encoder's, or the LSA fallback's). The similarity is then ``(1 − w)·cos_tfidf + w·cos_dense``
    with ``w = dense_weight`` (an inner product on the joined features, so centroid cosines stay
    exact). `issue_vectors` holds the stored dense centroids of existing issues, used for their
    pseudo-documents. `partition` (mention id → cluster label of a discovery model such as
    BERTopic, −1 for its outliers) adds `partition_bonus` to the similarity of a cluster whose
    label agrees (a prior that adds recall; a disagreeing label costs nothing). `reassign_threshold` (default: off):
    after the pass, a mention left alone in a new issue joins the most similar
    compatible issue with several members when their cosine reaches it (outlier reassignment).
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if not 0.0 <= dense_weight <= 1.0:
        raise ValueError(f"dense_weight must be in [0, 1], got {dense_weight}")
    reassign = 0.0 if reassign_threshold is None else reassign_threshold
    seen: dict[str, Mention] = {}
    for m in mentions:
        if eligible(m):
            seen[m.id] = m  # the last copy of a duplicated id wins
    items = sorted(seen.values(), key=_sort_key)
    result = IssueAssignment()
    if not items:
        return result
    gap = timedelta(days=max_gap_days)
    existing_by_id = {i.id: i for i in existing}

    # buckets of mentions
    mains = [main_area(m) for m in items]
    bucket_of: list[tuple[str, str]] = []
    buckets: dict[tuple[str, str], list[int]] = {}
    for idx, m in enumerate(items):
        key = (str(m.topic), _district_key(mains[idx], m.areas))
        bucket_of.append(key)
        buckets.setdefault(key, []).append(idx)

    # existing issues that could absorb something: same bucket, not too old
    earliest = items[0].published_at
    existing_in: dict[tuple[str, str], list[Issue]] = {}
    for issue in sorted(existing, key=lambda i: (i.first_seen, i.id)):
        home, areas = _home_of(issue)
        key = (issue.topic, _district_key(home, areas))
        if key not in buckets:
            continue
        sticky = any(items[i].issue_id == issue.id for i in buckets[key])
        if sticky or issue.last_seen >= earliest - gap:
            existing_in.setdefault(key, []).append(issue)

    # TF-IDF model over this call's mentions
    vectorizer = make_vectorizer()
    X = vectorizer.fit_transform([features(_document(m)) for m in items]).tocsr()
    names = vectorizer.get_feature_names_out()
    E: np.ndarray | None = None
    if embeddings is not None and dense_weight > 0.0:
        missing = [m.id for m in items if m.id not in embeddings]
        if missing:
            raise ValueError(f"{len(missing)} mentions have no embedding (e.g. {missing[0]})")
        E = np.vstack([_unit(np.asarray(embeddings[m.id], dtype=np.float32)) for m in items])
    w = dense_weight if E is not None else 0.0
    XB = _joined(X, E, w)

    def pseudo_rows(issues: list[Issue]) -> sparse.csr_matrix:
        lex = vectorizer.transform([features(f"{i.label}\n" + "\n".join(i.keywords)) for i in issues])
        if E is None:
            return lex.tocsr()
        dense = np.zeros((len(issues), E.shape[1]), dtype=np.float32)
        for k, i in enumerate(issues):
            vec = (issue_vectors or {}).get(i.id)
            if vec is not None and len(vec) == E.shape[1]:
                dense[k] = _unit(np.asarray(vec, dtype=np.float32))
        lex_norm = np.sqrt(np.asarray(lex.multiply(lex).sum(axis=1)).ravel())
        has_dense = np.linalg.norm(dense, axis=1) > 0
        # an issue without a stored centroid is matched on its words alone
        wl = np.where(has_dense, 1.0 - w, 1.0).astype(np.float32)
        wd = np.where(has_dense, w, 0.0).astype(np.float32)
        wl = np.where(lex_norm > 0, wl, 0.0).astype(np.float32)
        wd = np.where((lex_norm == 0) & has_dense, 1.0, wd).astype(np.float32)
        return sparse.hstack([sparse.diags(np.sqrt(wl)) @ lex,
                              sparse.csr_matrix(dense * np.sqrt(wd)[:, None])]).tocsr()

    parts: list[int] | None = None
    if partition is not None:
        parts = [int(partition.get(m.id, -1)) for m in items]

    assignment_idx: dict[int, _Cluster] = {}
    clusters_all: list[_Cluster] = []
    for key in sorted(buckets):
        clusters = _cluster_bucket(key, buckets[key], items, mains, XB, pseudo_rows,
                                   existing_in.get(key, []), existing_by_id, threshold, gap,
                                   parts=parts, bonus=partition_bonus, reassign=reassign,
                                   result=result)
        for c in clusters:
            for i in c.members:
                assignment_idx[i] = c
        clusters_all.extend(clusters)

    for idx, c in assignment_idx.items():
        result.assignments[items[idx].id] = c.id

    # mentions that left an existing issue for another one
    left: Counter[str] = Counter()
    for idx, m in enumerate(items):
        if m.issue_id and m.issue_id in existing_by_id and assignment_idx[idx].id != m.issue_id:
            left[m.issue_id] += 1

    done: set[str] = set()
    for c in clusters_all:
        if c.members:
            result.members[c.id] = len(c.members)
            if E is not None:
                result.centroids[c.id] = _unit(E[c.members].sum(axis=0))
        if not c.members and c.id not in left:
            continue
        issue = _build_issue(c, items, X, names, left.get(c.id, 0))
        done.add(c.id)
        if c.existing is None:
            result.new_issue_ids.add(issue.id)
            result.issues.append(issue)
        elif issue != c.existing:
            result.issues.append(issue)
    for issue_id, n_left in sorted(left.items()):
        if issue_id not in done:  # its bucket had no mention: only the count changes
            old = existing_by_id[issue_id]
            updated = Issue.from_dict(old.to_dict())
            updated.mention_count = max(0, old.mention_count - n_left)
            result.issues.append(updated)
    return result


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return (v / norm).astype(np.float32) if norm > 0 else v.astype(np.float32)


def _joined(X: sparse.csr_matrix, E: np.ndarray | None, w: float) -> sparse.csr_matrix:
    """[√(1−w)·X, √w·E]: rows keep unit norm, inner products mix the two cosines."""
    if E is None or w <= 0.0:
        return X
    lex_norm = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    # a text without any lexical feature is compared on its vector alone
    wl = np.where(lex_norm > 0, 1.0 - w, 0.0)
    wd = np.where(lex_norm > 0, w, 1.0)
    return sparse.hstack([sparse.diags(np.sqrt(wl).astype(np.float32)) @ X,
                          sparse.csr_matrix(E * np.sqrt(wd).astype(np.float32)[:, None])]).tocsr()


def _cluster_bucket(
    key: tuple[str, str],
    rows: list[int],
    items: list[Mention],
    mains: list[str],
    X: sparse.csr_matrix,
    pseudo_rows: Callable[[list[Issue]], sparse.csr_matrix],
    existing: list[Issue],
    existing_by_id: dict[str, Issue],
    threshold: float,
    gap: timedelta,
    *,
    parts: list[int] | None = None,
    bonus: float = 0.0,
    reassign: float = 0.0,
    result: IssueAssignment | None = None,
) -> list[_Cluster]:
    """Leader clustering of one (topic, district) bucket; rows are indices into `items`."""
    topic = key[0]
    clusters: list[_Cluster] = []
    by_id: dict[str, _Cluster] = {}
    for issue in existing:
        home, areas = _home_of(issue)
        c = _Cluster(issue.id, topic, home, frozenset(areas), issue, issue.last_seen,
                     keyword_folds=[fold(k) for k in issue.keywords])
        clusters.append(c)
        by_id[c.id] = c

    # sticky members: mentions already attached to a compatible existing issue of their topic
    sticky: dict[int, _Cluster] = {}
    for i in rows:
        m = items[i]
        c0 = by_id.get(m.issue_id or "")
        if c0 is not None and compatible(mains[i], m.areas, c0.home, c0.home_areas):
            sticky[i] = c0

    # bucket matrix: pseudo-documents of existing issues without members here, then mentions
    pseudo_docs = [c for c in clusters if not any(s is c for s in sticky.values())]
    pseudo_X = pseudo_rows([c.existing for c in pseudo_docs if c.existing is not None]
                           ) if pseudo_docs else sparse.csr_matrix((0, X.shape[1]), dtype=np.float32)
    B = sparse.vstack([pseudo_X, X[rows]]).tocsr() if pseudo_docs else X[rows]
    n_pseudo = len(pseudo_docs)
    n = B.shape[0]
    label = np.full(n, -1, dtype=np.int64)
    cluster_index = {id(c): k for k, c in enumerate(clusters)}
    norm2 = np.zeros(max(n, 1), dtype=np.float64)  # per cluster index (never more than rows)

    def sims_row(r: int) -> np.ndarray:
        return np.asarray((B[r] @ B.T).todense()).ravel()

    def add(r: int, k: int, row_sims: np.ndarray) -> None:
        mask = label == k
        dot = float(row_sims[mask].sum()) if mask.any() else 0.0
        norm2[k] += 2.0 * dot + float(row_sims[r])
        label[r] = k

    for p, c in enumerate(pseudo_docs):
        c.pseudo = True
        c.rows.append(p)
        add(p, cluster_index[id(c)], sims_row(p))

    # sticky members first (in time order), so their issues have a centroid
    for local, i in enumerate(rows):
        if i in sticky:
            c = sticky[i]
            r = n_pseudo + local
            add(r, cluster_index[id(c)], sims_row(r))
            c.rows.append(r)
            c.members.append(i)
            c.last_seen = max(c.last_seen, items[i].published_at)

    compat_cache: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
    last_ts: list[float] = [c.last_seen.timestamp() for c in clusters]

    def compat_for(i: int) -> np.ndarray:
        sig = (mains[i], tuple(items[i].areas))
        cached = compat_cache.get(sig, np.zeros(0, dtype=bool))
        if len(cached) < len(clusters):
            extra = [compatible(mains[i], items[i].areas, c.home, c.home_areas)
                     for c in clusters[len(cached):]]
            cached = np.concatenate([cached, np.array(extra, dtype=bool)])
            compat_cache[sig] = cached
        return cached.copy()

    free = [local for local, i in enumerate(rows) if i not in sticky]
    for start in range(0, len(free), _CHUNK_ROWS):
        chunk = free[start:start + _CHUNK_ROWS]
        S = np.asarray((B[[n_pseudo + lc for lc in chunk]] @ B.T).todense())
        for ci, local in enumerate(chunk):
            i = rows[local]
            r = n_pseudo + local
            m = items[i]
            row_sims = S[ci]
            best_k, best_sim = -1, -1.0
            if clusters:
                labelled = label >= 0
                dots = np.bincount(label[labelled], weights=row_sims[labelled], minlength=len(clusters))
                norms = np.sqrt(np.maximum(norm2[:len(clusters)], 1e-12))
                cos = dots / norms
                ok = compat_for(i)
                ok &= np.asarray(last_ts) >= (m.published_at - gap).timestamp()
                if parts is not None and parts[i] >= 0 and bonus:
                    agree = np.array([c.part == parts[i] for c in clusters])
                    cos = cos + bonus * agree
                if ok.any():
                    cand = np.where(ok, cos, -1.0)
                    best_k = int(np.argmax(cand))
                    best_sim = float(cand[best_k])
                    if best_sim < threshold:
                        best_k = -1
                        # pseudo-only existing issues may also absorb by keyword overlap
                        folded = fold(m.content)
                        kw_best = 0.0
                        for k in np.flatnonzero(ok):
                            c = clusters[int(k)]
                            if c.pseudo and not c.members and len(c.keyword_folds) >= 2:
                                hits = _keyword_hits(c.keyword_folds, folded)
                                share = hits / len(c.keyword_folds)
                                if hits >= 2 and share >= KEYWORD_MATCH_SHARE and share > kw_best:
                                    best_k, kw_best = int(k), share
            if best_k < 0:
                home = mains[i]
                cid = issue_id_for(topic, home, m.id)
                found = by_id.get(cid)
                if found is None:
                    found = _Cluster(cid, topic, home, frozenset(m.areas) | {home}, None,
                                     m.published_at)
                    clusters.append(found)
                    last_ts.append(found.last_seen.timestamp())
                    cluster_index[id(found)] = len(clusters) - 1
                    by_id[cid] = found
                best_k = cluster_index[id(found)]
            c = clusters[best_k]
            add(r, best_k, row_sims)
            c.rows.append(r)
            c.members.append(i)
            if parts is not None and c.part < 0:
                c.part = parts[i]
            c.last_seen = max(c.last_seen, m.published_at)
            last_ts[best_k] = c.last_seen.timestamp()
    if reassign > 0.0:
        moved = _reassign_singletons(clusters, B, label, n_pseudo, rows, items, mains, reassign, gap)
        if result is not None:
            result.reassigned += moved
    return clusters


def _reassign_singletons(clusters: list[_Cluster], B: sparse.csr_matrix, label: np.ndarray,
                         n_pseudo: int, rows: list[int], items: list[Mention], mains: list[str],
                         reassign: float, gap: timedelta) -> int:
    """Outlier pass: a new issue with one member joins the most similar compatible issue that
    has several members (or is an existing one) when the cosine to its centroid reaches
    `reassign`. Deterministic: singletons in time order, centroids fixed before the pass."""
    big = [k for k, c in enumerate(clusters) if len(c.members) >= 2 or c.existing is not None]
    singles = [k for k, c in enumerate(clusters)
               if len(c.members) == 1 and c.existing is None]
    if not big or not singles:
        return 0
    cents = []
    for k in big:
        v = np.asarray(B[np.flatnonzero(label == k)].sum(axis=0)).ravel()
        cents.append(v / (float(np.linalg.norm(v)) or 1.0))
    C = np.vstack(cents).astype(np.float32)
    moved = 0
    for k in sorted(singles, key=lambda k: _sort_key(items[clusters[k].members[0]])):
        c = clusters[k]
        i = c.members[0]
        r = c.rows[0]
        m = items[i]
        sims = np.asarray(B[r] @ C.T).ravel()
        best, best_sim = -1, reassign
        for j, kk in enumerate(big):
            t = clusters[kk]
            if sims[j] < best_sim or not compatible(mains[i], m.areas, t.home, t.home_areas):
                continue
            if m.published_at - t.last_seen > gap:
                continue
            if sims[j] > best_sim or best < 0:
                best, best_sim = kk, float(sims[j])
        if best < 0:
            continue
        t = clusters[best]
        t.members.append(i)
        t.rows.append(r)
        t.last_seen = max(t.last_seen, m.published_at)
        label[r] = best
        c.members.clear()
        c.rows.clear()
        moved += 1
    return moved


# --------------------------------------------------------------------------- issue records


def _majority(values: Iterable[str | None]) -> str | None:
    counts = Counter(v for v in values if v and v != "none")
    if not counts:
        return None
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def _best_surface(forms: Counter[str]) -> str:
    """The most frequent spelling (sentence-initial capitals already lowered by the caller)."""
    return sorted(forms.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


_CLASSIFIER_TEXT = (
    "đường cầu phường quận huyện xã chợ kênh rạch hẻm sông bến khu trường bệnh viện sân bay "
    "công viên nút giao ngã tư ba chung cư tuyến cống sở ủy ban"
)
_CLASSIFIERS = frozenset(_CLASSIFIER_TEXT.split(" "))


def _well_formed(form: str) -> bool:
    """All lower case, all capitalised (a name), or classifier words then a name."""
    caps = [w[:1].isupper() for w in form.split()]
    if all(caps) or not any(caps):
        return True
    k = caps.index(True)
    return k > 0 and all(caps[k:]) and all(w.lower() in _CLASSIFIERS for w in form.split()[:k])


def _cohesive(form: str, n_docs: int, n_members: int) -> bool:
    """Whether a joined phrase reads as one term: a proper name (its classifier allowed in
    front: "đường Nguyễn Hữu Cảnh"), or a lower-case phrase found in two or more texts."""
    words_ = form.split()
    if not _well_formed(form):
        return False
    if any(w[:1].isupper() for w in words_):
        return len(words_) <= MAX_NAME_SYLLABLES
    return len(words_) <= MAX_PHRASE_SYLLABLES and n_docs >= 2 and n_members >= 2


def _aligned(text: str) -> tuple[str, str]:
    """(NFC text, its folded form) with equal lengths, so folded matches map back to the text."""
    nfc = unicodedata.normalize("NFC", text)
    folded = fold(nfc)
    if len(folded) != len(nfc):  # a character whose case mapping changes length: fold per char
        folded = "".join((fold(ch) or " ")[:1] for ch in nfc)
    return nfc, folded


@lru_cache(maxsize=4096)
def _phrase_pattern(folded_phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + r"[ \t]+".join(re.escape(w) for w in folded_phrase.split()) + r"(?!\w)")


def keywords_for(members: Sequence[Mention], weights: dict[str, float],
                 limit: int = MAX_KEYWORDS) -> list[str]:
    """Top key phrases of a cluster, in their original spelling.

    Candidates are the centroid's heaviest features (bigrams weighted 1.5×). Overlapping bigrams
    that run on in the texts ("tai nạn" + "nạn giao" + "giao thông") are joined into one phrase
    ("tai nạn giao thông") when the longer run occurs in at least half of their occurrences; a
    syllable already inside a chosen phrase is dropped.
    """
    texts = [_aligned(_document(m)) for m in members]

    cache: dict[str, Counter[str]] = {}

    def occurrences(folded_phrase: str) -> Counter[str]:
        if folded_phrase in cache:
            return cache[folded_phrase]
        pattern = _phrase_pattern(folded_phrase)
        forms: Counter[str] = Counter()
        for nfc, folded in texts:
            for match in pattern.finditer(folded):
                form = " ".join(nfc[match.start():match.end()].split())
                before = nfc[:match.start()].rstrip(" \t")
                if not before or before[-1] in _SENTENCE_START:
                    form = form[:1].lower() + form[1:]
                forms[form] += 1
        cache[folded_phrase] = forms
        return forms

    def docs_with(folded_phrase: str) -> int:
        pattern = _phrase_pattern(folded_phrase)
        return sum(1 for _, folded in texts if pattern.search(folded))

    ranked = sorted(((f, w * (1.5 if " " in f else 1.0)) for f, w in weights.items()
                     if not _DIGITS.match(f.replace(" ", ""))), key=lambda kv: (-kv[1], kv[0]))
    candidates = [f for f, _ in ranked[: limit * 3]]
    # join overlapping bigrams into longer phrases
    merged = True
    while merged:
        merged = False
        for a, b in ((a, b) for a in candidates for b in candidates):
            aw, bw = a.split(), b.split()
            if a == b or len(aw) < 2 or len(bw) < 2 or aw[-1] != bw[0]:
                continue
            joined = " ".join(aw + bw[1:])
            forms = occurrences(joined)
            if not forms or not _cohesive(_best_surface(forms), docs_with(joined), len(texts)):
                continue
            if sum(forms.values()) * 2 >= min(sum(occurrences(a).values()), sum(occurrences(b).values())):
                pos = candidates.index(a)
                candidates = [c for c in candidates if c not in (a, b)]
                candidates.insert(pos, joined)
                merged = True
                break
    chosen: list[str] = []
    chosen_folds: list[str] = []
    for f in candidates:
        if len(chosen) >= limit:
            break
        words_f = f.split()
        if any(f in c or (len(words_f) == 1 and f in c.split()) for c in chosen_folds):
            continue  # already inside a chosen phrase
        forms = occurrences(f)
        if not forms or not _well_formed(_best_surface(forms)):
            continue
        chosen.append(_best_surface(forms))
        chosen_folds.append(f)
    return chosen


def _build_issue(c: _Cluster, items: list[Mention], X: sparse.csr_matrix, names: np.ndarray,
                 n_left: int) -> Issue:
    members = [items[i] for i in c.members]
    old = c.existing
    if members:
        M = X[c.members]
        centroid = np.asarray(M.sum(axis=0)).ravel()
        norm = float(np.linalg.norm(centroid)) or 1.0
        closeness = np.asarray(M @ (centroid / norm)).ravel()
        order = sorted(range(len(members)),
                       key=lambda k: (-round(float(closeness[k]), 6), members[k].published_at, members[k].id))
        titled = [k for k in order if members[k].title.strip()]
        best = members[titled[0]] if titled else members[order[0]]
        label = best.title.strip() if best.title.strip() else _lead(best.text)
        nz = np.flatnonzero(centroid)
        weights = {str(names[j]): float(centroid[j]) for j in nz[np.argsort(-centroid[nz])[:60]]}
        keywords = keywords_for(members, weights)
        first = min(m.published_at for m in members)
        last = max(m.published_at for m in members)
        department = _majority(m.department for m in members)
    else:
        assert old is not None
        label, keywords, first, last, department = (old.label, old.keywords, old.first_seen,
                                                     old.last_seen, old.department)
    areas: list[str] = []
    if old is not None:
        areas.extend(old.area_ids)
    else:
        seed = members[0]
        areas.append(c.home)
        areas.extend(a for a in seed.areas if a not in areas)
    extra = sorted({a for m in members for a in m.areas} - set(areas))
    areas.extend(extra)
    if old is None:
        return Issue(id=c.id, label=label, topic=c.topic, department=department, area_ids=areas,
                     keywords=keywords, first_seen=first, last_seen=last, mention_count=len(members))
    added = sum(1 for m in members if m.issue_id != old.id)
    return Issue(
        id=old.id, label=old.label or label, topic=old.topic,
        department=old.department or department, area_ids=areas,
        keywords=list(old.keywords) or keywords,
        first_seen=min(old.first_seen, first), last_seen=max(old.last_seen, last),
        mention_count=max(0, old.mention_count + added - n_left),
    )


def issue_from_members(issue_id: str, members: Sequence[Mention], home: str | None = None) -> Issue:
    """A fresh issue record (label, keywords, dates, areas) for `members` (e.g. a split-off part)."""
    if not members:
        raise ValueError("an issue needs at least one member")
    ms = sorted(members, key=_sort_key)
    vec = make_vectorizer()
    X = vec.fit_transform([features(_document(m)) for m in ms]).tocsr()
    home = home or main_area(ms[0])
    c = _Cluster(issue_id, str(ms[0].topic), home, frozenset(ms[0].areas) | {home}, None,
                 ms[-1].published_at, members=list(range(len(ms))))
    return _build_issue(c, ms, X, vec.get_feature_names_out(), 0)


def _lead(text: str, limit: int = 120) -> str:
    first = re.split(r"(?<=[.!?])\s|\n", text.strip(), maxsplit=1)[0]
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def similarity(a: str, b: str) -> float:
    """Cosine of two texts under a TF-IDF model fitted on the pair (diagnostics, tests)."""
    vec = make_vectorizer()
    M = vec.fit_transform([features(a), features(b)])
    return float((M[0] @ M[1].T).toarray()[0, 0]) if M.shape[1] else 0.0


__all__ = [
    "DEFAULT_THRESHOLD", "IssueAssignment", "compatible", "eligible", "features", "group_issues",
    "issue_from_members", "issue_id_for", "keywords_for", "main_area", "phrases", "similarity", "stopwords",
]
