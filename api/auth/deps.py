"""FastAPI dependencies: who is calling, what they may see, and role checks.

Use them in routers::

    from api.auth import CurrentUser, PageUser, ScopeDep, require_roles

    @router.get("/api/v1/things")
    def things(user: CurrentUser, scope: ScopeDep): ...          # 401 without credentials

    @router.get("/page", include_in_schema=False)
    def page(user: PageUser): ...                                # redirects to /login

    @router.post("/api/v1/admin-thing", dependencies=[Depends(require_roles(Role.administrator))])

Credentials, in this order: ``Authorization: Bearer <API key "lnk_…" or session token>``, then
the ``langnghe_session`` cookie set by the login page. A state-changing request authenticated by
the cookie must come from the same origin (``Origin``/``Referer``) or carry ``X-CSRF-Token``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, HTTPException, Request

from api.auth.config import AuthConfig, load_secret_key
from api.auth.models import ANONYMOUS, Principal, Role, Scope, scope_for
from api.auth.store import AccountsStore, User
from api.deps import get_areas

log = logging.getLogger(__name__)

SESSION_COOKIE = "langnghe_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

UNAUTHENTICATED = "Cần đăng nhập / authentication required"
FORBIDDEN = "Không có quyền truy cập / forbidden"


class LoginRequired(Exception):
    """Raised by page dependencies without a session; the app answers with a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def login_redirect_url(next_url: str) -> str:
    return "/login?next=" + quote(safe_next(next_url), safe="")


def safe_next(value: str | None) -> str:
    """A redirect target after login: a local absolute path only (no scheme, host or '//')."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value[:2000]


def accounts_path_for(store: Any, settings: Any) -> Path:
    """The accounts live in the mention store's SQLite file when it has one, else in the
    configured database file."""
    path = getattr(store, "path", None)
    if isinstance(path, Path | str) and str(path):
        return Path(path)
    return Path(settings.database)


_open_lock = threading.Lock()


def app_accounts(app: Any) -> AccountsStore:
    """The accounts store of an app (opened on first use in the mention store's SQLite file, with
    the install's secret key); tests and the CLI use it to create accounts."""
    state = app.state
    accounts: AccountsStore | None = getattr(state, "accounts", None)
    if accounts is None:
        with _open_lock:
            accounts = getattr(state, "accounts", None)
            if accounts is None:
                from langnghe.config import get_settings

                settings = get_settings()
                path = accounts_path_for(state.store, settings)
                accounts = AccountsStore(path, load_secret_key(settings, path.parent))
                state.accounts = accounts
                state.owns_accounts = True
    return accounts


def get_accounts(request: Request) -> AccountsStore:
    """The app's accounts store."""
    return app_accounts(request.app)


def get_auth_config(request: Request) -> AuthConfig:
    config: AuthConfig = request.app.state.auth_config
    return config


def principal_for(user: User, via: str, areas: Any, session_hash: str | None = None) -> Principal:
    return Principal(user_id=user.id, email=user.email, role=user.role, name=user.name,
                     department=user.department, area_id=user.area_id, via=via,
                     session_hash=session_hash,
                     scope=scope_for(user.role, user.department, user.area_id, areas))


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return False
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return bool(parts.netloc) and parts.netloc == host


def resolve_principal(request: Request) -> Principal | None:
    """The caller, or None without valid credentials (cached on the request)."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    principal: Principal | None = None
    config = get_auth_config(request)
    if not config.auth_required:
        principal = ANONYMOUS
    else:
        accounts = get_accounts(request)
        areas = get_areas(request)
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        if header and scheme.lower() == "bearer" and credential:
            if credential.startswith("lnk_"):
                found = accounts.api_key_user(credential)
                if found is not None:
                    principal = principal_for(found[0], "api_key", areas)
            else:
                session = accounts.session_user(credential)
                if session is not None:
                    principal = principal_for(session[0], "bearer", areas, session[1])
        elif token := request.cookies.get(SESSION_COOKIE):
            session = accounts.session_user(token)
            if session is not None:
                principal = principal_for(session[0], "session", areas, session[1])
                if request.method not in SAFE_METHODS and not _same_origin(request):
                    sent = request.headers.get(CSRF_HEADER, "")
                    import hmac

                    if not hmac.compare_digest(sent, accounts.csrf_token(session[1])):
                        raise HTTPException(403, detail="Yêu cầu không cùng nguồn (CSRF) / cross-site "
                                                        "request refused (send X-CSRF-Token)")
    request.state.principal = principal
    if principal is not None and principal.user_id is not None:
        request.state.user_id = principal.user_id
    return principal


def require_user(request: Request) -> Principal:
    """The caller, or 401 (with ``WWW-Authenticate: Bearer``)."""
    principal = resolve_principal(request)
    if principal is None:
        raise HTTPException(401, detail=UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
    return principal


def require_page_user(request: Request) -> Principal:
    """The caller of an HTML page, or a redirect to the login page (then back here)."""
    principal = resolve_principal(request)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return principal


def require_roles(*roles: Role | str) -> Callable[[Request], Principal]:
    """A dependency that lets through only the given roles (403 for others, 401 without login)."""
    allowed = frozenset(Role(r) for r in roles)

    def check(request: Request) -> Principal:
        principal = require_user(request)
        if principal.role not in allowed:
            raise HTTPException(403, detail=FORBIDDEN)
        return principal

    return check


def get_scope(request: Request) -> Scope:
    """The caller's data scope (everything when authentication is off)."""
    return require_user(request).scope


def csrf_token_for(request: Request) -> str:
    """The anti-CSRF token of the caller's cookie session ('' without one), for page forms."""
    principal = resolve_principal(request)
    if principal is None or principal.session_hash is None:
        return ""
    return get_accounts(request).csrf_token(principal.session_hash)


def forbid_unless(allowed: bool) -> None:
    """403 with the bilingual message when `allowed` is false."""
    if not allowed:
        raise HTTPException(403, detail=FORBIDDEN)


class LoginThrottle:
    """Failed logins per e-mail and per client address in a sliding window (in memory)."""

    def __init__(self, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(len(self._recent(k, now)) >= self.max_failures for k in keys)

    def fail(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for k in keys:
                self._recent(k, now).append(now)
            if len(self._failures) > 10000:  # bound memory: forget idle keys
                for k in [k for k, v in self._failures.items() if not v]:
                    del self._failures[k]

    def reset(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)


CurrentUser = Annotated[Principal, Depends(require_user)]
PageUser = Annotated[Principal, Depends(require_page_user)]
ScopeDep = Annotated[Scope, Depends(get_scope)]
AccountsDep = Annotated[AccountsStore, Depends(get_accounts)]
AdminUser = Annotated[Principal, Depends(require_roles(Role.administrator))]
