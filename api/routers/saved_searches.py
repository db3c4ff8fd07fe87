"""Saved searches: a named query of the search language, run on demand and watched for new
mentions (alerts by e-mail and signed webhook)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from api.accounts_store import SavedSearch, normalize_email
from api.alerts import AlertSettings, WebhookError, check_webhook_url
from api.auth.deps import AccountsDep, CurrentUser
from api.auth.models import Principal
from api.deps import AreasDep, StoreDep
from api.query_language import QueryError, parse
from api.schemas import MentionOut, SearchOut
from api.search import run_search

RecordId = Annotated[int, Path(ge=1, le=2**53, description="Record id")]

router = APIRouter(prefix="/api/v1/saved-searches", tags=["saved searches"])

MAX_SAVED_PER_USER = 100


class SavedSearchIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    query: str = Field(min_length=1, max_length=500, description="In the search language (docs/search.md)")
    emails: list[str] = Field(default_factory=list, max_length=20)
    webhook_url: str | None = Field(default=None, max_length=2000)
    alerts_enabled: bool = True

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        try:
            return list(dict.fromkeys(normalize_email(e) for e in value))
        except ValueError as exc:
            raise ValueError(str(exc)) from exc


class SavedSearchPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    query: str | None = Field(default=None, min_length=1, max_length=500)
    emails: list[str] | None = Field(default=None, max_length=20)
    webhook_url: str | None = Field(default=None, max_length=2000, description="'' removes the webhook")
    alerts_enabled: bool | None = None

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else SavedSearchIn._emails(value)


class SavedSearchOut(BaseModel):
    id: int
    name: str
    query: str
    emails: list[str]
    webhook_url: str | None
    alerts_enabled: bool
    created_at: datetime
    updated_at: datetime
    last_checked_at: datetime | None

    @classmethod
    def of(cls, s: SavedSearch) -> SavedSearchOut:
        return cls(id=s.id, name=s.name, query=s.query, emails=s.emails, webhook_url=s.webhook_url,
                   alerts_enabled=s.alerts_enabled, created_at=s.created_at, updated_at=s.updated_at,
                   last_checked_at=s.last_checked_at)


class SavedSearchCreated(SavedSearchOut):
    webhook_secret: str | None = Field(
        default=None, description="Signing secret of the webhook (HMAC-SHA256), shown once")


def _check_query(query: str, areas: AreasDep) -> None:
    try:
        if parse(query, areas) is None:
            raise QueryError("Truy vấn không có từ nào để tìm / the query has nothing to search for")
    except QueryError as exc:
        raise HTTPException(422, detail=f"query: {exc}") from exc


def alert_settings(request: Request) -> AlertSettings:
    """The app's alert settings (app.state.alert_settings, else from the settings)."""
    found: AlertSettings | None = getattr(request.app.state, "alert_settings", None)
    return found if found is not None else AlertSettings.from_settings()


def check_webhook(request: Request, url: str | None) -> None:
    """422 unless `url` is an acceptable webhook target (see api.alerts.check_webhook_url)."""
    if url:
        try:
            check_webhook_url(url, allow_private=alert_settings(request).allow_private_webhooks,
                              resolve=False)
        except WebhookError as exc:
            raise HTTPException(422, detail=f"webhook_url: {exc}") from exc


def _own(accounts: AccountsDep, saved_id: RecordId, user: Principal) -> SavedSearch:
    saved = accounts.get_saved_search(saved_id)
    if saved is None or (saved.user_id != user.user_id and not user.is_admin):
        raise HTTPException(404, detail="Không tìm thấy tìm kiếm đã lưu / no such saved search")
    return saved


def _account_id(user: Principal) -> int:
    if user.user_id is None:
        raise HTTPException(403, detail="Cần một tài khoản / saved searches belong to accounts")
    return user.user_id


