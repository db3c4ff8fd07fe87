"""Search-engine backend: the `storage.base.Store` protocol on OpenSearch 2/3 or Elasticsearch 8/9.

Request bodies come from `storage.query_builder` (one builder, two dialects); this module sends
them through the official client of the engine (``opensearch-py`` or ``elasticsearch``), wrapped
in `EngineClient` so that both are driven by the same REST paths.

Layout (``<p>`` is the store's prefix, default ``langnghe``)::

    <p>-mentions         alias -> <p>-mentions-000001 (index template <p>-mentions-*, write index)
    <p>-issues           alias -> <p>-issues-v1
    <p>-rankings         alias -> <p>-rankings-v1    entries, tagged with a generation id
    <p>-periods          alias -> <p>-periods-v1     (period, key) -> the live generation
    <p>-state            alias -> <p>-state-v1       key -> value for resumable jobs

Semantics match the SQLite store (the contract suite checks both):

* writes are read-modify-write with optimistic concurrency (``if_seq_no``/``if_primary_term``;
  new ids with ``op_type=create``); a conflict with another writer re-reads and merges again;
* bulk requests retry rejected items (429, 5xx) and connection errors with exponential backoff;
* ``replace_rankings`` writes a new generation, then flips the period's pointer document in one
  write (readers see the old or the new ranking, never a mix), then deletes the old generation;
* by default every write refreshes (``refresh=True``), so a read sees the write, as in SQLite.
  Bulk loads (migration, benchmarks) pass ``refresh=False`` and call `refresh()` at the end.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from langnghe.records import PERIODS, Issue, Mention, RankingEntry, utcnow
from storage import query_builder as qb
from storage.base import Filters, SearchHit, SearchPage, WriteResult, validate_filters
from storage.sqlite import make_highlight, parse_query

log = logging.getLogger(__name__)

__all__ = ["EngineClient", "EngineError", "SearchEngineStore", "connect", "parse_store_url"]

_CRAWL_FIELDS = ("source", "url", "title", "text", "published_at", "language", "author", "story_id")
_ENRICHMENT_FIELDS = ("civic", "civic_score", "sentiment", "sentiment_score", "topic", "department",
                      "topic_score", "department_score", "locations", "areas", "issue_id", "processed_at")
_COMPARED = ("id", "crawled_at", *_CRAWL_FIELDS, *_ENRICHMENT_FIELDS)
_MGET_CHUNK = 1000
_RETRYABLE = {429, 502, 503, 504}


class EngineError(RuntimeError):
    """An error answer of the search engine (``status`` is its HTTP status, 0 when unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"search engine answered {status}: {message}")
        self.status = status


class EngineClient(Protocol):
    """The one call the store needs: a REST request, returning the decoded JSON answer."""

    flavor: qb.Flavor

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                *, ndjson: bool = False) -> Any: ...

    def close(self) -> None: ...


class _OpenSearchClient:
    """`EngineClient` on opensearch-py."""

    flavor: qb.Flavor = "opensearch"

    def __init__(self, url: str, *, verify_certs: bool = True, timeout: float = 60.0) -> None:
        from opensearchpy import OpenSearch

        self._client = OpenSearch(hosts=[url], verify_certs=verify_certs, timeout=timeout,
                                  max_retries=0, retry_on_timeout=False, ssl_show_warn=False)

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                *, ndjson: bool = False) -> Any:
        from opensearchpy.exceptions import ConnectionError as OSConnectionError
        from opensearchpy.exceptions import TransportError

        headers = {"content-type": "application/x-ndjson" if ndjson else "application/json"}
        try:
            return self._client.transport.perform_request(method, path, params=params, body=body,
                                                          headers=headers)
        except OSConnectionError as exc:
            raise EngineError(0, str(exc)) from exc
        except TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 0
            raise EngineError(status, json.dumps(exc.info)[:500] if exc.info else str(exc)) from exc

    def close(self) -> None:
        self._client.close()


