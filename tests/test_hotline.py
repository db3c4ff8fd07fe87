"""The 1022 portal importer: CSV/JSON exports → mentions, bad rows skipped, re-import idempotent."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from crawlers.hotline import SOURCE, HotlineFormatError, import_hotline
from crawlers.state import CrawlState
from langnghe.records import mention_id, parse_datetime
from storage.sqlite import SQLiteStore

FIXTURES = Path(__file__).parent / "fixtures" / "crawl" / "hotline"


def test_csv_export_becomes_mentions_and_bad_rows_are_skipped(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "db.sqlite3"
    with caplog.at_level(logging.WARNING, logger="crawlers.hotline"):
        stats = import_hotline(FIXTURES / "1022-export.csv", db)
    assert stats.rows == 7 and stats.inserted == 3
    reasons = dict(stats.skipped)
    assert sorted(reasons) == [4, 5, 6, 7]
    assert reasons[4] == "no id"
    assert "unreadable time" in reasons[5] and "no text" in reasons[6] and "future" in reasons[7]
    assert "row 5 skipped" in caplog.text
    store = SQLiteStore(db)
    try:
        m = store.get_mention(mention_id(source=SOURCE, native_id="PA-2025-000102"))
        assert m is not None
        assert m.source == "hotline-1022" and m.url == "hotline-1022:PA-2025-000102"
        assert m.title == "Trật tự đô thị — Phường Hiệp Bình, TP Thủ Đức cũ"
        assert "karaoke" in m.text and "Địa điểm: Phường Hiệp Bình" in m.text
        assert m.published_at == parse_datetime("2025-11-19T21:10:00+07:00")  # naive → city time
        m3 = store.get_mention(mention_id(source=SOURCE, native_id="PA-2025-000103"))
        assert m3 is not None and m3.published_at == parse_datetime("2025-11-20T01:15:00+00:00")
    finally:
        store.close()
    assert CrawlState(db).hotline_status("PA-2025-000101") == "Đang xử lý"


def test_reimport_is_idempotent_and_tracks_status(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    first = import_hotline(FIXTURES / "1022-export.csv", db)
    again = import_hotline(FIXTURES / "1022-export.csv", db)
    assert first.inserted == 3
    assert again.inserted == 0 and again.updated == 0 and again.unchanged == 3 and again.status_changed == 0
    # a JSON export with Vietnamese column names: one known report (new status), one new, one bad row
    json_stats = import_hotline(FIXTURES / "1022-export.json", db)
    assert json_stats.inserted == 1 and json_stats.unchanged == 1 and json_stats.status_changed == 1
    assert json_stats.skipped == [(3, "row is not an object")]
    store = SQLiteStore(db)
    try:
        assert store.count_mentions() == 4
    finally:
        store.close()
    assert CrawlState(db).hotline_status("PA-2025-000101") == "Đã xử lý"


def test_not_an_export_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "khac.csv"
    bad.write_text("ten,tuoi\nAn,30\n", encoding="utf-8")
    with pytest.raises(HotlineFormatError, match="no column for"):
        import_hotline(bad, tmp_path / "db.sqlite3")
    with pytest.raises(HotlineFormatError, match="no such file"):
        import_hotline(tmp_path / "missing.csv", tmp_path / "db.sqlite3")
    semicolon = tmp_path / "export.csv"
    text = (FIXTURES / "1022-export.csv").read_text(encoding="utf-8")
    shutil.copy(FIXTURES / "1022-export.csv", tmp_path / "copy.csv")
    semicolon.write_text(text.replace(",", ";").replace("; ", ", "), encoding="utf-8-sig")
    assert import_hotline(semicolon, tmp_path / "db2.sqlite3").inserted == 3
