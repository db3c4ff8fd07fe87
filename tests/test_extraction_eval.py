"""Evaluation gate: extraction scored on every golden page (../shared/pages), never below the floors
of tests/fixtures/crawl/golden/baseline.json. Raise a floor when extraction improves."""

from __future__ import annotations

import json
from pathlib import Path

from crawlers.evaluation import check_floors, evaluate

GOLDEN = Path(__file__).parent / "fixtures" / "crawl" / "golden"


def test_extraction_meets_the_baseline_floors(pages_dir: Path) -> None:
    report = evaluate(GOLDEN / "golden.json", pages_dir)
    metrics = report.metrics()
    baseline = json.loads((GOLDEN / "baseline.json").read_text(encoding="utf-8"))
    below = check_floors(metrics, baseline)
    assert not below, f"{below}\nfailures: {report.failures}"
    # every golden page was found and scored
    assert "pages_present" not in metrics
    assert sum(len(v) for v in report.checks.values()) >= 40


def test_floors_are_meaningful() -> None:
    baseline = json.loads((GOLDEN / "baseline.json").read_text(encoding="utf-8"))
    for metric in ("title", "date", "date_has_timezone", "authors", "body_f1", "refusal", "forum"):
        assert baseline[metric] >= 0.85, metric
    assert check_floors({"title": 0.5}, {"title": 0.9}) == ["title: 0.5000 < floor 0.9000"]
