"""Helpers for tests of an app with accounts: create accounts, log in, list the route table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from api.auth.deps import app_accounts
from api.auth.models import Role
from api.auth.store import User

PASSWORD = "Mật-khẩu thử 2025!"
ADMIN_EMAIL = "quan.tri@langnghe.test"


def add_user(app: Any, email: str, role: Role | str, *, password: str = PASSWORD,
             department: str | None = None, area_id: str | None = None, **extra: Any) -> User:
    """An account in the app's accounts store (created if the e-mail is new)."""
    accounts = app_accounts(app)
    found = accounts.get_user_by_email(email)
    if found is not None:
        return found
    return accounts.create_user(email, password, role, department=department, area_id=area_id, **extra)


def login(client: TestClient, email: str, password: str = PASSWORD) -> None:
    """Log in through the login form: the client keeps the session cookie."""
    r = client.post("/login", data={"email": email, "password": password, "next": "/"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    assert "langnghe_session" in r.cookies or "langnghe_session" in client.cookies


def bearer(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    """An Authorization header with a fresh bearer token."""
    r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def logged_in(client: TestClient, role: Role | str = Role.administrator, email: str = ADMIN_EMAIL,
              **scope: Any) -> TestClient:
    """`client`, logged in (cookie) as a new or existing account."""
    add_user(client.app, email, role, **scope)
    login(client, email)
    return client


def iter_routes(app: Any) -> Iterator[tuple[str, set[str], Any]]:
    """(path, methods, route) of every route, through included routers (FastAPI ≥ 0.16x nests them)."""

    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, set[str], Any]]:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                yield from walk(inner.routes, prefix + route.include_context.prefix)
            elif hasattr(route, "path"):
                yield prefix + route.path, set(getattr(route, "methods", None) or ()), route

    yield from walk(list(app.routes), "")
