"""The encoder adapter artifact (nlp.adapter): merging into the base weights, heads for the classifiers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nlp.adapter import (
    LINEARS,
    NORMS,
    adapter_digest,
    adapter_heads_for_classifiers,
    load_adapter,
    merged_tensors,
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
