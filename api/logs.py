"""Structured logs: one JSON object per line, with secrets redacted.

`configure_logging()` installs the JSON formatter on the root logger (the CLI or `serve` calls
it; tests leave logging alone). Extra fields given as ``log.info("…", extra={"event": …})`` are
included. Keys that look like secrets (password, token, secret, authorization, cookie, api_key)
are replaced by "[redacted]", and so are bearer tokens, API keys and ``password=`` pairs that
appear inside messages.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

SECRET_KEYS = re.compile(r"pass(word)?|token|secret|authorization|cookie|api_?key|csrf|smtp_password",
                         re.IGNORECASE)
_SECRET_TEXT = [
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1[redacted]"),
    (re.compile(r"lnk_[A-Za-z0-9_-]{8,}"), "lnk_[redacted]"),
    (re.compile(r"(?i)((?:password|passwd|pwd|secret|token|api_key)\s*[=:]\s*)[^\s&,;\"']+"), r"\1[redacted]"),
]
_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def redact_text(text: str) -> str:
    """`text` with bearer tokens, API keys and password=… values replaced."""
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any, key: str = "") -> Any:
    """A JSON-able copy of `value` with secret-looking keys and values replaced."""
    if key and SECRET_KEYS.search(key):
        return "[redacted]"
    if isinstance(value, dict):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact_text(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = redact(value, key)
        if record.exc_info:
            out["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str | int = "INFO", stream: Any = None) -> None:
    """Send every log record to `stream` (stderr) as JSON lines; idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_langnghe_json", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._langnghe_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # the app logs each request itself (api.metrics), without query strings
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
