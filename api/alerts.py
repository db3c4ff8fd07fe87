"""Alerts: new mentions matching saved searches, and emerging issues, by e-mail and webhook.

Saved searches: `check_saved_searches` runs each saved search with alerts on, in its owner's
scope, over recent mentions; a mention is new for a channel when it arrived (``crawled_at``)
after the search was saved and was never sent to that channel. Delivery is recorded per
channel only on success, so a failed e-mail or webhook is retried at the next check.

Emerging issues: the issue detector (nlp) produces `AlertEvent`s and calls
`notify_emerging(store, events, accounts=…)`; each event goes, once, to the alert rules and the
accounts (``emerging_alerts``) whose scope covers it.

Webhooks: ``POST`` JSON, ``Content-Type: application/json``, headers ``X-LangNghe-Event``,
``X-LangNghe-Timestamp`` (Unix seconds) and ``X-LangNghe-Signature: sha256=<hex>``, the
HMAC-SHA256 under the webhook's secret of ``<timestamp>.<body>``; receivers should check it and
reject old timestamps. Webhook URLs must be http(s) and, unless allowed, not point to loopback,
private or link-local addresses (no requests into the server's own network).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from api.accounts_store import AccountsStore, AlertRule, SavedSearch, User
from api.auth.config import setting
from api.auth.models import Role, Scope, scope_for
from api.mailer import MailError, SmtpConfig, send_email
from api.metrics import ALERTS_SENT
from api.query_language import QueryError
from api.reports.i18n import t, unit
from api.search import run_search
from langnghe.records import Issue, Mention, to_city_time
from nlp.taxonomy import department_name, topic_name
from storage.base import Store

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-LangNghe-Signature"
TIMESTAMP_HEADER = "X-LangNghe-Timestamp"
EVENT_HEADER = "X-LangNghe-Event"
LOOKBACK = timedelta(days=3)
MAX_CANDIDATES = 200
MAX_ITEMS_PER_MESSAGE = 50
WEBHOOK_TIMEOUT = 10.0


@dataclass(frozen=True)
class AlertEvent:
    """An emerging or fast-rising issue, as produced by the issue detector.

    ``key`` identifies the event for de-duplication: the same key is sent once per recipient
    (e.g. ``"emerging:<issue_id>:<period_key>"``).
    """

    key: str
    kind: str  # "emerging" (new issue) | "rising" (growing fast)
    issue_id: str
    label: str
    detected_at: datetime
    area_ids: tuple[str, ...] = ()
    topic: str | None = None
    department: str | None = None
    score: float = 0.0
    mention_count: int = 0
    growth: float | None = None  # e.g. 3.0 = three times the baseline
    reason: str = ""  # human-readable, Vietnamese
    evidence_ids: tuple[str, ...] = ()

    def as_issue(self) -> Issue:
        """The event as an Issue (for scope checks)."""
        return Issue(id=self.issue_id, label=self.label, topic=self.topic or "other_civic",
                     department=self.department, area_ids=list(self.area_ids), keywords=[],
                     first_seen=self.detected_at, last_seen=self.detected_at,
                     mention_count=self.mention_count)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["detected_at"] = self.detected_at.astimezone(UTC).isoformat()
        data["area_ids"] = list(self.area_ids)
        data["evidence_ids"] = list(self.evidence_ids)
        return data


@dataclass
class AlertReport:
    """What a check sent: messages by channel, items, failures."""

    checked: int = 0
    emails: int = 0
    webhooks: int = 0
    items: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, other: AlertReport) -> None:
        self.checked += other.checked
        self.emails += other.emails
        self.webhooks += other.webhooks
        self.items += other.items
        self.failures.extend(other.failures)


@dataclass(frozen=True)
class AlertSettings:
    base_url: str = "http://127.0.0.1:8000"
    allow_private_webhooks: bool = False
    smtp: SmtpConfig | None = None

    @classmethod
    def from_settings(cls, settings: Any = None, **overrides: Any) -> AlertSettings:
        if settings is None:
            from langnghe.config import get_settings

            settings = get_settings()
        values: dict[str, Any] = {
            "base_url": str(setting(settings, "public_url", cls.base_url)).rstrip("/"),
            "allow_private_webhooks": bool(setting(settings, "webhook_allow_private", False)),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# --- webhooks ----------------------------------------------------------------------------------

class WebhookError(RuntimeError):
    pass


def check_webhook_url(url: str, *, allow_private: bool = False, resolve: bool = True) -> None:
    """Raise WebhookError unless `url` is http(s) with a host that is not loopback, private,
    link-local, multicast or reserved (unless `allow_private`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError("Webhook phải là địa chỉ http(s) / webhook must be an http(s) URL")
    if parts.username or parts.password:
        raise WebhookError("Webhook không được chứa mật khẩu / no credentials in webhook URLs")
    if allow_private:
        return
    host = parts.hostname
    addresses: list[str] = []
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        if host.lower() in ("localhost",) or host.lower().endswith(".localhost"):
            raise WebhookError("Webhook trỏ vào máy nội bộ / webhook points to a local host") from None
        if resolve:
            try:
                addresses = [str(info[4][0]) for info in socket.getaddrinfo(host, parts.port or 443)]
            except OSError as exc:
                raise WebhookError(f"Không phân giải được / cannot resolve {host}: {exc}") from exc
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved \
                or ip.is_unspecified:
            raise WebhookError("Webhook trỏ vào mạng nội bộ / webhook points to a private address")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for a webhook body."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, header: str, *, max_age_s: float = 300,
                     now: float | None = None) -> bool:
    """For receivers: the signature is right and the timestamp recent."""
    try:
        age = (now if now is not None else time.time()) - int(timestamp)
    except ValueError:
        return False
    return abs(age) <= max_age_s and hmac.compare_digest(sign(secret, timestamp, body), header)


