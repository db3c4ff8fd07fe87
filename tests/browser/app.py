"""Build the served app over a store for the page, report and browser tests, with accounts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from api.auth.deps import AccountsStore  # (importing api.accounts_store first is an import cycle)
from api.main import create_app
from storage.base import Store

SECRET = b"test-secret-key-0123456789abcdef"
PASSWORD = "Mat-khau-2025!"

# (email, role, department, area) of the accounts the tests log in as
ACCOUNTS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("lanh.dao@example.org", "leadership", None, None),
    ("so.xay.dung@example.org", "department", "construction", None),
    ("so.y.te@example.org", "department", "food_safety", None),
    ("quan7@example.org", "area", None, "fd:quan-7"),
    ("admin@example.org", "administrator", None, None),
)


def build_app(store: Store, accounts_path: Path, *, auth_required: bool = True) -> tuple[FastAPI, AccountsStore]:
    """The real app (api.main.create_app) over `store`, with an accounts store holding ACCOUNTS."""
    accounts = AccountsStore(accounts_path, SECRET)
    for email, role, department, area in ACCOUNTS:
        if accounts.get_user_by_email(email) is None:
            accounts.create_user(email, PASSWORD, role, name=email.split("@")[0], department=department,
                                 area_id=area)
    app = create_app(store, accounts=accounts, auth_required=auth_required)
    return app, accounts


def token_for(accounts: AccountsStore, email: str) -> str:
    """A fresh session token of an account (sent as `Authorization: Bearer …`)."""
    user = accounts.get_user_by_email(email)
    assert user is not None, email
    token, _ = accounts.create_session(user.id, timedelta(hours=1), "bearer")
    return token
