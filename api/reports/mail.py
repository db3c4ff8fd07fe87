"""Deliver briefings and digests by e-mail through api.mailer (SMTP from the settings)."""

from __future__ import annotations

from collections.abc import Sequence

from api.mailer import SmtpConfig, send_email
from api.reports.briefing import Briefing
from api.reports.digest import Digest


def send_briefing(briefing: Briefing, to: Sequence[str], *, config: SmtpConfig | None = None) -> None:
    """The briefing as a text + HTML e-mail."""
    send_email(list(to), briefing.subject, briefing.html, briefing.text, config=config)


def send_digest(digest: Digest, to: Sequence[str], *, config: SmtpConfig | None = None) -> None:
    """The digest as a text + HTML e-mail with its PDF attached (when one was printed)."""
    attachments = [(f"lang-nghe-{digest.week_key}.pdf", digest.pdf_bytes, "application/pdf")] \
        if digest.pdf_bytes else []
    send_email(list(to), digest.subject, digest.email_html or digest.html, digest.text, attachments,
               config=config)
