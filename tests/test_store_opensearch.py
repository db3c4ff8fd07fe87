"""SearchEngineStore on a real OpenSearch node (started by this module from Maven Central jars):
the shared backend contract, plus what is particular to a search engine (templates, aliases, the
Vietnamese analyser, aggregations, concurrency, migration from SQLite). An Elasticsearch run
happens when LANGNGHE_TEST_ELASTICSEARCH_URL names a node."""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from langnghe.records import Mention
from storage import aggregations
from storage import query_builder as qb
from storage.base import mention_filters
from storage.migrate import migrate
from storage.search_engine import SearchEngineStore, connect
from storage.sqlite import SQLiteStore
from tests.store_contract import T0, StoreContract, enriched, make_mention

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def shared_store(opensearch_url: str) -> Iterator[SearchEngineStore]:
    store = connect(f"{opensearch_url}?prefix=lt-contract-{uuid.uuid4().hex[:8]}")
    yield store
    store.drop()
    store.close()


@pytest.fixture
def fresh_store(opensearch_url: str) -> Iterator[SearchEngineStore]:
    store = connect(f"{opensearch_url}?prefix=lt-{uuid.uuid4().hex[:10]}")
    yield store
    store.drop()
    store.close()


class TestOpenSearchStoreContract(StoreContract):
    """The shared backend contract on OpenSearch (one set of indices, emptied before each test)."""

    @pytest.fixture
    def store(self, shared_store: SearchEngineStore) -> Iterator[SearchEngineStore]:
        shared_store.clear()
        yield shared_store


# -- layout: templates, aliases, analyser


def test_indices_template_and_aliases(fresh_store: SearchEngineStore) -> None:
    p = fresh_store.prefix
    assert fresh_store.indices() == sorted([f"{p}-issues-v1", f"{p}-mentions-000001", f"{p}-periods-v1",
                                            f"{p}-rankings-v1", f"{p}-state-v1"])
    template = fresh_store.client.request("GET", f"/_index_template/{p}-mentions")
    assert template["index_templates"][0]["index_template"]["index_patterns"] == [f"{p}-mentions-*"]
    mapping = fresh_store.client.request("GET", f"/{p}-mentions/_mapping")
    props = mapping[f"{p}-mentions-000001"]["mappings"]["properties"]
    assert props["areas"]["type"] == "keyword" and props["title"]["analyzer"] == "vi_folded"
    # opening again (another process) changes nothing
    again = SearchEngineStore(fresh_store.client, prefix=p)
    assert again.indices() == fresh_store.indices()


def test_mentions_index_of_an_older_version_gets_the_new_fields(opensearch_url: str) -> None:
    """An index created before topic_score / department_score / story_id (a strict mapping without
    them) is given the fields when the store opens it, so writes carrying them are accepted; its
    old documents (no story_id) read as having no story and take one on a later write."""
    p = f"lt-{uuid.uuid4().hex[:10]}"
    probe = connect(f"{opensearch_url}?prefix={p}", create=False)
    try:
        old = qb.mention_mappings(probe.flavor)
        for name in ("topic_score", "department_score", "story_id"):
            del old["properties"][name]
        probe.client.request("PUT", f"/{p}-mentions-000001", {
            "aliases": {f"{p}-mentions": {"is_write_index": True}},
            "settings": qb.index_settings(probe.flavor), "mappings": old})
        legacy = {k: v for k, v in qb.mention_to_doc(make_mention("old"), 1).items()
                  if k not in ("topic_score", "department_score", "story_id")}
        probe.client.request("PUT", f"/{p}-mentions/_doc/old", legacy, {"refresh": "true"})
        store = SearchEngineStore(probe.client, prefix=p)
        store.write_mentions([enriched(make_mention("a", story_id="story-a"), department_score=0.25)])
        got = store.get_mention("a")
        assert got is not None and (got.topic_score, got.department_score) == (0.87, 0.25)
        assert got.story_id == "story-a"
        got = store.get_mention("old")
        assert got is not None and got.story_id is None
        assert store.write_mentions([make_mention("old")]).unchanged == 1
        assert store.write_mentions([make_mention("old", story_id="story-a")]).updated == 1
        assert store.get_mention("old").story_id == "story-a"  # type: ignore[union-attr]
        mapping = probe.client.request("GET", f"/{p}-mentions/_mapping")
        props = mapping[f"{p}-mentions-000001"]["mappings"]["properties"]
        assert props["topic_score"] == props["department_score"] == {"type": "float"}
        assert props["story_id"] == {"type": "keyword"}
    finally:
        probe.drop()
        probe.close()


