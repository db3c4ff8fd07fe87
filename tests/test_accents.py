"""Tone-mark restoration (nlp.accents): the bigram model, the committed artifact, its use by the heads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import nlp.encoder
from nlp.accents import ARTIFACT, AccentRestorer, get_restorer, restore_if_unaccented, syllable_accuracy
from nlp.classifiers import TextClassifiers
from nlp.embedding_cache import mention_text
from nlp.text import fold
from tests.classifier_helpers import two_d_artifacts

CORPUS = [
    "Đường Nguyễn Hữu Cảnh ngập nước sau cơn mưa lớn.",
    "Người dân phản ánh đường ngập nước, xe chết máy.",
    "Mưa lớn làm nhiều tuyến đường ngập sâu.",
    "Ngã tư Hàng Xanh kẹt xe, người dân mệt mỏi.",
    "Kẹt xe kéo dài ở ngã tư Hàng Xanh.",
    "Ma túy, mà má mạ đều là từ tiếng Việt: ma, mà, má, mạ.",
]


@pytest.fixture(scope="module")
def tiny() -> AccentRestorer:
    return AccentRestorer.build(CORPUS * 3, min_count=1, min_bigram=1)


def test_restores_folded_text_with_case_and_punctuation(tiny: AccentRestorer) -> None:
    assert tiny.restore("Duong Nguyen Huu Canh ngap nuoc sau con mua lon.") == \
        "Đường Nguyễn Hữu Cảnh ngập nước sau cơn mưa lớn."
    assert tiny.restore("KET XE o nga tu Hang Xanh!") == "KẸT XE ở ngã tư Hàng Xanh!"
    # unknown words, numbers and accented words stay as typed
    assert tiny.restore("iPhone 15 ket xe 2025, Đường ngap") == "iPhone 15 kẹt xe 2025, Đường ngập"
    assert tiny.restore("") == "" and tiny.restore("...") == "..."


def test_the_bigram_context_decides_between_forms(tiny: AccentRestorer) -> None:
    # "nga" alone is likeliest "ngã"; "mua lon" after "con" is "mưa lớn", "duong ngap" is "đường ngập"
    assert tiny.restore("duong ngap sau") == "đường ngập sâu"
    assert tiny.restore("nga tu") == "ngã tư"


def test_save_and_load_round_trip(tiny: AccentRestorer, tmp_path: Path) -> None:
    path = tmp_path / "accents.npz"
    tiny.save(path)
    again = AccentRestorer.load(path)
    assert again.vocab == tiny.vocab
    text = "nguoi dan phan anh duong ngap nuoc, xe chet may"
    assert again.restore(text) == tiny.restore(text) == "người dân phản ánh đường ngập nước, xe chết máy"


def test_committed_model() -> None:
    assert ARTIFACT.is_file() and ARTIFACT.stat().st_size < 3_000_000
    restorer = get_restorer()
    assert restorer is not None
    assert restorer.restore("Ngap nuoc nghiem trong o duong Nguyen Huu Canh sau mua lon") == \
        "Ngập nước nghiêm trọng ở đường Nguyễn Hữu Cảnh sau mưa lớn"
    # only text written without tone marks is touched
    assert restore_if_unaccented("Đường Nguyễn Hữu Cảnh ngập, cho em hoi") == "Đường Nguyễn Hữu Cảnh ngập, cho em hoi"
    assert restore_if_unaccented("ket xe kinh khung tai nga tu Hang Xanh") == "kẹt xe kinh khủng tại ngã tư Hàng Xanh"


def test_syllable_accuracy_on_civic_dev(shared_dir: Path) -> None:
    rows = [json.loads(line) for line in (shared_dir / "data" / "civic" / "dev.jsonl").read_text(
        encoding="utf-8").splitlines() if line.strip()]
    restorer = get_restorer()
    assert restorer is not None
    report = syllable_accuracy(restorer, [r["text"] for r in rows[:60]])
    assert report["syllable_accuracy"] >= 0.92, report


class Fake2D:
    """A 2-d "encoder": texts with the accented word "ngập" → (1, 0), others → (0, 1)."""

    name = "fake-2d-t128"
    dim = 2

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return np.array([[1.0, 0.0] if "ngập" in t else [0.0, 1.0] for t in texts], dtype=np.float32)


def test_encoder_backends_read_restored_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nlp.encoder, "get_encoder", lambda *a, **k: Fake2D())
    models_dir = two_d_artifacts(tmp_path, {"default_backend": "hybrid", "encoder": {"name": Fake2D.name, "dim": 2}})
    models = TextClassifiers.load(models_dir, backend="hybrid")
    text = "Duong Nguyen Huu Canh ngap nuoc sau mua lon, nguoi dan kho khan"
    assert models.model_texts([text])[0].startswith("Đường Nguyễn Hữu Cảnh ngập nước")
    assert models.predict([text])[0].topic == "flooding"  # the encoder saw "ngập"
    models.restore_accents = False  # as typed: the encoder reads "ngap", and n-gram-only rows follow
    assert models.model_texts([text]) == [text]
    assert TextClassifiers.load(models_dir, backend="linear").model_texts([text]) == [text]


def test_mention_text_is_restored_for_the_clustering() -> None:
    from langnghe.records import Mention, utcnow

    m = Mention(id="m1", source="facebook.com", url="https://facebook.com/1", title="",
                text="duong ngap nuoc qua, xe chet may giua duong", published_at=utcnow())
    assert "ngập nước" in mention_text(m)
    accented = Mention(id="m2", source="facebook.com", url="https://facebook.com/2", title="Tin",
                       text="Đường ngap nước quá", published_at=utcnow())
    assert mention_text(accented) == "Tin\nĐường ngap nước quá"
    assert fold(mention_text(m)) == fold(m.text)
