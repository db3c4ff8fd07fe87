"""The search language: parsing, the SQLite boolean search agreeing with the Python evaluation,
field filters, highlights, export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth.models import Scope
from api.main import create_app
from api.query_language import And, Field, Not, Or, QueryError, Term, matches, parse, to_expression, to_text
from api.search import run_search
from nlp.areas import load_areas
from storage.sqlite import SQLiteStore
from storage.sqlite_boolean import ExpressionError, search_boolean, validate_expression
from tests.auth_helpers import logged_in
from tests.test_api import ALL_MENTIONS, BUS, FLOOD_1, FLOOD_2, FLOOD_Q7, TRAFFIC, WASTE, WATER, XSS

AREAS = load_areas()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    db = SQLiteStore(tmp_path_factory.mktemp("ql") / "ql.sqlite3")
    db.write_mentions(ALL_MENTIONS)
    yield db
    db.close()


@pytest.fixture(scope="module")
def client(store: SQLiteStore) -> Iterator[TestClient]:
    with TestClient(create_app(store)) as c:
        yield logged_in(c, "communications", "truyen.thong@langnghe.test")


# --- parsing -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "expected"), [
    ("ngập nước", "(ngap AND nuoc)"),
    ('"kẹt xe" OR ùn tắc', '("ket xe" OR (un AND tac))'),
    ("rác -kênh", "(rac AND NOT kenh)"),
    ("rác NOT kênh", "(rac AND NOT kenh)"),
    ('ngập -"triều cường" -(a OR b) - c', '(ngap AND NOT "trieu cuong" AND NOT (a OR b) AND c)'),
    ("(ngập OR triều cường) AND Nguyễn-Hữu-Cảnh", '((ngap OR (trieu AND cuong)) AND "nguyen huu canh")'),
    ("ngap*", "ngap*"),
    ("n*", "n"),  # prefixes need two letters
    ('area:"Quận 7" topic:flooding', "(area:fd:quan-7 AND topic:flooding)"),
    ("khuvuc:fd:binh-thanh sacthai:tiêu-cực", "(area:fd:binh-thanh AND sentiment:negative)"),
    ('sentiment:"Tích cực" OR department:"Sở Xây dựng"', "(sentiment:positive OR department:construction)"),
    ("source:VnExpress.net", "source:vnexpress.net"),
    ("a OR", "a"), ("NOT", None), ("AND b", "b"), (")a(b", "(a AND b)"), ('"unclosed phrase', '"unclosed phrase"'),
    ("or and not", "(or AND and AND not)"),  # lower case: words
    ("\"') OR 1=1 --", '"or 1 1"'), ("!!! ???", None), ("", None),
])
def test_parse(query: str, expected: str | None) -> None:
    node = parse(query, AREAS)
    assert (to_text(node) if node is not None else None) == expected


@pytest.mark.parametrize(("query", "needle"), [
    ("topic:weather", "unknown topic 'weather'"), ("department:mayor", "unknown department"),
    ("sentiment:angry", "unknown sentiment"), ("area:fd:quan-99", "unknown area 'fd:quan-99'"),
    ("from:hôm-qua", "from: must be YYYY-MM-DD"), ("to:2025-02-30", "to: must be YYYY-MM-DD"),
    ("topic:", "has no value"), ("((((((((((x))))))))))", "nested too deep"),
])
def test_bad_field_values_are_clear_errors(query: str, needle: str) -> None:
    with pytest.raises(QueryError, match=needle):
        parse(query, AREAS)


def test_dates_are_city_days() -> None:
    node = parse("from:2025-11-20 to:2025-11-20")
    assert node == And((Field("from", "2025-11-19T17:00:00+00:00"), Field("to", "2025-11-20T17:00:00+00:00")))


def test_terms_are_capped() -> None:
    node = parse(" ".join(f"w{i}" for i in range(100)))
    assert isinstance(node, And) and len(node.children) == 32


def test_expression_validation_rejects_unsafe_tokens() -> None:
    validate_expression(to_expression(Or((Term(("ngap",)), Not(Field("topic", "traffic"))))))
    with pytest.raises(ExpressionError, match="letters/digits"):
        validate_expression({"op": "TEXT", "tokens": ['ngap" OR "x']})
    with pytest.raises(ExpressionError, match="unknown op"):
        validate_expression({"op": "XOR", "args": []})


# --- SQL agrees with Python --------------------------------------------------------------------

QUERIES = [
    "ngap nuoc", '"ngap nuoc"', "ngap OR ket", "ngap -trieu", "NOT ngap", "NOT (ngap OR cup)",
    "(ngap OR ket) AND sentiment:negative", "topic:flooding OR sentiment:positive",
    "xe NOT topic:traffic", "cup* nuoc", "nuoc NOT (cup OR trieu)", "source:hotline-1022 NOT nguyen",
    "area:fd:quan-7 OR area:fd:binh-thanh", "(area:fd:quan-3 rac) OR (buyt sentiment:positive)",
    "from:2025-11-20 to:2025-11-20", "NOT topic:utilities", "dien OR \"xe buyt\"", "ngap* -area:fd:quan-7",
    "issue:iss-ngap-nhc OR issue:iss-rac-kenh", "department:construction NOT (ngap OR cup)",
]


@pytest.mark.parametrize("query", QUERIES)
def test_sqlite_boolean_search_agrees_with_python(store: SQLiteStore, query: str) -> None:
    node = parse(query, AREAS)
    assert node is not None
    expected = {m.id for m in ALL_MENTIONS if matches(node, m)}
    page = search_boolean(store, to_expression(node), limit=100)
    assert {h.mention.id for h in page.hits} == expected and page.total == len(expected)
    assert expected, f"{query} should match something in the fixture"


def test_boolean_search_results_are_exact(store: SQLiteStore) -> None:
    def ids(query: str) -> set[str]:
        return {h.mention.id for h in run_search(store, query, scope=Scope(), areas=AREAS, limit=100).hits}

    assert ids("ngap nuoc") == {FLOOD_1.id, FLOOD_2.id, FLOOD_Q7.id}
    assert ids("ngap nuoc -trieu") == {FLOOD_1.id, FLOOD_2.id}
    assert ids('"xe buyt" OR "ket xe"') == {BUS.id, TRAFFIC.id}
    assert ids("topic:traffic sentiment:positive") == {BUS.id}
    assert ids("area:\"Quận 3\" rac") == {WASTE.id}
    assert ids("cup dien") == {XSS.id}
    assert ids("cup* NOT dien") == {m.id for m in WATER}
    assert ids("NOT (source:hotline-1022 OR topic:flooding)") == {TRAFFIC.id, BUS.id, WASTE.id, XSS.id}


def test_relevance_order_and_highlights_skip_negated_words(store: SQLiteStore) -> None:
    page = run_search(store, "ngap nuoc -trieu", scope=Scope(), areas=AREAS, limit=10)
    assert all("<mark>ngập</mark> <mark>nước</mark>" in (h.highlight or "") for h in page.hits)
    assert [h.score for h in page.hits] == sorted((h.score for h in page.hits), reverse=True)
    only_fields = run_search(store, "topic:traffic", scope=Scope(), areas=AREAS, limit=10)
    assert [h.mention.id for h in only_fields.hits] == [TRAFFIC.id, BUS.id]  # newest first
    assert only_fields.hits[0].highlight is None


def test_scope_restricts_any_query(store: SQLiteStore) -> None:
    scope = Scope(unrestricted=False, department="agriculture_environment")
    page = run_search(store, "rac OR ngap OR cup", scope=scope, areas=AREAS, limit=100)
    assert [h.mention.id for h in page.hits] == [WASTE.id]


class _PlainStore:
    """A Store without boolean SQL: the search falls back to the Python evaluation."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_other_backends_get_the_same_answers(store: SQLiteStore) -> None:
    plain = _PlainStore(store)
    for query in QUERIES[:8]:
        sql = run_search(store, query, scope=Scope(), areas=AREAS, limit=100)
        py = run_search(plain, query, scope=Scope(), areas=AREAS, limit=100)
        assert {h.mention.id for h in py.hits} == {h.mention.id for h in sql.hits} and py.total == sql.total