@pytest.mark.parametrize("text, expected", [
    ("Ngập nước ở Thủ Đức", ["ngap", "nuoc", "o", "thu", "duc"]),
    ("ĐƯỜNG Đồng Khởi", ["duong", "dong", "khoi"]),
    ("Quận 7, TP.HCM_2025", ["quan", "7", "tp", "hcm", "2025"]),
    ("Nga\u0323\u0302p nươ\u0301c", ["ngap", "nuoc"]),  # decomposed input
])
def test_vietnamese_analyser_folds_like_sqlite(shared_store: SearchEngineStore, text: str,
                                               expected: list[str]) -> None:
    from nlp.text import fold
    from storage.sqlite import _TOKEN

    answer = shared_store.client.request("POST", f"/{shared_store.mentions}/_analyze",
                                         {"analyzer": "vi_folded", "text": text})
    tokens = [t["token"] for t in answer["tokens"]]
    assert tokens == expected
    import unicodedata

    assert tokens == _TOKEN.findall(fold(unicodedata.normalize("NFC", text)))


# -- same results as SQLite, aggregations


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "s.sqlite3")
    yield s
    s.close()


def _mixed_corpus(n: int = 300) -> list[Mention]:
    topics = ["flooding", "traffic", "waste", None]
    areas = [["hcmc", "fd:thu-duc"], ["hcmc", "fd:quan-7", "w:27487"], ["hcmc", "fd:binh-thanh"], []]
    words = ["ngập nước", "kẹt xe", "rác thải", "Thủ Đức", "Quận 7", "đường Đồng Khởi", "mưa lớn"]
    out = []
    for i in range(n):
        m = make_mention(f"x{i:04d}", title=f"{words[i % 7]} số {i}", text=f"{words[(i * 3) % 7]} và {words[i % 5]}",
                         source=["vnexpress.net", "tuoitre.vn", "thanhnien.vn"][i % 3],
                         published_at=T0 + timedelta(hours=7 * i), crawled_at=T0 + timedelta(hours=7 * i + 1))
        if i % 4:
            m = enriched(m, topic=topics[i % 4], areas=areas[i % 4], issue_id=f"iss-{i % 9}",
                         sentiment=["negative", "neutral", "positive"][i % 3],
                         department=["construction", "transport", None][i % 3])
        out.append(m)
    return out


def test_same_answers_as_sqlite(shared_store: SearchEngineStore, sqlite_store: SQLiteStore) -> None:
    shared_store.clear()
    ms = _mixed_corpus()
    assert shared_store.write_mentions(ms) == sqlite_store.write_mentions(ms)
    for query in ["ngap nuoc", "Thủ Đức", "ket xe quan 7", '"duong dong khoi"', "mua*", "so 12", "duc"]:
        for filters in (None, mention_filters(area="fd:quan-7"), mention_filters(topic="traffic",
                                                                                  since=T0 + timedelta(days=20))):
            a, b = shared_store.search(query, filters, limit=500), sqlite_store.search(query, filters, limit=500)
            assert a.total == b.total, (query, filters)
            assert {h.mention.id for h in a.hits} == {h.mention.id for h in b.hits}
            assert {h.mention.id: h.highlight for h in a.hits} == {h.mention.id: h.highlight for h in b.hits}
    newest = shared_store.search(None, mention_filters(area="hcmc"), limit=50, offset=20)
    assert [h.mention.id for h in newest.hits] == [
        h.mention.id for h in sqlite_store.search(None, mention_filters(area="hcmc"), limit=50, offset=20).hits]
    assert [m.id for m in shared_store.unprocessed_mentions(30)] == [
        m.id for m in sqlite_store.unprocessed_mentions(30)]


def test_aggregations_match_the_generic_ones(shared_store: SearchEngineStore, sqlite_store: SQLiteStore) -> None:
    shared_store.clear()
    ms = _mixed_corpus()
    shared_store.write_mentions(ms)
    sqlite_store.write_mentions(ms)
    f = mention_filters(since=T0 + timedelta(days=10))
    assert shared_store.facets(f) == aggregations.facets(sqlite_store, f)
    assert shared_store.facets() == aggregations.facets(sqlite_store)
    hist = shared_store.date_histogram(f)
    assert hist == aggregations.date_histogram(sqlite_store, f)
    assert sum(c for _, c, _ in hist) == sqlite_store.count_mentions(f)
    for group in ("area", "department"):
        top = shared_store.top_issues_by_group(group, f)
        assert top == aggregations.top_issues_by_group(sqlite_store, group, f)
        assert all(len(v) <= 10 for v in top.values()) and top
    top = shared_store.top_issues_by_group("area")
    counts = Counter(m.issue_id for m in ms if "fd:quan-7" in m.areas and m.issue_id)
    assert [(r["issue_id"], r["mentions"]) for r in top["fd:quan-7"]] == sorted(
        counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]


# -- concurrency, bulk


