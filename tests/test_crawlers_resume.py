"""Incremental and resumable crawls: SIGKILL mid-crawl and resume, conditional re-fetches, backoff."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from crawlers.run import REPO_ROOT, child_env, crawl_command, run_crawl
from crawlers.urls import canonicalize_url
from langnghe.records import mention_id

from .crawl_server import serve_generated

FAST = {"DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False, "LOG_LEVEL": "INFO"}


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM mentions").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def _ids_and_urls(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return [(r[0], r[1]) for r in conn.execute("SELECT id, url FROM mentions")]
    finally:
        conn.close()


@pytest.mark.integration
@pytest.mark.slow
def test_sigkill_mid_crawl_then_resume_loses_nothing_and_stores_nothing_twice(tmp_path: Path) -> None:
    total = 60
    db, jobdir = tmp_path / "db.sqlite3", tmp_path / "job"
    settings = {**FAST, "CONCURRENT_REQUESTS": 4, "CONCURRENT_REQUESTS_PER_DOMAIN": 4, "LANGNGHE_BATCH_SIZE": 5}
    with serve_generated(total, ("tuoitre",), delay=0.15) as site:
        feed = site.feed_urls()[0]
        cmd = crawl_command([feed], db, jobdir=jobdir, settings=settings)
        log = open(tmp_path / "first.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env(), cwd=str(REPO_ROOT))
        deadline = time.monotonic() + 90
        try:
            while _count(db) < 10 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert proc.poll() is None, "the crawl ended before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        before = _count(db)
        assert 10 <= before < total, f"the kill did not land mid-crawl ({before} stored)"
        assert (jobdir / "langnghe-running").exists()
        fetched_before = {p for _, p, s in site.requests if s == 200 and p.endswith(".html")}
        stored_before = {url for _, url in _ids_and_urls(db)}
        # meanwhile the feed moved on: it lists only the ten newest articles
        site.set_feed("/tuoitre/rss.xml", site.article_paths()[-10:])
        site.requests.clear()
        stats = run_crawl([feed], db, jobdir=jobdir, settings=settings, timeout=120)
    assert stats.returncode == 0 and stats.finish_reason == "finished", stats.log[-3000:]
    assert stats.raw.get("langnghe/resumed_after_kill") == 1
    assert stats.raw.get("langnghe/frontier/resumed", 0) >= total - before - 10
    rows = _ids_and_urls(db)
    urls = [url for _, url in rows]
    expected = {canonicalize_url(site.url(f"/tuoitre/bai-{i}.html")) for i in range(total)}
    assert set(urls) == expected, f"lost: {sorted(expected - set(urls))[:5]}"
    assert len(urls) == len(set(urls)) == total  # nothing stored twice
    assert all(mid == mention_id(url) for mid, url in rows)
    assert stats.inserted == total - before
    # articles stored before the kill were not fetched again
    refetched = {p for _, p, s in site.requests if s == 200} & {
        p for p in fetched_before if canonicalize_url(site.url(p)) in stored_before}
    assert not refetched, sorted(refetched)[:5]
    assert not (jobdir / "langnghe-running").exists()
    assert list(jobdir.glob("interrupted-*")), "Scrapy's half-written queue was not set aside"


@pytest.mark.integration
@pytest.mark.slow
def test_recent_articles_are_refetched_conditionally(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    with serve_generated(8, ("nld",)) as site:
        first = run_crawl(site.feed_urls(), db, settings=FAST, timeout=120)
        assert first.inserted == 8, first.log[-2000:]
        # outside the minimum interval nothing is fetched again
        site.requests.clear()
        quiet = run_crawl(site.feed_urls(), db, settings=FAST, timeout=120)
        assert quiet.skipped.get("already_stored") == 8
        assert not [p for _, p, _ in site.requests if p.endswith(".html")]
        # one article is updated by its outlet; re-crawl inside the window with conditional GETs
        page = site.pages["/nld/bai-3.html"]
        page.body = page.body.replace(b"</article>", "<p>Cập nhật: UBND phường đã chỉ đạo xử lý dứt "
                                      "điểm tình trạng này trong tuần.</p></article>".encode())
        site.requests.clear()
        second = run_crawl(site.feed_urls(), db, timeout=120,
                           settings={**FAST, "LANGNGHE_RECRAWL_MIN_INTERVAL_S": 0})
    assert second.raw.get("langnghe/recrawl/requested") == 8
    assert second.raw.get("langnghe/recrawl/not_modified") == 7
    assert second.updated == 1 and second.inserted == 0
    assert sum(1 for _, p, s in site.requests if s == 304) == 7
    from storage.sqlite import SQLiteStore

    store = SQLiteStore(db)
    try:
        mention = store.get_mention(mention_id(canonicalize_url(site.url("/nld/bai-3.html"))))
        assert mention is not None and "chỉ đạo xử lý dứt điểm" in mention.text
    finally:
        store.close()


@pytest.mark.integration
@pytest.mark.slow
def test_rate_limited_page_is_retried_with_backoff(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite3"
    with serve_generated(3, ("thanhnien",)) as site:
        site.throttled["/thanhnien/bai-1.html"] = 2  # two "429 Retry-After: 1" answers first
        stats = run_crawl(site.feed_urls(), db, timeout=120,
                          settings={**FAST, "RETRY_BACKOFF_BASE": 0.2, "RETRY_BACKOFF_MAX": 5})
        tries = [t for t, p, _ in site.requests if p == "/thanhnien/bai-1.html"]
        statuses = [s for _, p, s in site.requests if p == "/thanhnien/bai-1.html"]
    assert stats.inserted == 3, stats.log[-2000:]
    assert statuses == [429, 429, 200]
    gaps = [b - a for a, b in zip(tries, tries[1:], strict=False)]
    assert all(g >= 0.9 for g in gaps), gaps  # Retry-After: 1 was honoured
    assert stats.raw.get("langnghe/retries/backoff") == 2