# --- through the API ---------------------------------------------------------------------------

def test_api_search_with_the_language(client: TestClient) -> None:
    r = client.get("/api/v1/mentions/search", params={"q": '("ngập nước" OR "kẹt xe") -source:tuoitre.vn'})
    assert r.status_code == 200
    assert {m["id"] for m in r.json()["items"]} == {FLOOD_1.id, FLOOD_Q7.id, TRAFFIC.id}
    both = client.get("/api/v1/mentions/search", params={"q": "ngap OR xe", "sentiment": "positive"}).json()
    assert [m["id"] for m in both["items"]] == [BUS.id]
    bad = client.get("/api/v1/mentions/search", params={"q": "topic:weather"})
    assert bad.status_code == 422 and "unknown topic 'weather'" in bad.json()["message"]


def test_export_csv_is_bounded_escaped_and_complete(client: TestClient) -> None:
    r = client.get("/api/v1/mentions/export", params={"q": "cup*", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'attachment; filename="langnghe-mentions-' in r.headers["content-disposition"]
    text = r.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == len(WATER) + 1 and {row["id"] for row in rows} >= {m.id for m in WATER}
    xss = next(row for row in rows if row["id"] == XSS.id)
    assert xss["title"] == XSS.title and xss["text"] == XSS.text and xss["areas"] == "hcmc fd:quan-1"
    limited = client.get("/api/v1/mentions/export", params={"q": "cup*", "limit": 3}).content.decode()
    assert len(list(csv.reader(io.StringIO(limited.lstrip("\ufeff"))))) == 4
    assert client.get("/api/v1/mentions/export", params={"limit": 10001}).status_code == 422


def test_export_json_and_formula_cells(store: SQLiteStore, client: TestClient) -> None:
    from api.search import _cell

    assert _cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")" and _cell("-1") == "'-1" and _cell("ngập") == "ngập"
    body = client.get("/api/v1/mentions/export", params={"format": "json", "q": "topic:traffic"})
    assert body.headers["content-type"].startswith("application/json")
    data = json.loads(body.content)
    assert [m["id"] for m in data] == [TRAFFIC.id, BUS.id]
    assert data[0]["published_at"].endswith("+07:00") and data[0]["text"] == TRAFFIC.text
