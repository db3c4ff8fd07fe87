"""Accounts, sessions, API keys, saved searches and alert state, in SQLite.

The tables live in the same database file as the mentions (one file to back up) but are owned by
this module: their names start with ``acct_`` and their schema version is kept in
``acct_meta`` (the mention store's ``PRAGMA user_version`` is not touched). Session tokens and
API keys are never stored: only their HMAC-SHA256 under the install's secret key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from api.auth.models import Role
from api.auth.passwords import check_password_policy, hash_password, needs_rehash, verify_password
from storage.connections import SQLiteConnections

log = logging.getLogger(__name__)

ACCOUNTS_SCHEMA_VERSION = 1
API_KEY_PREFIX = "lnk_"

_MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE IF NOT EXISTS acct_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """
        CREATE TABLE acct_users (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            name TEXT NOT NULL DEFAULT '',
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL,
            department TEXT,
            area_id TEXT,
            active INTEGER NOT NULL DEFAULT 1,
            emerging_alerts INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            password_changed_at TEXT NOT NULL,
            last_login_at TEXT
        )
        """,
        """
        CREATE TABLE acct_sessions (
            token_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES acct_users(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX acct_sessions_user ON acct_sessions(user_id)",
        "CREATE INDEX acct_sessions_expiry ON acct_sessions(expires_at)",
        """
        CREATE TABLE acct_api_keys (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES acct_users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            expires_at TEXT,
            last_used_at TEXT,
            revoked_at TEXT
        )
        """,
        """
        CREATE TABLE acct_saved_searches (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES acct_users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            query TEXT NOT NULL,
            emails TEXT NOT NULL DEFAULT '[]',
            webhook_url TEXT,
            webhook_secret TEXT,
            alerts_enabled INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            last_checked_at TEXT
        )
        """,
        "CREATE INDEX acct_saved_searches_user ON acct_saved_searches(user_id)",
        """
        CREATE TABLE acct_alert_rules (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES acct_users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            area_id TEXT,
            department TEXT,
            emails TEXT NOT NULL DEFAULT '[]',
            webhook_url TEXT,
            webhook_secret TEXT,
            enabled INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE acct_alert_seen (
            source TEXT NOT NULL,
            target TEXT NOT NULL,
            item TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (source, target, item)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE acct_alert_log (
            id INTEGER PRIMARY KEY,
            user_id INTEGER,
            source TEXT NOT NULL,
            channel TEXT NOT NULL,
            target TEXT NOT NULL,
            items INTEGER NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            created_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX acct_alert_log_user ON acct_alert_log(user_id, created_at)",
    ],
]


class AccountsSchemaError(RuntimeError):
    """The accounts tables were written by a newer version of Lắng Nghe."""


class AccountError(ValueError):
    """A bad account operation (duplicate e-mail, missing scope, weak password…); bilingual."""


def _now() -> datetime:
    return datetime.now(UTC)


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass
class User:
    id: int
    email: str
    name: str
    role: Role
    department: str | None
    area_id: str | None
    active: bool
    emerging_alerts: bool
    created_at: datetime
    password_changed_at: datetime
    last_login_at: datetime | None = None
    password_hash: str = field(default="", repr=False)


@dataclass
class ApiKey:
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass
class SavedSearch:
    id: int
    user_id: int
    name: str
    query: str
    emails: list[str]
    webhook_url: str | None
    webhook_secret: str | None = field(repr=False)
    alerts_enabled: bool
    created_at: datetime
    updated_at: datetime
    last_checked_at: datetime | None


@dataclass
class AlertRule:
    """Emerging-issue alerts for one account, optionally narrowed to an area or a department."""

    id: int
    user_id: int
    name: str
    area_id: str | None
    department: str | None
    emails: list[str]
    webhook_url: str | None
    webhook_secret: str | None = field(repr=False)
    enabled: bool
    created_at: datetime


@dataclass
class AlertLogEntry:
    id: int
    user_id: int | None
    source: str
    channel: str
    target: str
    items: int
    status: str
    error: str | None
    created_at: datetime


def _user(row: sqlite3.Row) -> User:
    created, changed = _dt(row["created_at"]), _dt(row["password_changed_at"])
    assert created is not None and changed is not None
    return User(id=row["id"], email=row["email"], name=row["name"], role=Role(row["role"]),
                department=row["department"], area_id=row["area_id"], active=bool(row["active"]),
                emerging_alerts=bool(row["emerging_alerts"]), created_at=created,
                password_changed_at=changed, last_login_at=_dt(row["last_login_at"]),
                password_hash=row["password_hash"])


def _api_key(row: sqlite3.Row) -> ApiKey:
    created = _dt(row["created_at"])
    assert created is not None
    return ApiKey(id=row["id"], user_id=row["user_id"], name=row["name"], prefix=row["prefix"],
                  created_at=created, expires_at=_dt(row["expires_at"]),
                  last_used_at=_dt(row["last_used_at"]), revoked_at=_dt(row["revoked_at"]))


def _saved(row: sqlite3.Row) -> SavedSearch:
    created, updated = _dt(row["created_at"]), _dt(row["updated_at"])
    assert created is not None and updated is not None
    return SavedSearch(id=row["id"], user_id=row["user_id"], name=row["name"], query=row["query"],
                       emails=list(json.loads(row["emails"])), webhook_url=row["webhook_url"],
                       webhook_secret=row["webhook_secret"], alerts_enabled=bool(row["alerts_enabled"]),
                       created_at=created, updated_at=updated, last_checked_at=_dt(row["last_checked_at"]))


def _rule(row: sqlite3.Row) -> AlertRule:
    created = _dt(row["created_at"])
    assert created is not None
    return AlertRule(id=row["id"], user_id=row["user_id"], name=row["name"], area_id=row["area_id"],
                     department=row["department"], emails=list(json.loads(row["emails"])),
                     webhook_url=row["webhook_url"], webhook_secret=row["webhook_secret"],
                     enabled=bool(row["enabled"]), created_at=created)


def validate_account_scope(role: Role, department: str | None, area_id: str | None,
                           areas: Any = None) -> tuple[str | None, str | None]:
    """Check that a department account names a known department and an area account a known
    area; other roles carry neither. Returns the (department, area_id) to store."""
    from nlp.taxonomy import DEPARTMENTS

    if role == Role.department:
        if not department or department not in DEPARTMENTS:
            raise AccountError("Tài khoản sở, ngành cần một mã cơ quan hợp lệ / a department account "
                               f"needs a valid department code, got {department!r}")
        return department, None
    if role == Role.area:
        if not area_id or (areas is not None and areas.get(area_id) is None):
            raise AccountError("Tài khoản địa phương cần một mã khu vực hợp lệ / an area account needs "
                               f"a valid area id, got {area_id!r}")
        return None, area_id
    if department or area_id:
        raise AccountError(f"Vai trò {role.value} không gắn với cơ quan hay khu vực / role "
                           f"{role.value} takes no department or area")
    return None, None


class AccountsStore:
    """Accounts and alert state in the SQLite file at `path`. Safe to share between threads."""

    def __init__(self, path: str | Path, secret_key: bytes, *, timeout: float = 30.0) -> None:
        if not secret_key or len(secret_key) < 16:
            raise ValueError("the secret key must have at least 16 bytes")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._secret = secret_key
        self._db = SQLiteConnections(self.path, timeout=timeout, synchronous="FULL", label="accounts store")
        self._migrate()

    # -- connections

    def _conn(self) -> sqlite3.Connection:
        return self._db.get()

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._db.write()

    def _migrate(self) -> None:
        with self._write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS acct_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = conn.execute("SELECT value FROM acct_meta WHERE key = 'schema_version'").fetchone()
            version = int(row["value"]) if row else 0
            if version > ACCOUNTS_SCHEMA_VERSION:
                raise AccountsSchemaError(f"{self.path}: accounts schema {version} is newer than this "
                                          f"program's ({ACCOUNTS_SCHEMA_VERSION})")
            for number in range(version, ACCOUNTS_SCHEMA_VERSION):
                for statement in _MIGRATIONS[number]:
                    conn.execute(statement)
                conn.execute("INSERT OR REPLACE INTO acct_meta(key, value) VALUES ('schema_version', ?)",
                             (str(number + 1),))

    def schema_version(self) -> int:
        row = self._conn().execute("SELECT value FROM acct_meta WHERE key = 'schema_version'").fetchone()
        return int(row["value"]) if row else 0

    def ping(self) -> bool:
        """True when the database answers (for /readyz)."""
        return self._conn().execute("SELECT 1").fetchone()[0] == 1

    def close(self) -> None:
        self._db.close()

    # -- keyed hashes of tokens

    def token_hash(self, token: str) -> str:
        """HMAC-SHA256 of a session token or API key under the install's secret key."""
        return hmac.new(self._secret, token.encode("utf-8"), hashlib.sha256).hexdigest()

    def csrf_token(self, session_hash: str) -> str:
        """The anti-CSRF token that goes with a session (derived, not stored)."""
        return hmac.new(self._secret, b"csrf:" + session_hash.encode("ascii"), hashlib.sha256).hexdigest()

    # -- users

    def count_users(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM acct_users").fetchone()[0])

    def create_user(self, email: str, password: str, role: Role | str, *, name: str = "",
                    department: str | None = None, area_id: str | None = None, areas: Any = None,
                    emerging_alerts: bool | None = None) -> User:
        """A new active account; raises AccountError (duplicate e-mail, bad scope, weak password).
        Emerging-issue e-mails are on by default for department and area accounts."""
        role = Role(role)
        if emerging_alerts is None:
            emerging_alerts = role in (Role.department, Role.area)
        email = normalize_email(email)
        try:
            check_password_policy(password, email=email)
        except ValueError as exc:
            raise AccountError(str(exc)) from exc
        department, area_id = validate_account_scope(role, department, area_id, areas)
        now = _ts(_now())
        try:
            with self._write() as conn:
                cur = conn.execute(
                    "INSERT INTO acct_users(email, name, password_hash, role, department, area_id, "
                    "emerging_alerts, created_at, password_changed_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (email, name.strip()[:200], hash_password(password), role.value, department, area_id,
                     int(emerging_alerts), now, now))
                user_id = cur.lastrowid
        except sqlite3.IntegrityError as exc:
            raise AccountError(f"E-mail đã được dùng / e-mail already in use: {email}") from exc
        assert user_id is not None
        user = self.get_user(user_id)
        assert user is not None
        log.info("account created", extra={"event": "account_created", "user_id": user.id,
                                           "role": role.value})
        return user

    def get_user(self, user_id: int) -> User | None:
        row = self._conn().execute("SELECT * FROM acct_users WHERE id = ?", (user_id,)).fetchone()
        return None if row is None else _user(row)

    def get_user_by_email(self, email: str) -> User | None:
        row = self._conn().execute("SELECT * FROM acct_users WHERE email = ?",
                                   (normalize_email(email, strict=False),)).fetchone()
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        return [_user(r) for r in self._conn().execute("SELECT * FROM acct_users ORDER BY id")]

    def update_user(self, user_id: int, *, name: str | None = None, role: Role | str | None = None,
                    department: str | None = None, area_id: str | None = None,
                    active: bool | None = None, emerging_alerts: bool | None = None,
                    areas: Any = None) -> User:
        """Change an account; a change of role, scope or a deactivation ends its sessions."""
        user = self.get_user(user_id)
        if user is None:
            raise KeyError(user_id)
        new_role = Role(role) if role is not None else user.role
        scope_changed = role is not None or department is not None or area_id is not None
        if scope_changed:
            dep = department if department is not None else (user.department if new_role == user.role
                                                             else None)
            area = area_id if area_id is not None else (user.area_id if new_role == user.role else None)
            dep, area = validate_account_scope(new_role, dep, area, areas)
        else:
            dep, area = user.department, user.area_id
        with self._write() as conn:
            conn.execute(
                "UPDATE acct_users SET name = ?, role = ?, department = ?, area_id = ?, active = ?, "
                "emerging_alerts = ? WHERE id = ?",
                (name.strip()[:200] if name is not None else user.name, new_role.value, dep, area,
                 int(active) if active is not None else int(user.active),
                 int(emerging_alerts) if emerging_alerts is not None else int(user.emerging_alerts),
                 user_id))
            if (scope_changed and (new_role, dep, area) != (user.role, user.department, user.area_id)) \
                    or active is False:
                conn.execute("DELETE FROM acct_sessions WHERE user_id = ?", (user_id,))
        updated = self.get_user(user_id)
        assert updated is not None
        return updated

    def set_password(self, user_id: int, password: str) -> None:
        """Replace the password (policy checked) and end every session of the account."""
        user = self.get_user(user_id)
        if user is None:
            raise KeyError(user_id)
        try:
            check_password_policy(password, email=user.email)
        except ValueError as exc:
            raise AccountError(str(exc)) from exc
        with self._write() as conn:
            conn.execute("UPDATE acct_users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
                         (hash_password(password), _ts(_now()), user_id))
            conn.execute("DELETE FROM acct_sessions WHERE user_id = ?", (user_id,))

    def delete_user(self, user_id: int) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM acct_users WHERE id = ?", (user_id,)).rowcount > 0

    def authenticate(self, email: str, password: str) -> User | None:
        """The active account with this e-mail and password, or None (same time either way)."""
        from api.auth.passwords import dummy_verify

        user = self.get_user_by_email(email)
        if user is None:
            dummy_verify(password)
            return None
        if not verify_password(password, user.password_hash) or not user.active:
            return None
        with self._write() as conn:
            conn.execute("UPDATE acct_users SET last_login_at = ? WHERE id = ?", (_ts(_now()), user.id))
            if needs_rehash(user.password_hash):
                conn.execute("UPDATE acct_users SET password_hash = ? WHERE id = ?",
                             (hash_password(password), user.id))
        return user

    # -- sessions

    def create_session(self, user_id: int, lifetime: timedelta, kind: str = "cookie") -> tuple[str, datetime]:
        """A new session token (returned once, stored only as its keyed hash) and its expiry."""
        token = secrets.token_urlsafe(32)
        now = _now()
        expires = now + lifetime
        with self._write() as conn:
            conn.execute("DELETE FROM acct_sessions WHERE expires_at < ?", (_ts(now),))
            conn.execute("INSERT INTO acct_sessions(token_hash, user_id, kind, created_at, expires_at) "
                         "VALUES (?,?,?,?,?)", (self.token_hash(token), user_id, kind, _ts(now), _ts(expires)))
        return token, expires

    def session_user(self, token: str) -> tuple[User, str, datetime] | None:
        """(account, token hash, expiry) of a live session of an active account, or None."""
        if not token or len(token) > 200:
            return None
        digest = self.token_hash(token)
        row = self._conn().execute(
            "SELECT u.*, s.expires_at AS session_expires FROM acct_sessions s "
            "JOIN acct_users u ON u.id = s.user_id WHERE s.token_hash = ?", (digest,)).fetchone()
        if row is None or not row["active"]:
            return None
        expires = _dt(row["session_expires"])
        assert expires is not None
        if expires <= _now():
            return None
        return _user(row), digest, expires

    def end_session(self, token_hash: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM acct_sessions WHERE token_hash = ?", (token_hash,))

    def count_sessions(self, user_id: int) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM acct_sessions WHERE user_id = ? AND "
                                        "expires_at > ?", (user_id, _ts(_now()))).fetchone()[0])

    # -- API keys

    def create_api_key(self, user_id: int, name: str, *, expires_at: datetime | None = None) -> tuple[str, ApiKey]:
        """A new API key: the full key is returned once; only its keyed hash is stored."""
        secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
        prefix = secret[:12]
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO acct_api_keys(user_id, name, prefix, key_hash, created_at, expires_at) "
                "VALUES (?,?,?,?,?,?)",
                (user_id, name.strip()[:100] or "key", prefix, self.token_hash(secret), _ts(_now()),
                 _ts(expires_at) if expires_at else None))
            key_id = cur.lastrowid
        row = self._conn().execute("SELECT * FROM acct_api_keys WHERE id = ?", (key_id,)).fetchone()
        return secret, _api_key(row)

    def api_key_user(self, key: str) -> tuple[User, ApiKey] | None:
        """The active account of a live (not revoked, not expired) API key, or None."""
        if not key.startswith(API_KEY_PREFIX) or len(key) > 200:
            return None
        row = self._conn().execute(
            "SELECT u.*, k.id AS key_id FROM acct_api_keys k JOIN acct_users u ON u.id = k.user_id "
            "WHERE k.key_hash = ?", (self.token_hash(key),)).fetchone()
        if row is None or not row["active"]:
            return None
        krow = self._conn().execute("SELECT * FROM acct_api_keys WHERE id = ?", (row["key_id"],)).fetchone()
        api_key = _api_key(krow)
        now = _now()
        if api_key.revoked_at is not None or (api_key.expires_at is not None and api_key.expires_at <= now):
            return None
        if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=5):
            with self._write() as conn:  # at most one write every five minutes per key
                conn.execute("UPDATE acct_api_keys SET last_used_at = ? WHERE id = ?", (_ts(now), api_key.id))
        return _user(row), api_key

    def list_api_keys(self, user_id: int | None = None) -> list[ApiKey]:
        if user_id is None:
            rows = self._conn().execute("SELECT * FROM acct_api_keys ORDER BY id")
        else:
            rows = self._conn().execute("SELECT * FROM acct_api_keys WHERE user_id = ? ORDER BY id", (user_id,))
        return [_api_key(r) for r in rows]

    def revoke_api_key(self, key_id: int, user_id: int | None = None) -> bool:
        """Revoke a key (of `user_id` when given); False when there is no such live key."""
        sql = "UPDATE acct_api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
        args: list[Any] = [_ts(_now()), key_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        with self._write() as conn:
            return conn.execute(sql, args).rowcount > 0

    # -- saved searches

    def create_saved_search(self, user_id: int, name: str, query: str, *, emails: Sequence[str] = (),
                            webhook_url: str | None = None, alerts_enabled: bool = True) -> SavedSearch:
        now = _ts(_now())
        secret = secrets.token_urlsafe(32) if webhook_url else None
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO acct_saved_searches(user_id, name, query, emails, webhook_url, webhook_secret, "
                "alerts_enabled, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (user_id, name, query, json.dumps(list(emails)), webhook_url, secret, int(alerts_enabled),
                 now, now))
            saved_id = cur.lastrowid
        assert saved_id is not None
        found = self.get_saved_search(saved_id)
        assert found is not None
        return found

    def get_saved_search(self, saved_id: int) -> SavedSearch | None:
        row = self._conn().execute("SELECT * FROM acct_saved_searches WHERE id = ?", (saved_id,)).fetchone()
        return None if row is None else _saved(row)

    def list_saved_searches(self, user_id: int | None = None, *, alerting: bool = False) -> list[SavedSearch]:
        sql, args = "SELECT * FROM acct_saved_searches WHERE 1", []
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        if alerting:
            sql += " AND alerts_enabled = 1"
        return [_saved(r) for r in self._conn().execute(sql + " ORDER BY id", args)]

    def update_saved_search(self, saved_id: int, **changes: Any) -> SavedSearch:
        """Change name, query, emails, webhook_url or alerts_enabled; a new webhook URL gets a new
        signing secret. A changed query resets nothing already alerted."""
        current = self.get_saved_search(saved_id)
        if current is None:
            raise KeyError(saved_id)
        allowed = {"name", "query", "emails", "webhook_url", "alerts_enabled"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}")
        values: dict[str, Any] = {"name": current.name, "query": current.query, "emails": current.emails,
                  "webhook_url": current.webhook_url, "alerts_enabled": current.alerts_enabled}
        values.update({k: v for k, v in changes.items() if v is not None or k == "webhook_url"})
        secret = current.webhook_secret
        if values["webhook_url"] != current.webhook_url:
            secret = secrets.token_urlsafe(32) if values["webhook_url"] else None
        with self._write() as conn:
            conn.execute(
                "UPDATE acct_saved_searches SET name = ?, query = ?, emails = ?, webhook_url = ?, "
                "webhook_secret = ?, alerts_enabled = ?, updated_at = ? WHERE id = ?",
                (values["name"], values["query"], json.dumps(list(values["emails"])), values["webhook_url"],
                 secret, int(values["alerts_enabled"]), _ts(_now()), saved_id))
        updated = self.get_saved_search(saved_id)
        assert updated is not None
        return updated

    def delete_saved_search(self, saved_id: int) -> bool:
        with self._write() as conn:
            conn.execute("DELETE FROM acct_alert_seen WHERE source = ?", (f"search:{saved_id}",))
            return conn.execute("DELETE FROM acct_saved_searches WHERE id = ?", (saved_id,)).rowcount > 0

    def mark_checked(self, saved_id: int, when: datetime | None = None) -> None:
        with self._write() as conn:
            conn.execute("UPDATE acct_saved_searches SET last_checked_at = ? WHERE id = ?",
                         (_ts(when or _now()), saved_id))

    # -- emerging-issue alert rules

    def create_alert_rule(self, user_id: int, name: str, *, area_id: str | None = None,
                          department: str | None = None, emails: Sequence[str] = (),
                          webhook_url: str | None = None, enabled: bool = True) -> AlertRule:
        secret = secrets.token_urlsafe(32) if webhook_url else None
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO acct_alert_rules(user_id, name, area_id, department, emails, webhook_url, "
                "webhook_secret, enabled, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (user_id, name, area_id, department, json.dumps(list(emails)), webhook_url, secret,
                 int(enabled), _ts(_now())))
            rule_id = cur.lastrowid
        assert rule_id is not None
        rule = self.get_alert_rule(rule_id)
        assert rule is not None
        return rule

    def get_alert_rule(self, rule_id: int) -> AlertRule | None:
        row = self._conn().execute("SELECT * FROM acct_alert_rules WHERE id = ?", (rule_id,)).fetchone()
        return None if row is None else _rule(row)

    def list_alert_rules(self, user_id: int | None = None, *, enabled: bool = False) -> list[AlertRule]:
        sql, args = "SELECT * FROM acct_alert_rules WHERE 1", []
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        if enabled:
            sql += " AND enabled = 1"
        return [_rule(r) for r in self._conn().execute(sql + " ORDER BY id", args)]

    def delete_alert_rule(self, rule_id: int) -> bool:
        with self._write() as conn:
            conn.execute("DELETE FROM acct_alert_seen WHERE source = ?", (f"rule:{rule_id}",))
            return conn.execute("DELETE FROM acct_alert_rules WHERE id = ?", (rule_id,)).rowcount > 0

    # -- alert bookkeeping

    def unseen(self, source: str, target: str, items: Sequence[str]) -> list[str]:
        """The items not yet delivered from `source` to `target`, in the given order."""
        if not items:
            return []
        seen: set[str] = set()
        conn = self._conn()
        unique = list(dict.fromkeys(items))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            marks = ",".join("?" * len(chunk))
            seen.update(r[0] for r in conn.execute(
                f"SELECT item FROM acct_alert_seen WHERE source = ? AND target = ? AND item IN ({marks})",
                (source, target, *chunk)))
        return [i for i in unique if i not in seen]

    def mark_seen(self, source: str, target: str, items: Sequence[str]) -> None:
        now = _ts(_now())
        with self._write() as conn:
            conn.executemany("INSERT OR IGNORE INTO acct_alert_seen(source, target, item, sent_at) "
                             "VALUES (?,?,?,?)", [(source, target, i, now) for i in items])

    def log_alert(self, user_id: int | None, source: str, channel: str, target: str, items: int,
                  status: str, error: str | None = None) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO acct_alert_log(user_id, source, channel, target, items, status, error, "
                         "created_at) VALUES (?,?,?,?,?,?,?,?)",
                         (user_id, source, channel, target, items, status, (error or None) and error[:500],
                          _ts(_now())))

    def alert_log(self, user_id: int | None = None, limit: int = 100) -> list[AlertLogEntry]:
        sql, args = "SELECT * FROM acct_alert_log", []
        if user_id is not None:
            sql += " WHERE user_id = ?"
            args.append(user_id)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        out = []
        for r in self._conn().execute(sql, args):
            created = _dt(r["created_at"])
            assert created is not None
            out.append(AlertLogEntry(id=r["id"], user_id=r["user_id"], source=r["source"],
                                     channel=r["channel"], target=r["target"], items=r["items"],
                                     status=r["status"], error=r["error"], created_at=created))
        return out


def normalize_email(email: str, *, strict: bool = True) -> str:
    """Trimmed, lower-cased e-mail; with `strict`, a clear AccountError when it is not one."""
    value = (email or "").strip().lower()
    if strict and (len(value) > 254 or value.count("@") != 1 or value.startswith("@")
                   or value.endswith("@") or any(c.isspace() for c in value)
                   or "." not in value.split("@")[1]):
        raise AccountError(f"E-mail không hợp lệ / invalid e-mail: {email!r}")
    return value
