"""`classify_file`: the stable JSONL interface of `langnghe classify` (called as a function)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from langnghe.records import Location
from nlp.classify import classify_file

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
SHARED = REPO.parent / "shared"


class FakeResolver:
    """Finds one known street, so the interface is tested without the gazetteer."""

    def resolve(self, text: str) -> list[Location]:
        span = "đường Nguyễn Hữu Cảnh"
        i = text.find(span)
        if i < 0:
            return []
        return [Location(text=span, start=i, end=i + len(span), level="street",
                         former_district="Bình Thạnh", ward=None)]


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n"
                            for r in rows), encoding="utf-8")
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_classify_small_file(tmp_path: Path) -> None:
    text = "Sau cơn mưa lớn, đường Nguyễn Hữu Cảnh ngập sâu, xe chết máy hàng loạt"
    inp = _write(tmp_path / "in.jsonl", [
        {"id": "a", "text": text, "title": "Ngập nặng"},
        {"id": 7, "text": "Đội tuyển bóng đá thắng 2-0 trong trận giao hữu tối qua"},
        "",
    ])
    out = tmp_path / "sub" / "out.jsonl"
    assert classify_file(inp, out, MODELS, batch_size=1, resolver=FakeResolver()) == 2
    rows = _read(out)
    assert [r["id"] for r in rows] == ["a", 7]
    first, second = rows
    assert set(first) == {"id", "civic", "sentiment", "topic", "department", "scores", "locations"}
    assert (first["civic"], first["topic"], first["department"]) == (True, "flooding", "construction")
    assert set(first["scores"]) == {"civic", "sentiment", "topic", "department"}
    assert first["scores"]["civic"] >= 0.5 and 0.0 < first["scores"]["department"] <= 1.0
    (loc,) = first["locations"]
    assert text[loc["start"]:loc["end"]] == loc["text"] == "đường Nguyễn Hữu Cảnh"  # offsets into `text`
    assert loc["former_district"] == "Bình Thạnh" and set(loc) == {"text", "start", "end", "former_district",
                                                                   "ward"}
    assert (second["civic"], second["topic"], second["department"]) == (False, "not_civic", "none")
    assert second["scores"]["civic"] < 0.5
    assert second["scores"]["department"] == 0.0 or second["scores"]["civic"] >= 0.05
    assert second["locations"] == []


def test_real_resolver_offsets(tmp_path: Path) -> None:
    pytest.importorskip("nlp.locations")
    text = "Người dân quận Bình Thạnh phản ánh đường Nguyễn Hữu Cảnh ngập nặng"
    inp = _write(tmp_path / "in.jsonl", [{"id": "x", "text": text, "title": "TP.HCM mưa lớn"}])
    out = tmp_path / "out.jsonl"
    assert classify_file(inp, out, MODELS) == 1
    (row,) = _read(out)
    assert row["locations"], "expected at least one location"
    for loc in row["locations"]:
        assert text[loc["start"]:loc["end"]] == loc["text"]
    assert "Bình Thạnh" in {loc["former_district"] for loc in row["locations"]}


def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp = tmp_path / "empty.jsonl"
    inp.write_text("", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert classify_file(inp, out, MODELS, resolver=FakeResolver()) == 0
    assert out.exists() and out.read_text(encoding="utf-8") == ""
    assert "no items" in capsys.readouterr().err


@pytest.mark.parametrize(("bad", "message"), [
    ("{not json", "not valid JSON"),
    ('{"text": "thiếu id"}', "missing field"),
    ('{"id": "z"}', "missing field"),
    ('["a", "b"]', "JSON object"),
    ('{"id": "z", "text": 5}', "must be"),
])
def test_malformed_line_names_line_and_writes_nothing(tmp_path: Path, bad: str, message: str) -> None:
    rows: list[object] = [{"id": str(i), "text": "Kẹt xe kéo dài ở vòng xoay"} for i in range(3)]
    inp = _write(tmp_path / "in.jsonl", [*rows, bad])
    out = tmp_path / "out.jsonl"
    with pytest.raises(ValueError, match=message) as err:
        classify_file(inp, out, MODELS, batch_size=2, resolver=FakeResolver())
    assert ":4:" in str(err.value)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [inp]  # no temporary file left behind


def test_a_line_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_bytes(b'\xef\xbb\xbf{"id": "1", "text": "ok"}\n{"id": "2", "text": "\xff\xfe x"}\n')
    out = tmp_path / "out.jsonl"
    with pytest.raises(ValueError, match=r":2: .*not UTF-8"):
        classify_file(inp, out, MODELS, resolver=FakeResolver())
    assert not out.exists()
    inp.write_bytes(b'\xef\xbb\xbf{"id": "1", "text": "ok"}\r\n')  # a byte-order mark and CRLF are fine
    assert classify_file(inp, out, MODELS, resolver=FakeResolver()) == 1


def test_a_huge_text_is_read_up_to_the_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nlp.classify import MAX_TEXT_CHARS

    seen: list[int] = []

    class Recorder(FakeResolver):
        def resolve(self, text: str) -> list[Location]:
            seen.append(len(text))
            return super().resolve(text)

    inp = _write(tmp_path / "in.jsonl", [{"id": "big", "text": "ngập nước " * (MAX_TEXT_CHARS // 5)},
                                         {"id": "small", "text": "Kẹt xe"}])
    out = tmp_path / "out.jsonl"
    assert classify_file(inp, out, MODELS, resolver=Recorder()) == 2
    assert seen == [MAX_TEXT_CHARS, len("Kẹt xe")]
    assert "in.jsonl:1:" in capsys.readouterr().err


def test_existing_output_kept_on_error(tmp_path: Path) -> None:
    inp = _write(tmp_path / "in.jsonl", [{"id": "1", "text": "ok"}, "nope"])
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n", encoding="utf-8")
    with pytest.raises(ValueError, match=":2:"):
        classify_file(inp, out, MODELS, resolver=FakeResolver())
    assert out.read_text(encoding="utf-8") == "previous\n"


@pytest.mark.slow
@pytest.mark.integration
def test_civic_dev_end_to_end_with_scorer(tmp_path: Path) -> None:
    gold = SHARED / "data" / "civic" / "dev.jsonl"
    scorer = SHARED / "tools" / "score_classify.py"
    if not gold.exists() or not scorer.exists():
        pytest.skip(f"shared data not found at {SHARED}")
    pytest.importorskip("nlp.locations")
    out = tmp_path / "pred.jsonl"
    assert classify_file(gold, out, MODELS) == 190
    for metric, goal in (("civic", 0.75), ("civic-topic", 0.55), ("civic-department", 0.55),
                         ("civic-sentiment", 0.55)):
        res = subprocess.run([sys.executable, str(scorer), metric, str(gold), str(out), str(goal)],
                             capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
