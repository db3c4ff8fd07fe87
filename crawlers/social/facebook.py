"""Facebook public pages through the Graph API: the page's posts and their comments.

    GET /{version}/{page}/posts?fields=id,message,created_time,permalink_url,from&limit=N&since=T
    GET /{version}/{post-id}/comments?fields=id,message,created_time,from,permalink_url&filter=stream

Both answer ``{"data": [...], "paging": {"cursors": {"before", "after"}, "next": URL}}``; the
collector follows ``paging.next``. Errors answer ``{"error": {"message", "type", "code",
"error_subcode", "fbtrace_id"}}``: codes 4, 17, 32 and 613 are rate limits (HTTP 400 or 403; the
collector backs off and tries again), code 190 (``OAuthException``) an expired or invalid token (the
source is stopped with a logged error; the next page is not tried with the same token).

Each run asks only for posts newer than the newest one stored (``since``), and re-reads the comments
of posts still inside the re-crawl window, so growing comment threads are followed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx

from crawlers.social.base import (
    ApiClient,
    ApiError,
    RateLimited,
    Sleep,
    SocialConfig,
    SocialStats,
    TokenExpired,
    redact,
    write_batch,
)
from langnghe.records import Mention, mention_id, parse_datetime, utcnow
from nlp.text import normalize

logger = logging.getLogger("crawlers.social.facebook")

RATE_LIMIT_CODES = {4, 17, 32, 613, 80001, 80004}
TOKEN_CODES = {190, 102}
POST_FIELDS = "id,message,created_time,permalink_url,from"
COMMENT_FIELDS = "id,message,created_time,from,permalink_url"
SOURCE_PREFIX = "facebook:page/"


def classify(response: httpx.Response, payload: Any) -> None:
    """Raise the ApiError an error answer stands for; nothing for a good answer."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if error is None:
        if response.status_code >= 400 and response.status_code < 500:
            raise ApiError(f"HTTP {response.status_code} without an error object", status=response.status_code)
        return
    code = error.get("code")
    message = f"Graph API error {code}/{error.get('error_subcode')} ({error.get('type')}): {error.get('message')}"
    if code in RATE_LIMIT_CODES:
        raise RateLimited(message, status=response.status_code, code=code)
    if code in TOKEN_CODES or error.get("type") == "OAuthException" and response.status_code == 401:
        raise TokenExpired(message, status=response.status_code, code=code)
    raise ApiError(message, status=response.status_code, code=code)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    # Graph API writes "2025-11-20T10:15:00+0000"
    if len(value) > 5 and value[-5] in "+-" and value[-3] != ":":
        value = value[:-2] + ":" + value[-2:]
    return parse_datetime(value)


def _title(text: str, limit: int = 120) -> str:
    first = text.strip().split("\n", 1)[0]
    return first if len(first) <= limit else first[: limit - 1].rsplit(" ", 1)[0] + "…"


