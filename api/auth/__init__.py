"""Accounts, roles and scope: who may see what (see docs/accounts.md)."""

from api.auth.config import AuthConfig, load_secret_key
from api.auth.deps import (
    AccountsDep,
    AdminUser,
    CurrentUser,
    LoginRequired,
    PageUser,
    ScopeDep,
    csrf_token_for,
    forbid_unless,
    get_accounts,
    require_page_user,
    require_roles,
    require_user,
    resolve_principal,
)
from api.auth.models import ANONYMOUS, ROLE_LABELS, Principal, Role, Scope, scope_for
from api.auth.store import AccountError, AccountsStore, User

__all__ = [
    "ANONYMOUS", "ROLE_LABELS", "AccountError", "AccountsDep", "AccountsStore", "AdminUser", "AuthConfig",
    "CurrentUser", "LoginRequired", "User",
    "PageUser", "Principal", "Role", "Scope", "ScopeDep", "csrf_token_for", "forbid_unless",
    "get_accounts", "load_secret_key", "require_page_user", "require_roles", "require_user",
    "resolve_principal", "scope_for",
]
