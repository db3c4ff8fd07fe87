"""YouTube through the Data API v3: a channel's (or a search's) videos and their comment threads.

    GET /search?part=snippet&type=video&order=date&channelId=…|q=…&publishedAfter=…&pageToken=…
    GET /videos?part=snippet&id=ID,ID,…
    GET /commentThreads?part=snippet&videoId=…&order=time&textFormat=plainText&pageToken=…

Lists answer ``{"items": [...], "nextPageToken": "…", "pageInfo": {...}}``. Errors answer
``{"error": {"code", "message", "errors": [{"domain", "reason", "message"}]}}``: ``rateLimitExceeded``
/ ``userRateLimitExceeded`` (403) and HTTP 429 back off and retry; ``quotaExceeded`` (403, the
day's quota) stops the source until the next run; ``keyInvalid``/``keyExpired`` (400) and 401
``authError`` stop it as an invalid credential; ``commentsDisabled`` (403) skips that video's comments.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx

from crawlers.social.base import (
    ApiClient,
    ApiError,
    QuotaExceeded,
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

logger = logging.getLogger("crawlers.social.youtube")

RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "concurrentLimitExceeded"}
QUOTA_REASONS = {"quotaExceeded", "dailyLimitExceeded"}
KEY_REASONS = {"keyInvalid", "keyExpired", "authError", "accessNotConfigured", "forbidden_key"}


class CommentsDisabled(ApiError):
    """The video does not take comments."""


def classify(response: httpx.Response, payload: Any) -> None:
    """Raise the ApiError an error answer stands for."""
    if response.status_code < 400:
        return
    error = payload.get("error") if isinstance(payload, dict) else None
    reasons = {e.get("reason") for e in (error or {}).get("errors") or [] if isinstance(e, dict)}
    message = f"YouTube API {response.status_code} {sorted(r for r in reasons if r)}: {(error or {}).get('message')}"
    if response.status_code == 429 or reasons & RATE_REASONS:
        retry = response.headers.get("Retry-After")
        raise RateLimited(message, status=response.status_code,
                          retry_after=float(retry) if retry and retry.isdigit() else None)
    if reasons & QUOTA_REASONS:
        raise QuotaExceeded(message, status=response.status_code)
    if response.status_code == 401 or reasons & KEY_REASONS:
        raise TokenExpired(message, status=response.status_code)
    if "commentsDisabled" in reasons:
        raise CommentsDisabled(message, status=response.status_code)
    if response.status_code >= 500:
        return  # retried by the client
    raise ApiError(message, status=response.status_code)


class YouTubeCollector:
    """Videos of channels or searches, and their comment threads, written as mentions."""

    def __init__(self, config: SocialConfig, db_path: str, *, client: httpx.Client | None = None,
                 sleep: Sleep = time.sleep, recrawl: timedelta = timedelta(days=3),
                 lookback: timedelta = timedelta(days=7)) -> None:
        if not config.youtube_key:
            raise ValueError("LANGNGHE_YOUTUBE_API_KEY is not set")
        self.config = config
        self.db_path = db_path
        self.stats = SocialStats()
        self.api = ApiClient(config, self.stats, classify, client=client, sleep=sleep,
                             auth_headers={"X-Goog-Api-Key": config.youtube_key})
        self.base = config.youtube_api_url.rstrip("/")
        self.recrawl = recrawl
        self.lookback = lookback

    def _list(self, endpoint: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        token: str | None = None
        for _ in range(self.config.max_pages):
            payload = self.api.get(f"{self.base}/{endpoint}", {**params, **({"pageToken": token} if token else {})})
            yield from payload.get("items") or []
            token = payload.get("nextPageToken")
            if not token:
                return

    def collect(self, *, channel: str | None = None, query: str | None = None) -> list[Mention]:
        """Videos published since the last run (or the look-back) and comments of recent videos."""
        from crawlers.pipelines import open_store

        target = f"channel/{channel}" if channel else f"search/{query}"
        key = f"social/youtube/{target}/newest"
        store = open_store(self.db_path)
        try:
            newest = store.get_state(key)
        finally:
            store.close()
        after = datetime.fromisoformat(newest) if newest else utcnow() - self.lookback
        # the re-crawl window reaches back before the newest video: its comments still grow
        since = min(after, utcnow() - self.recrawl)
        params: dict[str, Any] = {"part": "snippet", "type": "video", "order": "date",
                                  "maxResults": min(50, self.config.page_size),
                                  "publishedAfter": since.strftime("%Y-%m-%dT%H:%M:%SZ")}
        if channel:
            params["channelId"] = channel
        else:
            params["q"] = query
            params["relevanceLanguage"] = "vi"
            params["regionCode"] = "VN"
        video_ids = [item["id"]["videoId"] for item in self._list("search", params)
                     if isinstance(item.get("id"), dict) and item["id"].get("videoId")]
        mentions: list[Mention] = []
        newest_seen = datetime.fromisoformat(newest) if newest else None
        for i in range(0, len(video_ids), 50):
            for video in self._list("videos", {"part": "snippet", "id": ",".join(video_ids[i:i + 50])}):
                snippet = video.get("snippet") or {}
                published = parse_datetime(snippet.get("publishedAt"))
                if not video.get("id") or published is None:
                    continue
                self.stats.items += 1
                newest_seen = max(newest_seen, published) if newest_seen else published
                source = f"youtube:channel/{snippet.get('channelId') or channel or 'unknown'}"
                title = normalize(snippet.get("title") or "")
                text = normalize(snippet.get("description") or "") or title
                mentions.append(Mention(id=mention_id(source="youtube", native_id=video["id"]), source=source,
                                        url=f"https://www.youtube.com/watch?v={video['id']}", title=title,
                                        text=text, published_at=published, crawled_at=utcnow(),
                                        author=snippet.get("channelTitle")))
                mentions.extend(self._comments(video["id"], source, title))
        write_batch(self.db_path, mentions, self.stats)
        if newest_seen is not None:
            store = open_store(self.db_path)
            try:
                store.set_state(key, newest_seen.isoformat())
            finally:
                store.close()
        return mentions

    def _comments(self, video_id: str, source: str, video_title: str) -> Iterator[Mention]:
        count = 0
        try:
            for thread in self._list("commentThreads", {"part": "snippet", "videoId": video_id, "order": "time",
                                                        "textFormat": "plainText", "maxResults": 100}):
                top = ((thread.get("snippet") or {}).get("topLevelComment") or {})
                snippet = top.get("snippet") or {}
                text = normalize(snippet.get("textOriginal") or snippet.get("textDisplay") or "")
                published = parse_datetime(snippet.get("publishedAt"))
                if not text or not top.get("id") or published is None:
                    continue
                count += 1
                self.stats.comments += 1
                yield Mention(id=mention_id(source="youtube", native_id=top["id"]), source=source,
                              url=f"https://www.youtube.com/watch?v={video_id}&lc={top['id']}",
                              title=f"Bình luận: {video_title}"[:200], text=text, published_at=published,
                              crawled_at=utcnow(), author=snippet.get("authorDisplayName"))
                if count >= self.config.comments_per_item:
                    return
        except CommentsDisabled:
            logger.info("video %s: comments are disabled", video_id)

    def run(self) -> SocialStats:
        """Collect every configured channel and query; quota or key errors stop the source."""
        targets = ([("channel", c) for c in self.config.youtube_channels]
                   + [("query", q) for q in self.config.youtube_queries])
        try:
            for kind, value in targets:
                name = f"youtube:{kind}/{value}"
                try:
                    self.collect(**{kind: value})
                except TokenExpired as exc:
                    logger.error("%s stopped: the API key is invalid or expired (%s). Check LANGNGHE_YOUTUBE_API_KEY.",
                                 name, exc)
                    self.stats.stopped[name] = "token_expired"
                    for k, v in targets:
                        self.stats.stopped.setdefault(f"youtube:{k}/{v}", "token_expired")
                    break
                except QuotaExceeded as exc:
                    logger.error("%s stopped: the day's API quota is spent (%s); it resets at midnight Pacific time",
                                 name, exc)
                    self.stats.stopped[name] = "quota_exceeded"
                    for k, v in targets:
                        self.stats.stopped.setdefault(f"youtube:{k}/{v}", "quota_exceeded")
                    break
                except ApiError as exc:
                    logger.error("%s failed: %s", name, redact(str(exc)))
                    self.stats.errors.append(f"{name}: {redact(str(exc))}")
        finally:
            self.api.close()
        return self.stats


def crawl_youtube(db_path: str, config: SocialConfig | None = None, **kwargs: Any) -> SocialStats:
    """Collect the configured YouTube channels and searches into the store."""
    return YouTubeCollector(config or SocialConfig.from_env(), str(db_path), **kwargs).run()


__all__ = ["YouTubeCollector", "classify", "crawl_youtube"]
