"""The `langnghe` command: subcommands reach their stage and bad input exits with code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from langnghe.cli import main
from storage.sqlite import SQLiteStore

HOTLINE = Path(__file__).parent / "fixtures" / "crawl" / "hotline" / "1022-export.csv"


def test_sources_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sources", "--json"]) == 0
    sources = json.loads(capsys.readouterr().out)
    names = {s["name"] for s in sources}
    assert len(sources) >= 20
    assert {"vnexpress.net", "tuoitre.vn", "thanhnien.vn"} <= names


def test_import_hotline_twice_stores_once(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    assert main(["import-hotline", str(HOTLINE), "--db", str(db)]) == 0
    with SQLiteStore(db) as store:
        first = store.count_mentions()
    assert first > 0
    assert main(["import-hotline", str(HOTLINE), "--db", str(db)]) == 0
    with SQLiteStore(db) as store:
        assert store.count_mentions() == first
        assert all(m.source == "hotline-1022" for m in store.iter_mentions())


def test_classify_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "in.jsonl"
    bad.write_text('{"id": "1", "text": "Kẹt xe"}\nnot json\n', encoding="utf-8")
    assert main(["classify", "--input", str(bad), "--output", str(tmp_path / "out.jsonl")]) == 2
    assert "2" in capsys.readouterr().err  # names the line
    assert not (tmp_path / "out.jsonl").exists()


def test_classify_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["classify", "--input", str(empty), "--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == ""


def test_extract_prints_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "a.html"
    page.write_text(
        '<html lang="vi"><head><meta charset="utf-8"><title>Ngập nước</title>'
        '<meta property="article:published_time" content="2025-11-20T08:30:00+07:00">'
        '<meta name="author" content="Lê Phương"></head><body><article><h1>Đường Nguyễn Hữu Cảnh ngập sâu</h1>'
        + "".join(f"<p>Đoạn {i}: mưa lớn khiến đường Nguyễn Hữu Cảnh ngập sâu, xe cộ chết máy hàng loạt.</p>"
                  for i in range(6))
        + "</article></body></html>", encoding="utf-8")
    assert main(["extract", "--url", "https://vnexpress.net/ngap-123.html", str(page)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["title"] == "Đường Nguyễn Hữu Cảnh ngập sâu"
    assert record["published_at"] == "2025-11-20T08:30:00+07:00"
    assert "ngập sâu" in record["text"]


def test_extract_homepage_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "home.html"
    page.write_text("<html><body><nav><a href='/a'>A</a></nav></body></html>", encoding="utf-8")
    assert main(["extract", "--url", "https://vnexpress.net/", str(page)]) == 2
    assert "extract:" in capsys.readouterr().err


def test_crawl_without_targets_exits_2(tmp_path: Path) -> None:
    assert main(["crawl", "--db", str(tmp_path / "c.sqlite3")]) == 2


def test_model_adapt_is_a_model_command(tmp_path: Path) -> None:
    from langnghe.cli import build_parser

    args = build_parser().parse_args(["model", "adapt", "--epochs", "2", "--shared", str(tmp_path)])
    assert (args.model_command, args.epochs) == ("adapt", 2.0)
    # without the labelled data it says so instead of starting a 20-minute run
    assert main(["model", "adapt", "--shared", str(tmp_path)]) == 2
    assert main(["model", "accents", "--shared", str(tmp_path)]) == 2