class FacebookCollector:
    """Posts and comments of public pages, written as mentions."""

    def __init__(self, config: SocialConfig, db_path: str, *, client: httpx.Client | None = None,
                 sleep: Sleep = time.sleep, recrawl: timedelta = timedelta(days=3)) -> None:
        if not config.facebook_token:
            raise ValueError("LANGNGHE_FACEBOOK_ACCESS_TOKEN is not set")
        self.config = config
        self.db_path = db_path
        self.stats = SocialStats()
        self.api = ApiClient(config, self.stats, classify, client=client, sleep=sleep,
                             auth_headers={"Authorization": f"Bearer {config.facebook_token}"})
        self.recrawl = recrawl
        self.base = f"{config.facebook_api_url.rstrip('/')}/{config.facebook_api_version}"

    def _pages(self, url: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a Graph API list, following ``paging.next`` (bounded by max_pages)."""
        params = {**params, "limit": self.config.page_size}
        next_url: str | None = url
        for _ in range(self.config.max_pages):
            if next_url is None:
                return
            payload = self.api.get(next_url, params)
            yield from payload.get("data") or []
            next_url = (payload.get("paging") or {}).get("next")
            params = {}  # "next" carries every parameter and the cursor (its token is dropped)

    def _state_key(self, page: str) -> str:
        return f"social/facebook/{page}/newest"

    def collect_page(self, page: str) -> list[Mention]:
        """Mentions for the new posts of one page and the comments of its recent posts."""
        from crawlers.pipelines import open_store

        store = open_store(self.db_path)
        try:
            newest = store.get_state(self._state_key(page))
            recent_raw = store.get_state(f"social/facebook/{page}/recent") or "[]"
        finally:
            store.close()
        source = SOURCE_PREFIX + page
        params: dict[str, Any] = {"fields": POST_FIELDS}
        if newest:
            params["since"] = int(datetime.fromisoformat(newest).timestamp())
        mentions: list[Mention] = []
        # post id → [created time (ISO), title]: comments of these posts are read again
        recent: dict[str, list[str]] = {pid: list(v) for pid, v in json.loads(recent_raw)}
        newest_seen = datetime.fromisoformat(newest) if newest else None
        for post in self._pages(f"{self.base}/{page}/posts", params):
            message = normalize(post.get("message") or "")
            created = _time(post.get("created_time"))
            if not post.get("id") or created is None:
                continue
            self.stats.items += 1
            url = post.get("permalink_url") or f"https://www.facebook.com/{post['id']}"
            recent[post["id"]] = [created.isoformat(), _title(message) if message else ""]
            newest_seen = max(newest_seen, created) if newest_seen else created
            if message:
                author = (post.get("from") or {}).get("name")
                mentions.append(Mention(id=mention_id(source="facebook", native_id=post["id"]), source=source,
                                        url=url, title=_title(message), text=message, published_at=created,
                                        crawled_at=utcnow(), author=author))
        cutoff = utcnow() - self.recrawl
        recent = {pid: v for pid, v in recent.items() if datetime.fromisoformat(v[0]) >= cutoff}
        for post_id, (_, title) in recent.items():
            mentions.extend(self._comments(post_id, source, title))
        state = {self._state_key(page): newest_seen.isoformat() if newest_seen else None,
                 f"social/facebook/{page}/recent": json.dumps(sorted(recent.items()))}
        write_batch(self.db_path, mentions, self.stats)
        store = open_store(self.db_path)
        try:
            for key, value in state.items():
                if value is not None:
                    store.set_state(key, value)
        finally:
            store.close()
        return mentions

    def _comments(self, post_id: str, source: str, post_title: str) -> Iterator[Mention]:
        count = 0
        for comment in self._pages(f"{self.base}/{post_id}/comments", {"fields": COMMENT_FIELDS, "filter": "stream",
                                                                     "order": "chronological"}):
            message = normalize(comment.get("message") or "")
            created = _time(comment.get("created_time"))
            if not message or not comment.get("id") or created is None:
                continue
            count += 1
            self.stats.comments += 1
            url = comment.get("permalink_url") or f"https://www.facebook.com/{comment['id']}"
            title = f"Bình luận: {post_title}" if post_title else "Bình luận"
            yield Mention(id=mention_id(source="facebook", native_id=comment["id"]), source=source, url=url,
                          title=title[:200], text=message, published_at=created, crawled_at=utcnow(),
                          author=(comment.get("from") or {}).get("name"))
            if count >= self.config.comments_per_item:
                return

    def run(self, pages: list[str] | None = None) -> SocialStats:
        """Collect every configured page; an expired token stops all of them (same token)."""
        try:
            for page in pages or list(self.config.facebook_pages):
                try:
                    self.collect_page(page)
                except TokenExpired as exc:
                    logger.error("facebook page %s stopped: the access token is expired or invalid (%s). "
                                 "Renew LANGNGHE_FACEBOOK_ACCESS_TOKEN.", page, exc)
                    self.stats.stopped[SOURCE_PREFIX + page] = "token_expired"
                    for rest in (pages or list(self.config.facebook_pages)):
                        self.stats.stopped.setdefault(SOURCE_PREFIX + rest, "token_expired")
                    break
                except ApiError as exc:
                    logger.error("facebook page %s failed: %s", page, redact(str(exc)))
                    self.stats.errors.append(f"{page}: {redact(str(exc))}")
        finally:
            self.api.close()
        return self.stats


def crawl_facebook(db_path: str, config: SocialConfig | None = None, **kwargs: Any) -> SocialStats:
    """Collect the configured Facebook pages into the store (config from the environment by default)."""
    return FacebookCollector(config or SocialConfig.from_env(), str(db_path), **kwargs).run()


__all__ = ["FacebookCollector", "RateLimited", "TokenExpired", "classify", "crawl_facebook"]
