"""Tests of nlp.discovery, nlp.embedding_cache and the incremental ranking path."""

from __future__ import annotations

import importlib.util
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from langnghe.records import Issue
from nlp.discovery import (
    DiscoveryConfig,
    LsaEmbedder,
    bertopic_available,
    discover,
    fallback_embedder,
    maintain_issues,
    vietnamese_vectorizer,
)
from nlp.embedding_cache import IssueStateDB, cached_embeddings
from nlp.ranking import update_incremental, update_rankings
from tests.test_issues import BT, W_THANH_MY_TAY, _flood_ids, _mention, planted_mentions
from tests.test_ranking import DAY, DAY_KEY

ROOT = Path(__file__).resolve().parents[1]


class CountingEmbedder:
    """Wraps the LSA fallback and counts the texts it encodes."""

    name = "counting-lsa"

    def __init__(self) -> None:
        self.inner = fallback_embedder()
        self.calls = 0

    def encode(self, texts: Any, batch_size: int = 64) -> np.ndarray:
        self.calls += len(texts)
        return self.inner.encode(texts, batch_size)


def _store(tmp_path: Path) -> Any:
    sqlite = pytest.importorskip("storage.sqlite")
    return sqlite.SQLiteStore(tmp_path / "t.sqlite3")


def test_lsa_embedder_unit_rows_and_similarity() -> None:
    emb = fallback_embedder()
    V = emb.encode(["Đường Nguyễn Hữu Cảnh ngập nước sau mưa lớn",
                    "Mưa lớn, đường Nguyễn Hữu Cảnh lại ngập nước",
                    "Học sinh tiểu học ngộ độc thực phẩm sau bữa ăn bán trú"])
    assert V.dtype == np.float32 and V.shape[0] == 3
    assert np.allclose(np.linalg.norm(V, axis=1), 1.0, atol=1e-5)
    assert float(V[0] @ V[1]) > float(V[0] @ V[2])
    assert emb.name.startswith("lsa-")
    with pytest.raises(RuntimeError):
        LsaEmbedder().encode(["x"])


def test_vietnamese_vectorizer_keeps_vietnamese_and_drops_stopwords() -> None:
    docs = ["Ngập nước đường Nguyễn Hữu Cảnh của quận Bình Thạnh", "Ngập nước ở Thủ Đức"]
    for kind in ("phrases", "words"):
        vocab = set(vietnamese_vectorizer(analyzer=kind).fit(docs).get_feature_names_out())
        assert "ngập nước" in vocab and "thủ đức" in vocab, kind
        assert "của" not in vocab and "ở" not in vocab, kind


def test_vector_cache_reuses_and_detects_changed_text(tmp_path: Path) -> None:
    db = IssueStateDB(tmp_path / "v.sqlite3")
    emb = CountingEmbedder()
    ms = planted_mentions()
    a = cached_embeddings(emb, ms, db)
    assert emb.calls == len(ms) and db.count_vectors("counting-lsa") == len(ms)
    b = cached_embeddings(emb, ms, db)
    assert emb.calls == len(ms) and np.array_equal(a, b)  # nothing re-encoded
    ms[0].text += " Cập nhật."
    cached_embeddings(emb, ms, db)
    assert emb.calls == len(ms) + 1
    db.close()


@pytest.mark.parametrize("backend", ["fallback", "lexical"])
def test_discover_planted_day_deterministic(backend: str) -> None:
    cfg = DiscoveryConfig(backend=backend)
    ms = planted_mentions()
    a = discover(ms, config=cfg).assignment
    b = discover(list(reversed(planted_mentions())), config=cfg).assignment
    assert a.assignments == b.assignments
    assert len({a.assignments[i] for i in _flood_ids(ms)}) == 1
    assert len(set(a.assignments.values())) == 7
    if backend == "fallback":
        flood = a.assignments[next(iter(_flood_ids(ms)))]
        assert flood in a.centroids and abs(float(np.linalg.norm(a.centroids[flood])) - 1) < 1e-5


