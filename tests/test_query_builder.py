"""The one query/aggregation builder: request bodies for OpenSearch and Elasticsearch, no server."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from storage import query_builder as qb
from storage.base import FilterError, mention_filters
from storage.factory import is_engine_url, redact, sqlite_path
from storage.search_engine import _merge, parse_store_url
from storage.sqlite import parse_query
from tests.store_contract import T0, corpus, enriched, make_mention


def cond(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": op, "value": value}


@pytest.mark.parametrize("flavor", qb.FLAVORS)
def test_template_has_aliases_analyser_and_keyword_facets(flavor: qb.Flavor) -> None:
    t = qb.mention_template("city", flavor)
    assert t["index_patterns"] == ["city-mentions-*"]
    props = t["template"]["mappings"]["properties"]
    for name in ("areas", "topic", "department", "sentiment", "source", "issue_id"):
        assert props[name]["type"] == "keyword"
    assert props["title"]["analyzer"] == props["text"]["analyzer"] == "vi_folded"
    assert props["published_at"]["type"] == "date_nanos"
    analysis = t["template"]["settings"]["analysis"]
    assert analysis["char_filter"]["vi_d"]["mappings"] == ["đ => d", "Đ => D"]
    assert analysis["analyzer"]["vi_folded"]["filter"] == ["lowercase", "asciifolding"]
    assert "embedding" not in props
    json.dumps(t)  # plain JSON


def test_icu_analyser_normalises_and_folds_first() -> None:
    filters = qb.analysis_settings(icu=True)["analyzer"]["vi_folded"]["filter"]
    assert filters[:2] == ["icu_normalizer", "icu_folding"] and "asciifolding" in filters


def test_vector_field_per_flavor() -> None:
    es = qb.mention_template("p", "elasticsearch", vector_dims=384)
    os_ = qb.mention_template("p", "opensearch", vector_dims=384)
    assert es["template"]["mappings"]["properties"]["embedding"] == {
        "type": "dense_vector", "dims": 384, "index": True, "similarity": "cosine"}
    assert os_["template"]["mappings"]["properties"]["embedding"]["type"] == "knn_vector"
    assert os_["template"]["mappings"]["properties"]["embedding"]["dimension"] == 384
    assert os_["template"]["settings"]["knn"] is True and "knn" not in es["template"]["settings"]
    with pytest.raises(ValueError):
        qb.vector_mapping("opensearch", 0)


def test_knn_bodies() -> None:
    f = mention_filters(area="fd:quan-7")
    es = qb.knn_body("elasticsearch", [0.1, 0.2], k=5, filters=f)
    assert es["knn"]["field"] == "embedding" and es["knn"]["k"] == 5 and es["knn"]["num_candidates"] == 100
    assert es["knn"]["filter"] == {"bool": {"filter": [{"term": {"areas": "fd:quan-7"}}]}}
    os_ = qb.knn_body("opensearch", [0.1, 0.2], k=5)
    assert os_ == {"query": {"knn": {"embedding": {"vector": [0.1, 0.2], "k": 5}}}, "size": 5}


@pytest.mark.parametrize("filters, expected", [
    (None, {"match_all": {}}),
    ({}, {"match_all": {}}),
    (cond("topic", "==", "flooding"), {"term": {"topic": "flooding"}}),
    (cond("topic", "!=", "flooding"), {"bool": {"must_not": [{"term": {"topic": "flooding"}}]}}),
    (cond("topic", "==", None), {"bool": {"must_not": [{"exists": {"field": "topic"}}]}}),
    (cond("topic", "in", ["a", "b"]), {"terms": {"topic": ["a", "b"]}}),
    (cond("topic", "in", []), {"match_none": {}}),
    (cond("topic", "not in", []), {"match_all": {}}),
    (cond("department", "in", ["x", None]), {"bool": {"should": [
        {"terms": {"department": ["x"]}}, {"bool": {"must_not": [{"exists": {"field": "department"}}]}}],
        "minimum_should_match": 1}}),
    (cond("department", "not in", ["x", None]), {"bool": {"must_not": [
        {"terms": {"department": ["x"]}}, {"bool": {"must_not": [{"exists": {"field": "department"}}]}}]}}),
    (cond("civic", "==", 1), {"term": {"civic": True}}),
    (cond("area", "==", "hcmc"), {"term": {"areas": "hcmc"}}),
    (cond("area", "not in", ["a", "b"]), {"bool": {"must_not": [{"terms": {"areas": ["a", "b"]}}]}}),
    (cond("published_at", ">=", "2025-11-20T15:00:00+07:00"),
     {"range": {"published_at": {"gte": "2025-11-20T08:00:00.000000Z"}}}),
    (cond("published_at", "==", T0), {"range": {"published_at": {
        "gte": "2025-11-20T08:00:00.000000Z", "lte": "2025-11-20T08:00:00.000000Z"}}}),
    ({"operator": "OR", "conditions": []}, {"match_none": {}}),
    ({"operator": "NOT", "conditions": [cond("topic", "==", "x")]},
     {"bool": {"must_not": [{"bool": {"filter": [{"term": {"topic": "x"}}]}}]}}),
])
def test_compile_filters(filters: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    assert qb.compile_filters(filters) == expected


@pytest.mark.parametrize("filters", [
    cond("topic", "==", 3), cond("area", "==", 7), cond("civic", "==", "yes"),
    cond("published_at", ">", "not a date"), cond("published_at", ">", None), cond("area", "in", [None]),
])
def test_bad_filter_values_raise(filters: dict[str, Any]) -> None:
    with pytest.raises(FilterError):
        qb.compile_filters(filters)


def test_naive_and_offset_datetimes_become_utc() -> None:
    local = datetime(2025, 11, 20, 15, 0, tzinfo=timezone(timedelta(hours=7)))
    assert qb.ts(local) == qb.ts(datetime(2025, 11, 20, 8, 0)) == "2025-11-20T08:00:00.000000Z"


def test_search_body_with_terms_phrases_and_prefixes() -> None:
    parsed = parse_query('Ngập "Thủ Đức" khai*')
    body = qb.search_body(parsed.terms, mention_filters(topic="flooding"), limit=5, offset=10)
    must = body["query"]["bool"]["must"]
    assert must[0]["bool"]["should"][0] == {"match": {"title": {"query": "ngap", "boost": qb.TITLE_BOOST}}}
    assert must[1]["bool"]["should"][1] == {"match_phrase": {"text": {"query": "thu duc", "boost": 1.0}}}
    assert must[2]["bool"]["should"][0] == {"prefix": {"title": {"value": "khai", "boost": qb.TITLE_BOOST}}}
    assert body["query"]["bool"]["filter"] == [{"bool": {"filter": [{"term": {"topic": "flooding"}}]}}]
    assert (body["from"], body["size"], body["sort"][0]) == (10, 5, "_score")
    newest = qb.search_body(None, None)
    assert newest["sort"] == qb.SORT_NEWEST and newest["query"] == {"match_all": {}}


def test_phrase_prefix_expands_widely() -> None:
    q = qb.term_query(("thu", "du"), True)
    assert q["bool"]["should"][1]["match_phrase_prefix"]["text"]["max_expansions"] == qb.PREFIX_EXPANSIONS


def test_scan_body_pages_with_search_after() -> None:
    body = qb.scan_body({"match_all": {}}, qb.SORT_OLDEST, 100, ["2025-11-20T08:00:00Z", 3, "a"])
    assert body["search_after"] == ["2025-11-20T08:00:00Z", 3, "a"] and body["size"] == 100
    assert "search_after" not in qb.scan_body({"match_all": {}}, qb.SORT_OLDEST, 100)


def test_aggregation_bodies() -> None:
    f = mention_filters(area="hcmc")
    facets = qb.facets_body(f, ("area", "topic"), size=10)
    assert facets["aggs"]["area"]["terms"] == {"field": "areas", "size": 10,
                                               "order": [{"_count": "desc"}, {"_key": "asc"}]}
    assert facets["size"] == 0 and facets["query"] == qb.compile_filters(f)
    with pytest.raises(ValueError):
        qb.facets_body(None, ("colour",))
    hist = qb.date_histogram_body(f, "week")
    assert hist["aggs"]["histogram"]["date_histogram"] == {
        "field": "published_at", "calendar_interval": "week", "time_zone": "+07:00", "min_doc_count": 1}
    top = qb.top_issues_body("department", f)
    assert top["aggs"]["groups"]["terms"]["field"] == "department"
    assert top["aggs"]["groups"]["aggs"]["issues"]["terms"]["size"] == 10
    assert {"exists": {"field": "issue_id"}} in top["query"]["bool"]["filter"]
    with pytest.raises(ValueError):
        qb.top_issues_body("colour")


def test_parse_aggregation_answers() -> None:
    answer = {"aggregations": {
        "topic": {"buckets": [{"key": "flooding", "doc_count": 3}]},
        "civic": {"buckets": [{"key": 1, "key_as_string": "true", "doc_count": 5}]},
        "histogram": {"buckets": [{"key_as_string": "2025-11-20T00:00:00.000+07:00", "doc_count": 2,
                                   "sentiment": {"buckets": [{"key": "negative", "doc_count": 2}]}}]},
        "groups": {"buckets": [{"key": "hcmc", "doc_count": 4, "issues": {"buckets": [
            {"key": "iss-1", "doc_count": 4, "sources": {"value": 2}, "negative": {"doc_count": 1}}]}}]},
    }}
    facets = qb.parse_facets({"aggregations": {k: answer["aggregations"][k] for k in ("topic", "civic")}})
    assert facets == {"topic": [("flooding", 3)], "civic": [(True, 5)]}
    assert qb.parse_date_histogram(answer) == [("2025-11-20", 2, {"negative": 2})]
    assert qb.parse_top_issues(answer) == {"hcmc": [{"issue_id": "iss-1", "mentions": 4, "sources": 2,
                                                     "negative": 1}]}


def test_document_round_trip() -> None:
    for m in corpus():
        doc = qb.mention_to_doc(m, 7)
        assert doc["seq"] == 7 and doc["published_at"].endswith("Z")
        assert qb.doc_to_mention(json.loads(json.dumps(doc))) == m
    with pytest.raises(ValueError):
        qb.mention_to_doc(make_mention(""), 0)
    with pytest.raises(ValueError):
        qb.mention_to_doc(make_mention("x" * 600), 0)


@pytest.mark.parametrize("flavor", qb.FLAVORS)
def test_strict_mapping_maps_every_document_field(flavor: qb.Flavor) -> None:
    props = qb.mention_mappings(flavor)["properties"]
    doc = qb.mention_to_doc(enriched(make_mention("a")), 1)
    assert set(doc) <= set(props)  # "dynamic": "strict" refuses a document with an unmapped field
    assert props["topic_score"] == props["department_score"] == {"type": "float"}
    assert (doc["topic_score"], doc["department_score"]) == (0.87, 0.42)
    assert props["story_id"] == {"type": "keyword"}
    doc = qb.mention_to_doc(make_mention("a", story_id="story-1"), 1)
    assert doc["story_id"] == "story-1" and qb.doc_to_mention(doc).story_id == "story-1"


class _MappingEngine:
    """An EngineClient double whose mentions index already exists with the mapping `have`."""

    flavor: qb.Flavor = "opensearch"

    def __init__(self, have: dict[str, Any]) -> None:
        self.have = have
        self.calls: list[tuple[str, str, Any]] = []

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                *, ndjson: bool = False) -> Any:
        self.calls.append((method, path, body))
        if method == "HEAD":
            return True  # every alias exists
        if method == "GET" and path == "/lt-mentions/_mapping":
            return {"lt-mentions-000001": {"mappings": {"dynamic": "strict", "properties": self.have}}}
        return {}

    def close(self) -> None:
        pass


def test_existing_mentions_index_gets_the_new_fields_mapped() -> None:
    from storage.search_engine import SearchEngineStore

    full = qb.mention_mappings("opensearch")["properties"]
    before = {k: v for k, v in full.items() if k not in ("topic_score", "department_score", "story_id")}
    engine = _MappingEngine(before)
    SearchEngineStore(engine, prefix="lt")
    puts = [(path, body) for method, path, body in engine.calls if method == "PUT" and path.endswith("/_mapping")]
    assert puts == [("/lt-mentions-000001/_mapping",
                     {"properties": {"topic_score": {"type": "float"}, "department_score": {"type": "float"},
                                     "story_id": {"type": "keyword"}}})]
    current = _MappingEngine(full)  # an index already up to date is left alone
    SearchEngineStore(current, prefix="lt")
    assert not [c for c in current.calls if c[1].endswith("/_mapping") and c[0] == "PUT"]


def test_merge_follows_the_sqlite_rules() -> None:
    old = qb.mention_to_doc(enriched(make_mention("a", title="T", text="x")), 1)
    recrawl = qb.mention_to_doc(make_mention("a", title="T", text="x", crawled_at=T0 + timedelta(days=2)), 2)
    final, kinds = _merge(old, [recrawl])
    assert kinds == ["unchanged"] and final["processed_at"] == old["processed_at"]
    assert final["crawled_at"] == old["crawled_at"] and final["seq"] == 1
    changed = qb.mention_to_doc(make_mention("a", title="T", text="y", crawled_at=T0 + timedelta(days=3)), 3)
    final, kinds = _merge(old, [recrawl, changed])
    assert kinds == ["unchanged", "updated"] and final["processed_at"] is None and final["text"] == "y"
    final, kinds = _merge(None, [recrawl, recrawl])
    assert kinds == ["inserted", "unchanged"]


def test_merge_keeps_the_stored_story_unless_a_new_one_comes() -> None:
    old = qb.mention_to_doc(make_mention("a", story_id="s1"), 1)
    final, kinds = _merge(old, [qb.mention_to_doc(make_mention("a"), 2)])
    assert kinds == ["unchanged"] and final["story_id"] == "s1"
    final, kinds = _merge(old, [qb.mention_to_doc(make_mention("a", story_id="s2"), 2)])
    assert kinds == ["updated"] and final["story_id"] == "s2"
    legacy = {k: v for k, v in qb.mention_to_doc(make_mention("a"), 1).items() if k != "story_id"}
    assert qb.doc_to_mention(legacy).story_id is None  # written before story_id was stored
    final, kinds = _merge(legacy, [qb.mention_to_doc(make_mention("a"), 2)])
    assert kinds == ["unchanged"] and final["story_id"] is None
    final, kinds = _merge(legacy, [qb.mention_to_doc(make_mention("a", story_id="s3"), 2)])
    assert kinds == ["updated"] and final["story_id"] == "s3"


def test_store_urls() -> None:
    u = parse_store_url("opensearch+https://admin:s3cret@search:9200?prefix=city&shards=3&vector_dims=384")
    assert (u.flavor, u.http_url, u.prefix, u.shards, u.vector_dims) == (
        "opensearch", "https://admin:s3cret@search:9200", "city", 3, 384)
    assert parse_store_url("elasticsearch://es:9200").flavor == "elasticsearch"
    assert parse_store_url("http://es:9200").flavor is None
    for bad in ("ftp://x", "redis+http://x:1", "opensearch+http://x:9200?prefix=Bad*"):
        with pytest.raises(ValueError):
            parse_store_url(bad)
    assert is_engine_url("opensearch+http://x:9200") and not is_engine_url("var/langnghe.sqlite3")
    assert str(sqlite_path("sqlite:////tmp/a.sqlite3")) == "/tmp/a.sqlite3"
    assert str(sqlite_path("sqlite:///var/a.sqlite3")) == "var/a.sqlite3"
    assert redact("opensearch+https://admin:s3cret@search:9200") == "opensearch+https://admin:***@search:9200"


class _FlakyEngine:
    """An EngineClient double: answers the store's setup calls, rejects bulk items once with 429,
    and fails the first `down` requests as unreachable."""

    flavor: qb.Flavor = "opensearch"

    def __init__(self, down: int = 0) -> None:
        self.down = down
        self.bulk_bodies: list[str] = []
        self.rejected: set[str] = set()

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                *, ndjson: bool = False) -> Any:
        from storage.search_engine import EngineError

        if self.down:
            self.down -= 1
            raise EngineError(0, "connection refused")
        if path == "/_bulk":
            self.bulk_bodies.append(body)
            lines = body.strip().split("\n")
            items = []
            for action in lines[::2]:
                op, meta = next(iter(json.loads(action).items()))
                first = meta["_id"] not in self.rejected
                self.rejected.add(meta["_id"])
                items.append({op: {"_id": meta["_id"], "status": 429 if first else 201}})
            return {"errors": True, "items": items}
        if path.endswith("/_mget"):
            return {"docs": [{"_id": i, "found": False} for i in body["ids"]]}
        if method == "HEAD":
            return True
        return {}

    def close(self) -> None:
        pass


def test_bulk_retries_rejected_items_and_unreachable_engine() -> None:
    from storage.search_engine import SearchEngineStore

    engine = _FlakyEngine(down=2)
    store = SearchEngineStore(engine, backoff=0.001)  # the first two calls fail: retried
    result = store.write_mentions([make_mention("a"), make_mention("b")])
    assert result.inserted == 2
    assert len(engine.bulk_bodies) == 2  # every item rejected once (429), then sent again
    assert engine.bulk_bodies[1].count('"create"') == 2
    store.retries = 0
    engine.down = 1
    from storage.search_engine import EngineError

    with pytest.raises(EngineError):
        store.get_mention("a")


def test_open_store_url_opens_sqlite(tmp_path: Any) -> None:
    from storage.factory import open_store_url
    from storage.sqlite import SQLiteStore

    store = open_store_url(f"sqlite:///{tmp_path}/x.sqlite3")
    assert isinstance(store, SQLiteStore) and store.path == tmp_path / "x.sqlite3"
    store.close()
