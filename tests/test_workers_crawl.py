"""Distributed crawling: two crawler processes share one Redis queue and duplicate filter
(scrapy-redis, a real redis-server) against a local news site; every article is fetched once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.sqlite import SQLiteStore
from tests.crawl_server import serve_generated
from tests.redis_node import RedisNode, RedisUnavailable

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.integration, pytest.mark.slow]
LOCAL = {"DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False, "CONCURRENT_REQUESTS_PER_DOMAIN": 2,
         "LOG_LEVEL": "INFO"}


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    node = RedisNode()
    try:
        node.start()
    except RedisUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield node.url
    finally:
        node.stop()


def _crawler(redis_url: str, db: Path, feeds: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "crawl", "--redis", redis_url, "--store", str(db),
         "--feeds", ",".join(feeds), "--key", "test:news", "--idle", "1", "--settings-json", json.dumps(LOCAL)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=open(log, "wb"))  # noqa: SIM115


def test_two_crawlers_share_the_queue_and_fetch_each_article_once(tmp_path: Path, redis_url: str) -> None:
    db = tmp_path / "store.sqlite3"
    SQLiteStore(db).close()
    with serve_generated(30, ("tuoitre", "thanhnien"), delay=0.25) as site:
        procs = [_crawler(redis_url, db, site.feed_urls(), tmp_path / f"crawl-{i}.log") for i in range(2)]
        stats = []
        for i, p in enumerate(procs):
            out, _ = p.communicate(timeout=180)
            assert p.returncode == 0, (tmp_path / f"crawl-{i}.log").read_text()[-3000:]
            stats.append(json.loads(out.decode().strip().splitlines()[-1]))
        articles = site.article_paths()
        assert len(articles) == 60
        fetched = {path: site.fetched(path, status=None) for path in articles}
        assert all(n == 1 for n in fetched.values()), {p: n for p, n in fetched.items() if n != 1}
    per_process = [int(s.get("langnghe/stored/inserted", 0)) for s in stats]
    assert sum(per_process) == 60
    assert all(n > 0 for n in per_process), per_process  # both processes did part of the work
    import redis

    from workers.distributed_crawl import DUPEFILTER_DAYS, dupefilter_key

    client = redis.Redis.from_url(redis_url)
    fingerprints = client.scard(dupefilter_key("test:news"))
    assert fingerprints >= 60  # every article's fingerprint, in today's filter …
    assert 0 < client.ttl(dupefilter_key("test:news")) <= DUPEFILTER_DAYS * 86400  # … which expires
    client.close()
    with SQLiteStore(db) as store:
        assert store.count_mentions() == 60
        assert len({m.url for m in store.iter_mentions()}) == 60