def test_discover_precomputed_embeddings_are_used() -> None:
    ms = planted_mentions()
    # vectors that put every flood report on one axis and everything else on others
    emb = {m.id: np.eye(32, dtype=np.float32)[0 if m.id in _flood_ids(ms) else 1 + k]
           for k, m in enumerate(ms)}
    res = discover(ms, config=DiscoveryConfig(backend="fallback", dense_weight=1.0, threshold=0.9),
                   embeddings=emb)
    assert res.embedder == "precomputed"
    assert len({res.assignment.assignments[i] for i in _flood_ids(ms)}) == 1
    assert len(set(res.assignment.assignments.values())) == 1 + 8  # the 8 other civic ones alone


@pytest.mark.slow
@pytest.mark.skipif(not bertopic_available(), reason="bertopic extra not installed")
def test_bertopic_backend_groups_planted_events() -> None:
    ms = planted_mentions()
    extra = planted_mentions(DAY + timedelta(days=1), prefix="d1")  # 2 days: enough for UMAP
    res = discover(ms + extra, config=DiscoveryConfig(backend="bertopic"))
    assert res.backend == "bertopic"
    again = discover(ms + extra, config=DiscoveryConfig(backend="bertopic"))
    assert res.assignment.assignments == again.assignment.assignments  # seeded
    flood = _flood_ids(ms) | _flood_ids(extra)
    assert len({res.assignment.assignments[i] for i in flood}) == 1


