"""SQLiteStore: the backend contract suite, plus what is particular to SQLite (schema versions,
migrations, WAL, threads, index use, speed)."""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
import unicodedata
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from langnghe.records import Mention
from nlp.text import fold
from storage import sqlite as sqlite_module
from storage.base import mention_filters
from storage.sqlite import SCHEMA_VERSION, SchemaVersionError, SQLiteStore, open_store, parse_query
from tests.store_contract import T0, StoreContract, corpus, make_entry, make_mention


class TestSQLiteStoreContract(StoreContract):
    """The shared backend contract, run on a fresh SQLite file."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteStore]:
        s = SQLiteStore(tmp_path / "store.sqlite3")
        yield s
        s.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sub" / "langnghe.sqlite3"


def test_new_file_has_current_schema_and_wal(db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        assert store.schema_version() == SCHEMA_VERSION
    raw = sqlite3.connect(db_path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_reopen_keeps_data(db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        store.write_mentions(corpus())
        store.set_state("k", "v")
    with open_store(db_path) as store:
        assert store.count_mentions() == 6
        assert store.get_state("k") == "v"
        assert {h.mention.id for h in store.search("ngap nuoc").hits} == {"m1", "m4"}
        assert store.write_mentions(corpus()).unchanged == 6


def test_open_store_uses_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from langnghe.config import get_settings

    monkeypatch.setenv("LANGNGHE_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        with open_store() as store:
            assert store.path == tmp_path / "data" / "langnghe.sqlite3"
        assert (tmp_path / "data" / "langnghe.sqlite3").exists()
    finally:
        get_settings.cache_clear()


def test_newer_schema_is_refused(db_path: Path) -> None:
    SQLiteStore(db_path).close()
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    raw.commit()
    raw.close()
    with pytest.raises(SchemaVersionError, match="newer"):
        SQLiteStore(db_path)


def test_migrations_apply_in_order_on_reopen(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SQLiteStore(db_path) as store:
        store.write_mentions(corpus())
    extra = ["ALTER TABLE mentions ADD COLUMN extra_note TEXT",
             "CREATE INDEX mentions_extra ON mentions(extra_note)"]
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", [*sqlite_module.MIGRATIONS, extra])
    monkeypatch.setattr(sqlite_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with SQLiteStore(db_path) as store:
        assert store.schema_version() == SCHEMA_VERSION + 1
        assert store.count_mentions() == 6
    raw = sqlite3.connect(db_path)
    columns = [row[1] for row in raw.execute("PRAGMA table_info(mentions)")]
    raw.close()
    assert "extra_note" in columns
    with SQLiteStore(db_path) as store:  # applied once only
        assert store.schema_version() == SCHEMA_VERSION + 1


def _schema_v2_file(path: Path, mentions: list[Mention]) -> None:
    """A store file as the version before the routing scores wrote it: the shipped migrations
    1-2 only, mentions in the columns that schema has, with their search and area rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = sqlite3.connect(path)
    for statements in sqlite_module.MIGRATIONS[:2]:
        for statement in statements:
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 2")
    columns = [row[1] for row in raw.execute("PRAGMA table_info(mentions)") if row[1] != "rid"]
    assert "department_score" not in columns and "topic_score" not in columns
    for rid, m in enumerate(mentions, start=1):
        values = {c: sqlite_module._mention_values(m)[c] for c in columns}
        raw.execute(f"INSERT INTO mentions (rid, {','.join(columns)}) "
                    f"VALUES (?, {','.join('?' * len(columns))})", (rid, *values.values()))
        raw.execute("INSERT INTO mentions_fts(rowid, title, text) VALUES (?, ?, ?)",
                    (rid, fold(m.title), fold(m.text)))
        raw.executemany("INSERT INTO mention_areas(area_id, published_at, mention_rid) VALUES (?, ?, ?)",
                        [(area, values["published_at"], rid) for area in m.areas])
    raw.commit()
    raw.close()


def test_schema_2_file_upgrades_to_routing_scores_keeping_its_rows(db_path: Path) -> None:
    old = [Mention.from_dict({**m.to_dict(), "topic_score": None, "department_score": None}) for m in corpus()]
    _schema_v2_file(db_path, old)
    with SQLiteStore(db_path) as store:
        assert store.schema_version() == SCHEMA_VERSION >= 3
        assert store.count_mentions() == 6
        assert store.get_mentions([m.id for m in old]) == old  # every field as written, scores None
        assert {h.mention.id for h in store.search("ngap nuoc").hits} == {"m1", "m4"}
        assert store.count_mentions(mention_filters(area="fd:thu-duc")) == 2
        assert store.write_mentions(old).unchanged == 6
        # the new columns take the scores of a new classification and read them back
        assert store.update_enrichment([Mention.from_dict({**old[0].to_dict(), "topic_score": 0.95,
                                                           "department_score": 0.35})]) == 1
        got = store.get_mention("m1")
        assert got is not None and (got.topic_score, got.department_score) == (0.95, 0.35)
        assert got.topic == old[0].topic and got.issue_id == old[0].issue_id
    raw = sqlite3.connect(db_path)
    types = {row[1]: row[2] for row in raw.execute("PRAGMA table_info(mentions)")}
    stored = raw.execute("SELECT topic_score, department_score FROM mentions WHERE id = 'm1'").fetchone()
    raw.close()
    assert types["topic_score"] == types["department_score"] == "REAL"
    assert stored == (0.95, 0.35)


