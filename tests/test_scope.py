"""Access control: every route needs an account, and a department or area account sees nothing
outside its scope through any API endpoint or page (parametrised over the app's route table)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth.models import Role, scope_for
from api.main import create_app
from langnghe.records import Mention
from nlp.areas import load_areas
from storage.sqlite import SQLiteStore
from tests.auth_helpers import add_user, bearer, iter_routes
from tests.test_api import (
    ALL_MENTIONS,
    DAY_17,
    DAY_19,
    DAY_20,
    ISSUES,
    TAN_HUNG,
    THANH_MY_TAY,
    WEEK_46,
    WEEK_47,
    at,
    mention,
)

# a mention tagged with a ward of former Quận 7 only: a Quận 7 account must see it
WARD_ONLY = mention("vi-pham-tan-hung", "plo.vn", "Lấn chiếm vỉa hè kéo dài ở phường Tân Hưng",
                    "Hàng quán lấn chiếm vỉa hè đường Nguyễn Thị Thập suốt nhiều tháng.", at(20, 8),
                    topic="urban_order", department="commune_pc", sentiment="negative", areas=[TAN_HUNG],
                    issue_id="iss-trieu-q7")
MENTIONS: list[Mention] = [*ALL_MENTIONS, WARD_ONLY]

ACCOUNTS: dict[str, dict[str, Any]] = {
    "dept-env": {"role": Role.department, "department": "agriculture_environment"},
    "dept-construction": {"role": Role.department, "department": "construction"},
    "area-quan-7": {"role": Role.area, "area_id": "fd:quan-7"},
    "area-ward": {"role": Role.area, "area_id": THANH_MY_TAY},
    "area-binh-thanh": {"role": Role.area, "area_id": "fd:binh-thanh"},
}
PUBLIC = {"/healthz", "/readyz", "/login", "/openapi.json", "/docs", "/docs/oauth2-redirect",
          "/api/v1/auth/login", "/logout"}
AREA_PARAMS = ["hcmc", "fd:quan-7", "fd:binh-thanh", THANH_MY_TAY, TAN_HUNG, "fd:quan-3", "fd:tan-binh"]
QUERY_VARIANTS: list[dict[str, str]] = [
    {}, {"date": "2025-11-20"}, {"period": "week", "date": "2025-11-18"},
    {"q": "ngap nuoc OR rac OR cup OR xe OR dien OR via"}, {"q": "ngap", "area": "fd:quan-7"},
    *({"area": a, "date": "2025-11-20"} for a in AREA_PARAMS),
    *({"area": a, "date": "2025-11-19"} for a in ("hcmc", "fd:quan-7")),
    {"department": "construction"}, {"department": "agriculture_environment"},
    {"from": "2025-11-01", "to": "2025-11-30"}, {"view": "former_district"},
]
BROAD_QUERY = "ngap OR nuoc OR rac OR cup OR xe OR dien OR via OR buyt"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLiteStore]:
    db = SQLiteStore(tmp_path_factory.mktemp("scope") / "scope.sqlite3")
    db.write_mentions(MENTIONS)
    db.write_issues(ISSUES)
    for period, key, entries in (("day", "2025-11-20", DAY_20), ("day", "2025-11-19", DAY_19),
                                 ("day", "2025-11-17", DAY_17), ("week", "2025-W47", WEEK_47),
                                 ("week", "2025-W46", WEEK_46)):
        db.replace_rankings(period, key, entries)
    yield db
    db.close()


@pytest.fixture(scope="module")
def client(store: SQLiteStore) -> Iterator[TestClient]:
    with TestClient(create_app(store)) as c:
        add_user(c.app, "admin@scope.test", "administrator")
        for name, spec in ACCOUNTS.items():
            add_user(c.app, f"{name}@scope.test", **spec)
        yield c


@pytest.fixture(scope="module")
def tokens(client: TestClient) -> dict[str, dict[str, str]]:
    out = {name: bearer(client, f"{name}@scope.test") for name in ACCOUNTS}
    for name, headers in out.items():  # each account has a saved search to run
        r = client.post("/api/v1/saved-searches", headers=headers, json={"name": name, "query": BROAD_QUERY})
        assert r.status_code == 201, r.text
    return out


def expected_scope(name: str) -> Any:
    spec = ACCOUNTS[name]
    return scope_for(spec["role"], spec.get("department"), spec.get("area_id"), load_areas())


def forbidden_needles(name: str) -> dict[str, str]:
    """Strings that would reveal out-of-scope data: mention ids and titles, issue ids and labels."""
    scope = expected_scope(name)
    needles: dict[str, str] = {}
    for m in MENTIONS:
        if not scope.allows_mention(m):
            needles[m.id] = f"mention {m.id}"
            needles[m.title] = f"mention title {m.title!r}"
            needles[html.escape(m.title)] = f"mention title (escaped) {m.title!r}"
    for issue in ISSUES:
        if not scope.allows_issue(issue):
            needles[issue.label] = f"issue {issue.id}"
            needles[html.escape(issue.label)] = f"issue {issue.id} (escaped)"
            needles[f'"{issue.id}"'] = f"issue id {issue.id}"
            needles[f"/issues/{issue.id}"] = f"issue link {issue.id}"
    return needles


def get_routes(app: Any) -> list[str]:
    paths = sorted({path for path, methods, _ in iter_routes(app) if "GET" in methods
                    and not path.startswith("/static") and path not in PUBLIC})
    return paths


def fill(path: str, name: str, issue_id: str) -> str:
    spec = ACCOUNTS[name]
    values = {"issue_id": issue_id, "department": spec.get("department") or "construction",
              "week_key": "2025-W47", "area_id": spec.get("area_id") or "hcmc"}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "1"), path)


# --- the facts the route table test relies on --------------------------------------------------

def test_scopes_are_what_the_accounts_say() -> None:
    quan7 = expected_scope("area-quan-7")
    assert quan7.allows_mention(WARD_ONLY)  # a ward formed from former Quận 7
    assert not quan7.allows_area("hcmc") and quan7.allows_area(TAN_HUNG)
    ward = expected_scope("area-ward")
    assert ward.area_ids == frozenset({THANH_MY_TAY})
    env = expected_scope("dept-env")
    assert [m.id for m in MENTIONS if env.allows_mention(m)] == [m.id for m in MENTIONS
                                                                 if m.department == "agriculture_environment"]
    for name in ACCOUNTS:  # every account has something outside its scope to leak
        assert forbidden_needles(name)


# --- unauthenticated ---------------------------------------------------------------------------

def test_every_route_needs_an_account(store: SQLiteStore) -> None:
    app = create_app(store)
    with TestClient(app) as anonymous:
        checked = 0
        for path, methods, _ in iter_routes(app):
            if path in PUBLIC or path.startswith("/static"):
                continue
            url = re.sub(r"\{(\w+)(?::\w+)?\}", "1", path)
            for method in sorted(methods - {"HEAD", "OPTIONS"}):
                r = anonymous.request(method, url, follow_redirects=False)
                checked += 1
                if path.startswith("/api/") or path == "/metrics":
                    assert r.status_code == 401, (method, path, r.status_code)
                else:
                    assert r.status_code in (303, 401), (method, path, r.status_code)
                    if r.status_code == 303:
                        assert r.headers["location"].startswith("/login?next="), (method, path)
        assert checked >= 25


# --- scoped accounts through every GET route ---------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_scoped_accounts_see_nothing_outside_their_scope(client: TestClient, tokens: dict[str, dict[str, str]],
                                                         name: str) -> None:
    headers = tokens[name]
    needles = forbidden_needles(name)
    scope = expected_scope(name)
    in_scope = [i.id for i in ISSUES if scope.allows_issue(i)]
    out_scope = [i.id for i in ISSUES if not scope.allows_issue(i)]
    saved_id = client.get("/api/v1/saved-searches", headers=headers).json()[0]["id"]
    served = 0
    for path in get_routes(client.app):
        variants = QUERY_VARIANTS if "{" not in path else [{}, {"date": "2025-11-20"}]
        issue_ids = [*in_scope[:1], *out_scope] if "{issue_id}" in path else ["x"]
        for issue_id in issue_ids:
            url = fill(path, name, issue_id).replace("/saved-searches/1", f"/saved-searches/{saved_id}")
            for params in variants:
                r = client.get(url, params=params, headers=headers, follow_redirects=False)
                assert r.status_code < 500, (url, params, r.status_code, r.text[:300])
                if r.status_code == 200:
                    served += 1
                body = r.content.decode("utf-8", "replace") if not r.content.startswith(b"%PDF") else ""
                for needle, what in needles.items():
                    if needle.strip('"') in url:  # the page may echo what was asked for
                        continue
                    assert needle not in body, f"{name} saw {what} via GET {url} {params}"
    assert served > 20


@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_scoped_search_and_export_hold_exactly_the_scope(client: TestClient, tokens: dict[str, dict[str, str]],
                                                         name: str) -> None:
    headers = tokens[name]
    scope = expected_scope(name)
    visible = {m.id for m in MENTIONS if scope.allows_mention(m)}
    found = client.get("/api/v1/mentions/search", params={"page_size": 100}, headers=headers).json()
    assert {m["id"] for m in found["items"]} == visible and found["total"] == len(visible)
    exported = client.get("/api/v1/mentions/export", params={"format": "json"}, headers=headers).json()
    assert {m["id"] for m in exported} == visible
    # asking for another area's mentions finds nothing instead of leaking them
    other = client.get("/api/v1/mentions/search", params={"area": "fd:quan-3"}, headers=headers).json()
    assert {m["id"] for m in other["items"]} <= visible


def test_area_account_gets_403_for_a_top_10_outside_its_area(client: TestClient,
                                                              tokens: dict[str, dict[str, str]]) -> None:
    headers = tokens["area-quan-7"]
    assert client.get("/api/v1/issues/top", params={"area": "hcmc"}, headers=headers).status_code == 403
    assert client.get("/api/v1/issues/top", params={"area": "fd:binh-thanh"}, headers=headers).status_code == 403
    own = client.get("/api/v1/issues/top", params={"area": "fd:quan-7", "date": "2025-11-19"}, headers=headers)
    assert own.status_code == 200 and [i["issue_id"] for i in own.json()["issues"]] == ["iss-trieu-q7"]
    ward = client.get("/api/v1/issues/top", params={"area": TAN_HUNG}, headers=headers)
    assert ward.status_code == 200  # a ward formed from Quận 7 is inside the scope
    assert client.get("/api/v1/issues/iss-ngap-nhc", headers=headers).status_code == 403
    issue = client.get("/api/v1/issues/iss-trieu-q7", headers=headers).json()
    assert {m["id"] for m in issue["mentions"]} == {MENTIONS[2].id, WARD_ONLY.id}
    areas = client.get("/api/v1/areas", headers=headers).json()
    assert {a["id"] for a in areas} == set(expected_scope("area-quan-7").area_ids or ())


def test_department_account_sees_its_issues_in_any_area(client: TestClient,
                                                        tokens: dict[str, dict[str, str]]) -> None:
    headers = tokens["dept-env"]
    top = client.get("/api/v1/issues/top", params={"date": "2025-11-20"}, headers=headers).json()
    assert [(i["rank"], i["issue_id"]) for i in top["issues"]] == [(3, "iss-rac-kenh")]
    week = client.get("/api/v1/issues/top", params={"period": "week", "date": "2025-11-18"}, headers=headers)
    assert week.json()["issues"] == []
    assert client.get("/api/v1/issues/iss-ngap-nhc", headers=headers).status_code == 403
    assert client.get("/api/v1/issues/iss-rac-kenh", headers=headers).status_code == 200
    assert len(client.get("/api/v1/areas", params={"level": "ward"}, headers=headers).json()) == 168


def test_saved_searches_are_private_to_their_owner(client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    mine = client.get("/api/v1/saved-searches", headers=tokens["dept-env"]).json()[0]["id"]
    other = tokens["area-quan-7"]
    assert client.get(f"/api/v1/saved-searches/{mine}", headers=other).status_code == 404
    assert client.get(f"/api/v1/saved-searches/{mine}/results", headers=other).status_code == 404
    assert client.delete(f"/api/v1/saved-searches/{mine}", headers=other).status_code == 404
    results = client.get(f"/api/v1/saved-searches/{mine}/results", headers=tokens["dept-env"]).json()
    assert {m["id"] for m in results["items"]} == {MENTIONS[5].id}  # WASTE only


def test_scoped_accounts_cannot_reach_admin_operations(client: TestClient, tokens: dict[str, dict[str, str]]) -> None:
    for name, headers in tokens.items():
        assert client.get("/api/v1/users", headers=headers).status_code == 403, name
        assert client.post("/api/v1/alerts/check", headers=headers).status_code == 403, name
        assert client.post("/api/v1/alerts/emerging", headers=headers, json=[]).status_code == 403, name
        assert client.get("/metrics", headers=headers).status_code == 403, name


def test_the_data_is_old_enough_for_no_alert(store: SQLiteStore) -> None:
    # sanity for the alert tests: the fixture mentions were published in November 2025
    assert all(m.published_at < at(21, 0) + timedelta(days=1) for m in MENTIONS)
