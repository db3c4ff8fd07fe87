"""Data preparation of the end-to-end fine-tuning (the GPU loop itself needs torch: skipped here)."""

from __future__ import annotations

import numpy as np
import pytest

from nlp.finetune import IGNORE, build_multitask_items, class_weights
from nlp.training import Example


def _examples() -> dict[str, list[Example]]:
    return {
        "civic": [Example("ngập đường", True), Example("bóng đá", False, 0.1)],
        "sentiment": [Example("ngập đường", "negative", 8.0), Example("áo đẹp", "positive")],
        "topic": [Example("ngập đường", "flooding")],
        "department": [Example("ngập đường", "construction")],
    }


def test_items_merge_labels_per_text() -> None:
    items = {it.text: it for it in build_multitask_items(_examples())}
    assert set(items) == {"ngập đường", "bóng đá", "áo đẹp"}
    flood = items["ngập đường"]
    assert flood.labels["civic"] == 1 and flood.weight == 8.0
    assert all(v != IGNORE for v in flood.labels.values())
    assert items["áo đẹp"].labels["civic"] == IGNORE and items["áo đẹp"].labels["topic"] == IGNORE
    assert items["bóng đá"].labels == {"civic": 0, "sentiment": IGNORE, "topic": IGNORE, "department": IGNORE}


def test_class_weights_are_balanced_over_labelled_items() -> None:
    items = build_multitask_items(_examples())
    w = class_weights(items, "civic")
    assert w.tolist() == pytest.approx([1.0, 1.0])
    ws = class_weights(items, "sentiment")
    assert ws[1] == 0.0 and np.count_nonzero(ws) == 2  # neutral absent


def test_one_step_smoke_run_when_torch_is_installed() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.skip("no local Hugging Face model directory configured for the smoke run")