def test_update_rankings_records_state_and_reprocessing_is_stable(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.write_mentions(planted_mentions(DAY))
    emb = CountingEmbedder()
    update_rankings(store, now=DAY.replace(hour=23), days=1, embedder=emb)
    encoded = emb.calls
    issues = {i.id: i for i in store.list_issues()}
    again = update_rankings(store, now=DAY.replace(hour=23), days=1, embedder=emb)
    assert emb.calls == encoded  # vectors came from the cache
    assert again["issues_new"] == 0 and again["assigned"] == 0
    assert {i.id: i for i in store.list_issues()} == issues
    db = IssueStateDB.for_store(store)
    states = db.get_states()
    assert set(states) == set(issues) and all(s.status == "open" for s in states.values())
    assert store.get_state("nlp.issue_state.schema") == "1"
    db.close()
    store.close()


def test_incremental_update_counts_new_mentions(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.write_mentions(planted_mentions(DAY))
    update_rankings(store, now=DAY.replace(hour=20), days=1)
    flood = store.top_issues(BT, "day", DAY_KEY)[0]
    assert flood.mention_count == 8
    new = [_mention(800 + k, f"s{k}.vn", "Đường Nguyễn Hữu Cảnh vẫn ngập nước sau mưa lớn",
                    "Tối 20/11 đường Nguyễn Hữu Cảnh vẫn ngập nước, xe chết máy.",
                    [W_THANH_MY_TAY, BT], "negative", "flooding", "construction",
                    DAY.replace(hour=21, minute=k), "inc") for k in range(2)]
    store.write_mentions(new)
    summary = update_incremental(store, now=DAY.replace(hour=22))
    assert summary["new_mentions"] == 2 and summary["issues_new"] == 0
    assert summary["periods"] == [f"day:{DAY_KEY}", "week:2025-W47"]
    top = store.top_issues(BT, "day", DAY_KEY)[0]
    assert top.issue_id == flood.issue_id and top.mention_count == 10
    assert update_incremental(store, now=DAY.replace(hour=22))["new_mentions"] == 0
    store.close()


def _issue(iid: str, label: str, keywords: list[str], last_seen: Any, n: int = 3) -> Issue:
    return Issue(id=iid, label=label, topic="flooding", department="construction",
                 area_ids=[BT, "hcmc"], keywords=keywords, first_seen=last_seen - timedelta(days=1),
                 last_seen=last_seen, mention_count=n)


def test_maintenance_closes_merges_and_splits(tmp_path: Path) -> None:
    store = _store(tmp_path)
    db = IssueStateDB.for_store(store)
    now = DAY.replace(hour=23)
    v = np.zeros(8, dtype=np.float32)
    v[0] = 1.0
    near = np.array([0.99, 0.141, 0, 0, 0, 0, 0, 0], dtype=np.float32)
    store.write_issues([
        _issue("iold", "Ngập cũ", ["ngập"], now - timedelta(days=30)),
        _issue("ibig", "Ngập đường Nguyễn Hữu Cảnh", ["Nguyễn Hữu Cảnh", "ngập nước"], now, 5),
        _issue("ismall", "Nguyễn Hữu Cảnh lại ngập", ["Nguyễn Hữu Cảnh", "mưa lớn"], now, 2),
    ])
    from nlp.embedding_cache import IssueState

    db.put_states([IssueState("ibig", centroid=v, n=5),
                   IssueState("ismall", centroid=near / np.linalg.norm(near), n=2)])
    # two members of ismall are stored: the merge moves them
    ms = planted_mentions(DAY)[:2]
    for m in ms:
        m.issue_id = "ismall"
    store.write_mentions(ms)
    store.update_enrichment(ms)
    rep = maintain_issues(store, db, now=now)
    assert rep.closed == ["iold"] and rep.merged == [("ismall", "ibig")] and rep.moved_mentions == 2
    states = db.get_states()
    assert states["iold"].status == "closed" and states["ismall"].merged_into == "ibig"
    assert {m.issue_id for m in store.get_mentions([m.id for m in ms])} == {"ibig"}
    assert store.get_issue("ibig").mention_count == 7  # type: ignore[union-attr]
    assert maintain_issues(store, db, now=now).merged == []  # idempotent
    kinds = sorted(e["kind"] for e in db.events())
    assert kinds == ["close", "merge"]

    # a split: one issue holding flood reports and garbage reports
    mixed = [m for m in planted_mentions(DAY, prefix="mix") if m.topic in ("flooding", "environment")]
    for m in mixed:
        m.issue_id = "imixed"
    store.write_mentions(mixed)
    store.update_enrichment(mixed)
    store.write_issues([Issue(id="imixed", label="x", topic="flooding", department=None, area_ids=[BT],
                              keywords=["x"], first_seen=DAY, last_seen=now, mention_count=len(mixed))])
    rep2 = maintain_issues(store, db, now=now, embedder=fallback_embedder())
    assert len(rep2.split) == 1 and rep2.split[0][0] == "imixed"
    new_id = rep2.split[0][1]
    moved = {m.id for m in store.get_mentions([m.id for m in mixed]) if m.issue_id == new_id}
    garbage = {m.id for m in mixed if m.topic == "environment"}
    nhc = _flood_ids(mixed)
    # the oldest member (a garbage report) keeps the id: the flood reports leave together
    assert nhc <= moved and not (garbage & moved)
    assert store.get_issue(new_id).topic == "flooding"  # type: ignore[union-attr]
    assert "Nguyễn Hữu Cảnh" in store.get_issue(new_id).label  # type: ignore[union-attr]
    db.close()
    store.close()


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_discovery", ROOT / "bench" / "bench_discovery.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_discovery"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_replayed_stream_purity_outliers_and_top10(shared_dir: Path) -> None:
    bench = _bench()
    if not bench.civic_items():
        pytest.skip("no civic data")
    scores = bench.evaluate("fallback", events=15, seed=7, embedder=fallback_embedder())
    print("replay:", scores)
    assert scores["purity"] >= 0.8
    assert scores["planted_outlier_rate"] <= 0.10
    assert scores["events_recovered_60pct"] >= 14
    assert scores["events_in_city_top10_day"] >= 13
