"""Alerts against real servers on loopback: e-mail through an aiosmtpd SMTP server, webhooks to a
local HTTP server that checks the HMAC signature."""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.alerts import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AlertEvent,
    AlertSettings,
    WebhookError,
    alert_event_from,
    check_saved_searches,
    check_webhook_url,
    notify_emerging,
    render_search_email,
    verify_signature,
)
from api.auth.deps import app_accounts
from api.mailer import MailerNotConfigured, MailError, SmtpConfig, send_email
from api.main import create_app
from langnghe.records import Issue, Mention, mention_id
from nlp.areas import load_areas
from storage.sqlite import SQLiteStore
from tests.auth_helpers import PASSWORD, add_user, bearer

pytestmark = pytest.mark.integration
AREAS = load_areas()
TAN_HUNG = "w:27475"


def part_text(msg: Message, content_type: str) -> str:
    """The decoded text of the first part of `msg` with this content type."""
    for part in msg.walk():
        if part.get_content_type() == content_type:
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            return data.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no {content_type} part")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """An aiosmtpd handler keeping what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture()
def smtp() -> Iterator[tuple[SmtpConfig, Inbox]]:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpConfig(host="127.0.0.1", port=port, sender="Lắng Nghe <alerts@langnghe.test>",
                         starttls=True, timeout=5), inbox
    finally:
        controller.stop()


class Hook:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200


