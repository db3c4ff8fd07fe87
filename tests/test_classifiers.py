"""The trained classifier heads: loading, consistency rules, clear examples and dev-score floors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nlp.classifiers import Featurizer, ModelsMissingError, Prediction, TextClassifiers
from nlp.taxonomy import CIVIC_TOPICS, DEPARTMENTS, SENTIMENT_LABELS

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="module")
def models() -> TextClassifiers:
    return TextClassifiers.load(MODELS)


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
        if p.civic:
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


def test_dev_scores_reach_recorded_floors() -> None:
    if not (SHARED / "data" / "civic" / "dev.jsonl").exists():
        pytest.skip(f"shared data not found at {SHARED} (needed to recompute dev scores)")
    from nlp.training import evaluate

    recorded = json.loads((MODELS / "scores.json").read_text(encoding="utf-8"))["headline"]
    scores = evaluate(SHARED, MODELS)["headline"]
    assert set(scores) == set(recorded)
    for key, floor in recorded.items():
        assert scores[key] >= floor - 0.01, f"{key}: {scores[key]:.3f} below the recorded {floor:.3f}"
    # and absolute floors, so a poor model cannot record its own poor figures
    assert scores["civic_dev.civic.macro_f1"] >= 0.75
    assert scores["civic_dev.topic.macro_f1"] >= 0.55
    assert scores["civic_dev.department.accuracy"] >= 0.55
    assert scores["civic_dev.sentiment.macro_f1"] >= 0.55
    assert scores["vsfc_dev.sentiment.macro_f1"] >= 0.6
    assert scores["vlsp_dev.sentiment.macro_f1"] >= 0.6