def post_webhook(url: str, secret: str, event: str, payload: dict[str, Any], *,
                 allow_private: bool = False, timeout: float = WEBHOOK_TIMEOUT) -> int:
    """POST the signed JSON payload; returns the HTTP status; raises WebhookError unless 2xx."""
    check_webhook_url(url, allow_private=allow_private)
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "LangNghe-Alerts/1",
               EVENT_HEADER: event, TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise WebhookError(f"{type(exc).__name__}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise WebhookError(f"HTTP {response.status_code}")
    return response.status_code


# --- rendering ---------------------------------------------------------------------------------

def _mention_json(m: Mention, base_url: str) -> dict[str, Any]:
    return {"id": m.id, "title": m.title, "url": m.url, "source": m.source,
            "published_at": m.published_at.astimezone(UTC).isoformat(), "sentiment": m.sentiment,
            "topic": m.topic, "department": m.department, "areas": list(m.areas), "issue_id": m.issue_id}


def render_search_email(saved: SavedSearch, mentions: Sequence[Mention], base_url: str) -> tuple[str, str, str]:
    """(subject, html, text) of a saved-search alert, Vietnamese first."""
    n = len(mentions)
    subject = f"[Lắng Nghe] {n} ý kiến mới khớp “{saved.name}” / {n} new {unit(t('en'), 'mentions', n)}"
    lines = [f"{n} ý kiến mới khớp tìm kiếm đã lưu “{saved.name}” ({saved.query}).",
             f"{n} new mention(s) match the saved search.", ""]
    items = []
    for m in mentions:
        when = to_city_time(m.published_at).strftime("%d/%m/%Y %H:%M")
        lines.append(f"- {m.title} ({m.source}, {when})\n  {m.url}")
        items.append(f'<li><a href="{html.escape(m.url)}">{html.escape(m.title)}</a> '
                     f"<small>{html.escape(m.source)}, {when}</small></li>")
    link = f"{base_url}/?q={quote(saved.query)}"
    lines += ["", f"Xem tất cả / see all: {link}"]
    body = (f"<p>{n} ý kiến mới khớp tìm kiếm đã lưu <strong>{html.escape(saved.name)}</strong> "
            f"(<code>{html.escape(saved.query)}</code>).<br><small>{n} new mention(s) match the saved "
            f"search.</small></p><ul>{''.join(items)}</ul>"
            f'<p><a href="{html.escape(link)}">Xem tất cả / see all</a></p>')
    return subject, body, "\n".join(lines)


def render_emerging_email(events: Sequence[AlertEvent], base_url: str) -> tuple[str, str, str]:
    n = len(events)
    first = events[0].label if events else ""
    subject = (f"[Lắng Nghe] Vấn đề mới nổi: {first}" if n == 1
               else f"[Lắng Nghe] {n} vấn đề mới nổi / {n} emerging issues")
    lines = [f"{n} vấn đề mới nổi hoặc tăng nhanh trong phạm vi của bạn.",
             f"{n} emerging or fast-rising issue(s) in your scope.", ""]
    items = []
    for e in events:
        kind = "Mới nổi" if e.kind == "emerging" else "Tăng nhanh"
        link = f"{base_url}/issues/{e.issue_id}"
        detail = ", ".join(x for x in (topic_name(e.topic), department_name(e.department),
                                       f"{e.mention_count} lượt nhắc", e.reason) if x)
        lines.append(f"- [{kind}] {e.label} — {detail}\n  {link}")
        items.append(f'<li><strong>{kind}</strong>: <a href="{html.escape(link)}">{html.escape(e.label)}</a>'
                     f"<br><small>{html.escape(detail)}</small></li>")
    body = (f"<p>{n} vấn đề mới nổi hoặc tăng nhanh trong phạm vi của bạn.<br>"
            f"<small>{n} emerging or fast-rising issue(s) in your scope.</small></p><ul>{''.join(items)}</ul>")
    return subject, body, "\n".join(lines)


# --- delivery ----------------------------------------------------------------------------------

def _deliver(accounts: AccountsStore, *, user_id: int | None, source: str, kind: str,
             emails: Iterable[str], webhook: tuple[str, str] | None, item_keys: Sequence[str],
             email_for: Any, webhook_for: Any, settings: AlertSettings) -> AlertReport:
    """Send the unseen items to each channel; mark them seen on success only."""
    report = AlertReport()
    targets: list[tuple[str, str]] = [("email", e) for e in dict.fromkeys(emails) if e]
    if webhook is not None:
        targets.append(("webhook", webhook[0]))
    for channel, target in targets:
        target_key = f"{channel}:{target}"
        new = accounts.unseen(source, target_key, item_keys)[:MAX_ITEMS_PER_MESSAGE]
        if not new:
            continue
        try:
            if channel == "email":
                subject, body_html, body_text = email_for(new)
                send_email([target], subject, body_html, body_text, config=settings.smtp)
                report.emails += 1
            else:
                assert webhook is not None
                post_webhook(webhook[0], webhook[1], kind, webhook_for(new),
                             allow_private=settings.allow_private_webhooks)
                report.webhooks += 1
        except (MailError, WebhookError) as exc:
            ALERTS_SENT.labels(kind, channel, "error").inc()
            accounts.log_alert(user_id, source, channel, target, len(new), "error", str(exc))
            report.failures.append(f"{source} {channel}: {exc}")
            log.warning("alert delivery failed", extra={"event": "alert_failed", "source": source,
                                                        "channel": channel, "error": str(exc)})
            continue
        ALERTS_SENT.labels(kind, channel, "ok").inc()
        accounts.mark_seen(source, target_key, new)
        accounts.log_alert(user_id, source, channel, target, len(new), "sent")
        report.items += len(new)
    return report


def _owner(accounts: AccountsStore, user_id: int, areas: Any) -> tuple[User, Scope] | None:
    user = accounts.get_user(user_id)
    if user is None or not user.active:
        return None
    return user, scope_for(user.role, user.department, user.area_id, areas)


def new_matches(store: Store, saved: SavedSearch, scope: Scope, *, areas: Any = None,
                now: datetime | None = None, lookback: timedelta = LOOKBACK) -> list[Mention]:
    """Mentions in scope matching the saved search that were published within `lookback` and
    arrived after the search was saved, newest first."""
    now = now or datetime.now(UTC)
    since = {"field": "published_at", "operator": ">=", "value": now - lookback}
    page = run_search(store, saved.query, scope=scope, filters=since, areas=areas, limit=MAX_CANDIDATES)
    fresh = [h.mention for h in page.hits if h.mention.crawled_at >= saved.created_at]
    return sorted(fresh, key=lambda m: m.published_at, reverse=True)


def check_saved_searches(store: Store, accounts: AccountsStore, *, areas: Any = None,
                         settings: AlertSettings | None = None, now: datetime | None = None,
                         lookback: timedelta = LOOKBACK) -> AlertReport:
    """Run every saved search with alerts on and send what is new to its channels."""
    settings = settings or AlertSettings.from_settings()
    report = AlertReport()
    for saved in accounts.list_saved_searches(alerting=True):
        owner = _owner(accounts, saved.user_id, areas)
        if owner is None:
            continue
        report.checked += 1
        try:
            found = new_matches(store, saved, owner[1], areas=areas, now=now, lookback=lookback)
        except QueryError as exc:
            report.failures.append(f"search:{saved.id}: {exc}")
            continue
        by_id = {m.id: m for m in found}

        def email_for(ids: list[str], saved: SavedSearch = saved, by_id: dict[str, Mention] = by_id) -> Any:
            return render_search_email(saved, [by_id[i] for i in ids], settings.base_url)

        def webhook_for(ids: list[str], saved: SavedSearch = saved, by_id: dict[str, Mention] = by_id) -> Any:
            return {"type": "saved_search.matches", "saved_search": {"id": saved.id, "name": saved.name,
                                                                     "query": saved.query},
                    "mentions": [_mention_json(by_id[i], settings.base_url) for i in ids]}

        webhook = (saved.webhook_url, saved.webhook_secret) if saved.webhook_url and saved.webhook_secret else None
        report.add(_deliver(accounts, user_id=saved.user_id, source=f"search:{saved.id}", kind="saved_search",
                            emails=saved.emails, webhook=webhook, item_keys=list(by_id),
                            email_for=email_for, webhook_for=webhook_for, settings=settings))
        accounts.mark_checked(saved.id, now)
    return report


def _rule_matches(rule: AlertRule, event: AlertEvent, areas: Any) -> bool:
    if rule.department and event.department != rule.department:
        return False
    if rule.area_id:
        wanted = scope_for(Role.area, None, rule.area_id, areas).area_ids or frozenset()
        if not wanted.intersection(event.area_ids):
            return False
    return True


def alert_event_from(store: Store, event: Any) -> AlertEvent | None:
    """An AlertEvent from the issue detector's event (nlp.alerts_events.EmergingEvent: issue_id,
    area_id, period, observed, baseline, ratio, detected_at), completed from the stored issue;
    None when the issue is not stored."""
    issue = store.get_issue(event.issue_id)
    if issue is None:
        log.warning("emerging event for an unknown issue skipped", extra={"issue_id": event.issue_id})
        return None
    area_id = getattr(event, "area_id", None)
    ratio = getattr(event, "ratio", None)
    observed = int(getattr(event, "observed", 0) or 0)
    baseline = getattr(event, "baseline", None)
    reason = (f"{observed} bài hôm nay, gấp {ratio:.1f} lần mức thường ngày ({baseline:.1f}/ngày)"
              if ratio is not None and baseline is not None else "")
    return AlertEvent(
        key=f"emerging:{event.issue_id}:{area_id or '*'}:{getattr(event, 'period', '')}",
        kind="emerging", issue_id=issue.id, label=issue.label, detected_at=event.detected_at,
        area_ids=tuple(dict.fromkeys([area_id] if area_id else issue.area_ids)),
        topic=issue.topic, department=issue.department, mention_count=observed or issue.mention_count,
        growth=float(ratio) if ratio is not None else None, reason=reason)


def notify_emerging(store: Store, events: Sequence[Any], *, accounts: AccountsStore,
                    areas: Any = None, settings: AlertSettings | None = None) -> AlertReport:
    """Send emerging-issue events to the alert rules and the accounts whose scope covers them
    (each event key once per recipient and channel). `events` are AlertEvents or the issue
    detector's events (converted with `alert_event_from`)."""
    settings = settings or AlertSettings.from_settings()
    report = AlertReport()
    converted = [e if isinstance(e, AlertEvent) else alert_event_from(store, e) for e in events]
    events = [e for e in converted if e is not None]
    if not events:
        return report
    by_key = {e.key: e for e in events}

    def email_for(keys: list[str]) -> Any:
        return render_emerging_email([by_key[k] for k in keys], settings.base_url)

    def webhook_for(keys: list[str]) -> Any:
        return {"type": "issues.emerging", "events": [by_key[k].to_json() for k in keys]}

    for rule in accounts.list_alert_rules(enabled=True):
        owner = _owner(accounts, rule.user_id, areas)
        if owner is None:
            continue
        report.checked += 1
        keys = [e.key for e in events if owner[1].allows_issue(e.as_issue()) and _rule_matches(rule, e, areas)]
        webhook = (rule.webhook_url, rule.webhook_secret) if rule.webhook_url and rule.webhook_secret else None
        report.add(_deliver(accounts, user_id=rule.user_id, source=f"rule:{rule.id}", kind="emerging",
                            emails=rule.emails, webhook=webhook, item_keys=keys, email_for=email_for,
                            webhook_for=webhook_for, settings=settings))
    for user in accounts.list_users():
        if not user.active or not user.emerging_alerts:
            continue
        scope = scope_for(user.role, user.department, user.area_id, areas)
        keys = [e.key for e in events if scope.allows_issue(e.as_issue())]
        if not keys:
            continue
        report.checked += 1
        report.add(_deliver(accounts, user_id=user.id, source=f"user:{user.id}", kind="emerging",
                            emails=[user.email], webhook=None, item_keys=keys, email_for=email_for,
                            webhook_for=webhook_for, settings=settings))
    return report