@pytest.fixture()
def webhook() -> Iterator[tuple[str, Hook]]:
    hook = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.requests.append(({k: v for k, v in self.headers.items()}, body))
            self.send_response(hook.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", hook
    finally:
        server.shutdown()
        server.server_close()


def fresh(slug: str, title: str, text: str, *, areas: list[str], department: str = "construction",
          minutes_ago: int = 10, issue_id: str | None = None) -> Mention:
    now = datetime.now(UTC)
    url = f"https://tuoitre.vn/{slug}.html"
    return Mention(id=mention_id(url), source="tuoitre.vn", url=url, title=title, text=text,
                   published_at=now - timedelta(minutes=minutes_ago), crawled_at=now, civic=True,
                   sentiment="negative", topic="flooding", department=department, areas=["hcmc", *areas],
                   issue_id=issue_id, processed_at=now)


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    db = SQLiteStore(tmp_path / "alerts.sqlite3")
    yield db
    db.close()


# --- the mailer --------------------------------------------------------------------------------

def test_send_email_through_a_real_smtp_server(smtp: tuple[SmtpConfig, Inbox]) -> None:
    config, inbox = smtp
    send_email(["lanh.dao@langnghe.test"], "Bản tin tuần 47", "<p>Xin chào <b>TP.HCM</b></p>", "Xin chào TP.HCM",
               [("ban-tin.pdf", b"%PDF-1.4 test", "application/pdf")], config=config)
    (rcpts, msg), = inbox.messages
    assert rcpts == ["lanh.dao@langnghe.test"]
    assert str(email.header.make_header(email.header.decode_header(msg["Subject"]))) == "Bản tin tuần 47"
    parts = {p.get_content_type(): p for p in msg.walk()}
    assert "Xin chào TP.HCM" in part_text(msg, "text/plain")
    assert "<b>TP.HCM</b>" in part_text(msg, "text/html")
    assert parts["application/pdf"].get_filename() == "ban-tin.pdf"
    assert parts["application/pdf"].get_payload(decode=True) == b"%PDF-1.4 test"


def test_mailer_errors_are_clear() -> None:
    with pytest.raises(MailerNotConfigured):
        send_email(["a@b.vn"], "x", "", "x", config=SmtpConfig(host=None))
    with pytest.raises(MailError, match="ConnectionRefused|SMTP 127.0.0.1"):
        send_email(["a@b.vn"], "x", "", "x", config=SmtpConfig(host="127.0.0.1", port=free_port(), timeout=2))
    with pytest.raises(MailError, match="line breaks"):
        send_email(["a@b.vn"], "x\r\nBcc: victim@x.vn", "", "x", config=SmtpConfig(host="127.0.0.1"))
    with pytest.raises(MailError, match="no recipient"):
        send_email([], "x", "", "x", config=SmtpConfig(host="127.0.0.1"))


# --- saved searches ----------------------------------------------------------------------------

def test_saved_search_alerts_new_mentions_once_by_email_and_signed_webhook(
        store: SQLiteStore, smtp: tuple[SmtpConfig, Inbox], webhook: tuple[str, Hook]) -> None:
    config, inbox = smtp
    url, hook = webhook
    old = fresh("cu", "Ngập nước ở Quận 7 từ hôm qua", "Ngập nước kéo dài.", areas=["fd:quan-7"], minutes_ago=60)
    store.write_mentions([old])  # stored before the search is saved: never alerted
    settings = AlertSettings(base_url="https://langnghe.example", allow_private_webhooks=True, smtp=config)
    app = create_app(store, alert_settings=settings)
    with TestClient(app) as c:
        add_user(c.app, "tt@langnghe.test", "communications")
        headers = bearer(c, "tt@langnghe.test")
        created = c.post("/api/v1/saved-searches", headers=headers, json={
            "name": "Ngập Quận 7", "query": '"ngập nước" area:fd:quan-7 -"triều cường"',
            "emails": ["tt@langnghe.test", "Phong.Vien@langnghe.test"], "webhook_url": url})
        assert created.status_code == 201, created.text
        secret = created.json()["webhook_secret"]
        assert secret and created.json()["emails"] == ["tt@langnghe.test", "phong.vien@langnghe.test"]
        assert "webhook_secret" not in c.get("/api/v1/saved-searches", headers=headers).text
        accounts = app_accounts(c.app)

        match = fresh("moi", "Ngập nước sâu đường Huỳnh Tấn Phát", "Ngập nước sau mưa.", areas=["fd:quan-7"])
        tide = fresh("trieu", "Triều cường gây ngập nước Quận 7", "Triều cường, ngập nước.", areas=["fd:quan-7"])
        elsewhere = fresh("q3", "Ngập nước Quận 3", "Ngập nước ở Quận 3.", areas=["fd:quan-3"])
        store.write_mentions([match, tide, elsewhere])
        report = check_saved_searches(store, accounts, areas=AREAS, settings=settings)
        assert (report.checked, report.emails, report.webhooks, report.failures) == (1, 2, 1, [])
        assert sorted(r for rcpts, _ in inbox.messages for r in rcpts) == ["phong.vien@langnghe.test",
                                                                           "tt@langnghe.test"]
        msg = inbox.messages[0][1]
        text = part_text(msg, "text/plain")
        assert match.title in text and old.title not in text and tide.title not in text
        (req_headers, body), = hook.requests
        assert verify_signature(secret, req_headers[TIMESTAMP_HEADER], body, req_headers[SIGNATURE_HEADER])
        assert not verify_signature("other secret", req_headers[TIMESTAMP_HEADER], body,
                                    req_headers[SIGNATURE_HEADER])
        payload = json.loads(body)
        assert payload["type"] == "saved_search.matches" and [m["id"] for m in payload["mentions"]] == [match.id]

        # nothing new: nothing sent; one more mention: only it is sent
        assert check_saved_searches(store, accounts, areas=AREAS, settings=settings).items == 0
        second = fresh("moi-2", "Ngập nước chợ Tân Mỹ", "Ngập nước.", areas=["fd:quan-7"])
        store.write_mentions([second])
        again = check_saved_searches(store, accounts, areas=AREAS, settings=settings)
        assert again.items == 3 and [m["id"] for m in json.loads(hook.requests[-1][1])["mentions"]] == [second.id]
        log = c.get("/api/v1/alerts/log", headers=headers).json()
        assert len(log) == 6 and {e["status"] for e in log} == {"sent"}


def test_failed_deliveries_are_retried(store: SQLiteStore, smtp: tuple[SmtpConfig, Inbox],
                                       webhook: tuple[str, Hook]) -> None:
    config, inbox = smtp
    url, hook = webhook
    hook.status = 500
    down = SmtpConfig(host="127.0.0.1", port=free_port(), timeout=2)
    app = create_app(store)
    with TestClient(app):
        user = add_user(app, "tt@langnghe.test", "communications")
        accounts = app_accounts(app)
        accounts.create_saved_search(user.id, "rác", "rác", emails=["tt@langnghe.test"], webhook_url=url)
        store.write_mentions([fresh("rac", "Rác ùn ứ chợ Bà Chiểu", "Rác thải.", areas=["fd:binh-thanh"])])
        failing = check_saved_searches(store, accounts, areas=AREAS,
                                       settings=AlertSettings(allow_private_webhooks=True, smtp=down))
        assert failing.items == 0 and len(failing.failures) == 2 and "HTTP 500" in " ".join(failing.failures)
        hook.status = 204
        working = check_saved_searches(store, accounts, areas=AREAS,
                                       settings=AlertSettings(allow_private_webhooks=True, smtp=config))
        assert (working.emails, working.webhooks, working.items) == (1, 1, 2) and len(inbox.messages) == 1
        assert [e.status for e in accounts.alert_log()][:2] == ["sent", "sent"]


def test_alerts_hold_to_the_owners_scope(store: SQLiteStore, smtp: tuple[SmtpConfig, Inbox]) -> None:
    config, inbox = smtp
    app = create_app(store)
    with TestClient(app):
        q7 = add_user(app, "q7@langnghe.test", "area", area_id="fd:quan-7")
        accounts = app_accounts(app)
        accounts.create_saved_search(q7.id, "ngập", "ngap", emails=["q7@langnghe.test"])
        store.write_mentions([fresh("q3", "Ngập Quận 3", "Ngập.", areas=["fd:quan-3"]),
                              fresh("tan-hung", "Ngập phường Tân Hưng", "Ngập.", areas=[TAN_HUNG])])
        report = check_saved_searches(store, accounts, areas=AREAS, settings=AlertSettings(smtp=config))
        assert report.items == 1
        body = part_text(inbox.messages[0][1], "text/plain")
        assert "Ngập phường Tân Hưng" in body and "Ngập Quận 3" not in body


def test_webhook_targets_are_checked() -> None:
    for bad in ("ftp://x.vn/h", "http://127.0.0.1/h", "http://localhost:8000/h", "http://10.0.0.5/h",
                "http://169.254.169.254/latest", "http://[::1]/h", "https://user:pw@example.org/h"):
        with pytest.raises(WebhookError):
            check_webhook_url(bad, resolve=False)
    check_webhook_url("https://93.184.216.34/hook", resolve=False)
    check_webhook_url("http://127.0.0.1:9/h", allow_private=True)


def test_api_refuses_private_webhooks_by_default(store: SQLiteStore) -> None:
    with TestClient(create_app(store)) as c:
        add_user(c.app, "tt@langnghe.test", "communications")
        r = c.post("/api/v1/saved-searches", headers=bearer(c, "tt@langnghe.test"),
                   json={"name": "x", "query": "x", "webhook_url": "http://127.0.0.1:1/h"})
        assert r.status_code == 422 and "private" in r.json()["detail"]
        bad = c.post("/api/v1/saved-searches", headers=bearer(c, "tt@langnghe.test"),
                     json={"name": "x", "query": "topic:weather"})
        assert bad.status_code == 422 and "unknown topic" in bad.json()["detail"]


# --- emerging issues ---------------------------------------------------------------------------

def event(key: str, issue: str, areas: tuple[str, ...], department: str) -> AlertEvent:
    return AlertEvent(key=key, kind="emerging", issue_id=issue, label=f"Vấn đề {issue}",
                      detected_at=datetime.now(UTC), area_ids=("hcmc", *areas), topic="flooding",
                      department=department, mention_count=5, growth=4.0, reason="5 bài hôm nay")


def test_emerging_issues_reach_the_accounts_and_rules_in_scope(
        store: SQLiteStore, smtp: tuple[SmtpConfig, Inbox], webhook: tuple[str, Hook]) -> None:
    config, inbox = smtp
    url, hook = webhook
    settings = AlertSettings(allow_private_webhooks=True, smtp=config)
    app = create_app(store, alert_settings=settings)
    with TestClient(app) as c:
        add_user(c.app, "xd@langnghe.test", "department", department="construction")
        add_user(c.app, "q7@langnghe.test", "area", area_id="fd:quan-7")
        add_user(c.app, "lanh.dao@langnghe.test", "leadership")  # no e-mail by default
        add_user(c.app, "admin@langnghe.test", "administrator")
        leader = bearer(c, "lanh.dao@langnghe.test")
        rule = c.post("/api/v1/alerts/rules", headers=leader, json={
            "name": "Bình Thạnh", "area_id": "fd:binh-thanh", "webhook_url": url})
        assert rule.status_code == 201
        events = [event("e1", "iss-q7", ("fd:quan-7", TAN_HUNG), "construction"),
                  event("e2", "iss-bt", ("fd:binh-thanh",), "agriculture_environment")]
        admin = bearer(c, "admin@langnghe.test")
        pushed = c.post("/api/v1/alerts/emerging", headers=admin, json=[e.to_json() for e in events])
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["emails"] == 2 and pushed.json()["webhooks"] == 1
        got = {rcpts[0]: msg for rcpts, msg in inbox.messages}
        assert set(got) == {"xd@langnghe.test", "q7@langnghe.test"}
        subject = str(email.header.make_header(email.header.decode_header(got["q7@langnghe.test"]["Subject"])))
        assert subject == "[Lắng Nghe] Vấn đề mới nổi: Vấn đề iss-q7"
        payload = json.loads(hook.requests[0][1])
        assert payload["type"] == "issues.emerging" and [e["key"] for e in payload["events"]] == ["e2"]
        again = notify_emerging(store, events, accounts=app_accounts(c.app), areas=AREAS, settings=settings)
        assert again.items == 0 and len(inbox.messages) == 2  # each event once


def test_detector_events_are_completed_from_the_store(store: SQLiteStore) -> None:
    from dataclasses import dataclass

    @dataclass
    class Emerging:  # the shape of nlp.alerts_events.EmergingEvent
        issue_id: str
        area_id: str
        period: str
        observed: int
        baseline: float
        ratio: float
        detected_at: datetime

    now = datetime.now(UTC)
    store.write_issues([Issue("iss-q7", "Ngập Huỳnh Tấn Phát", "flooding", "construction",
                              ["hcmc", "fd:quan-7"], ["ngập"], now, now, 6)])
    converted = alert_event_from(store, Emerging("iss-q7", "fd:quan-7", "2025-11-20", 6, 1.0, 3.5, now))
    assert converted is not None
    assert converted.key == "emerging:iss-q7:fd:quan-7:2025-11-20" and converted.area_ids == ("fd:quan-7",)
    assert converted.label == "Ngập Huỳnh Tấn Phát" and converted.department == "construction"
    assert converted.growth == 3.5 and "gấp 3.5 lần" in converted.reason
    assert alert_event_from(store, Emerging("unknown", "hcmc", "d", 1, 0, 1, now)) is None
    assert PASSWORD  # (imported helper kept in use)


def test_search_alert_subject_counts_in_english() -> None:
    from api.auth.store import SavedSearch

    now = datetime.now(UTC)
    saved = SavedSearch(1, 1, "Ngập", "ngập", ["a@example.org"], None, None, True, now, now, None)
    one = [fresh("ngap-1", "Ngập đường", "Ngập nước sâu", areas=[])]
    two = one + [fresh("ngap-2", "Ngập hẻm", "Ngập nước hẻm", areas=[])]
    assert render_search_email(saved, one, "http://x")[0].endswith("/ 1 new mention")
    assert render_search_email(saved, two, "http://x")[0].endswith("/ 2 new mentions")
