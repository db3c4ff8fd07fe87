"""What the social collectors share: configuration, errors, the HTTP loop with backoff, stats."""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from langnghe.records import Mention

logger = logging.getLogger("crawlers.social")

_SECRET_PARAMS = re.compile(r"((?:access_token|key|appsecret_proof|client_secret)=)[^&\s\"']+", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with credential query parameters replaced by ``***``."""
    return _SECRET_PARAMS.sub(r"\1***", text)


class RedactingFilter(logging.Filter):
    """Masks credentials in log records of HTTP libraries (httpx logs every request URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(redact(str(a)) if isinstance(a, str | httpx.URL) else a
                                for a in (record.args if isinstance(record.args, tuple) else (record.args,)))
        record.msg = redact(str(record.msg))
        return True


for _name in ("httpx", "httpcore"):
    if not any(isinstance(f, RedactingFilter) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(RedactingFilter())


def strip_secrets(url: str) -> str:
    """A URL without credential query parameters (paging links carry the token; it travels in a
    header instead)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() not in ("access_token", "key", "appsecret_proof")]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


class ApiError(RuntimeError):
    """An API answer that is an error (message redacted)."""

    def __init__(self, message: str, *, status: int | None = None, code: int | str | None = None) -> None:
        super().__init__(redact(message))
        self.status = status
        self.code = code


class RateLimited(ApiError):
    """Too many calls: wait and try again."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class QuotaExceeded(ApiError):
    """The day's quota is spent (YouTube quotaExceeded): stop the source until it resets."""


class TokenExpired(ApiError):
    """The credentials are expired or invalid (Facebook OAuthException 190, YouTube keyInvalid)."""


def _split_env(name: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in os.environ.get(name, "").split(",") if v.strip())


@dataclass(frozen=True)
class SocialConfig:
    """Credentials and targets. `repr` never shows the secrets."""

    facebook_token: str | None = field(default=None, repr=False)
    facebook_pages: tuple[str, ...] = ()
    facebook_api_url: str = "https://graph.facebook.com"
    facebook_api_version: str = "v21.0"
    youtube_key: str | None = field(default=None, repr=False)
    youtube_channels: tuple[str, ...] = ()
    youtube_queries: tuple[str, ...] = ()
    youtube_api_url: str = "https://www.googleapis.com/youtube/v3"
    page_size: int = 100
    max_pages: int = 50  # per listing, a bound on one run
    comments_per_item: int = 500
    max_retries: int = 5
    backoff_base: float = 2.0
    backoff_max: float = 300.0
    timeout: float = 30.0

    @classmethod
    def from_env(cls, **overrides: Any) -> SocialConfig:
        """From ``LANGNGHE_FACEBOOK_ACCESS_TOKEN``, ``LANGNGHE_FACEBOOK_PAGES`` (ids or names,
        comma-separated), ``LANGNGHE_YOUTUBE_API_KEY``, ``LANGNGHE_YOUTUBE_CHANNELS``,
        ``LANGNGHE_YOUTUBE_QUERIES`` and the optional ``LANGNGHE_FACEBOOK_GRAPH_URL`` /
        ``LANGNGHE_YOUTUBE_API_URL`` (a local server in tests)."""
        env = os.environ
        values: dict[str, Any] = {
            "facebook_token": env.get("LANGNGHE_FACEBOOK_ACCESS_TOKEN") or None,
            "facebook_pages": _split_env("LANGNGHE_FACEBOOK_PAGES"),
            "youtube_key": env.get("LANGNGHE_YOUTUBE_API_KEY") or None,
            "youtube_channels": _split_env("LANGNGHE_YOUTUBE_CHANNELS"),
            "youtube_queries": _split_env("LANGNGHE_YOUTUBE_QUERIES"),
        }
        if env.get("LANGNGHE_FACEBOOK_GRAPH_URL"):
            values["facebook_api_url"] = env["LANGNGHE_FACEBOOK_GRAPH_URL"]
        if env.get("LANGNGHE_YOUTUBE_API_URL"):
            values["youtube_api_url"] = env["LANGNGHE_YOUTUBE_API_URL"]
        values.update(overrides)
        return cls(**values)


@dataclass
class SocialStats:
    """What one collection run did."""

    requests: int = 0
    items: int = 0  # posts/videos
    comments: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rate_limited: int = 0
    waited_s: float = 0.0
    stopped: dict[str, str] = field(default_factory=dict)  # source → reason
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


Sleep = Callable[[float], None]


class ApiClient:
    """GET JSON with retries: rate limits and 5xx back off exponentially (or as the API asks)."""

    def __init__(self, config: SocialConfig, stats: SocialStats, classify: Callable[[httpx.Response, Any], None],
                 *, client: httpx.Client | None = None, sleep: Sleep = time.sleep,
                 auth_headers: dict[str, str] | None = None) -> None:
        self.config = config
        self.stats = stats
        self.classify = classify  # raises the right ApiError for an error answer
        # credentials travel in headers, never in URLs (which servers, proxies and libraries log)
        self.client = client or httpx.Client(timeout=config.timeout, follow_redirects=True,
                                             headers={"User-Agent": "LangNghe/0.1", **(auth_headers or {})})
        self.sleep = sleep

    def close(self) -> None:
        self.client.close()

    def get(self, url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        attempt = 0
        while True:
            self.stats.requests += 1
            try:
                response = self.client.get(strip_secrets(url), params=params or None)
                try:
                    payload = response.json()
                except ValueError:
                    payload = None
                self.classify(response, payload)
                if response.status_code >= 500:
                    raise RateLimited(f"server error {response.status_code}", status=response.status_code)
                if not isinstance(payload, dict):
                    raise ApiError(f"answer is not a JSON object ({response.status_code})", status=response.status_code)
                return payload
            except (RateLimited, httpx.TransportError) as exc:
                attempt += 1
                if isinstance(exc, RateLimited):
                    self.stats.rate_limited += 1
                if attempt > self.config.max_retries:
                    raise ApiError(f"giving up after {attempt - 1} retries: {exc}") from exc
                delay = min(self.config.backoff_max, self.config.backoff_base * 2 ** (attempt - 1))
                delay *= random.uniform(0.8, 1.2)
                asked = getattr(exc, "retry_after", None)
                if asked:
                    delay = max(delay, min(float(asked), self.config.backoff_max))
                logger.warning("%s: %s; retry %d in %.1f s", redact(str(url)), redact(str(exc)), attempt, delay)
                self.stats.waited_s += delay
                self.sleep(delay)


def write_batch(db_path: str, mentions: list[Mention], stats: SocialStats) -> None:
    """Upsert `mentions` into the SQLite store at `db_path`."""
    if not mentions:
        return
    from crawlers.pipelines import open_store

    store = open_store(db_path)
    try:
        result = store.write_mentions(mentions)
    finally:
        store.close()
    stats.inserted += result.inserted
    stats.updated += result.updated
    stats.unchanged += result.unchanged
