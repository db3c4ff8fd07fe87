"""Training data choices that need no model: social-comment sentiment and the sentiment experts."""

from __future__ import annotations

import json
from pathlib import Path

from nlp.training import (
    EMOTION_TO_SENTIMENT,
    TrainConfig,
    _build_examples,
    _domains,
    _expert_rows,
    load_social_sentiment,
)


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _shared(tmp_path: Path) -> Path:
    base = tmp_path / "data" / "emotion" / "uit-vsmec"
    _write(base / "train.jsonl", [{"text": "vui quá :))", "label": "enjoyment"},
                                  {"text": "bực mình ghê", "label": "anger"},
                                  {"text": "ủa thiệt hả", "label": "surprise"},
                                  {"text": "đg đông xe", "label": "other"}])
    _write(base / "dev.jsonl", [{"text": "buồn ghê", "label": "sadness"}])
    return tmp_path


def test_emotions_map_to_the_guide_sentiments_and_surprise_is_left_out(tmp_path: Path) -> None:
    sets = load_social_sentiment(_shared(tmp_path))
    assert [(r["text"], r["label"]) for r in sets["vsmec_train"]] == [
        ("vui quá :))", "positive"), ("bực mình ghê", "negative"), ("đg đông xe", "neutral")]
    assert sets["vsmec_dev"][0]["label"] == "negative"
    assert set(EMOTION_TO_SENTIMENT.values()) == {"positive", "negative", "neutral"}


def test_social_comments_join_training_as_the_switches_say(tmp_path: Path) -> None:
    social = load_social_sentiment(_shared(tmp_path))
    senti = {"vsfc_train": [{"text": "thầy dạy hay", "label": "positive"}],
             "vlsp_train": [{"text": "pin yếu", "label": "negative"}], "aivivn_train": [], **social}
    civic = [{"text": "Ngập nặng ở Quận 7", "civic": True, "sentiment": "negative", "topic": "flooding",
              "department": "construction"}]
    off = TrainConfig(social_expert=False)
    assert _domains(off, senti) == ("general", "student_feedback", "product_reviews")
    assert [d for d, _, _ in _expert_rows(off, senti)] == ["student_feedback", "product_reviews"]
    texts_off = {e.text for e in _build_examples(off, civic, [], senti, fold_augment=False)["sentiment"]}
    assert "bực mình ghê" not in texts_off

    assert _domains(TrainConfig(), senti)[-1] == "social_comments"  # the default
    on = TrainConfig(social_expert=True, social_per_set=10, social_weight=0.5)
    assert _domains(on, senti)[-1] == "social_comments"
    rows = dict((d, r) for d, r, _ in _expert_rows(on, senti))["social_comments"]
    assert {r["label"] for r in rows} == {"positive", "negative", "neutral"}
    sent = _build_examples(on, civic, [], senti, fold_augment=False)["sentiment"]
    assert {(e.text, e.label, e.weight) for e in sent if e.text == "bực mình ghê"} == {
        ("bực mình ghê", "negative", 0.5)}
