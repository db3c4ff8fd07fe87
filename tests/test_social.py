"""Facebook Graph API and YouTube Data API collectors against a local server that answers with the
documented JSON shapes: paging (cursors/next, nextPageToken), rate limits (FB codes 4/17/32 with
HTTP 400/403, YouTube 403 rateLimitExceeded/quotaExceeded) and expired credentials (FB code 190)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from crawlers.social import SocialConfig, crawl_facebook, crawl_youtube, redact
from langnghe.records import mention_id
from storage.sqlite import SQLiteStore

TOKEN = "EAAB-test-token-0123456789"
KEY = "AIza-test-key"
NOW = datetime.now(UTC).replace(microsecond=0)


def fb_time(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S+0000")


@dataclass
class FakeApis:
    """State of the fake Graph and YouTube APIs; `fail` maps a path to error answers still to give."""

    base_url: str = ""
    posts: list[dict[str, Any]] = field(default_factory=list)
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    videos: list[dict[str, Any]] = field(default_factory=list)
    threads: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fail: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # path?query, token redacted


def fb_error(code: int, message: str, kind: str = "OAuthException", subcode: int | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code, "error_subcode": subcode,
                      "fbtrace_id": "AbCdEf123"}}


def yt_error(code: int, reason: str, domain: str = "youtube.quota") -> dict[str, Any]:
    return {"error": {"code": code, "message": f"The request cannot be completed: {reason}.",
                      "errors": [{"message": reason, "domain": domain, "reason": reason}]}}


class _Handler(BaseHTTPRequestHandler):
    apis: FakeApis

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _page(self, items: list[dict[str, Any]], query: dict[str, str], path: str) -> dict[str, Any]:
        """Graph API cursor paging: {"data", "paging": {"cursors", "next"}}."""
        limit = 2
        start = int(query.get("after", "0"))
        chunk = items[start:start + limit]
        paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + len(chunk))}}
        if start + limit < len(items):
            nxt = {k: v for k, v in query.items() if k != "after"}
            nxt["after"] = str(start + limit)
            nxt["access_token"] = TOKEN  # Graph API "next" links carry the token
            paging["next"] = f"{self.apis.base_url}{path}?{urlencode(nxt)}"
        return {"data": chunk, "paging": paging}

    def _yt_page(self, items: list[dict[str, Any]], query: dict[str, str], kind: str) -> dict[str, Any]:
        size = 2
        start = int(query.get("pageToken", "0") or 0)
        out: dict[str, Any] = {"kind": f"youtube#{kind}ListResponse", "etag": "x",
                               "pageInfo": {"totalResults": len(items), "resultsPerPage": size},
                               "items": items[start:start + size]}
        if start + size < len(items):
            out["nextPageToken"] = str(start + size)
        return out

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        self.apis.requests.append(redact(self.path))
        failures = self.apis.fail.get(path)
        if failures:
            status, payload = failures.pop(0)
            self._send(status, payload)
            return
        if path.startswith("/fb/"):
            # the Graph API takes the token as a query parameter or as an OAuth bearer header
            bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            if (query.get("access_token") or bearer) != TOKEN:
                self._send(400, fb_error(190, "Error validating access token: Session has expired on "
                                              "Thursday, 20-Nov-25 01:00:00 PST.", subcode=463))
                return
            segments = path.split("/")  # ['', 'fb', 'v21.0', id, edge]
            node, edge = segments[3], segments[4]
            if edge == "posts":
                since = int(query.get("since", "0"))
                items = [p for p in self.apis.posts
                         if datetime.strptime(p["created_time"], "%Y-%m-%dT%H:%M:%S%z").timestamp() > since]
                self._send(200, self._page(items, query, path))
            elif edge == "comments":
                self._send(200, self._page(self.apis.comments.get(node, []), query, path))
            else:
                self._send(400, fb_error(100, "Unknown path components", "GraphMethodException"))
            return
        if path.startswith("/yt/"):
            if (query.get("key") or self.headers.get("X-Goog-Api-Key")) != KEY:
                self._send(400, yt_error(400, "keyInvalid", "usageLimits"))
                return
            endpoint = path.rsplit("/", 1)[-1]
            if endpoint == "search":
                items = [{"kind": "youtube#searchResult", "id": {"kind": "youtube#video", "videoId": v["id"]},
                          "snippet": {k: v["snippet"][k]
                                      for k in ("publishedAt", "channelId", "title", "channelTitle")}}
                         for v in self.apis.videos if v["snippet"]["publishedAt"] > query.get("publishedAfter", "")]
                self._send(200, self._yt_page(items, query, "search"))
            elif endpoint == "videos":
                ids = query.get("id", "").split(",")
                self._send(200, {"kind": "youtube#videoListResponse",
                                 "items": [v for v in self.apis.videos if v["id"] in ids]})
            elif endpoint == "commentThreads":
                threads = self.apis.threads.get(query.get("videoId", ""), [])
                self._send(200, self._yt_page(threads, query, "commentThread"))
            else:
                self._send(404, yt_error(404, "notFound", "global"))
            return
        self._send(404, {"error": "no such path"})

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


@contextmanager
def fake_apis() -> Iterator[FakeApis]:
    handler = type("H", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    apis = FakeApis(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    handler.apis = apis  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield apis
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _post(pid: str, hours_ago: float, message: str | None) -> dict[str, Any]:
    post: dict[str, Any] = {"id": pid, "created_time": fb_time(NOW - timedelta(hours=hours_ago)),
                            "permalink_url": f"https://www.facebook.com/ubndtphcm/posts/{pid.split('_')[1]}",
                            "from": {"name": "UBND TP.HCM", "id": "100064"}}
    if message is not None:
        post["message"] = message
    return post


def _comment(cid: str, minutes_ago: float, message: str, name: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": cid, "message": message, "created_time": fb_time(NOW - timedelta(minutes=minutes_ago))}
    if name:
        out["from"] = {"name": name, "id": "42"}
    return out


def _config(apis: FakeApis, **overrides: Any) -> SocialConfig:
    values: dict[str, Any] = {"facebook_token": TOKEN, "facebook_pages": ("100064",),
                              "facebook_api_url": apis.base_url + "/fb", "youtube_key": KEY,
                              "youtube_channels": ("UC-htv",), "youtube_api_url": apis.base_url + "/yt/youtube/v3",
                              "backoff_base": 1.5}
    values.update(overrides)
    return SocialConfig(**values)


@pytest.mark.integration
def test_facebook_pages_posts_comments_paging_backoff_and_incremental(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "db.sqlite3"
    waits: list[float] = []
    with fake_apis() as apis:
        apis.posts = [_post("100064_1", 1, "Thông báo cắt điện khu vực phường Bến Thành ngày 25/11."),
                      _post("100064_2", 5, "TP.HCM ra quân dọn rác kênh Nhiêu Lộc - Thị Nghè."),
                      _post("100064_3", 30, None)]  # a photo without text: no mention, comments still read
        apis.comments = {"100064_1": [_comment("100064_1_c1", 50, "Cắt điện cả ngày thì người già chịu sao nổi?",
                                               "Lan Anh"),
                                      _comment("100064_1_c2", 40, "Xin hỏi có cắt ở hẻm 12 Lê Lai không ạ?"),
                                      _comment("100064_1_c3", 30, "Mong thông báo sớm hơn.", "Minh")],
                         "100064_2": [_comment("100064_2_c1", 200, "Kênh sạch hơn nhiều rồi, cảm ơn.", "Tú")],
                         "100064_3": [_comment("100064_3_c1", 100, "Ảnh đẹp quá", "Hà")]}
        apis.fail["/fb/v21.0/100064/posts"] = [(400, fb_error(4, "(#4) Application request limit reached",
                                                              "OAuthException"))]
        apis.fail["/fb/v21.0/100064_2/comments"] = [(403, fb_error(32, "(#32) Page request limit reached",
                                                                   "OAuthException"))]
        with caplog.at_level(logging.INFO):
            stats = crawl_facebook(str(db), _config(apis), sleep=waits.append)
        assert stats.stopped == {} and stats.errors == []
        assert stats.items == 3 and stats.comments == 5 and stats.inserted == 7
        assert stats.rate_limited == 2 and len(waits) == 2 and all(w >= 1.0 for w in waits)
        # paging: posts came in two pages, the 3 comments of post 1 in two
        assert sum(1 for r in apis.requests if r.startswith("/fb/v21.0/100064/posts")) == 3  # 1 limited + 2 pages
        assert sum(1 for r in apis.requests if r.startswith("/fb/v21.0/100064_1/comments")) == 2
        assert TOKEN not in caplog.text and "access_token" not in "".join(apis.requests)  # header only
        store = SQLiteStore(db)
        try:
            post = store.get_mention(mention_id(source="facebook", native_id="100064_1"))
            assert post is not None and post.source == "facebook:page/100064"
            assert post.url == "https://www.facebook.com/ubndtphcm/posts/1" and post.author == "UBND TP.HCM"
            assert post.title.startswith("Thông báo cắt điện")
            comment = store.get_mention(mention_id(source="facebook", native_id="100064_1_c1"))
            assert comment is not None and comment.author == "Lan Anh"
            assert comment.title == "Bình luận: Thông báo cắt điện khu vực phường Bến Thành ngày 25/11."
            assert comment.published_at == NOW - timedelta(minutes=50)
        finally:
            store.close()
        # second run: no new post (since=newest), a new comment on a recent post is picked up
        apis.comments["100064_1"].append(_comment("100064_1_c4", 1, "Đã có lịch cụ thể chưa?", "Quân"))
        apis.requests.clear()
        again = crawl_facebook(str(db), _config(apis), sleep=waits.append)
        assert again.items == 0 and again.inserted == 1 and again.unchanged == 5
        since = [r for r in apis.requests if r.startswith("/fb/v21.0/100064/posts")][0]
        assert "since=" in since


@pytest.mark.integration
def test_facebook_expired_token_stops_the_source_with_a_clear_error(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    with fake_apis() as apis:
        apis.posts = [_post("100064_1", 1, "Tin mới")]
        cfg = _config(apis, facebook_token="EAAB-expired-secret", facebook_pages=("100064", "200077"))
        with caplog.at_level(logging.INFO):
            stats = crawl_facebook(str(tmp_path / "db.sqlite3"), cfg, sleep=lambda s: None)
        assert stats.stopped == {"facebook:page/100064": "token_expired", "facebook:page/200077": "token_expired"}
        assert stats.inserted == 0 and stats.rate_limited == 0
        assert len(apis.requests) == 1  # not retried, and the second page is not tried with the same token
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "access token is expired or invalid" in errors[0].getMessage()
    assert "100064" in errors[0].getMessage() and "Session has expired" in errors[0].getMessage()
    assert "EAAB-expired-secret" not in caplog.text
    assert "EAAB-expired-secret" not in repr(cfg)


def _video(vid: str, hours_ago: float, title: str, description: str) -> dict[str, Any]:
    return {"kind": "youtube#video", "id": vid,
            "snippet": {"publishedAt": (NOW - timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "channelId": "UC-htv", "title": title, "description": description,
                        "channelTitle": "HTV Tin tức"}}


def _thread(cid: str, vid: str, text: str, author: str) -> dict[str, Any]:
    return {"kind": "youtube#commentThread", "id": cid,
            "snippet": {"videoId": vid, "totalReplyCount": 0, "canReply": True, "isPublic": True,
                        "topLevelComment": {"kind": "youtube#comment", "id": cid,
                                            "snippet": {"videoId": vid, "textDisplay": text, "textOriginal": text,
                                                        "authorDisplayName": author, "likeCount": 3,
                                                        "publishedAt": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                                        "updatedAt": NOW.strftime("%Y-%m-%dT%H:%M:%SZ")}}}}


@pytest.mark.integration
def test_youtube_videos_and_comment_threads_with_page_tokens_and_rate_limits(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    waits: list[float] = []
    with fake_apis() as apis:
        apis.videos = [_video("vid1", 2, "Ngập sâu trên đường Nguyễn Hữu Cảnh", "Mưa lớn chiều 20/11 gây ngập."),
                       _video("vid2", 6, "Kẹt xe kéo dài ở cửa ngõ sân bay Tân Sơn Nhất", "Giờ cao điểm."),
                       _video("vid3", 20, "Cháy nhà dân ở Bình Thạnh", "")]
        apis.threads = {"vid1": [_thread("Ugx1", "vid1", "Năm nào cũng ngập, khổ dân.", "Nguyễn Văn B"),
                                 _thread("Ugx2", "vid1", "Cần nâng cấp cống thoát nước.", "Trần C"),
                                 _thread("Ugx3", "vid1", "Chiều nay tôi cũng bị kẹt ở đó.", "Lê D")],
                        "vid3": [_thread("Ugx9", "vid3", "Mong mọi người bình an.", "Phạm E")]}
        apis.fail["/yt/youtube/v3/commentThreads"] = [
            (403, yt_error(403, "rateLimitExceeded", "youtube.quota")),
        ]
        apis.fail["/yt/youtube/v3/search"] = [(429, yt_error(429, "rateLimitExceeded", "usageLimits"))]
        stats = crawl_youtube(str(db), _config(apis), sleep=waits.append)
        # vid2's comments are disabled: a 403 commentsDisabled answer for that video only
        assert stats.stopped == {} and stats.errors == []
        assert stats.items == 3 and stats.comments == 4 and stats.inserted == 7
        assert stats.rate_limited == 2 and len(waits) == 2
        assert sum(1 for r in apis.requests if r.startswith("/yt/youtube/v3/search")) == 3  # 429 + 2 pages
        assert any("pageToken=2" in r for r in apis.requests if "commentThreads" in r)
        assert not any("key=" in r for r in apis.requests)  # the key travels in X-Goog-Api-Key
    store = SQLiteStore(db)
    try:
        video = store.get_mention(mention_id(source="youtube", native_id="vid1"))
        assert video is not None and video.source == "youtube:channel/UC-htv"
        assert video.url == "https://www.youtube.com/watch?v=vid1" and video.author == "HTV Tin tức"
        assert video.text == "Mưa lớn chiều 20/11 gây ngập."
        third = store.get_mention(mention_id(source="youtube", native_id="vid3"))
        assert third is not None and third.text == "Cháy nhà dân ở Bình Thạnh"  # no description: the title
        comment = store.get_mention(mention_id(source="youtube", native_id="Ugx2"))
        assert comment is not None and comment.author == "Trần C"
        assert comment.url == "https://www.youtube.com/watch?v=vid1&lc=Ugx2"
    finally:
        store.close()


@pytest.mark.integration
@pytest.mark.parametrize(("key", "answer", "reason"), [
    ("quota", (403, yt_error(403, "quotaExceeded")), "quota_exceeded"),
    ("bad-key", None, "token_expired"),
])
def test_youtube_quota_or_bad_key_stops_the_sources(tmp_path: Path, key: str, answer: Any, reason: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    with fake_apis() as apis:
        apis.videos = [_video("vid1", 2, "Tin", "Mô tả")]
        if answer:
            apis.fail["/yt/youtube/v3/search"] = [answer]
        cfg = _config(apis, youtube_key=KEY if answer else key, youtube_queries=("ngập nước TP.HCM",))
        with caplog.at_level(logging.ERROR):
            stats = crawl_youtube(str(tmp_path / "db.sqlite3"), cfg, sleep=lambda s: None)
        assert stats.stopped == {"youtube:channel/UC-htv": reason, "youtube:query/ngập nước TP.HCM": reason}
        assert len(apis.requests) == 1 and stats.inserted == 0
    assert "stopped" in caplog.text and KEY not in caplog.text and "bad-key" not in caplog.text


def test_redact_and_config_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert redact("https://graph.facebook.com/v21.0/1/posts?access_token=EAAB123&limit=5") == \
        "https://graph.facebook.com/v21.0/1/posts?access_token=***&limit=5"
    monkeypatch.setenv("LANGNGHE_FACEBOOK_ACCESS_TOKEN", "EAAB-secret")
    monkeypatch.setenv("LANGNGHE_FACEBOOK_PAGES", "ubndtphcm, 100064")
    monkeypatch.setenv("LANGNGHE_YOUTUBE_API_KEY", "AIza-secret")
    monkeypatch.setenv("LANGNGHE_YOUTUBE_QUERIES", "ngập nước")
    cfg = SocialConfig.from_env()
    assert cfg.facebook_pages == ("ubndtphcm", "100064") and cfg.youtube_queries == ("ngập nước",)
    assert cfg.facebook_token == "EAAB-secret" and "secret" not in repr(cfg)
