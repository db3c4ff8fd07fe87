"""Sending e-mail over SMTP (smtplib), configured by the settings.

    from api.mailer import send_email
    send_email(["a@example.org"], "Tiêu đề", html="<p>…</p>", text="…",
               attachments=[("digest.pdf", pdf_bytes, "application/pdf")])

Settings (LANGNGHE_…): SMTP_HOST (no host = e-mail switched off: MailerNotConfigured),
SMTP_PORT (587), SMTP_USER, SMTP_PASSWORD, SMTP_FROM, SMTP_STARTTLS (true), SMTP_SSL (false),
SMTP_TIMEOUT (20 s). The password is never logged; recipients are logged only as a count.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from api.auth.config import setting

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024


class MailError(RuntimeError):
    """The message could not be sent (the SMTP error is in the message, never the password)."""


class MailerNotConfigured(MailError):
    """No SMTP host is configured."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str | None = None
    port: int = 587
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "Lắng Nghe <no-reply@localhost>"
    starttls: bool = True
    ssl: bool = False
    timeout: float = 20.0

    @classmethod
    def from_settings(cls, settings: Any = None) -> SmtpConfig:
        if settings is None:
            from langnghe.config import get_settings

            settings = get_settings()
        return cls(host=setting(settings, "smtp_host", None) or None,
                   port=int(setting(settings, "smtp_port", 587)),
                   user=setting(settings, "smtp_user", None) or None,
                   password=setting(settings, "smtp_password", None) or None,
                   sender=str(setting(settings, "smtp_from", cls.sender)),
                   starttls=bool(setting(settings, "smtp_starttls", True)),
                   ssl=bool(setting(settings, "smtp_ssl", False)),
                   timeout=float(setting(settings, "smtp_timeout", 20.0)))


_override: SmtpConfig | None = None


def configure(config: SmtpConfig | None) -> None:
    """Use `config` instead of the settings (tests, or an app that builds its own); None resets."""
    global _override
    _override = config


def current_config() -> SmtpConfig:
    return _override if _override is not None else SmtpConfig.from_settings()


def _clean_header(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise MailError("header values must not contain line breaks")
    return value


def build_message(to: Sequence[str], subject: str, html: str, text: str,
                  attachments: Sequence[tuple[str, bytes, str]] = (), *, sender: str) -> EmailMessage:
    """A multipart/alternative message (text + HTML) with optional attachments."""
    recipients = [_clean_header(r.strip()) for r in to if r and r.strip()]
    if not recipients:
        raise MailError("no recipient")
    if len(recipients) > MAX_RECIPIENTS:
        raise MailError(f"too many recipients ({len(recipients)} > {MAX_RECIPIENTS})")
    msg = EmailMessage()
    msg["Subject"] = _clean_header(subject)[:250]
    msg["From"] = _clean_header(sender)
    msg["To"] = ", ".join(recipients)
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "localhost"
    msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(text or " ", charset="utf-8")
    if html:
        msg.add_alternative(html, subtype="html", charset="utf-8")
    for name, data, mime in attachments:
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise MailError(f"attachment {name!r} is too large")
        maintype, _, subtype = (mime or "application/octet-stream").partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream",
                           filename=_clean_header(name))
    return msg


def send_email(to: list[str], subject: str, html: str, text: str,
               attachments: Sequence[tuple[str, bytes, str]] = (), *,
               config: SmtpConfig | None = None) -> None:
    """Send one message to `to` (all in To:). Raises MailerNotConfigured without an SMTP host and
    MailError when the server refuses or cannot be reached."""
    cfg = config or current_config()
    if not cfg.host:
        raise MailerNotConfigured("SMTP is not configured (LANGNGHE_SMTP_HOST)")
    msg = build_message(to, subject, html, text, attachments, sender=cfg.sender)
    try:
        if cfg.ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        with client:
            client.ehlo()
            if cfg.starttls and not cfg.ssl and client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            elif cfg.starttls and not cfg.ssl and cfg.user:
                raise MailError("the SMTP server offers no STARTTLS: refusing to send the password in clear")
            if cfg.user:
                client.login(cfg.user, cfg.password or "")
            refused = client.send_message(msg)
    except MailError:
        raise
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"SMTP {cfg.host}:{cfg.port}: {type(exc).__name__}: {exc}") from exc
    if refused:
        log.warning("some recipients refused", extra={"event": "mail_partial", "refused": len(refused)})
    log.info("e-mail sent", extra={"event": "mail_sent", "recipients": len(msg["To"].split(",")),
                                   "attachments": len(attachments)})

