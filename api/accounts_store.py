"""Accounts persistence (the implementation lives in api.auth.store; this name is kept for
callers outside the auth package)."""

from api.auth.store import (
    ACCOUNTS_SCHEMA_VERSION,
    API_KEY_PREFIX,
    AccountError,
    AccountsSchemaError,
    AccountsStore,
    AlertLogEntry,
    AlertRule,
    ApiKey,
    SavedSearch,
    User,
    normalize_email,
    validate_account_scope,
)

__all__ = [
    "ACCOUNTS_SCHEMA_VERSION", "API_KEY_PREFIX", "AccountError", "AccountsSchemaError", "AccountsStore",
    "AlertLogEntry", "AlertRule", "ApiKey", "SavedSearch", "User", "normalize_email",
    "validate_account_scope",
]
