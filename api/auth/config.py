"""Authentication settings, read from `langnghe.config.Settings` (fields that are not there yet
fall back to safe defaults), and the install's secret key."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SECRET_FILE = "secret.key"


def setting(settings: Any, name: str, default: Any) -> Any:
    """A settings field, or `default` when the settings object does not define it (or it is None)."""
    value = getattr(settings, name, None)
    if value is None:
        return default
    get_secret = getattr(value, "get_secret_value", None)
    return get_secret() if callable(get_secret) else value


def load_secret_key(settings: Any, data_dir: Path) -> bytes:
    """The install's secret key: `settings.secret_key` when set, else the file
    ``<data_dir>/secret.key``, created (mode 0600, 32 random bytes) on first use. Never logged."""
    configured = setting(settings, "secret_key", None)
    if configured:
        key = str(configured).encode("utf-8")
        if len(key) < 16:
            raise ValueError("LANGNGHE_SECRET_KEY must have at least 16 characters")
        return key
    path = data_dir / SECRET_FILE
    if path.exists():
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
        if len(key) >= 16:
            return key
        log.warning("secret key file %s is too short: generating a new one", path)
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex() + "\n")
    os.replace(tmp, path)
    log.info("generated a new secret key in %s", path)
    return key


@dataclass(frozen=True)
class AuthConfig:
    """How the app authenticates. `auth_required=False` serves everything to anyone (local demo
    only); it is True unless switched off explicitly."""

    auth_required: bool = True
    session_lifetime: timedelta = timedelta(hours=12)
    cookie_secure: bool = False
    metrics_public: bool = False
    login_max_failures: int = 10
    login_window: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> AuthConfig:
        values: dict[str, Any] = {
            "auth_required": bool(setting(settings, "auth_required", True)),
            "session_lifetime": timedelta(hours=float(setting(settings, "session_hours", 12))),
            "cookie_secure": bool(setting(settings, "cookie_secure", False)),
            "metrics_public": bool(setting(settings, "metrics_public", False)),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
