"""Importer for the city's feedback channel: CSV/JSON exports of the 1022 portal → mentions.

Each report (id, time, category, text, location, status) becomes a `Mention` of source
``hotline-1022`` whose id is ``mention_id(source="hotline-1022", native_id=<report id>)``: importing
the same export again changes nothing, and a report exported again with a new status updates only the
status kept beside it (``crawl_hotline``). Rows that cannot be a mention (no id, no text, a time that
cannot be read, a time in the future) are skipped with a logged reason; the others are imported.

    >>> stats = import_hotline("exports/1022-2025-11.csv", "var/langnghe.sqlite3")
    >>> stats.inserted, stats.skipped
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from crawlers.extraction import parse_date_value
from langnghe.records import Mention, mention_id, utcnow
from nlp.text import normalize

logger = logging.getLogger(__name__)

SOURCE = "hotline-1022"
URL_PREFIX = "hotline-1022:"  # not a web address: the portal publishes no per-report page
MAX_TEXT_CHARS = 20_000

# column names seen in exports (English, Vietnamese with and without diacritics) → field
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "ma", "mã", "ma_phan_anh", "mã phản ánh", "ma phan anh", "report_id", "code", "so_phieu"),
    "time": ("time", "thoi_gian", "thời gian", "thoi gian", "created_at", "ngay_tiep_nhan", "ngày tiếp nhận",
             "ngay tiep nhan", "date", "timestamp"),
    "category": ("category", "linh_vuc", "lĩnh vực", "linh vuc", "loai", "loại", "nhom", "chuyen_muc"),
    "text": ("text", "noi_dung", "nội dung", "noi dung", "content", "description", "mo_ta", "mô tả"),
    "location": ("location", "dia_diem", "địa điểm", "dia diem", "dia_chi", "địa chỉ", "dia chi", "address"),
    "status": ("status", "trang_thai", "trạng thái", "trang thai", "tinh_trang", "tình trạng"),
}


class HotlineFormatError(ValueError):
    """A file that is not a 1022 export (unknown format, no id/text columns)."""


@dataclass
class ImportStats:
    """What one import did."""

    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    status_changed: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)

    @property
    def imported(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "status_changed": self.status_changed,
                "skipped": len(self.skipped), "skipped_reasons": [f"row {n}: {r}" for n, r in self.skipped[:50]]}


@dataclass
class HotlineReport:
    native_id: str
    time: datetime
    category: str | None
    text: str
    location: str | None
    status: str | None

    @property
    def row_hash(self) -> str:
        key = json.dumps([self.native_id, self.time.isoformat(), self.category, self.text, self.location,
                          self.status], ensure_ascii=False)
        return hashlib.sha1(key.encode("utf-8")).hexdigest()


def _norm_key(key: str) -> str:
    return " ".join(str(key).strip().lower().replace("-", "_").split())


def _field_map(keys: list[str]) -> dict[str, str]:
    """export column → our field, by the aliases."""
    lookup = {alias: name for name, aliases in ALIASES.items() for alias in aliases}
    out: dict[str, str] = {}
    for key in keys:
        norm = _norm_key(key)
        name = lookup.get(norm) or lookup.get(norm.replace(" ", "_")) or lookup.get(norm.replace("_", " "))
        if name and name not in out.values():
            out[key] = name
    return out


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The raw rows of a CSV (comma, semicolon or tab), JSON (a list, or an object holding one under
    data/items/records/reports) or JSON Lines export."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1258", errors="replace")  # a Windows export in the Vietnamese code page
    suffix = path.suffix.lower()
    stripped = text.lstrip()
    if suffix in (".jsonl", ".ndjson"):
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    yield {"__error__": f"line {number} is not JSON"}
        return
    if suffix == ".json" or stripped.startswith(("[", "{")):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise HotlineFormatError(f"{path}: not valid JSON ({exc})") from exc
        if isinstance(doc, dict):
            for key in ("data", "items", "records", "reports", "rows"):
                if isinstance(doc.get(key), list):
                    doc = doc[key]
                    break
        if not isinstance(doc, list):
            raise HotlineFormatError(f"{path}: JSON export must be a list of reports")
        yield from doc
        return
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    yield from csv.DictReader(io.StringIO(text), dialect=dialect)


def parse_report(raw: Any, fields: dict[str, str], *, now: datetime) -> HotlineReport:
    """One export row → report; ValueError with the reason for a row that cannot be one."""
    if not isinstance(raw, dict):
        raise ValueError("row is not an object")
    if "__error__" in raw:
        raise ValueError(raw["__error__"])
    values: dict[str, str | None] = {}
    for key, value in raw.items():
        name = fields.get(key)
        if name:
            text = normalize(str(value)) if value is not None else ""
            values[name] = text or None
    native_id = values.get("id")
    if not native_id:
        raise ValueError("no id")
    body = values.get("text")
    if not body or len(body) < 5:
        raise ValueError(f"report {native_id}: no text")
    when = parse_date_value(values.get("time"))
    if when is None:
        raise ValueError(f"report {native_id}: unreadable time {values.get('time')!r}")
    if when > now + timedelta(days=1):
        raise ValueError(f"report {native_id}: time in the future ({when.isoformat()})")
    return HotlineReport(native_id=native_id, time=when, category=values.get("category"),
                         text=body[:MAX_TEXT_CHARS], location=values.get("location"),
                         status=values.get("status"))


def report_to_mention(report: HotlineReport) -> Mention:
    """The mention of a report: the category (and place) as title; the place is repeated in the text
    so location resolution sees it."""
    title = report.category or "Phản ánh 1022"
    if report.location:
        title = f"{title} — {report.location}"
    text = report.text
    if report.location and report.location not in text:
        text = f"{text}\nĐịa điểm: {report.location}"
    return Mention(id=mention_id(source=SOURCE, native_id=report.native_id), source=SOURCE,
                   url=URL_PREFIX + report.native_id, title=title[:300], text=text,
                   published_at=report.time, crawled_at=utcnow(), language="vi")


def import_hotline(path: str | Path, db_path: str | Path, *, batch_size: int = 500) -> ImportStats:
    """Import a 1022 export file into the SQLite store at `db_path`; see the module docstring."""
    from crawlers.pipelines import open_store
    from crawlers.state import CrawlState

    file = Path(path)
    if not file.is_file():
        raise HotlineFormatError(f"{file}: no such file")
    stats = ImportStats()
    store = open_store(db_path)
    state = CrawlState(db_path)
    now = utcnow()
    fields: dict[str, str] | None = None
    batch: list[HotlineReport] = []

    def flush() -> None:
        if not batch:
            return
        # the same id twice in one file: the last row wins
        unique = {r.native_id: r for r in batch}
        reports = list(unique.values())
        known = state.hotline_rows([r.native_id for r in reports])
        result = store.write_mentions([report_to_mention(r) for r in reports])
        stats.inserted += result.inserted
        stats.updated += result.updated
        stats.unchanged += result.unchanged
        stats.status_changed += sum(1 for r in reports if r.native_id in known and known[r.native_id][1] != r.status)
        state.record_hotline([(r.native_id, mention_id(source=SOURCE, native_id=r.native_id), r.status, r.category,
                               r.location, r.row_hash) for r in reports])
        batch.clear()

    try:
        for number, raw in enumerate(read_rows(file), 1):
            stats.rows += 1
            if fields is None and isinstance(raw, dict) and "__error__" not in raw:
                fields = _field_map(list(raw))
                missing = {"id", "text", "time"} - set(fields.values())
                if missing:
                    raise HotlineFormatError(f"{file}: no column for {sorted(missing)} "
                                             f"(columns: {list(raw)})")
            try:
                report = parse_report(raw, fields or {}, now=now)
            except ValueError as exc:
                logger.warning("hotline import %s: row %d skipped: %s", file.name, number, exc)
                stats.skipped.append((number, str(exc)))
                continue
            batch.append(report)
            if len(batch) >= batch_size:
                flush()
        flush()
    finally:
        store.close()
        state.close()
    logger.info("hotline import %s: %d rows, %d new, %d updated, %d unchanged, %d skipped", file.name,
                stats.rows, stats.inserted, stats.updated, stats.unchanged, len(stats.skipped))
    return stats


def main(argv: list[str] | None = None) -> int:
    """``python -m crawlers.hotline FILE --db PATH``: import and print the stats as JSON."""
    import argparse

    from langnghe.config import get_settings

    parser = argparse.ArgumentParser(prog="python -m crawlers.hotline",
                                     description="Nhập phản ánh từ tệp xuất của cổng 1022 (import 1022 exports)")
    parser.add_argument("file", type=Path)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        stats = import_hotline(args.file, args.db or get_settings().database)
    except HotlineFormatError as exc:
        print(f"import-hotline: {exc}")
        return 2
    print(json.dumps(stats.to_dict(), ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
