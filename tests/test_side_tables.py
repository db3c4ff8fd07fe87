"""The issue engine's side tables (cached vectors, issue state, emerging events) for a store
without a file of its own (the search engine): they go to the configured side file
(LANGNGHE_SIDE_DB_PATH, default <data_dir>/side.sqlite3), so the classifier's vectors are reused by
the rank job, issue maintenance runs and emerging alerts are stored. A SQLite store keeps them in
its own file."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from langnghe import jobs
from langnghe.config import Settings, get_settings
from langnghe.records import Issue, utcnow
from nlp.alerts_events import detect_emerging, stored_events
from nlp.embedding_cache import IssueStateDB
from nlp.pipeline import vector_db_for
from nlp.ranking import update_rankings
from storage.sqlite import SQLiteStore
from tests.test_emerging import _flood
from tests.test_issues import BT
from tests.test_pipeline_vectors import (
    CountingEncoder,
    Fake2D,
    _fake_artifacts,
    _mentions,
    install_counting_encoder,
)
from tests.test_ranking import DAY, DAY_KEY


class NoFileStore:
    """A real SQLite store seen without its `path`, as the search-engine store is."""

    def __init__(self, inner: SQLiteStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "path":
            raise AttributeError(name)
        return getattr(self._inner, name)


@pytest.fixture
def side_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """LANGNGHE_SIDE_DB_PATH set to a file in tmp_path (a folder not made yet), settings re-read."""
    path = tmp_path / "side" / "side.sqlite3"
    monkeypatch.setenv("LANGNGHE_SIDE_DB_PATH", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


@pytest.fixture
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> CountingEncoder:
    return install_counting_encoder(monkeypatch)


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_side_file_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANGNGHE_SIDE_DB_PATH", raising=False)
    monkeypatch.setenv("LANGNGHE_DATA_DIR", str(tmp_path / "data"))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.side_database == tmp_path / "data" / "side.sqlite3"
    monkeypatch.setenv("LANGNGHE_SIDE_DB_PATH", str(tmp_path / "x.db"))
    assert Settings(_env_file=None).side_database == tmp_path / "x.db"  # type: ignore[call-arg]


def test_sqlite_store_keeps_its_side_tables(tmp_path: Path, side_file: Path) -> None:
    store = SQLiteStore(tmp_path / "store.sqlite3")
    try:
        db = IssueStateDB.for_store(store)
        assert db.path == store.path and "nlp_vectors" in _tables(store.path)
        db.close()
        vdb = vector_db_for(store, "hybrid")
        assert vdb is not None and vdb.path == store.path
        vdb.close()
        assert not side_file.exists()
        # a store without a file: an explicit fallback still wins over the setting
        explicit = IssueStateDB.for_store(NoFileStore(store), fallback=tmp_path / "given.sqlite3")
        assert explicit.path == tmp_path / "given.sqlite3"
        explicit.close()
        assert not side_file.exists()
    finally:
        store.close()


def _process_rank_and_alert(store: Any, models: Path, enc: CountingEncoder, side: Path) -> None:
    """process → rank (encoding each mention once, closing a stale issue) → emerging alerts,
    every side table in `side`."""
    store.write_mentions(_mentions(6, 4))
    assert vector_db_for(store, "linear") is None
    assert jobs.process(store, models, batch_size=4, backend="hybrid") == 10
    assert enc.texts == 10 and enc.calls == 3
    db = IssueStateDB.for_store(store)
    assert db.path == side and db.count_vectors(Fake2D.name) == 10
    db.close()
    now = utcnow()
    store.write_issues([Issue(id="istale", label="Ngập cũ", topic="flooding", department="construction",
                              area_ids=[BT, "hcmc"], keywords=["ngập"], first_seen=now - timedelta(days=31),
                              last_seen=now - timedelta(days=30), mention_count=2)])
    summary = update_rankings(store, now=now, days=2)
    assert summary["mentions"] == 6 and summary["embedder"] == Fake2D.name
    assert enc.calls == 3  # the rank job read every vector from the side file
    assert summary["closed"] == 1  # issue maintenance ran on the side tables
    db = IssueStateDB.for_store(store)
    states = db.get_states()
    assert states["istale"].status == "closed"
    assert {i for i, s in states.items() if s.status == "open"} == {
        i.id for i in store.list_issues() if i.id != "istale"}
    db.close()

    # emerging alerts: one report a week ago, five stories today
    ms = [_flood(0, DAY - timedelta(days=6, hours=-9))] + [_flood(k, DAY.replace(hour=8 + k)) for k in range(1, 6)]
    store.write_mentions(ms)
    day_end = DAY.replace(hour=20)
    update_rankings(store, now=day_end, days=7)
    issue = store.top_issues(BT, "day", DAY_KEY)[0]
    events = detect_emerging(store, day_end)
    by_area = {e.area_id: e for e in events}
    assert BT in by_area and by_area[BT].issue_id == issue.issue_id and by_area[BT].observed == 5
    assert detect_emerging(store, day_end + timedelta(minutes=5)) == []  # raised once
    assert {(e.issue_id, e.area_id) for e in stored_events(store)} == {(e.issue_id, e.area_id) for e in events}
    with sqlite3.connect(side) as conn:
        assert conn.execute("SELECT COUNT(*) FROM nlp_emerging").fetchone()[0] == len(events)


def test_store_without_file_uses_the_side_file(tmp_path: Path, side_file: Path, fake_encoder: CountingEncoder,
                                               caplog: pytest.LogCaptureFixture) -> None:
    models = _fake_artifacts(tmp_path / "models")
    inner = SQLiteStore(tmp_path / "store.sqlite3")
    try:
        with caplog.at_level(logging.INFO, logger="nlp.embedding_cache"):
            _process_rank_and_alert(NoFileStore(inner), models, fake_encoder, side_file)
        said = [r for r in caplog.records if r.name == "nlp.embedding_cache" and str(side_file) in r.getMessage()]
        assert len(said) == 1  # where the side file is, logged once
        assert "nlp_vectors" in _tables(side_file) and not _tables(inner.path) & {
            "nlp_vectors", "nlp_issue_state", "nlp_emerging"}
    finally:
        inner.close()


@pytest.mark.integration
@pytest.mark.slow
def test_search_engine_store_uses_the_side_file(tmp_path: Path, side_file: Path, fake_encoder: CountingEncoder,
                                                opensearch_url: str) -> None:
    from storage.search_engine import connect

    models = _fake_artifacts(tmp_path / "models")
    store = connect(f"{opensearch_url}?prefix=lt-side-{uuid.uuid4().hex[:8]}")
    try:
        assert getattr(store, "path", None) is None
        _process_rank_and_alert(store, models, fake_encoder, side_file)
    finally:
        store.drop()
        store.close()
