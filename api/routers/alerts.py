"""Alerts: emerging-issue alert rules, the delivery log, and running the checks on demand."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field, field_validator

from api.accounts_store import AlertLogEntry, AlertRule, normalize_email
from api.alerts import AlertEvent, AlertReport, check_saved_searches, notify_emerging
from api.auth.deps import AccountsDep, AdminUser, CurrentUser
from api.auth.models import Principal
from api.deps import AreasDep, StoreDep
from api.routers.saved_searches import alert_settings, check_webhook
from nlp.taxonomy import Department

RecordId = Annotated[int, Path(ge=1, le=2**53, description="Record id")]

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


class AlertRuleIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    area_id: str | None = Field(default=None, max_length=64, description="Only issues touching this area")
    department: Department | None = Field(default=None, description="Only this department's issues")
    emails: list[str] = Field(default_factory=list, max_length=20)
    webhook_url: str | None = Field(default=None, max_length=2000)
    enabled: bool = True

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(normalize_email(e) for e in value))


class AlertRuleOut(BaseModel):
    id: int
    name: str
    area_id: str | None
    department: str | None
    emails: list[str]
    webhook_url: str | None
    enabled: bool
    created_at: datetime

    @classmethod
    def of(cls, r: AlertRule) -> AlertRuleOut:
        return cls(id=r.id, name=r.name, area_id=r.area_id, department=r.department, emails=r.emails,
                   webhook_url=r.webhook_url, enabled=r.enabled, created_at=r.created_at)


class AlertRuleCreated(AlertRuleOut):
    webhook_secret: str | None = Field(default=None, description="Signing secret, shown once")


class AlertLogOut(BaseModel):
    id: int
    source: str
    channel: str
    target: str
    items: int
    status: str
    error: str | None
    created_at: datetime

    @classmethod
    def of(cls, e: AlertLogEntry) -> AlertLogOut:
        return cls(id=e.id, source=e.source, channel=e.channel, target=e.target, items=e.items,
                   status=e.status, error=e.error, created_at=e.created_at)


class AlertReportOut(BaseModel):
    checked: int
    emails: int
    webhooks: int
    items: int
    failures: list[str]

    @classmethod
    def of(cls, r: AlertReport) -> AlertReportOut:
        return cls(checked=r.checked, emails=r.emails, webhooks=r.webhooks, items=r.items, failures=r.failures)


class AlertEventIn(BaseModel):
    key: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="emerging", pattern="^(emerging|rising)$")
    issue_id: str = Field(min_length=1, max_length=128)
    label: str = Field(min_length=1, max_length=500)
    detected_at: datetime
    area_ids: list[str] = Field(default_factory=list, max_length=400)
    topic: str | None = Field(default=None, max_length=64)
    department: str | None = Field(default=None, max_length=64)
    score: float = 0.0
    mention_count: int = Field(default=0, ge=0)
    growth: float | None = None
    reason: str = Field(default="", max_length=500)
    evidence_ids: list[str] = Field(default_factory=list, max_length=50)


def _account_id(user: Principal) -> int:
    if user.user_id is None:
        raise HTTPException(403, detail="Cần một tài khoản / alert rules belong to accounts")
    return user.user_id


@router.get("/rules", response_model=list[AlertRuleOut], summary="My emerging-issue alert rules")
def list_rules(user: CurrentUser, accounts: AccountsDep) -> list[AlertRuleOut]:
    return [AlertRuleOut.of(r) for r in accounts.list_alert_rules(_account_id(user))]


@router.post("/rules", response_model=AlertRuleCreated, status_code=201, summary="Create an alert rule",
             responses={422: {}})
def create_rule(request: Request, body: AlertRuleIn, user: CurrentUser, accounts: AccountsDep,
                areas: AreasDep) -> AlertRuleCreated:
    """Emerging issues (in the caller's scope, optionally narrowed to an area or department) are
    sent to the e-mails and the webhook."""
    owner = _account_id(user)
    if body.area_id and areas.get(body.area_id) is None:
        raise HTTPException(422, detail=f"area_id: Không tìm thấy khu vực / unknown area {body.area_id!r}")
    check_webhook(request, body.webhook_url)
    rule = accounts.create_alert_rule(owner, body.name.strip(), area_id=body.area_id,
                                      department=body.department.value if body.department else None,
                                      emails=body.emails, webhook_url=body.webhook_url or None,
                                      enabled=body.enabled)
    return AlertRuleCreated(**AlertRuleOut.of(rule).model_dump(), webhook_secret=rule.webhook_secret)


@router.delete("/rules/{rule_id}", status_code=204, summary="Delete an alert rule", responses={404: {}})
def delete_rule(rule_id: RecordId, user: CurrentUser, accounts: AccountsDep) -> Response:
    rule = accounts.get_alert_rule(rule_id)
    if rule is None or (rule.user_id != user.user_id and not user.is_admin):
        raise HTTPException(404, detail="Không tìm thấy / no such rule")
    accounts.delete_alert_rule(rule_id)
    return Response(status_code=204)


@router.get("/log", response_model=list[AlertLogOut], summary="Alerts sent (mine; all for administrators)")
def alert_log(user: CurrentUser, accounts: AccountsDep,
              limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[AlertLogOut]:
    entries = accounts.alert_log(None if user.is_admin else _account_id(user), limit)
    return [AlertLogOut.of(e) for e in entries]


@router.post("/check", response_model=AlertReportOut, summary="Check saved searches now (administrators)")
def run_check(request: Request, _: AdminUser, store: StoreDep, accounts: AccountsDep,
              areas: AreasDep) -> AlertReportOut:
    """Send what is new for every saved search with alerts on (the scheduler does this after
    each pipeline run)."""
    return AlertReportOut.of(check_saved_searches(store, accounts, areas=areas,
                                                  settings=alert_settings(request)))


@router.post("/emerging", response_model=AlertReportOut, summary="Notify emerging issues (administrators)")
def push_emerging(request: Request, events: list[AlertEventIn], _: AdminUser, store: StoreDep,
                  accounts: AccountsDep, areas: AreasDep) -> AlertReportOut:
    """Deliver emerging-issue events (as the issue detector produces them) to the rules and
    accounts whose scope covers them; an event key already sent is not sent again."""
    if len(events) > 200:
        raise HTTPException(422, detail="at most 200 events")
    converted = [AlertEvent(**{**e.model_dump(), "area_ids": tuple(e.area_ids),
                               "evidence_ids": tuple(e.evidence_ids)}) for e in events]
    return AlertReportOut.of(notify_emerging(store, converted, accounts=accounts, areas=areas,
                                             settings=alert_settings(request)))