class _ElasticsearchClient:
    """`EngineClient` on the official elasticsearch client (8/9)."""

    flavor: qb.Flavor = "elasticsearch"

    def __init__(self, url: str, *, verify_certs: bool = True, timeout: float = 60.0) -> None:
        from elasticsearch import Elasticsearch

        self._client = Elasticsearch(url, verify_certs=verify_certs, request_timeout=timeout, max_retries=0)

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                *, ndjson: bool = False) -> Any:
        from elasticsearch import ApiError, TransportError

        headers = {"accept": "application/json",
                   "content-type": "application/x-ndjson" if ndjson else "application/json"}
        try:
            return self._client.perform_request(method, path, params=params, headers=headers, body=body).body
        except ApiError as exc:
            raise EngineError(int(exc.meta.status), str(exc.body)[:500]) from exc
        except TransportError as exc:
            raise EngineError(0, str(exc)) from exc

    def close(self) -> None:
        self._client.close()


# ---------------------------------------------------------------------------------------------
# URLs


@dataclass
class StoreURL:
    """A parsed search-engine store URL."""

    flavor: qb.Flavor | None  # None: ask the server
    http_url: str  # what the client connects to (with credentials, if any)
    prefix: str = "langnghe"
    icu: bool = False
    shards: int = 1
    replicas: int = 0
    vector_dims: int | None = None
    verify_certs: bool = True


