"""The FastAPI application: `create_app()` builds it; `uvicorn api.main:create_app --factory` serves it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.accounts_store import AccountsStore
from api.alerts import AlertSettings
from api.auth.config import AuthConfig
from api.auth.deps import LoginRequired, login_redirect_url, require_page_user
from api.deps import AreaCatalog
from api.metrics import ObserveMiddleware
from api.routers import alerts as alerts_router
from api.routers import areas as areas_router
from api.routers import auth as auth_router
from api.routers import briefings, dashboard, health, issues, mentions, ops, pages, saved_searches, users
from langnghe.config import get_settings
from storage.base import Store

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

DESCRIPTION = """Lắng Nghe lắng nghe ý kiến người dân TP.HCM trên báo chí và mạng xã hội, gom thành
vấn đề và xếp hạng theo khu vực (toàn thành phố, quận/huyện cũ, phường/xã hiện nay).

Lắng Nghe listens to Ho Chi Minh City residents in the press and on social media, groups what they
say into issues and ranks them by area (city, former districts, current wards)."""


def _where(loc: tuple[object, ...] | list[object]) -> str:
    parts = [str(p) for p in loc if p not in ("query", "path", "body")]
    return ".".join(parts) or "request"


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 with FastAPI's `detail` list plus one readable, bilingual `message`."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    problems = "; ".join(f"{_where(err.get('loc', ()))}: {err.get('msg', '')}" for err in errors)
    return JSONResponse(
        status_code=422,
        content={"message": f"Tham số không hợp lệ / Invalid parameters — {problems}",
                 "detail": jsonable_encoder(errors)},
    )


async def login_required_handler(request: Request, exc: Exception) -> Response:
    """Pages without a session go to the login page, then back."""
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(login_redirect_url(exc.next_url), status_code=303)


def create_app(store: Store | None = None, *, areas: AreaCatalog | None = None,
               accounts: AccountsStore | None = None, auth_required: bool | None = None,
               auth: AuthConfig | None = None, alert_settings: AlertSettings | None = None) -> FastAPI:
    """Build the app. With `store`, serve it (the caller closes it); without, open the SQLite store
    of the settings at startup and close it at shutdown. `areas` replaces nlp.areas.load_areas().

    Every endpoint but /healthz, /readyz and the login page needs an account (api.auth);
    `auth_required=False` (or the setting) turns that off for a local demo. `accounts` defaults to
    the accounts tables in the store's SQLite file (opened on first use, closed at shutdown)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned: Store | None = None
        if getattr(app.state, "store", None) is None:
            from storage.factory import open_configured_store

            owned = open_configured_store()
            app.state.store = owned
        try:
            yield
        finally:
            if getattr(app.state, "owns_accounts", False) and app.state.accounts is not None:
                app.state.accounts.close()
                app.state.accounts = None
                app.state.owns_accounts = False
            if owned is not None:
                owned.close()
                app.state.store = None

    app = FastAPI(
        title="Lắng Nghe API",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.areas = areas
    app.state.accounts = accounts
    app.state.owns_accounts = False
    app.state.auth_config = auth or AuthConfig.from_settings(get_settings(), auth_required=auth_required)
    app.state.alert_settings = alert_settings
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(LoginRequired, login_required_handler)
    # metrics, request log and security headers in one pure ASGI layer (cheap per request)
    app.add_middleware(ObserveMiddleware, headers={"X-Content-Type-Options": "nosniff",
                                                   "Referrer-Policy": "same-origin"})

    app.include_router(health.router)
    app.include_router(areas_router.router)
    app.include_router(issues.router)
    app.include_router(mentions.router)
    app.include_router(dashboard.router, dependencies=[Depends(require_page_user)])
    app.include_router(pages.router)
    app.include_router(briefings.router)
    app.include_router(auth_router.router)
    app.include_router(users.router)
    app.include_router(saved_searches.router)
    app.include_router(alerts_router.router)
    app.include_router(ops.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def main() -> None:
    """Serve with uvicorn on the configured host and port (`python -m api.main`)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run("api.main:create_app", factory=True, host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
