"""Open a store from a URL: the embedded SQLite file or a search engine.

* ``sqlite:///var/langnghe.sqlite3`` (or a plain path) -> `storage.sqlite.SQLiteStore`
* ``opensearch+http://host:9200?prefix=langnghe``, ``elasticsearch+https://user:pw@host:9200``,
  ``http(s)://host:9200`` (engine detected) -> `storage.search_engine.SearchEngineStore`

Credentials belong in the environment (e.g. LANGNGHE_STORE_URL in an env file that is not
committed), never in the repository; `redact` hides them in logs.
"""

from __future__ import annotations

import logging
import urllib.parse
from pathlib import Path
from typing import Any

from storage.base import Store

ENGINE_SCHEMES = ("opensearch", "elasticsearch", "http", "https")


log = logging.getLogger(__name__)


def is_engine_url(url: str) -> bool:
    scheme = urllib.parse.urlsplit(str(url)).scheme.lower()
    return bool(scheme) and scheme.split("+", 1)[0] in ENGINE_SCHEMES


def sqlite_path(url: str | Path) -> Path:
    text = str(url)
    if text.startswith("sqlite:///"):
        return Path(text[len("sqlite:///"):])
    if text.startswith("sqlite://"):
        raise ValueError("sqlite URLs look like sqlite:///relative/path or sqlite:////absolute/path")
    return Path(text)


def open_store_url(url: str | Path, **kwargs: Any) -> Store:
    """The store a URL (or path) names; `kwargs` go to the backend's constructor."""
    if isinstance(url, str) and is_engine_url(url):
        from storage.search_engine import connect

        return connect(url, **kwargs)
    from storage.sqlite import SQLiteStore

    return SQLiteStore(sqlite_path(url), **kwargs)


def open_configured_store() -> Store:
    """The store the settings name: `store_url` when set, else the embedded SQLite file."""
    from langnghe.config import get_settings

    settings = get_settings()
    if settings.store_url:
        log.info("opening store %s", redact(settings.store_url))
        return open_store_url(settings.store_url)
    settings.database.parent.mkdir(parents=True, exist_ok=True)
    return open_store_url(settings.database)


def redact(url: str | Path) -> str:
    """The URL without its password (for logs)."""
    parts = urllib.parse.urlsplit(str(url))
    if parts.password is None:
        return str(url)
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