def parse_store_url(url: str) -> StoreURL:
    """``opensearch+http://host:9200?prefix=x&shards=2``, ``elasticsearch+https://user:pw@host:9200``
    or plain ``http(s)://…`` (the engine is then asked who it is)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    flavor: qb.Flavor | None = None
    if "+" in scheme:
        name, scheme = scheme.split("+", 1)
        if name not in qb.FLAVORS:
            raise ValueError(f"unknown search engine {name!r} in store URL; expected one of {qb.FLAVORS}")
        flavor = "opensearch" if name == "opensearch" else "elasticsearch"
    elif scheme in qb.FLAVORS:
        flavor = "opensearch" if scheme == "opensearch" else "elasticsearch"
        scheme = "http"
    if scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not a search-engine URL: {urllib.parse.urlsplit(url)._replace(netloc='…').geturl()}")
    query = dict(urllib.parse.parse_qsl(parts.query))
    prefix = query.get("prefix", "langnghe")
    if not prefix or not all(c.isalnum() or c in "-_" for c in prefix) or prefix != prefix.lower():
        raise ValueError(f"index prefix must be lower-case letters, digits, '-' or '_': {prefix!r}")
    dims = query.get("vector_dims")
    return StoreURL(
        flavor=flavor, http_url=urllib.parse.urlunsplit((scheme, parts.netloc, parts.path, "", "")),
        prefix=prefix, icu=query.get("icu", "0") in ("1", "true", "yes"),
        shards=int(query.get("shards", 1)), replicas=int(query.get("replicas", 0)),
        vector_dims=int(dims) if dims else None,
        verify_certs=query.get("verify_certs", "1") not in ("0", "false", "no"),
    )


def detect_flavor(http_url: str, *, timeout: float = 10.0) -> qb.Flavor:
    """Ask ``GET /`` which engine answers (OpenSearch says so in version.distribution)."""
    parts = urllib.parse.urlsplit(http_url)
    request = urllib.request.Request(urllib.parse.urlunsplit(
        (parts.scheme, parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "",
         "/", "", "")))
    if parts.username:
        import base64

        token = base64.b64encode(f"{urllib.parse.unquote(parts.username)}:"
                                 f"{urllib.parse.unquote(parts.password or '')}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
        info = json.load(response)
    return "opensearch" if info.get("version", {}).get("distribution") == "opensearch" else "elasticsearch"


def connect(url: str, **kwargs: Any) -> SearchEngineStore:
    """Open the search-engine store a URL names (creating its indices as needed)."""
    parsed = parse_store_url(url)
    flavor = parsed.flavor or detect_flavor(parsed.http_url)
    client: EngineClient
    if flavor == "opensearch":
        client = _OpenSearchClient(parsed.http_url, verify_certs=parsed.verify_certs)
    else:
        client = _ElasticsearchClient(parsed.http_url, verify_certs=parsed.verify_certs)
    options: dict[str, Any] = dict(prefix=parsed.prefix, icu=parsed.icu, shards=parsed.shards,
                                   replicas=parsed.replicas, vector_dims=parsed.vector_dims)
    options.update(kwargs)
    return SearchEngineStore(client, **options)


# ---------------------------------------------------------------------------------------------
# the store


class SearchEngineStore:
    """The `storage.base.Store` protocol on an OpenSearch or Elasticsearch cluster."""

    def __init__(self, client: EngineClient, *, prefix: str = "langnghe", icu: bool = False, shards: int = 1,
                 replicas: int = 0, vector_dims: int | None = None, refresh: bool = True,
                 retries: int = 5, backoff: float = 0.2, create: bool = True) -> None:
        self.client = client
        self.flavor = client.flavor
        self.prefix = prefix
        self.icu = icu
        self.vector_dims = vector_dims
        self.refresh_writes = refresh
        self.retries = retries
        self.backoff = backoff
        self._template = dict(shards=shards, replicas=replicas, icu=icu, vector_dims=vector_dims)
        self.mentions = f"{prefix}-mentions"
        self.issues = f"{prefix}-issues"
        self.rankings = f"{prefix}-rankings"
        self.periods = f"{prefix}-periods"
        self.state = f"{prefix}-state"
        self._closed = False
        if create:
            self.ensure_indices()

    # -- plumbing

    def _request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                 *, ndjson: bool = False) -> Any:
        """One request, retried on connection errors and overload answers."""
        if self._closed:
            raise RuntimeError("store is closed")
        for attempt in range(self.retries + 1):
            try:
                return self.client.request(method, path, body, params, ndjson=ndjson)
            except EngineError as exc:
                if (exc.status == 0 or exc.status in _RETRYABLE) and attempt < self.retries:
                    time.sleep(self.backoff * 2 ** attempt)
                    continue
                raise
        raise AssertionError("unreachable")

    def _get(self, index: str, doc_id: str) -> dict[str, Any] | None:
        try:
            found = self._request("GET", f"/{index}/_doc/{urllib.parse.quote(doc_id, safe='')}")
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise
        return found if found.get("found") else None

    def _refresh_param(self) -> dict[str, Any]:
        return {"refresh": "true"} if self.refresh_writes else {}

    def bulk(self, actions: Sequence[tuple[dict[str, Any], dict[str, Any] | None]],
             *, refresh: bool | None = None) -> list[dict[str, Any]]:
        """Send ``(action, source)`` pairs; returns one result item per action, in order.

        Items rejected for overload (429, 5xx) are sent again with exponential backoff; other item
        errors (409 conflicts, 404 …) are returned for the caller to judge."""
        if not actions:
            return []
        results: list[dict[str, Any] | None] = [None] * len(actions)
        pending = list(range(len(actions)))
        refresh_now = self.refresh_writes if refresh is None else refresh
        for attempt in range(self.retries + 1):
            lines: list[str] = []
            for i in pending:
                action, source = actions[i]
                lines.append(json.dumps(action, ensure_ascii=False))
                if source is not None:
                    lines.append(json.dumps(source, ensure_ascii=False))
            answer = self._request("POST", "/_bulk", "\n".join(lines) + "\n",
                                   {"refresh": "true"} if refresh_now else None, ndjson=True)
            retry: list[int] = []
            for i, item in zip(pending, answer["items"], strict=True):
                result = next(iter(item.values()))
                if int(result.get("status", 200)) in _RETRYABLE and attempt < self.retries:
                    retry.append(i)
                else:
                    results[i] = result
            if not retry:
                break
            log.warning("bulk: %d item(s) rejected, retrying (attempt %d)", len(retry), attempt + 1)
            time.sleep(self.backoff * 2 ** attempt)
            pending = retry
        return [r or {} for r in results]

    def _mget(self, index: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored documents by id (``_source`` with ``_seq_no``/``_primary_term``), real time."""
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _MGET_CHUNK):
            answer = self._request("POST", f"/{index}/_mget", {"ids": unique[start:start + _MGET_CHUNK]})
            for doc in answer["docs"]:
                if doc.get("found"):
                    found[doc["_id"]] = doc
        return found

    def _search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self._request("POST", f"/{index}/_search", body)
        return answer

    def _scan(self, index: str, query: dict[str, Any], sort: list[Any], batch_size: int = 1000
              ) -> Iterator[dict[str, Any]]:
        after: list[Any] | None = None
        while True:
            hits = self._search(index, qb.scan_body(query, sort, batch_size, after))["hits"]["hits"]
            yield from hits
            if len(hits) < batch_size:
                return
            after = hits[-1]["sort"]

    # -- indices

    def ensure_indices(self) -> None:
        """Create the index template, the indices and their aliases when missing (idempotent)."""
        self._request("PUT", f"/_index_template/{self.prefix}-mentions",
                      qb.mention_template(self.prefix, self.flavor, **self._template))
        concrete = {self.mentions: f"{self.mentions}-000001"}
        for alias in (self.issues, self.rankings, self.periods, self.state):
            concrete[alias] = f"{alias}-v1"
        for alias, index in concrete.items():
            if self._alias_exists(alias):
                if alias == self.mentions:
                    self._add_missing_mention_fields()
                continue
            body: dict[str, Any] = {"aliases": {alias: {"is_write_index": True}}}
            if alias != self.mentions:
                body.update(qb.small_index_body(alias.rsplit("-", 1)[1]))
            try:
                self._request("PUT", f"/{index}", body)
            except EngineError as exc:  # created meanwhile by another process
                if exc.status != 400 or "already_exists" not in str(exc):
                    raise
        self._request("GET", f"/_cluster/health/{','.join(concrete.values())}",
                      params={"wait_for_status": "yellow"})  # the server waits up to 30 s

    def _add_missing_mention_fields(self) -> None:
        """Map the fields this version writes that an existing mentions index lacks (its mapping
        is strict, so it would refuse documents carrying them); mapped fields are left alone."""
        wanted = qb.mention_mappings(self.flavor)["properties"]
        answer = self._request("GET", f"/{self.mentions}/_mapping") or {}
        for index, body in answer.items():
            have = ((body or {}).get("mappings") or {}).get("properties") or {}
            missing = {name: spec for name, spec in wanted.items() if name not in have}
            if missing:
                log.info("adding fields %s to the mapping of %s", sorted(missing), index)
                self._request("PUT", f"/{index}/_mapping", {"properties": missing})

    def _alias_exists(self, alias: str) -> bool:
        try:
            answer = self._request("HEAD", f"/_alias/{alias}")
            return answer is not False  # opensearch-py answers HEAD with a bool
        except EngineError as exc:
            if exc.status == 404:
                return False
            raise

    def indices(self) -> list[str]:
        """The concrete indices behind this store's aliases."""
        answer = self._request("GET", f"/_alias/{self.prefix}-*")
        return sorted(answer)

    def drop(self) -> None:
        """Delete every index and the template of this store (tests, re-migrations)."""
        for index in self.indices():
            self._request("DELETE", f"/{index}")
        try:
            self._request("DELETE", f"/_index_template/{self.prefix}-mentions")
        except EngineError as exc:
            if exc.status != 404:
                raise

    def clear(self) -> None:
        """Delete every document (keeping indices and mappings)."""
        for alias in (self.mentions, self.issues, self.rankings, self.periods, self.state):
            self._request("POST", f"/{alias}/_delete_by_query", {"query": qb.MATCH_ALL},
                          {"refresh": "true", "conflicts": "proceed"})

    def refresh(self) -> None:
        """Make every write so far visible to searches."""
        self._request("POST", f"/{self.prefix}-*/_refresh")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.client.close()

    def __enter__(self) -> SearchEngineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- mentions: writes

    def write_mentions(self, mentions: Iterable[Mention]) -> WriteResult:
        """Insert or update by id, with the SQLite store's merge rules (see `SQLiteStore.write_mentions`).

        A malformed mention raises ValueError before anything is written. Not one transaction: a
        crash mid-bulk leaves some of the batch written, which a retry completes (writes are idempotent).
        """
        seq0 = time.time_ns()
        incoming = [qb.mention_to_doc(m, seq0 + i) for i, m in enumerate(mentions)]
        if not incoming:
            return WriteResult()
        by_id: dict[str, list[dict[str, Any]]] = {}
        for doc in incoming:
            by_id.setdefault(doc["id"], []).append(doc)
        outcome: dict[str, list[str]] = {}
        todo = list(by_id)
        for attempt in range(self.retries + 1):
            stored = self._mget(self.mentions, todo)
            actions: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
            action_ids: list[str] = []
            for mention_id in todo:
                old_hit = stored.get(mention_id)
                old = old_hit["_source"] if old_hit else None
                final, kinds = _merge(old, by_id[mention_id])
                outcome[mention_id] = kinds
                if old is None:
                    actions.append(({"create": {"_index": self.mentions, "_id": mention_id}}, final))
                elif any(final.get(k) != old.get(k) for k in _COMPARED):
                    assert old_hit is not None
                    actions.append(({"index": {"_index": self.mentions, "_id": mention_id,
                                               "if_seq_no": old_hit["_seq_no"],
                                               "if_primary_term": old_hit["_primary_term"]}}, final))
                else:
                    continue
                action_ids.append(mention_id)
            conflicts: list[str] = []
            for mention_id, item in zip(action_ids, self.bulk(actions), strict=True):
                status = int(item.get("status", 500))
                if status == 409:
                    conflicts.append(mention_id)
                elif status >= 300:
                    raise EngineError(status, f"writing mention {mention_id}: {item.get('error')}")
            if not conflicts:
                break
            if attempt == self.retries:
                raise EngineError(409, f"{len(conflicts)} mention(s) kept changing under this write")
            log.info("write_mentions: %d concurrent change(s), merging again", len(conflicts))
            todo = conflicts
        result = WriteResult()
        for kinds in outcome.values():
            for kind in kinds:
                setattr(result, kind, getattr(result, kind) + 1)
        return result

    def update_enrichment(self, mentions: Iterable[Mention]) -> int:
        """Store the NLP fields of stored mentions (partial updates); unknown ids are skipped."""
        incoming: dict[str, dict[str, Any]] = {}
        for m in mentions:
            if m.processed_at is None:
                m = Mention.from_dict({**m.to_dict(), "processed_at": utcnow()})
            doc = qb.mention_to_doc(m, 0)
            incoming[m.id] = {k: doc[k] for k in _ENRICHMENT_FIELDS}
        if not incoming:
            return 0
        actions: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
            ({"update": {"_index": self.mentions, "_id": mention_id, "retry_on_conflict": 5}}, {"doc": fields})
            for mention_id, fields in incoming.items()]
        updated = missing = 0
        for mention_id, item in zip(incoming, self.bulk(actions), strict=True):
            status = int(item.get("status", 500))
            if status == 404:
                missing += 1
            elif status >= 300:
                raise EngineError(status, f"updating mention {mention_id}: {item.get('error')}")
            else:
                updated += 1
        if missing:
            log.warning("update_enrichment: %d unknown mention id(s) skipped", missing)
        return updated

    # -- mentions: reads

    def get_mention(self, mention_id: str) -> Mention | None:
        if not isinstance(mention_id, str) or not mention_id:
            return None
        found = self._get(self.mentions, mention_id)
        return None if found is None else qb.doc_to_mention(found["_source"])

    def get_mentions(self, ids: Sequence[str]) -> list[Mention]:
        """Mentions by id, in the order of `ids` (an id given twice comes twice); unknown ids left out."""
        wanted = [i for i in ids if isinstance(i, str) and i]
        found = {k: qb.doc_to_mention(v["_source"]) for k, v in self._mget(self.mentions, wanted).items()}
        return [found[i] for i in wanted if i in found]

    def count_mentions(self, filters: Filters | None = None) -> int:
        validate_filters(filters)
        query = qb.compile_filters(filters)
        return int(self._request("POST", f"/{self.mentions}/_count", {"query": query})["count"])

    def iter_mentions(self, filters: Filters | None = None, batch_size: int = 1000) -> Iterator[Mention]:
        """All matching mentions, oldest published first (keyset pagination with search_after)."""
        validate_filters(filters)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        query = qb.compile_filters(filters)
        for hit in self._scan(self.mentions, query, qb.SORT_OLDEST, batch_size):
            yield qb.doc_to_mention(hit["_source"])

    def unprocessed_mentions(self, limit: int = 1000) -> list[Mention]:
        if limit <= 0:
            return []
        hits = self._search(self.mentions, qb.unprocessed_body(limit))["hits"]["hits"]
        return [qb.doc_to_mention(h["_source"]) for h in hits]

    def search(self, query: str | None, filters: Filters | None = None, *, limit: int = 20,
               offset: int = 0) -> SearchPage:
        """Accent-insensitive full-text search with the SQLite store's query syntax and highlights.

        With a query: BM25 relevance (title boosted 2×), ties most recently stored first; without:
        newest first. Pages past 100,000 hits are refused by the engine and come back empty.
        """
        validate_filters(filters)
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        parsed = None
        if query is not None and query.strip():
            parsed = parse_query(query)
            if parsed.match is None:
                return SearchPage(total=0)
        body = qb.search_body(parsed.terms if parsed else None, filters, limit=limit, offset=offset)
        if offset + limit > 100_000:
            body.update({"from": 0, "size": 0})
        answer = self._search(self.mentions, body)
        total = int(answer["hits"]["total"]["value"])
        hits = []
        for h in answer["hits"]["hits"] if body["size"] else []:
            m = qb.doc_to_mention(h["_source"])
            if parsed is None:
                hits.append(SearchHit(m))
            else:
                hits.append(SearchHit(m, score=float(h.get("_score") or 0.0),
                                      highlight=make_highlight(m.title, m.text, parsed)))
        return SearchPage(total=total, hits=hits)

    def knn_search(self, vector: Sequence[float], k: int = 10, filters: Filters | None = None) -> list[SearchHit]:
        """Nearest mentions by the ``embedding`` field (store opened with ``vector_dims``)."""
        if not self.vector_dims:
            raise RuntimeError("this store has no vector field (open it with vector_dims=N)")
        if len(vector) != self.vector_dims:
            raise ValueError(f"vector has {len(vector)} dimensions, the index {self.vector_dims}")
        validate_filters(filters)
        answer = self._search(self.mentions, qb.knn_body(self.flavor, [float(x) for x in vector], k, filters))
        return [SearchHit(qb.doc_to_mention(h["_source"]), score=float(h["_score"]))
                for h in answer["hits"]["hits"]]

    # -- aggregations (an extension of the protocol; storage.aggregations has the same for any store)

    def facets(self, filters: Filters | None = None, fields: tuple[str, ...] = qb.FACET_FIELDS,
               size: int = 10) -> dict[str, list[tuple[Any, int]]]:
        validate_filters(filters)
        return qb.parse_facets(self._search(self.mentions, qb.facets_body(filters, fields, size)))

    def date_histogram(self, filters: Filters | None = None, interval: str = "day"
                       ) -> list[tuple[str, int, dict[str, int]]]:
        validate_filters(filters)
        return qb.parse_date_histogram(self._search(self.mentions, qb.date_histogram_body(filters, interval)))

    def top_issues_by_group(self, group_by: str = "area", filters: Filters | None = None,
                            size: int = 10) -> dict[str, list[dict[str, Any]]]:
        validate_filters(filters)
        body = qb.top_issues_body(group_by, filters, size=size)
        return qb.parse_top_issues(self._search(self.mentions, body))

    # -- issues

    def write_issues(self, issues: Iterable[Issue]) -> WriteResult:
        incoming = [qb.issue_to_doc(i) for i in issues]
        result = WriteResult()
        if not incoming:
            return result
        stored = {k: v["_source"] for k, v in self._mget(self.issues, [d["id"] for d in incoming]).items()}
        current: dict[str, dict[str, Any]] = {}
        for new in incoming:
            old = current.get(new["id"]) or stored.get(new["id"])
            if old is None:
                result.inserted += 1
            elif old == new:
                result.unchanged += 1
            else:
                result.updated += 1
            current[new["id"]] = new
        actions: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
            ({"index": {"_index": self.issues, "_id": k}}, v) for k, v in current.items() if stored.get(k) != v]
        for item in self.bulk(actions):
            if int(item.get("status", 500)) >= 300:
                raise EngineError(int(item.get("status", 500)), f"writing an issue: {item.get('error')}")
        return result

    def get_issue(self, issue_id: str) -> Issue | None:
        found = self._get(self.issues, issue_id) if issue_id else None
        return None if found is None else Issue.from_dict(found["_source"])

    def get_issues(self, ids: Sequence[str]) -> list[Issue]:
        found = {k: Issue.from_dict(v["_source"]) for k, v in self._mget(self.issues, list(ids)).items()}
        return [found[i] for i in ids if i in found]

    def list_issues(self) -> list[Issue]:
        """Every issue, most recently seen first."""
        sort = [{"last_seen": "desc"}, {"id": "asc"}]
        return [Issue.from_dict(h["_source"]) for h in self._scan(self.issues, qb.MATCH_ALL, sort)]

    # -- rankings

    def replace_rankings(self, period: str, period_key: str, entries: Iterable[RankingEntry]) -> int:
        """Replace every ranking of one period (all areas): readers switch generation in one write.

        Raises ValueError (writing nothing) on the SQLite store's conditions."""
        if period not in PERIODS:
            raise ValueError(f"unknown period {period!r}; expected one of {PERIODS}")
        generation = uuid.uuid4().hex
        docs: list[dict[str, Any]] = []
        seen: set[tuple[str, int]] = set()
        for e in entries:
            if e.period != period or e.period_key != period_key:
                raise ValueError(f"entry for {e.period}/{e.period_key} given to replace {period}/{period_key}")
            if int(e.rank) < 1:
                raise ValueError(f"rank must be at least 1, got {e.rank} ({e.area_id})")
            if (e.area_id, int(e.rank)) in seen:
                raise ValueError(f"rank {e.rank} given twice for area {e.area_id}")
            seen.add((e.area_id, int(e.rank)))
            docs.append(qb.ranking_to_doc(e, generation))
        actions: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
            ({"index": {"_index": self.rankings, "_id": f"{generation}:{d['area_id']}:{d['rank']}"}}, d)
            for d in docs]
        for item in self.bulk(actions, refresh=True):
            if int(item.get("status", 500)) >= 300:
                raise EngineError(int(item.get("status", 500)), f"writing rankings: {item.get('error')}")
        pointer = f"{period}|{period_key}"
        if docs:
            self._request("PUT", f"/{self.periods}/_doc/{urllib.parse.quote(pointer, safe='')}",
                          {"period": period, "period_key": period_key, "generation": generation,
                           "count": len(docs)}, {"refresh": "true"})
        else:
            try:
                self._request("DELETE", f"/{self.periods}/_doc/{urllib.parse.quote(pointer, safe='')}",
                              params={"refresh": "true"})
            except EngineError as exc:
                if exc.status != 404:
                    raise
        stale = {"bool": {"filter": [{"term": {"period": period}}, {"term": {"period_key": period_key}}],
                          "must_not": [{"term": {"generation": generation}}]}}
        self._request("POST", f"/{self.rankings}/_delete_by_query", {"query": stale},
                      {"refresh": "true", "conflicts": "proceed"})
        return len(docs)

    def top_issues(self, area_id: str, period: str, period_key: str, limit: int = 10) -> list[RankingEntry]:
        if limit <= 0:
            return []
        pointer = self._get(self.periods, f"{period}|{period_key}")
        if pointer is None:
            return []
        query = {"bool": {"filter": [{"term": {"generation": pointer["_source"]["generation"]}},
                                     {"term": {"area_id": area_id}}]}}
        answer = self._search(self.rankings, {"query": query, "sort": [{"rank": "asc"}], "size": limit})
        return [qb.doc_to_ranking(h["_source"]) for h in answer["hits"]["hits"]]

    def ranking_keys(self, period: str) -> list[str]:
        query = {"term": {"period": period}}
        return [h["_source"]["period_key"]
                for h in self._scan(self.periods, query, [{"period_key": "desc"}])]

    # -- job state

    def get_state(self, key: str) -> str | None:
        found = self._get(self.state, key) if key else None
        return None if found is None else str(found["_source"]["value"])

    def set_state(self, key: str, value: str) -> None:
        if not isinstance(value, str):
            raise ValueError(f"state values are strings, got {type(value).__name__}")
        if not isinstance(key, str) or not key:
            raise ValueError("state keys are non-empty strings")
        self._request("PUT", f"/{self.state}/_doc/{urllib.parse.quote(key, safe='')}",
                      {"value": value, "updated_at": qb.ts(utcnow())}, self._refresh_param())


def _merge(old: dict[str, Any] | None, news: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Apply one id's incoming documents in order to the stored one (the SQLite store's rules);
    returns the final document and an outcome per incoming document."""
    kinds: list[str] = []
    current = old
    for new in news:
        if current is None:
            current = dict(new)
            kinds.append("inserted")
            continue
        merged = dict(current)
        merged.update({k: new[k] for k in _CRAWL_FIELDS})
        if new["story_id"] is None:  # a writer that knows no story keeps the stored one
            merged["story_id"] = current.get("story_id")
        text_changed = current["title"] != new["title"] or current["text"] != new["text"]
        if text_changed:
            merged["crawled_at"] = new["crawled_at"]
        if new["processed_at"] is not None:
            merged.update({k: new[k] for k in _ENRICHMENT_FIELDS})
        elif text_changed:
            merged["processed_at"] = None
        kinds.append("unchanged" if all(merged.get(k) == current.get(k) for k in _COMPARED) else "updated")
        current = merged
    assert current is not None
    return current, kinds
