"""Accounts: password hashing, login (page and API), sessions with expiry, API keys hashed at rest,
CSRF, throttling, account management, the secret key."""

from __future__ import annotations

import logging
import sqlite3
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth.config import AuthConfig, load_secret_key
from api.auth.deps import app_accounts, safe_next
from api.auth.passwords import check_password_policy, hash_password, needs_rehash, verify_password
from api.auth.store import AccountError, AccountsStore
from api.logs import JsonFormatter
from api.main import create_app
from storage.sqlite import SQLiteStore
from tests.auth_helpers import ADMIN_EMAIL, PASSWORD, add_user, bearer, logged_in, login

SECRET = b"k" * 32


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    db = SQLiteStore(tmp_path / "auth.sqlite3")
    yield db
    db.close()


@pytest.fixture()
def client(store: SQLiteStore) -> Iterator[TestClient]:
    with TestClient(create_app(store)) as c:
        add_user(c.app, ADMIN_EMAIL, "administrator")
        yield c


# --- passwords ---------------------------------------------------------------------------------

def test_password_hash_is_salted_scrypt_and_verifies() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("scrypt$16384$8$1$") and first != second
    assert PASSWORD not in first
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD + "x", first)
    assert not verify_password(PASSWORD, "scrypt$garbage") and not verify_password(PASSWORD, "")
    assert not needs_rehash(first) and needs_rehash("scrypt$1024$8$1$AA==$AA==")


@pytest.mark.parametrize(("password", "needle"), [
    ("short", "ít nhất 10"), ("aaaaaaaaaaaa", "đơn giản"), ("x" * 1025, "quá dài"),
    ("quan.tri@langnghe.test", "trùng e-mail"),
])
def test_password_policy(password: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        check_password_policy(password, email="quan.tri@langnghe.test")


def test_accounts_store_rejects_bad_accounts(tmp_path: Path) -> None:
    accounts = AccountsStore(tmp_path / "a.sqlite3", SECRET)
    accounts.create_user("a@b.vn", PASSWORD, "leadership")
    with pytest.raises(AccountError, match="already in use"):
        accounts.create_user("A@B.vn ", PASSWORD, "communications")
    with pytest.raises(AccountError, match="department code"):
        accounts.create_user("d@b.vn", PASSWORD, "department", department="mayor")
    with pytest.raises(AccountError, match="area id"):
        accounts.create_user("w@b.vn", PASSWORD, "area")
    with pytest.raises(AccountError, match="takes no department"):
        accounts.create_user("l@b.vn", PASSWORD, "leadership", department="construction")
    with pytest.raises(AccountError, match="invalid e-mail"):
        accounts.create_user("not-an-email", PASSWORD, "leadership")
    assert accounts.authenticate("a@b.vn", PASSWORD) is not None
    assert accounts.authenticate("A@B.VN", PASSWORD) is not None  # e-mail case does not matter
    assert accounts.authenticate("a@b.vn", "wrong password!") is None
    assert accounts.authenticate("nobody@b.vn", PASSWORD) is None
    assert accounts.schema_version() == 1
    accounts.close()


# --- pages and the login form ------------------------------------------------------------------

def test_pages_redirect_to_vietnamese_login_and_back(client: TestClient) -> None:
    r = client.get("/", params={"area": "hcmc"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F%3Farea%3Dhcmc"
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and '<html lang="vi">' in page.text
    assert "Đăng nhập" in page.text and 'name="password"' in page.text and 'value="/?area=hcmc"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    english = client.get("/login", params={"lang": "en"})
    assert "Sign in" in english.text
    done = client.post("/login", data={"email": ADMIN_EMAIL, "password": PASSWORD, "next": "/?area=hcmc"},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/?area=hcmc"
    cookie = done.headers["set-cookie"]
    assert "langnghe_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert client.get("/", follow_redirects=False).status_code == 200
    # logged in, the login page goes straight on
    assert client.get("/login", params={"next": "/x"}, follow_redirects=False).headers["location"] == "/x"


def test_wrong_password_is_refused_with_the_same_message(client: TestClient) -> None:
    wrong = client.post("/login", data={"email": ADMIN_EMAIL, "password": "sai mật khẩu rồi"})
    unknown = client.post("/login", data={"email": "ai@langnghe.test", "password": "sai mật khẩu rồi"})
    assert wrong.status_code == unknown.status_code == 401
    assert "E-mail hoặc mật khẩu không đúng." in wrong.text and "E-mail hoặc mật khẩu không đúng." in unknown.text
    assert "langnghe_session" not in client.cookies


@pytest.mark.parametrize(("target", "expected"), [
    ("/issues/1?x=2", "/issues/1?x=2"), ("https://evil.example/", "/"), ("//evil.example", "/"),
    ("/\\evil.example", "/"), ("javascript:alert(1)", "/"), ("", "/"),
])
def test_login_redirects_only_to_local_paths(target: str, expected: str) -> None:
    assert safe_next(target) == expected


def test_failed_logins_are_throttled(store: SQLiteStore) -> None:
    app = create_app(store, auth=AuthConfig(login_max_failures=3))
    with TestClient(app) as c:
        add_user(c.app, ADMIN_EMAIL, "administrator")
        for _ in range(3):
            assert c.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "x" * 12}).status_code == 401
        blocked = c.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD})
        assert blocked.status_code == 429  # even the right password, for a while
        assert c.post("/login", data={"email": ADMIN_EMAIL, "password": PASSWORD}).status_code == 429