def test_concurrent_writers_lose_nothing(fresh_store: SearchEngineStore, opensearch_url: str) -> None:
    base = [make_mention(f"c{i:03d}") for i in range(60)]
    fresh_store.write_mentions(base)
    other = connect(f"{opensearch_url}?prefix={fresh_store.prefix}")
    errors: list[BaseException] = []

    def enrich(store: SearchEngineStore, part: list[Mention], topic: str) -> None:
        try:
            store.write_mentions([enriched(m, topic=topic) for m in part])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=enrich, args=(fresh_store, base[:40], "flooding")),
               threading.Thread(target=enrich, args=(other, base[20:], "traffic"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert not errors
    got = {m.id: m.topic for m in fresh_store.iter_mentions()}
    assert len(got) == 60 and all(got[f"c{i:03d}"] == "flooding" for i in range(20))
    assert all(got[f"c{i:03d}"] == "traffic" for i in range(40, 60))
    assert all(got[f"c{i:03d}"] in ("flooding", "traffic") for i in range(20, 40))
    assert fresh_store.unprocessed_mentions() == []


def test_bulk_load_without_refresh(fresh_store: SearchEngineStore) -> None:
    fresh_store.refresh_writes = False
    result = fresh_store.write_mentions(make_mention(f"b{i:05d}", text=f"ngập {i}") for i in range(3000))
    assert result.inserted == 3000
    fresh_store.refresh()
    assert fresh_store.count_mentions() == 3000
    assert fresh_store.search("ngap").total == 3000
    again = fresh_store.write_mentions(make_mention(f"b{i:05d}", text=f"ngập {i}") for i in range(3000))
    assert again.unchanged == 3000


# -- migration


def test_migrate_sqlite_to_opensearch_is_idempotent_and_resumable(
        tmp_path: Path, fresh_store: SearchEngineStore, opensearch_url: str) -> None:
    from tests.store_contract import make_entry, make_issue

    src = SQLiteStore(tmp_path / "src.sqlite3")
    ms = [Mention.from_dict({**m.to_dict(), "story_id": f"x{i - i % 3:04d}"}) if i % 5 else m
          for i, m in enumerate(_mixed_corpus(250))]  # syndicated copies share a story
    src.write_mentions(ms)
    src.write_issues([make_issue("iss-1"), make_issue("iss-2")])
    src.replace_rankings("day", "2025-11-20", [make_entry("hcmc", 1), make_entry("fd:quan-7", 1)])
    src.set_state("crawl:vnexpress", "2025-11-20T08:00:00Z")
    src.close()
    target = f"{opensearch_url}?prefix={fresh_store.prefix}"
    def interrupt(stats: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # interrupted after the first batch
        migrate(tmp_path / "src.sqlite3", target, batch_size=100, on_batch=interrupt)
    assert fresh_store.count_mentions() == 100
    stats = migrate(tmp_path / "src.sqlite3", target, batch_size=100)
    assert stats.resumed_from is not None and stats.mentions_read == 150
    assert stats.mentions.inserted == 150
    assert fresh_store.count_mentions() == 250
    again = migrate(tmp_path / "src.sqlite3", target, batch_size=100, restart=True)
    assert again.mentions.inserted == 0 and again.mentions.unchanged == 250
    assert again.issues.unchanged == 2 and again.rankings == 2 and again.states >= 1
    with SQLiteStore(tmp_path / "src.sqlite3") as check:
        assert {m.id: m for m in fresh_store.iter_mentions()} == {m.id: m for m in check.iter_mentions()}
    stories = {m.id: m.story_id for m in fresh_store.iter_mentions()}
    assert stories == {m.id: m.story_id for m in ms} and stories["x0001"] == "x0000"
    assert sum(s is None for s in stories.values()) == 50
    assert fresh_store.get_issue("iss-2") == make_issue("iss-2")
    assert fresh_store.top_issues("fd:quan-7", "day", "2025-11-20") == [make_entry("fd:quan-7", 1)]
    assert fresh_store.get_state("crawl:vnexpress") == "2025-11-20T08:00:00Z"


# -- NLP workers on the search engine (a real redis-server too)


@pytest.mark.slow
def test_sigkilled_worker_on_opensearch_loses_nothing_and_commits_nothing_twice(
        tmp_path: Path, fresh_store: SearchEngineStore, opensearch_url: str) -> None:
    from tests.redis_node import RedisNode, RedisUnavailable
    from tests.test_workers import kill_scenario

    try:
        redis = RedisNode().start()
    except RedisUnavailable as exc:
        pytest.skip(str(exc))
    try:
        kill_scenario(fresh_store, f"{opensearch_url}?prefix={fresh_store.prefix}", redis.url, tmp_path, n=120)
    finally:
        redis.stop()


# -- Elasticsearch, when one is configured (defined only then, so a normal run lists one skip)

ELASTICSEARCH_URL = os.environ.get("LANGNGHE_TEST_ELASTICSEARCH_URL")

if ELASTICSEARCH_URL:
    class TestElasticsearchStoreContract(StoreContract):
        @pytest.fixture
        def store(self) -> Iterator[SearchEngineStore]:
            assert ELASTICSEARCH_URL
            sep = "&" if "?" in ELASTICSEARCH_URL else "?"
            s = connect(f"{ELASTICSEARCH_URL}{sep}prefix=lt-es-{uuid.uuid4().hex[:10]}")
            yield s
            s.drop()
            s.close()
else:
    @pytest.mark.skip(reason="set LANGNGHE_TEST_ELASTICSEARCH_URL (e.g. elasticsearch+http://127.0.0.1:9200) "
                             "to run the backend contract on Elasticsearch 8/9")
    def test_elasticsearch_contract() -> None:
        """Placeholder that reports why the Elasticsearch run did not happen."""