def test_failed_migration_leaves_file_untouched(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    SQLiteStore(db_path).close()
    broken = ["CREATE TABLE fine_so_far (x)", "THIS IS NOT SQL"]
    monkeypatch.setattr(sqlite_module, "MIGRATIONS", [*sqlite_module.MIGRATIONS, broken])
    monkeypatch.setattr(sqlite_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(sqlite3.OperationalError):
        SQLiteStore(db_path)
    raw = sqlite3.connect(db_path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'fine_so_far'").fetchone()[0] == 0
    raw.close()


def test_memory_is_refused() -> None:
    with pytest.raises(ValueError):
        SQLiteStore(":memory:")


def test_closed_store_raises(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.count_mentions()


def test_datetimes_stored_as_sortable_utc(db_path: Path) -> None:
    from datetime import timezone

    local = timezone(timedelta(hours=7))
    with SQLiteStore(db_path) as store:
        store.write_mentions([make_mention("a", published_at=T0.astimezone(local))])
    raw = sqlite3.connect(db_path)
    assert raw.execute("SELECT published_at FROM mentions").fetchone()[0] == "2025-11-20T08:00:00.000000Z"
    raw.close()


def test_search_index_rebuilt_when_folding_changes(db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        store.write_mentions(corpus())
    raw = sqlite3.connect(db_path)  # simulate an index built by another version of fold()
    raw.execute("INSERT INTO mentions_fts(mentions_fts) VALUES ('delete-all')")
    raw.execute("UPDATE meta SET value = 'stale' WHERE key = 'fold'")
    raw.commit()
    raw.close()
    with SQLiteStore(db_path) as store:
        assert {h.mention.id for h in store.search("ngap nuoc").hits} == {"m1", "m4"}


def test_rebuild_search_index_keeps_results(db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        store.write_mentions(corpus())
        before = [h.mention.id for h in store.search("thu duc").hits]
        store.rebuild_search_index()
        store.optimize()
        assert [h.mention.id for h in store.search("thu duc").hits] == before


def test_vietnamese_letters_fold_one_to_one() -> None:
    """The highlight maps folded positions back to the original text; for NFC Vietnamese every
    letter folds to exactly one char (checked here over all precomposed Latin letters used)."""
    letters = "".join(chr(c) for c in range(0x00C0, 0x1EFF + 1)
                      if unicodedata.category(chr(c)).startswith("L") and c < 0x0250 or 0x1EA0 <= c <= 0x1EF9)
    letters += "đĐ"
    assert all(len(fold(ch)) == 1 for ch in letters)
    assert fold("Ngập nước Thủ Đức") == "ngap nuoc thu duc"


def test_highlight_with_decomposed_text(db_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "Ngập nước ở Thủ Đức")
    with SQLiteStore(db_path) as store:
        store.write_mentions([make_mention("d", title="Tin", text=decomposed)])
        hit = store.search("thu duc").hits[0]
    assert hit.highlight is not None
    assert hit.highlight.count("<mark>") == 2
    marked = hit.highlight.split("<mark>")[1].split("</mark>")[0]
    assert unicodedata.normalize("NFC", marked) == "Thủ"


def test_parse_query() -> None:
    assert parse_query("Ngập Nước").match == '"ngap" AND "nuoc"'
    assert parse_query('"Thủ Đức" rác*').match == '"thu duc" AND "rac"*'
    assert parse_query("a-b").match == '"a b"'
    assert parse_query('x" OR (y').match == '"x" AND "or y"'  # an open quote runs to the end
    assert parse_query("r*").match == '"r"'  # one-letter prefixes are not expanded
    assert parse_query('"').match is None
    many = parse_query(" ".join(f"w{i}" for i in range(100))).match
    assert many is not None and many.count('"') == 2 * sqlite_module.MAX_QUERY_TERMS


def test_area_rows_follow_published_at(db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        m = corpus()[0]
        store.write_mentions([m])
        moved = Mention.from_dict({**m.to_dict(), "published_at": T0 + timedelta(days=30)})
        store.write_mentions([moved])
        f = mention_filters(area="fd:thu-duc", since=T0 + timedelta(days=29))
        assert store.count_mentions(f) == 1
    raw = sqlite3.connect(db_path)
    assert raw.execute("SELECT COUNT(*) FROM mention_areas").fetchone()[0] == 2
    raw.close()


def test_top_issues_uses_the_primary_key_and_is_fast(db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        areas = ["hcmc"] + [f"fd:d{i}" for i in range(22)] + [f"w:{26700 + i}" for i in range(168)]
        for day in range(30):
            key = (T0 + timedelta(days=day)).date().isoformat()
            entries = [make_entry(a, r, key=key) for a in areas for r in range(1, 11)]
            store.replace_rankings("day", key, entries)
        conn = store._conn()
        plan = " ".join(str(tuple(r)) for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM rankings WHERE area_id = ? AND period = ? AND period_key = ? "
            "ORDER BY rank LIMIT ?", ("hcmc", "day", "2025-11-25", 10)))
        assert "PRIMARY KEY" in plan and "TEMP B-TREE" not in plan
        times = []
        for _ in range(200):
            start = time.perf_counter()
            top = store.top_issues("w:26750", "day", "2025-11-25")
            times.append(time.perf_counter() - start)
        assert [e.rank for e in top] == list(range(1, 11))
        median_ms = statistics.median(times) * 1000
        print(f"top_issues median {median_ms:.3f} ms over {30 * len(areas) * 10} ranking rows")
        assert median_ms < 5


def test_threads_read_while_one_writes(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    store.write_mentions(corpus())
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for batch in range(20):
                store.write_mentions([make_mention(f"t{batch}-{i}", title="Ngập nước", text=f"đợt {batch}")
                                      for i in range(50)])
                store.set_state("batch", str(batch))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                page = store.search("ngap nuoc", mention_filters(since=T0 - timedelta(days=1)), limit=5)
                assert page.total >= 1
                assert store.count_mentions() >= 6
                store.top_issues("hcmc", "day", "2025-11-20")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert store.count_mentions() == 6 + 20 * 50
    assert store.get_state("batch") == "19"
    store.close()


def test_two_stores_on_one_file(db_path: Path) -> None:
    """Two processes' worth of stores (e.g. the crawler and the API) share the file."""
    a, b = SQLiteStore(db_path), SQLiteStore(db_path)
    a.write_mentions(corpus()[:3])
    b.write_mentions(corpus()[3:])
    assert a.count_mentions() == b.count_mentions() == 6
    a.close()
    b.close()


@pytest.mark.slow
def test_write_speed_100k(tmp_path: Path) -> None:
    """Measures (prints) the write speed of 100,000 generated mentions; asserts only correctness."""
    from bench.bench_store import generate_mentions

    mentions = list(generate_mentions(100_000))
    with SQLiteStore(tmp_path / "big.sqlite3") as store:
        start = time.perf_counter()
        result = store.write_mentions(mentions)
        elapsed = time.perf_counter() - start
        print(f"wrote 100,000 mentions in {elapsed:.1f} s ({100_000 / elapsed:,.0f}/s)")
        assert result.inserted == 100_000
        start = time.perf_counter()
        assert store.write_mentions(mentions[:10_000]).unchanged == 10_000
        print(f"re-wrote 10,000 unchanged mentions in {time.perf_counter() - start:.2f} s")
        assert store.count_mentions() == 100_000


def test_phrase_highlight_marks_the_phrase_only(db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        store.write_mentions([make_mention("p", title="Tin", text="Nước ngập sâu, rồi ngập nước cả ngày.")])
        hit = store.search('"ngap nuoc"').hits[0]
    assert hit.highlight == "Nước ngập sâu, rồi <mark>ngập nước</mark> cả ngày."


def test_area_filter_reads_the_area_index(db_path: Path) -> None:
    from storage.sqlite import _plan

    with SQLiteStore(db_path) as store:
        plan = _plan(mention_filters(area="fd:quan-7", since=T0, topic="flooding"))
        sql = (f"SELECT m.* FROM {plan.rows_source} WHERE {plan.where} "
               f"ORDER BY {plan.published} DESC, {plan.rid} DESC LIMIT 20")
        rows = store._conn().execute(f"EXPLAIN QUERY PLAN {sql}", plan.params)
        steps = " ".join(str(tuple(r)) for r in rows)
        assert "SEARCH a USING PRIMARY KEY (area_id=? AND published_at>?)" in steps
        assert "TEMP B-TREE" not in steps
        count_plan = _plan(mention_filters(area="hcmc", since=T0))
        assert count_plan.source == "mention_areas a"  # counted from the index alone
