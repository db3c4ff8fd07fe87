"""Logging in and out (a Vietnamese login page and a JSON API), the caller's own account, and its
API keys."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field, field_validator

from api.accounts_store import AccountError, AccountsStore, ApiKey
from api.auth.deps import (
    SESSION_COOKIE,
    AccountsDep,
    CurrentUser,
    LoginThrottle,
    csrf_token_for,
    get_auth_config,
    resolve_principal,
    safe_next,
)
from api.auth.models import ROLE_LABELS

log = logging.getLogger(__name__)

RecordId = Annotated[int, PathParam(ge=1, le=2**53, description="Record id")]

router = APIRouter(tags=["auth"])
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

LOGIN_UI = {
    "vi": {"title": "Đăng nhập", "tagline": "Ý kiến người dân TP.HCM", "email": "E-mail",
           "password": "Mật khẩu", "submit": "Đăng nhập", "language": "English", "other": "en",
           "hint": "Tài khoản do quản trị viên cấp. Quên mật khẩu? Hãy liên hệ quản trị viên.",
           "bad": "E-mail hoặc mật khẩu không đúng.", "throttled":
               "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau ít phút.",
           "logged_out": "Bạn đã đăng xuất."},
    "en": {"title": "Sign in", "tagline": "Ho Chi Minh City residents' voices", "email": "E-mail",
           "password": "Password", "submit": "Sign in", "language": "Tiếng Việt", "other": "vi",
           "hint": "Accounts are issued by an administrator. Forgot your password? Ask them.",
           "bad": "Wrong e-mail or password.", "throttled":
               "Too many failed sign-ins. Please try again in a few minutes.",
           "logged_out": "You are signed out."},
}


class LoginIn(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime


class MeOut(BaseModel):
    id: int | None
    email: str
    name: str
    role: str
    role_label: str
    department: str | None
    area_id: str | None
    scope: dict[str, object]
    via: str
    csrf_token: str = Field(default="", description="Send as X-CSRF-Token with cookie-session writes")


class PasswordIn(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class ApiKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    expires_at: datetime | None = Field(default=None, description="In the future, within 5 years")

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        now = datetime.now(UTC)
        if not now < value <= now + timedelta(days=5 * 366):
            raise ValueError("phải trong tương lai, tối đa 5 năm / must be in the future, within 5 years")
        return value


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(id=key.id, name=key.name, prefix=key.prefix, created_at=key.created_at,
                   expires_at=key.expires_at, last_used_at=key.last_used_at, revoked=key.revoked_at is not None)


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The full key, shown only once; send it as 'Authorization: Bearer <key>'")


def _throttle(request: Request) -> LoginThrottle:
    state = request.app.state
    throttle: LoginThrottle | None = getattr(state, "login_throttle", None)
    if throttle is None:
        config = get_auth_config(request)
        throttle = LoginThrottle(config.login_max_failures, config.login_window.total_seconds())
        state.login_throttle = throttle
    return throttle


def _check_login(request: Request, accounts: AccountsStore, email: str, password: str) -> tuple[bool, int | None]:
    """(throttled, user id or None)."""
    client = request.client.host if request.client else "?"
    keys = (f"email:{email.strip().lower()}", f"ip:{client}")
    throttle = _throttle(request)
    if throttle.blocked(*keys):
        log.warning("login throttled", extra={"event": "login_throttled", "client": client})
        return True, None
    user = accounts.authenticate(email, password)
    if user is None:
        throttle.fail(*keys)
        log.info("login failed", extra={"event": "login_failed", "client": client})
        return False, None
    throttle.reset(keys[0])
    log.info("login", extra={"event": "login", "user_id": user.id, "client": client})
    return False, user.id


def _login_page(request: Request, lang: str, next_url: str, *, error: str | None = None,
                message: str | None = None, email: str = "", status: int = 200) -> HTMLResponse:
    lang = "en" if lang == "en" else "vi"
    response = templates.TemplateResponse(
        request, "login.html",
        {"lang": lang, "ui": LOGIN_UI[lang], "next": safe_next(next_url), "error": error,
         "message": message, "email": email[:254]},
        status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: str = "/", lang: str = "vi", out: int = 0) -> Response:
    """The login page (Vietnamese; `?lang=en` for English). Logged-in users go straight on."""
    if resolve_principal(request) is not None and not out:
        return RedirectResponse(safe_next(next), status_code=303)
    ui = LOGIN_UI["en" if lang == "en" else "vi"]
    return _login_page(request, lang, next, message=ui["logged_out"] if out else None)


@router.post("/login", include_in_schema=False)
def login_form(request: Request, accounts: AccountsDep,
               email: Annotated[str, Form(max_length=254)] = "",
               password: Annotated[str, Form(max_length=1024)] = "",
               next: Annotated[str, Form(max_length=2000)] = "/",
               lang: Annotated[str, Form(max_length=5)] = "vi") -> Response:
    """Check the form; on success set the session cookie and go to `next` (a local path)."""
    ui = LOGIN_UI["en" if lang == "en" else "vi"]
    throttled, user_id = _check_login(request, accounts, email, password)
    if throttled:
        return _login_page(request, lang, next, error=ui["throttled"], email=email, status=429)
    if user_id is None:
        return _login_page(request, lang, next, error=ui["bad"], email=email, status=401)
    config = get_auth_config(request)
    token, expires = accounts.create_session(user_id, config.session_lifetime, "cookie")
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=int(config.session_lifetime.total_seconds()),
                        httponly=True, samesite="lax", secure=config.cookie_secure, path="/")
    return response


@router.post("/logout", include_in_schema=False)
def logout_form(request: Request, accounts: AccountsDep) -> Response:
    """End the cookie session and go to the login page."""
    principal = resolve_principal(request)
    if principal is not None and principal.session_hash:
        accounts.end_session(principal.session_hash)
    response = RedirectResponse("/login?out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/api/v1/auth/login", response_model=TokenOut, summary="Log in, get a bearer token",
             tags=["auth"], responses={401: {}, 429: {}})
def login_api(request: Request, body: LoginIn, accounts: AccountsDep) -> TokenOut:
    """Exchange e-mail and password for a bearer token that expires (send it as
    ``Authorization: Bearer <token>``)."""
    throttled, user_id = _check_login(request, accounts, body.email, body.password)
    if throttled:
        raise HTTPException(429, detail="Đăng nhập sai quá nhiều lần / too many failed logins")
    if user_id is None:
        raise HTTPException(401, detail="E-mail hoặc mật khẩu không đúng / wrong e-mail or password",
                            headers={"WWW-Authenticate": "Bearer"})
    token, expires = accounts.create_session(user_id, get_auth_config(request).session_lifetime, "bearer")
    return TokenOut(access_token=token, expires_at=expires)


@router.post("/api/v1/auth/logout", status_code=204, summary="End the current session")
def logout_api(user: CurrentUser, accounts: AccountsDep) -> Response:
    """End the session or bearer token used for this request (API keys are revoked separately)."""
    if user.session_hash:
        accounts.end_session(user.session_hash)
    return Response(status_code=204)


@router.get("/api/v1/auth/me", response_model=MeOut, summary="The calling account")
def me(request: Request, user: CurrentUser) -> MeOut:
    """The caller's account, role and data scope."""
    lang_labels = ROLE_LABELS["vi"]
    return MeOut(id=user.user_id, email=user.email, name=user.name, role=user.role.value,
                 role_label=lang_labels[user.role.value], department=user.department,
                 area_id=user.area_id, scope=user.scope.describe(), via=user.via,
                 csrf_token=csrf_token_for(request))


