"""One query/aggregation builder for both search engines: pure functions, request bodies out.

Everything here is plain data (dicts) for the REST API that Elasticsearch 8/9 and OpenSearch 2/3
share; where the two differ (vector fields and k-NN queries) the `flavor` argument picks the
dialect. Nothing here talks to a server, so every body is unit-tested without one
(tests/test_query_builder.py), and `storage.search_engine.SearchEngineStore` sends them.

Documents: a mention is stored as its `Mention.to_dict()` with datetimes as fixed-width UTC ISO
strings (microseconds kept, so range filters and sorting agree with the SQLite store), plus
``seq`` (a write sequence number that breaks ties as SQLite's rowid does).

Text: ``title`` and ``text`` use the ``vi_folded`` analyser: combining marks stripped, ``đ/Đ`` mapped
to ``d``, tokens = runs of letters and digits, lower case, ASCII folding. With the ICU plugin
(``icu=True``) ICU normalisation (NFKC + case folding) and ICU folding come first. Queries are
parsed and folded in Python by `storage.sqlite.parse_query`, so both backends read a query alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from langnghe.records import Issue, Location, Mention, RankingEntry
from storage.base import Filters, check_filter_value, ts

Flavor = Literal["opensearch", "elasticsearch"]
FLAVORS: tuple[Flavor, ...] = ("opensearch", "elasticsearch")

TITLE_BOOST = 2.0  # as the SQLite store's bm25 column weights (title 2, text 1)
PREFIX_EXPANSIONS = 1000  # terms a phrase's trailing prefix may expand to
KEYWORD_FIELDS = ("topic", "department", "sentiment", "source", "issue_id", "language")
FACET_FIELDS = ("area", "topic", "department", "sentiment", "source", "issue_id", "language", "civic")
_FIELD_NAMES = {"area": "areas"}  # filter/facet name -> document field

# The Vietnamese analyser. `pattern_replace` strips combining marks (decomposed input), the
# mapping covers đ/Đ explicitly (asciifolding does too; ICU folding as well), the pattern
# tokenizer cuts like SQLite FTS5's unicode61 (letters and digits; '_' separates).
_CHAR_FILTERS: dict[str, Any] = {
    "vi_strip_marks": {"type": "pattern_replace", "pattern": "\\p{M}+", "replacement": ""},
    "vi_d": {"type": "mapping", "mappings": ["đ => d", "Đ => D"]},
}
_TOKENIZER = {"vi_words": {"type": "pattern", "pattern": "[^\\p{L}\\p{N}]+"}}



# ---------------------------------------------------------------------------------------------
# index settings, mappings, templates


def analysis_settings(*, icu: bool = False) -> dict[str, Any]:
    """The ``analysis`` section: the ``vi_folded`` analyser (ICU normalisation first when `icu`)."""
    filters = ["icu_normalizer", "icu_folding", "lowercase", "asciifolding"] if icu else [
        "lowercase", "asciifolding"]
    return {
        "char_filter": dict(_CHAR_FILTERS),
        "tokenizer": dict(_TOKENIZER),
        "analyzer": {"vi_folded": {"type": "custom", "char_filter": ["vi_strip_marks", "vi_d"],
                                   "tokenizer": "vi_words", "filter": filters}},
        "normalizer": {"vi_keyword": {"type": "custom", "char_filter": ["vi_d"],
                                      "filter": ["lowercase", "asciifolding"]}},
    }


def vector_mapping(flavor: Flavor, dims: int) -> dict[str, Any]:
    """The mapping of the optional ``embedding`` field: ES ``dense_vector``, OpenSearch ``knn_vector``."""
    if dims < 1:
        raise ValueError("vector dims must be at least 1")
    if flavor == "elasticsearch":
        return {"type": "dense_vector", "dims": dims, "index": True, "similarity": "cosine"}
    return {"type": "knn_vector", "dimension": dims,
            "method": {"name": "hnsw", "space_type": "cosinesimil", "engine": "lucene"}}


def mention_mappings(flavor: Flavor = "opensearch", *, vector_dims: int | None = None) -> dict[str, Any]:
    """Mappings of the mentions index: keyword fields for facets, dates, folded text."""
    kw = {"type": "keyword"}
    props: dict[str, Any] = {
        "id": kw, "source": kw, "url": {"type": "keyword", "index": False, "doc_values": False},
        "title": {"type": "text", "analyzer": "vi_folded",
                  "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
        "text": {"type": "text", "analyzer": "vi_folded"},
        "published_at": {"type": "date_nanos"}, "crawled_at": {"type": "date_nanos"},
        "processed_at": {"type": "date_nanos"},
        "language": kw, "author": {"type": "keyword", "ignore_above": 256},
        "civic": {"type": "boolean"}, "civic_score": {"type": "float"},
        "sentiment": kw, "sentiment_score": {"type": "float"},
        "topic": kw, "department": kw, "topic_score": {"type": "float"}, "department_score": {"type": "float"},
        "areas": kw, "issue_id": kw, "story_id": kw,
        "locations": {"type": "object", "enabled": False},
        "seq": {"type": "long"},
    }
    if vector_dims:
        props["embedding"] = vector_mapping(flavor, vector_dims)
    return {"dynamic": "strict", "properties": props}


def index_settings(flavor: Flavor = "opensearch", *, shards: int = 1, replicas: int = 0, icu: bool = False,
                   vector_dims: int | None = None, refresh_interval: str = "1s") -> dict[str, Any]:
    """``settings`` of the mentions index (k-NN switched on for OpenSearch vector fields)."""
    settings: dict[str, Any] = {
        "number_of_shards": shards, "number_of_replicas": replicas,
        "refresh_interval": refresh_interval, "analysis": analysis_settings(icu=icu),
        "max_result_window": 100_000,
    }
    if vector_dims and flavor == "opensearch":
        settings["knn"] = True
    return settings


def mention_template(prefix: str, flavor: Flavor = "opensearch", **kwargs: Any) -> dict[str, Any]:
    """Composable index template for ``<prefix>-mentions-*`` (read through the ``<prefix>-mentions`` alias)."""
    vector_dims = kwargs.get("vector_dims")
    return {
        "index_patterns": [f"{prefix}-mentions-*"],
        "priority": 200,
        "template": {"settings": index_settings(flavor, **kwargs),
                     "mappings": mention_mappings(flavor, vector_dims=vector_dims)},
        "_meta": {"managed_by": "langnghe"},
    }


def small_index_body(kind: str) -> dict[str, Any]:
    """Settings and mappings of the issues, rankings, ranking-periods and state indices."""
    kw = {"type": "keyword"}
    stored = {"type": "object", "enabled": False}
    props: dict[str, dict[str, Any]] = {
        "issues": {"id": kw, "label": {"type": "text", "analyzer": "vi_folded"}, "topic": kw,
                   "department": kw, "area_ids": kw, "keywords": kw, "first_seen": {"type": "date_nanos"},
                   "last_seen": {"type": "date_nanos"}, "mention_count": {"type": "long"}},
        "rankings": {"area_id": kw, "period": kw, "period_key": kw, "rank": {"type": "integer"},
                     "issue_id": kw, "score": {"type": "double"}, "score_parts": stored,
                     "mention_count": {"type": "long"}, "source_count": {"type": "long"},
                     "sentiment_counts": stored, "evidence_ids": kw, "generation": kw},
        "periods": {"period": kw, "period_key": kw, "generation": kw, "count": {"type": "long"}},
        "state": {"value": {"type": "keyword", "index": False, "doc_values": False},
                  "updated_at": {"type": "date_nanos"}},
    }
    if kind not in props:
        raise ValueError(f"unknown index kind {kind!r}")
    settings: dict[str, Any] = {"number_of_shards": 1, "number_of_replicas": 0}
    if kind == "issues":
        settings["analysis"] = analysis_settings()
    return {"settings": settings, "mappings": {"dynamic": "strict", "properties": props[kind]}}


# ---------------------------------------------------------------------------------------------
# documents


def mention_to_doc(m: Mention, seq: int) -> dict[str, Any]:
    """A mention as a document; raises ValueError on a malformed mention (as SQLite does)."""
    if not isinstance(m, Mention):
        raise ValueError(f"expected a Mention, got {type(m).__name__}")
    if not isinstance(m.id, str) or not m.id:
        raise ValueError(f"mention id must be a non-empty string, got {m.id!r}")
    if len(m.id.encode("utf-8")) > 512:
        raise ValueError(f"mention id longer than 512 bytes: {m.id[:40]!r}…")
    for name in ("source", "url", "title", "text", "language"):
        if not isinstance(getattr(m, name), str):
            raise ValueError(f"mention {m.id}: {name} must be a string")
    for name in ("published_at", "crawled_at"):
        if not isinstance(getattr(m, name), datetime):
            raise ValueError(f"mention {m.id}: {name} must be a datetime")
    if m.processed_at is not None and not isinstance(m.processed_at, datetime):
        raise ValueError(f"mention {m.id}: processed_at must be a datetime or None")
    return {
        "id": m.id, "source": m.source, "url": m.url, "title": m.title, "text": m.text,
        "published_at": ts(m.published_at), "crawled_at": ts(m.crawled_at),
        "language": m.language, "author": m.author, "story_id": m.story_id,
        "civic": None if m.civic is None else bool(m.civic),
        "civic_score": None if m.civic_score is None else float(m.civic_score),
        "sentiment": m.sentiment,
        "sentiment_score": None if m.sentiment_score is None else float(m.sentiment_score),
        "topic": m.topic, "department": m.department,
        "topic_score": None if m.topic_score is None else float(m.topic_score),
        "department_score": None if m.department_score is None else float(m.department_score),
        "locations": [loc.to_dict() if isinstance(loc, Location) else dict(loc) for loc in m.locations],
        "areas": list(dict.fromkeys(m.areas)), "issue_id": m.issue_id,
        "processed_at": None if m.processed_at is None else ts(m.processed_at),
        "seq": int(seq),
    }


def doc_to_mention(doc: dict[str, Any]) -> Mention:
    """A stored document as a mention (a document written before ``story_id`` existed has none)."""
    data = {k: v for k, v in doc.items() if k not in ("seq", "embedding")}
    return Mention.from_dict(data)


def issue_to_doc(issue: Issue) -> dict[str, Any]:
    if not isinstance(issue, Issue) or not isinstance(issue.id, str) or not issue.id:
        raise ValueError(f"expected an Issue with a non-empty id, got {issue!r}")
    return {"id": issue.id, "label": issue.label, "topic": issue.topic, "department": issue.department,
            "area_ids": list(issue.area_ids), "keywords": list(issue.keywords),
            "first_seen": ts(issue.first_seen), "last_seen": ts(issue.last_seen),
            "mention_count": int(issue.mention_count)}


def ranking_to_doc(e: RankingEntry, generation: str) -> dict[str, Any]:
    return {"area_id": e.area_id, "period": e.period, "period_key": e.period_key, "rank": int(e.rank),
            "issue_id": e.issue_id, "score": float(e.score), "score_parts": dict(e.score_parts),
            "mention_count": int(e.mention_count), "source_count": int(e.source_count),
            "sentiment_counts": dict(e.sentiment_counts), "evidence_ids": list(e.evidence_ids),
            "generation": generation}


def doc_to_ranking(doc: dict[str, Any]) -> RankingEntry:
    return RankingEntry.from_dict({k: v for k, v in doc.items() if k != "generation"})


# ---------------------------------------------------------------------------------------------
# filters -> bool queries

MATCH_ALL: dict[str, Any] = {"match_all": {}}
MATCH_NONE: dict[str, Any] = {"match_none": {}}




def _eq(field: str, value: Any) -> dict[str, Any]:
    if field == "published_at":
        return {"range": {field: {"gte": value, "lte": value}}}
    return {"term": {field: value}}


def _exists(field: str) -> dict[str, Any]:
    return {"exists": {"field": field}}


def _not(query: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"must_not": [query]}}


def compile_filters(filters: Filters | None) -> dict[str, Any]:
    """A validated Haystack-style filter as a query (filter context: no scoring).

    NULL semantics follow the SQLite store: ``!= v`` and ``not in [v…]`` include mentions without
    the field; ``== None`` means the field is missing; ``area != X`` includes mentions with no area.
    """
    if not filters:
        return MATCH_ALL
    if "conditions" in filters:
        parts = [compile_filters(c) for c in filters["conditions"]]
        logic = filters["operator"]
        if logic == "AND":
            return {"bool": {"filter": parts}} if parts else MATCH_ALL
        if logic == "OR":
            return {"bool": {"should": parts, "minimum_should_match": 1}} if parts else MATCH_NONE
        return {"bool": {"must_not": [{"bool": {"filter": parts}}]}} if parts else MATCH_NONE
    name: str = filters["field"]
    op: str = filters["operator"]
    value: Any = filters.get("value")
    field: str = _FIELD_NAMES.get(name, name)
    if name == "area":
        values = list(value) if op in ("in", "not in") else [value]
        values = [check_filter_value("area", v, nullable=False) for v in values]
        if not values:
            return MATCH_NONE if op == "in" else MATCH_ALL
        query = {"term": {field: values[0]}} if len(values) == 1 else {"terms": {field: values}}
        return _not(query) if op in ("!=", "not in") else query
    if op in ("==", "!="):
        v = check_filter_value(name, value, nullable=True)
        query = _not(_exists(field)) if v is None else _eq(field, v)
        return query if op == "==" else _not(query)
    if op in ("in", "not in"):
        converted = [check_filter_value(name, v, nullable=True) for v in (value or ())]
        has_null = any(v is None for v in converted)
        values = [v for v in converted if v is not None]
        if field == "published_at":
            matches: list[dict[str, Any]] = [_eq(field, v) for v in values]
        else:
            matches = [{"terms": {field: values}}] if values else []
        if has_null:
            matches.append(_not(_exists(field)))
        if op == "in":
            if not matches:
                return MATCH_NONE
            return matches[0] if len(matches) == 1 else {"bool": {"should": matches, "minimum_should_match": 1}}
        if not matches:
            return MATCH_ALL
        return {"bool": {"must_not": matches}}
    bound = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}[op]
    return {"range": {field: {bound: check_filter_value(name, value, nullable=False)}}}


# ---------------------------------------------------------------------------------------------
# search bodies

SORT_NEWEST: list[dict[str, Any]] = [{"published_at": "desc"}, {"seq": "desc"}, {"id": "desc"}]
SORT_OLDEST: list[dict[str, Any]] = [{"published_at": "asc"}, {"seq": "asc"}, {"id": "asc"}]
SORT_CRAWLED: list[dict[str, Any]] = [{"crawled_at": "asc"}, {"id": "asc"}]
SORT_RELEVANCE: list[Any] = ["_score", {"seq": "desc"}, {"id": "desc"}]


def term_query(tokens: tuple[str, ...], prefix: bool) -> dict[str, Any]:
    """One searched word or phrase (folded tokens), in the title (boosted) or the text."""
    text = " ".join(tokens)
    should: list[dict[str, Any]] = []
    for field, boost in (("title", TITLE_BOOST), ("text", 1.0)):
        if prefix and len(tokens) == 1:
            should.append({"prefix": {field: {"value": tokens[0], "boost": boost}}})
        elif prefix:
            should.append({"match_phrase_prefix": {field: {"query": text, "boost": boost,
                                                            "max_expansions": PREFIX_EXPANSIONS}}})
        elif len(tokens) == 1:
            should.append({"match": {field: {"query": text, "boost": boost}}})
        else:
            should.append({"match_phrase": {field: {"query": text, "boost": boost}}})
    return {"bool": {"should": should, "minimum_should_match": 1}}


def text_query(terms: list[tuple[tuple[str, ...], bool]], filters: Filters | None = None) -> dict[str, Any]:
    """Every term must match (AND, scored), the filters must hold (not scored)."""
    query: dict[str, Any] = {"bool": {"must": [term_query(t, p) for t, p in terms]}}
    compiled = compile_filters(filters)
    if compiled is not MATCH_ALL:
        query["bool"]["filter"] = [compiled]
    return query


def search_body(terms: list[tuple[tuple[str, ...], bool]] | None, filters: Filters | None = None, *,
                limit: int = 20, offset: int = 0) -> dict[str, Any]:
    """Full-text search (terms from `storage.sqlite.parse_query`), or newest first without terms."""
    if terms:
        return {"query": text_query(terms, filters), "sort": SORT_RELEVANCE, "track_scores": True,
                "from": offset, "size": limit, "track_total_hits": True}
    return {"query": compile_filters(filters), "sort": SORT_NEWEST, "from": offset, "size": limit,
            "track_total_hits": True}


def scan_body(query: dict[str, Any], sort: list[Any], size: int,
              search_after: list[Any] | None = None) -> dict[str, Any]:
    """One page of a keyset scan (``search_after``), as iter_mentions reads."""
    body: dict[str, Any] = {"query": query, "sort": sort, "size": size, "track_total_hits": False}
    if search_after is not None:
        body["search_after"] = search_after
    return body


def unprocessed_body(limit: int) -> dict[str, Any]:
    return {"query": _not(_exists("processed_at")), "sort": SORT_CRAWLED, "size": limit,
            "track_total_hits": False}


def knn_body(flavor: Flavor, vector: list[float], k: int = 10, filters: Filters | None = None,
             num_candidates: int | None = None) -> dict[str, Any]:
    """Nearest mentions to `vector` (the ``embedding`` field), filtered, in either dialect."""
    compiled = compile_filters(filters)
    if flavor == "elasticsearch":
        knn: dict[str, Any] = {"field": "embedding", "query_vector": list(vector), "k": k,
                               "num_candidates": num_candidates or max(100, 10 * k)}
        if compiled is not MATCH_ALL:
            knn["filter"] = compiled
        return {"knn": knn, "size": k}
    inner: dict[str, Any] = {"vector": list(vector), "k": k}
    if compiled is not MATCH_ALL:
        inner["filter"] = compiled
    return {"query": {"knn": {"embedding": inner}}, "size": k}


# ---------------------------------------------------------------------------------------------
# aggregations


def facets_body(filters: Filters | None = None, fields: tuple[str, ...] = FACET_FIELDS,
                size: int = 10) -> dict[str, Any]:
    """Top `size` values (doc counts) of each facet field among the matching mentions."""
    aggs: dict[str, Any] = {}
    for name in fields:
        if name not in FACET_FIELDS:
            raise ValueError(f"unknown facet {name!r}; expected one of {FACET_FIELDS}")
        aggs[name] = {"terms": {"field": _FIELD_NAMES.get(name, name), "size": size,
                                "order": [{"_count": "desc"}, {"_key": "asc"}]}}
    return {"query": compile_filters(filters), "size": 0, "track_total_hits": True, "aggs": aggs}


def date_histogram_body(filters: Filters | None = None, interval: str = "day",
                        time_zone: str = "+07:00") -> dict[str, Any]:
    """Mentions per calendar day/week/month in city time (UTC+7), with the sentiment split."""
    if interval not in ("day", "week", "month"):
        raise ValueError("interval must be day, week or month")
    return {"query": compile_filters(filters), "size": 0, "track_total_hits": True, "aggs": {
        "histogram": {"date_histogram": {"field": "published_at", "calendar_interval": interval,
                                         "time_zone": time_zone, "min_doc_count": 1},
                      "aggs": {"sentiment": {"terms": {"field": "sentiment", "size": 3}}}}}}


def top_issues_body(group_by: str = "area", filters: Filters | None = None, *, groups: int = 200,
                    size: int = 10) -> dict[str, Any]:
    """Top `size` issues by mention count within each area (or department), with their source
    counts and negative share: the raw material of a top-10 straight from the mentions."""
    if group_by not in ("area", "department"):
        raise ValueError("group_by must be 'area' or 'department'")
    issue_filter = {"bool": {"filter": [compile_filters(filters), _exists("issue_id")]}}
    return {"query": issue_filter, "size": 0, "track_total_hits": True, "aggs": {
        "groups": {"terms": {"field": _FIELD_NAMES.get(group_by, group_by), "size": groups,
                             "order": [{"_count": "desc"}, {"_key": "asc"}]},
                   "aggs": {"issues": {
                       "terms": {"field": "issue_id", "size": size,
                                 "order": [{"_count": "desc"}, {"_key": "asc"}]},
                       "aggs": {"sources": {"cardinality": {"field": "source"}},
                                "negative": {"filter": {"term": {"sentiment": "negative"}}}}}}}}}


def parse_facets(response: dict[str, Any]) -> dict[str, list[tuple[Any, int]]]:
    """``{field: [(value, count), …]}`` from a facets response."""
    out: dict[str, list[tuple[Any, int]]] = {}
    for name, agg in response.get("aggregations", {}).items():
        buckets = agg.get("buckets", [])
        if name == "civic":
            out[name] = [(bool(b["key"]), int(b["doc_count"])) for b in buckets]
        else:
            out[name] = [(b["key"], int(b["doc_count"])) for b in buckets]
    return out


def parse_date_histogram(response: dict[str, Any]) -> list[tuple[str, int, dict[str, int]]]:
    """``[(local date 'YYYY-MM-DD', count, {sentiment: count}), …]`` oldest first."""
    rows = []
    for b in response["aggregations"]["histogram"]["buckets"]:
        rows.append((str(b["key_as_string"])[:10], int(b["doc_count"]),
                     {s["key"]: int(s["doc_count"]) for s in b["sentiment"]["buckets"]}))
    return rows


def parse_top_issues(response: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``{group: [{"issue_id", "mentions", "sources", "negative"}, …]}`` best first."""
    out: dict[str, list[dict[str, Any]]] = {}
    for g in response["aggregations"]["groups"]["buckets"]:
        out[g["key"]] = [{"issue_id": i["key"], "mentions": int(i["doc_count"]),
                          "sources": int(i["sources"]["value"]), "negative": int(i["negative"]["doc_count"])}
                         for i in g["issues"]["buckets"]]
    return out