def test_logout_ends_the_session(client: TestClient) -> None:
    login(client, ADMIN_EMAIL)
    token = client.cookies["langnghe_session"]
    me = client.get("/api/v1/auth/me").json()
    r = client.post("/logout", headers={"X-CSRF-Token": me["csrf_token"]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    client.cookies.set("langnghe_session", token)  # replaying the old cookie does not work
    assert client.get("/api/v1/auth/me").status_code == 401


def test_cookie_writes_need_same_origin_or_csrf_token(client: TestClient) -> None:
    login(client, ADMIN_EMAIL)
    body = {"name": "ngập", "query": "ngap nuoc"}
    refused = client.post("/api/v1/saved-searches", json=body)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    cross = client.post("/api/v1/saved-searches", json=body, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    same = client.post("/api/v1/saved-searches", json=body, headers={"Origin": "http://testserver"})
    assert same.status_code == 201
    token = client.get("/api/v1/auth/me").json()["csrf_token"]
    assert len(token) == 64
    assert client.post("/api/v1/saved-searches", json=body, headers={"X-CSRF-Token": token}).status_code == 201
    assert client.post("/api/v1/saved-searches", json=body, headers={"X-CSRF-Token": "0" * 64}).status_code == 403


# --- bearer tokens and API keys ----------------------------------------------------------------

def test_api_needs_credentials(client: TestClient) -> None:
    r = client.get("/api/v1/issues/top")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "authentication required" in r.json()["detail"]
    assert client.get("/api/v1/issues/top", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/v1/issues/top", headers={"Authorization": "Basic eDp5"}).status_code == 401
    assert client.get("/healthz").status_code == 200  # probes stay public


def test_bearer_token_works_and_expires(store: SQLiteStore) -> None:
    app = create_app(store, auth=AuthConfig(session_lifetime=timedelta(seconds=-1)))
    with TestClient(app) as c:
        add_user(c.app, ADMIN_EMAIL, "administrator")
        expired = bearer(c, ADMIN_EMAIL)
        assert c.get("/api/v1/auth/me", headers=expired).status_code == 401
    with TestClient(create_app(store)) as c:
        headers = bearer(c, ADMIN_EMAIL)
        me = c.get("/api/v1/auth/me", headers=headers).json()
        assert me["email"] == ADMIN_EMAIL and me["role"] == "administrator" and me["via"] == "bearer"
        assert me["scope"]["unrestricted"] is True
        assert c.post("/api/v1/auth/logout", headers=headers).status_code == 204
        assert c.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_api_keys_are_hashed_at_rest_and_revocable(client: TestClient, store: SQLiteStore) -> None:
    headers = bearer(client, ADMIN_EMAIL)
    created = client.post("/api/v1/auth/api-keys", json={"name": "prometheus"}, headers=headers)
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("lnk_") and created.json()["prefix"] == key[:12]
    raw = sqlite3.connect(store.path)
    dump = "\n".join(raw.iterdump())
    raw.close()
    assert key not in dump and key[12:] not in dump  # only its keyed hash is stored
    assert headers["Authorization"].split()[1] not in dump  # nor the session token
    with_key = {"Authorization": f"Bearer {key}"}
    me = client.get("/api/v1/auth/me", headers=with_key).json()
    assert me["via"] == "api_key" and me["email"] == ADMIN_EMAIL
    assert client.post("/api/v1/auth/api-keys", json={"name": "x"}, headers=with_key).status_code == 403
    listed = client.get("/api/v1/auth/api-keys", headers=headers).json()
    assert [k["name"] for k in listed] == ["prometheus"] and "key" not in listed[0]
    assert listed[0]["last_used_at"] is not None
    assert client.delete(f"/api/v1/auth/api-keys/{listed[0]['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=with_key).status_code == 401
    assert client.delete(f"/api/v1/auth/api-keys/{listed[0]['id']}", headers=headers).status_code == 404


def test_change_password_ends_sessions(client: TestClient) -> None:
    headers = bearer(client, ADMIN_EMAIL)
    other = bearer(client, ADMIN_EMAIL)
    wrong = client.post("/api/v1/auth/password", headers=headers,
                        json={"current_password": "không phải mật khẩu", "new_password": "Mật khẩu mới 2026"})
    assert wrong.status_code == 403
    weak = client.post("/api/v1/auth/password", headers=headers,
                       json={"current_password": PASSWORD, "new_password": "ngắn"})
    assert weak.status_code == 400 and "10" in weak.json()["detail"]
    ok = client.post("/api/v1/auth/password", headers=headers,
                     json={"current_password": PASSWORD, "new_password": "Mật khẩu mới 2026"})
    assert ok.status_code == 204
    assert client.get("/api/v1/auth/me", headers=other).status_code == 401
    assert client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD}).status_code == 401
    bearer(client, ADMIN_EMAIL, "Mật khẩu mới 2026")


# --- account management ------------------------------------------------------------------------

def test_administrators_manage_accounts(client: TestClient) -> None:
    admin = bearer(client, ADMIN_EMAIL)
    made = client.post("/api/v1/users", headers=admin, json={
        "email": "q7@langnghe.test", "password": PASSWORD, "role": "area", "area_id": "fd:quan-7"})
    assert made.status_code == 201, made.text
    user = made.json()
    assert user["role"] == "area" and user["area_id"] == "fd:quan-7" and user["emerging_alerts"] is True
    assert "password" not in made.text and "hash" not in made.text
    assert client.post("/api/v1/users", headers=admin, json={
        "email": "q7@langnghe.test", "password": PASSWORD, "role": "leadership"}).status_code == 409
    assert client.post("/api/v1/users", headers=admin, json={
        "email": "x@langnghe.test", "password": PASSWORD, "role": "area", "area_id": "fd:quan-99"}).status_code == 400
    area = bearer(client, "q7@langnghe.test")
    me = client.get("/api/v1/auth/me", headers=area).json()
    assert me["scope"]["area_id"] == "fd:quan-7" and "w:27475" in me["scope"]["area_ids"]  # Tân Hưng
    assert client.get("/api/v1/users", headers=area).status_code == 403
    assert client.post("/api/v1/users", headers=area, json={
        "email": "y@langnghe.test", "password": PASSWORD, "role": "administrator"}).status_code == 403
    # a change of scope ends the account's sessions
    changed = client.patch(f"/api/v1/users/{user['id']}", headers=admin,
                           json={"role": "department", "department": "construction"})
    assert changed.status_code == 200 and changed.json()["department"] == "construction"
    assert changed.json()["area_id"] is None
    assert client.get("/api/v1/auth/me", headers=area).status_code == 401
    assert client.patch(f"/api/v1/users/{user['id']}", headers=admin, json={"active": False}).status_code == 200
    assert client.post("/api/v1/auth/login", json={"email": "q7@langnghe.test",
                                                   "password": PASSWORD}).status_code == 401
    me_id = client.get("/api/v1/auth/me", headers=admin).json()["id"]
    assert client.patch(f"/api/v1/users/{me_id}", headers=admin, json={"active": False}).status_code == 400
    assert client.delete(f"/api/v1/users/{me_id}", headers=admin).status_code == 400
    assert client.delete(f"/api/v1/users/{user['id']}", headers=admin).status_code == 204
    assert [u["email"] for u in client.get("/api/v1/users", headers=admin).json()] == [ADMIN_EMAIL]


def test_auth_can_be_switched_off_for_a_local_demo(store: SQLiteStore) -> None:
    with TestClient(create_app(store, auth_required=False)) as c:
        assert c.get("/api/v1/issues/top").status_code == 200
        assert c.get("/", follow_redirects=False).status_code == 200
        assert c.get("/api/v1/auth/me").json()["via"] == "anonymous"


# --- secret key, logs, CLI ---------------------------------------------------------------------

def test_secret_key_is_generated_once_private(tmp_path: Path) -> None:
    class NoKey:
        secret_key = None

    key = load_secret_key(NoKey(), tmp_path)
    path = tmp_path / "secret.key"
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret_key(NoKey(), tmp_path) == key

    class Configured:
        secret_key = "một khóa bí mật đủ dài"

    assert load_secret_key(Configured(), tmp_path) == "một khóa bí mật đủ dài".encode()


def test_sessions_do_not_survive_a_new_secret_key(tmp_path: Path) -> None:
    first = AccountsStore(tmp_path / "k.sqlite3", b"a" * 32)
    user = first.create_user("a@b.vn", PASSWORD, "leadership")
    token, _ = first.create_session(user.id, timedelta(hours=1))
    assert first.session_user(token) is not None
    first.close()
    second = AccountsStore(tmp_path / "k.sqlite3", b"b" * 32)
    assert second.session_user(token) is None
    second.close()


def test_logs_never_show_passwords_or_tokens(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    formatter = JsonFormatter()
    caplog.set_level(logging.DEBUG)
    headers = bearer(client, ADMIN_EMAIL)
    client.post("/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": "sai mật khẩu nhé"})
    client.get("/api/v1/auth/me", headers=headers)
    lines = [formatter.format(r) for r in caplog.records]
    text = "\n".join(lines)
    assert any('"event": "login"' in line for line in lines)
    assert any('"event": "request"' in line and '"route": "/api/v1/auth/me"' in line for line in lines)
    assert PASSWORD not in text and "sai mật khẩu nhé" not in text
    assert headers["Authorization"].split()[1] not in text
    record = logging.makeLogRecord({"msg": "calling with Bearer abcdefghijkl and password=hunter22",
                                    "token": "xyz", "user": {"password": "p"}})
    out = formatter.format(record)
    assert "abcdefghijkl" not in out and "hunter22" not in out and '"token": "[redacted]"' in out
    assert '"user": {"password": "[redacted]"}' in out


def test_cli_creates_users_with_the_password_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from api.cli_accounts import add_user_parser, ensure_demo_admin

    parser = argparse.ArgumentParser()
    add_user_parser(parser.add_subparsers(dest="command"))
    db = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("LANGNGHE_NEW_PASSWORD", PASSWORD)
    args = parser.parse_args(["user", "--db", str(db), "create", "--email", "boss@langnghe.test",
                              "--role", "administrator"])
    assert args.func(args) == 0
    args = parser.parse_args(["user", "--db", str(db), "create", "--email", "bt@langnghe.test",
                              "--role", "area", "--area", "fd:binh-thanh"])
    assert args.func(args) == 0
    args = parser.parse_args(["user", "--db", str(db), "list"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "boss@langnghe.test\tadministrator" in out and "bt@langnghe.test\tarea\tfd:binh-thanh" in out
    assert PASSWORD not in out
    message = ensure_demo_admin(tmp_path / "demo.sqlite3")
    password = message.split("mật khẩu / password ")[1].split()[0]
    accounts = AccountsStore(tmp_path / "demo.sqlite3", load_secret_key(_Settings(), tmp_path))
    assert accounts.authenticate("admin@demo.langnghe", password) is not None
    accounts.close()
    assert "existing account" in ensure_demo_admin(tmp_path / "demo.sqlite3")


class _Settings:
    secret_key: Any = None


def test_app_accounts_share_the_store_file(client: TestClient, store: SQLiteStore) -> None:
    assert app_accounts(client.app).path == store.path
    logged_in(client)
    assert client.get("/api/v1/auth/me").json()["email"] == ADMIN_EMAIL
