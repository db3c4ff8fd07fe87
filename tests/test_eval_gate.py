"""The evaluation gate: floors per backend, task and dataset in models/baseline.json.

* the committed artifacts must reach every floor (dev scores recomputed from the artifacts);
* a floor may only go down with a reason recorded in the file's history — checked against the
  version of baseline.json at git HEAD, and enforced by ``update_baseline``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from nlp.training import (
    BASELINE_FILE,
    GateError,
    check_floors,
    load_baseline,
    silently_lowered,
    update_baseline,
)

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
SHARED = REPO.parent / "shared"


def test_baseline_file_is_well_formed() -> None:
    base = load_baseline(MODELS / BASELINE_FILE)
    floors = base["floors"]
    assert floors and all(0.0 < v <= 1.0 for v in floors.values())
    # every task and dataset has a floor for the default n-gram path at least
    for key in ("civic_dev.civic.macro_f1", "civic_dev.sentiment.macro_f1", "civic_dev.topic.macro_f1",
                "civic_dev.department.accuracy", "vsfc_dev.sentiment.macro_f1", "vlsp_dev.sentiment.macro_f1",
                "vsmec_dev.sentiment.macro_f1"):
        assert f"linear.{key}" in floors


def test_no_floor_was_lowered_silently_since_head() -> None:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git not available")
    shown = subprocess.run([git, "show", f"HEAD:models/{BASELINE_FILE}"], cwd=REPO, capture_output=True,
                           text=True, check=False)
    if shown.returncode != 0:
        pytest.skip("baseline.json is not committed at HEAD yet")
    previous = json.loads(shown.stdout)
    current = load_baseline(MODELS / BASELINE_FILE)
    assert silently_lowered(current, previous) == []


def test_update_only_raises_unless_told_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    changes = update_baseline(path, {"linear.a": 0.80, "linear.b": 0.70})
    assert {c["key"]: c["new"] for c in changes} == {"linear.a": 0.79, "linear.b": 0.69}
    # better figures raise floors; equal-or-slightly-lower ones keep them
    update_baseline(path, {"linear.a": 0.85, "linear.b": 0.695})
    assert load_baseline(path)["floors"] == {"linear.a": 0.84, "linear.b": 0.69}
    # a real drop is refused, file untouched
    before = path.read_text(encoding="utf-8")
    with pytest.raises(GateError, match="linear.a"):
        update_baseline(path, {"linear.a": 0.70, "linear.b": 0.70})
    assert path.read_text(encoding="utf-8") == before
    with pytest.raises(GateError, match="reason"):
        update_baseline(path, {"linear.a": 0.70}, allow_lower=True)
    update_baseline(path, {"linear.a": 0.70}, allow_lower=True, reason="smaller training set (licence)")
    after = load_baseline(path)
    assert after["floors"]["linear.a"] == 0.69
    assert after["history"][-1]["reason"] == "smaller training set (licence)"
    # the recorded reason makes the drop legitimate; an edit by hand is caught
    prev = json.loads(before)
    assert silently_lowered(after, prev) == []
    hand = dict(after, floors=dict(after["floors"], **{"linear.b": 0.5}))
    assert silently_lowered(hand, prev) == ["linear.b: floor lowered 0.69 -> 0.5 without a recorded reason"]


def test_check_floors_reports_misses_and_missing_figures() -> None:
    base = {"floors": {"linear.a": 0.8, "hybrid.a": 0.8}, "tolerance": 0.005}
    assert check_floors({"linear.a": 0.797, "hybrid.a": 0.9}, base) == []
    assert check_floors({"linear.a": 0.79}, base) == ["hybrid.a: not computed (floor 0.800)",
                                                      "linear.a: 0.7900 < floor 0.800"]


@pytest.mark.slow
def test_committed_artifacts_reach_every_floor() -> None:
    """Recompute the dev scores from the committed artifacts (encoder embeddings come from the
    on-disk cache after the first run) and hold them to the floors."""
    if not (SHARED / "data" / "civic" / "dev.jsonl").exists():
        pytest.skip(f"shared data not found at {SHARED} (needed to recompute dev scores)")
    from nlp.training import evaluate, flat_headline

    base = load_baseline(MODELS / BASELINE_FILE)
    backends = sorted({k.split(".", 1)[0] for k in base["floors"]})
    scores = flat_headline(evaluate(SHARED, MODELS, backends=backends))
    assert check_floors(scores, base) == []


def test_keep_largest_zeroes_the_smallest_rows() -> None:
    import numpy as np

    from nlp.training import keep_largest

    w = np.array([[0.0, 0.0], [0.1, -0.2], [3.0, 0.0], [0.0, -1.0], [0.5, 0.4]])
    kept = keep_largest(w, 0.5)  # 4 used rows: the two of largest max |w| stay
    assert np.array_equal(kept, np.array([[0, 0], [0, 0], [3.0, 0], [0, -1.0], [0, 0]]))
    assert np.array_equal(keep_largest(w, 1.0), w)
    assert w[1, 1] == -0.2  # the input is not modified
    with pytest.raises(ValueError, match="keep fraction"):
        keep_largest(w, 0.0)