@router.get("", response_model=list[SavedSearchOut], summary="My saved searches")
def list_saved(user: CurrentUser, accounts: AccountsDep) -> list[SavedSearchOut]:
    return [SavedSearchOut.of(s) for s in accounts.list_saved_searches(_account_id(user))]


@router.post("", response_model=SavedSearchCreated, status_code=201, summary="Save a search",
             responses={422: {}})
def create_saved(request: Request, body: SavedSearchIn, user: CurrentUser, accounts: AccountsDep,
                 areas: AreasDep) -> SavedSearchCreated:
    """Save a query; with alerts on, new matching mentions (in the caller's scope) are sent to the
    e-mails and the webhook. The webhook's signing secret is returned once."""
    owner = _account_id(user)
    _check_query(body.query, areas)
    check_webhook(request, body.webhook_url)
    if len(accounts.list_saved_searches(owner)) >= MAX_SAVED_PER_USER:
        raise HTTPException(422, detail=f"Tối đa {MAX_SAVED_PER_USER} / at most {MAX_SAVED_PER_USER} saved searches")
    saved = accounts.create_saved_search(owner, body.name.strip(), body.query.strip(), emails=body.emails,
                                         webhook_url=body.webhook_url or None,
                                         alerts_enabled=body.alerts_enabled)
    return SavedSearchCreated(**SavedSearchOut.of(saved).model_dump(), webhook_secret=saved.webhook_secret)


@router.get("/{saved_id}", response_model=SavedSearchOut, summary="One saved search", responses={404: {}})
def get_saved(saved_id: RecordId, user: CurrentUser, accounts: AccountsDep) -> SavedSearchOut:
    return SavedSearchOut.of(_own(accounts, saved_id, user))


@router.patch("/{saved_id}", response_model=SavedSearchCreated, summary="Change a saved search",
              responses={404: {}, 422: {}})
def update_saved(request: Request, saved_id: RecordId, body: SavedSearchPatch, user: CurrentUser, accounts: AccountsDep,
                 areas: AreasDep) -> SavedSearchCreated:
    """Change it; a new webhook URL gets a new signing secret (returned)."""
    current = _own(accounts, saved_id, user)
    if body.query is not None:
        _check_query(body.query, areas)
    changes = body.model_dump(exclude_unset=True)
    if "webhook_url" in changes:
        changes["webhook_url"] = changes["webhook_url"] or None
        check_webhook(request, changes["webhook_url"])
    saved = accounts.update_saved_search(current.id, **changes)
    secret = saved.webhook_secret if saved.webhook_secret != current.webhook_secret else None
    return SavedSearchCreated(**SavedSearchOut.of(saved).model_dump(), webhook_secret=secret)


@router.delete("/{saved_id}", status_code=204, summary="Delete a saved search", responses={404: {}})
def delete_saved(saved_id: RecordId, user: CurrentUser, accounts: AccountsDep) -> Response:
    accounts.delete_saved_search(_own(accounts, saved_id, user).id)
    return Response(status_code=204)


@router.get("/{saved_id}/results", response_model=SearchOut, summary="Run a saved search",
            responses={404: {}})
def run_saved(saved_id: RecordId, user: CurrentUser, accounts: AccountsDep, store: StoreDep,
              areas: AreasDep, page: Annotated[int, Query(ge=1, le=500)] = 1,
              page_size: Annotated[int, Query(ge=1, le=100)] = 20) -> SearchOut:
    """The saved query's results now, inside the caller's scope."""
    saved = _own(accounts, saved_id, user)
    try:
        result = run_search(store, saved.query, scope=user.scope, areas=areas, limit=page_size,
                            offset=(page - 1) * page_size)
    except QueryError as exc:
        raise HTTPException(422, detail=f"query: {exc}") from exc
    return SearchOut(total=result.total, page=page, page_size=page_size,
                     items=[MentionOut.from_mention(h.mention, h.highlight) for h in result.hits])