@router.post("/api/v1/auth/password", status_code=204, summary="Change my password",
             responses={400: {}, 403: {}})
def change_password(body: PasswordIn, user: CurrentUser, accounts: AccountsDep) -> Response:
    """Change the caller's password (the current one is required); every session ends."""
    if user.user_id is None:
        raise HTTPException(403, detail="Không có tài khoản / no account")
    account = accounts.get_user(user.user_id)
    if account is None or accounts.authenticate(account.email, body.current_password) is None:
        raise HTTPException(403, detail="Mật khẩu hiện tại không đúng / current password is wrong")
    try:
        accounts.set_password(user.user_id, body.new_password)
    except AccountError as exc:
        raise HTTPException(400, detail=str(exc)) from exc
    return Response(status_code=204)


def _own_user_id(user: CurrentUser) -> int:
    if user.user_id is None:
        raise HTTPException(403, detail="API keys belong to accounts (authentication is off)")
    return user.user_id


@router.get("/api/v1/auth/api-keys", response_model=list[ApiKeyOut], summary="My API keys")
def list_keys(user: CurrentUser, accounts: AccountsDep) -> list[ApiKeyOut]:
    return [ApiKeyOut.of(k) for k in accounts.list_api_keys(_own_user_id(user))]


@router.post("/api/v1/auth/api-keys", response_model=ApiKeyCreated, status_code=201,
             summary="Create an API key")
def create_key(body: ApiKeyIn, user: CurrentUser, accounts: AccountsDep) -> ApiKeyCreated:
    """A key for integrations, with the caller's role and scope. The key is shown once; only its
    keyed hash is stored."""
    if user.via == "api_key":
        raise HTTPException(403, detail="Không tạo khóa bằng khóa / an API key cannot create keys")
    secret, key = accounts.create_api_key(_own_user_id(user), body.name, expires_at=body.expires_at)
    return ApiKeyCreated(**ApiKeyOut.of(key).model_dump(), key=secret)


@router.delete("/api/v1/auth/api-keys/{key_id}", status_code=204, summary="Revoke an API key",
               responses={404: {}})
def revoke_key(key_id: RecordId, user: CurrentUser, accounts: AccountsDep) -> Response:
    if not accounts.revoke_api_key(key_id, None if user.is_admin else _own_user_id(user)):
        raise HTTPException(404, detail="Không tìm thấy khóa / no such key")
    return Response(status_code=204)
