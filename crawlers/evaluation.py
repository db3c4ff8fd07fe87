"""Extraction evaluation against golden pages: per-field accuracy with floors kept in a baseline.

A golden file maps a page's URL to the saved file and what a careful reader would extract from it
(``title``, ``published_at`` or ``published_at_date``, ``authors``, ``lead``, ``section``, ``tags``
/ ``tags_start`` / ``first_tag_contains``, ``paragraphs`` (scored by token F1),
``body_starts_with``, ``body_min_chars``, ``body_excludes``), or ``"kind": "not_article"`` for pages
that must be refused, or ``"kind": "forum"`` for a thread. `evaluate` scores `extract_article` (or
`parse_thread`) on every page; `check_floors` compares with the baseline's floors:

    python -m crawlers.evaluation --pages ../shared/pages --golden tests/fixtures/crawl/golden/golden.json \\
        --baseline tests/fixtures/crawl/golden/baseline.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from crawlers.extraction import ExtractionError, NoArticleBody, extract_article


def token_f1(predicted: str, expected: str) -> float:
    """Bag-of-words F1 of two texts (lower case word tokens)."""
    p = Counter(re.findall(r"\w+", predicted.lower()))
    e = Counter(re.findall(r"\w+", expected.lower()))
    common = sum((p & e).values())
    if not common:
        return 0.0
    precision, recall = common / sum(p.values()), common / sum(e.values())
    return 2 * precision * recall / (precision + recall)


@dataclass
class Report:
    """Per-metric scores (0..1) and the failures behind them."""

    checks: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    body_f1: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(self, metric: str, ok: bool, url: str, detail: str = "") -> None:
        self.checks[metric].append(ok)
        if not ok:
            self.failures.append(f"{metric}: {url} {detail}".strip())

    def metrics(self) -> dict[str, float]:
        out = {name: round(sum(v) / len(v), 4) for name, v in sorted(self.checks.items()) if v}
        if self.body_f1:
            out["body_f1"] = round(sum(self.body_f1) / len(self.body_f1), 4)
        return out


def _same_time(got: datetime | None, want: str) -> bool:
    return got is not None and got.tzinfo is not None and got == datetime.fromisoformat(want)


def evaluate(golden_path: Path, pages_dir: Path) -> Report:
    """Score extraction on every golden page found under `pages_dir`."""
    golden: dict[str, dict[str, Any]] = json.loads(golden_path.read_text(encoding="utf-8"))
    report = Report()
    for url, want in golden.items():
        path = pages_dir / want["file"]
        if not path.exists():
            report.add("pages_present", False, url, "(file missing)")
            continue
        data = path.read_bytes()
        kind = want.get("kind", "article")
        if kind == "not_article":
            try:
                extract_article(data, url)
                report.add("refusal", False, url, "(extracted as an article)")
            except NoArticleBody:
                report.add("refusal", True, url)
            continue
        if kind == "forum":
            from crawlers.forums import ForumParseError, parse_thread

            try:
                page = parse_thread(data, url)
            except ForumParseError as exc:
                report.add("forum", False, url, str(exc))
                continue
            first = page.posts[0] if page.posts else None
            ok = (want["title"] in page.title and len(page.posts) == want["posts"] and first is not None
                  and first.author == want["first_post_author"]
                  and _same_time(first.published_at, want["first_post_at"]))
            report.add("forum", ok, url)
            continue
        try:
            art = extract_article(data, url)
        except ExtractionError as exc:
            report.add("extracted", False, url, f"({exc})")
            continue
        report.add("extracted", True, url)
        if "title" in want:
            report.add("title", art.title == want["title"], url, f"got {art.title!r}")
        if "published_at" in want:
            report.add("date", _same_time(art.published_at, want["published_at"]), url, f"got {art.published_at}")
        if "published_at_date" in want:
            ok = art.published_at is not None and art.published_at.date().isoformat() == want["published_at_date"]
            report.add("date", ok, url, f"got {art.published_at}")
        if art.published_at is not None:
            report.add("date_has_timezone", art.published_at.tzinfo is not None, url)
        if "authors" in want:
            report.add("authors", art.authors == want["authors"], url, f"got {art.authors}")
        if "lead" in want:
            report.add("lead", art.lead == want["lead"], url, f"got {art.lead!r}")
        if "section" in want:
            report.add("section", art.section == want["section"], url, f"got {art.section!r}")
        if "tags" in want:
            report.add("tags", art.tags == want["tags"], url, f"got {art.tags}")
        if "tags_start" in want:
            ok = [t.lower() for t in art.tags[:len(want["tags_start"])]] == [t.lower() for t in want["tags_start"]]
            report.add("tags", ok, url, f"got {art.tags}")
        if "first_tag_contains" in want:
            report.add("tags", bool(art.tags) and want["first_tag_contains"] in art.tags[0], url, f"got {art.tags}")
        if "paragraphs" in want:
            f1 = token_f1(art.text, "\n".join(want["paragraphs"]))
            report.body_f1.append(f1)
            if f1 < 0.9:
                report.failures.append(f"body_f1: {url} {f1:.3f}")
        if "body_starts_with" in want:
            ok = bool(art.paragraphs) and art.paragraphs[0].startswith(want["body_starts_with"])
            report.add("body_start", ok, url, f"got {art.paragraphs[0][:60]!r}" if art.paragraphs else "")
        if "body_min_chars" in want:
            report.add("body_length", len(art.text) >= want["body_min_chars"], url, f"got {len(art.text)}")
        for phrase in want.get("body_excludes", []):
            report.add("boilerplate_free", phrase not in art.text, url, f"contains {phrase!r}")
    return report


def check_floors(metrics: dict[str, float], baseline: dict[str, float]) -> list[str]:
    """The metrics below their floor (a metric missing from `metrics` counts as 0)."""
    return [f"{name}: {metrics.get(name, 0.0):.4f} < floor {floor:.4f}"
            for name, floor in sorted(baseline.items()) if metrics.get(name, 0.0) + 1e-9 < floor]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawlers.evaluation", description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=Path, required=True)
    parser.add_argument("--golden", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, default=None, help="check these floors (exit 1 below them)")
    parser.add_argument("--write-baseline", type=Path, default=None, help="write the current scores as floors")
    args = parser.parse_args(argv)
    report = evaluate(args.golden, args.pages)
    metrics = report.metrics()
    print(json.dumps({"metrics": metrics, "failures": report.failures}, ensure_ascii=False, indent=1))
    if args.write_baseline:
        args.write_baseline.write_text(json.dumps(metrics, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    if args.baseline:
        below = check_floors(metrics, json.loads(args.baseline.read_text(encoding="utf-8")))
        for line in below:
            print("BELOW FLOOR", line, file=sys.stderr)
        return 1 if below else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
