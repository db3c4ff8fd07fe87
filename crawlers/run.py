"""Run a news crawl in a child process and report what it did.

Scrapy's Twisted reactor cannot be restarted inside one process, so `run_crawl` starts
``python -m crawlers.run`` as a child: it can be called any number of times from tests, the CLI
and the demo. The child writes Scrapy's stats as JSON; the parent turns them into `CrawlStats`.

    python -m crawlers.run --feeds URL[,URL] --db PATH [--jobdir DIR] [--sitemaps URL[,URL]]
    python -m crawlers.run --sources vnexpress.net,tuoitre.vn --db PATH --jobdir var/jobs/news
    python -m crawlers.run --spider forum --threads URL[,URL] --db PATH

Resuming: with ``--jobdir`` Scrapy keeps its queue there between runs stopped cleanly (SIGINT,
SIGTERM, timeout). A run killed outright (SIGKILL, power loss) leaves that queue half-written; the
next run sees the marker left behind, sets Scrapy's queue aside and rebuilds the work from the
crawl frontier (article URLs found and not stored, kept in the store's file) and the feeds.
Nothing is lost (the frontier) and nothing is stored twice (ids from canonical URLs, upserts).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "langnghe/"


class CrawlError(RuntimeError):
    """The crawl process failed before it could report its stats."""


@dataclass
class CrawlStats:
    """What one crawl did: mentions stored, pages skipped (by reason), errors (by kind)."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    items: int = 0  # articles extracted
    pages: int = 0  # responses downloaded
    feeds_ok: int = 0
    feeds_invalid: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    finish_reason: str | None = None
    elapsed_s: float = 0.0
    timed_out: bool = False
    returncode: int = 0
    log: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def stored(self) -> int:
        """Mentions written (new or changed)."""
        return self.inserted + self.updated

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (without the log and Scrapy's raw stats)."""
        data = {k: v for k, v in vars(self).items() if k not in ("log", "raw")}
        data["stored"] = self.stored
        return data

    @classmethod
    def from_scrapy(cls, stats: dict[str, Any]) -> CrawlStats:
        """Build from a Scrapy stats dict (the keys under ``langnghe/`` and Scrapy's own)."""

        def under(prefix: str) -> dict[str, int]:
            return {k[len(prefix):]: int(v) for k, v in stats.items() if k.startswith(prefix)}

        skipped = under(PREFIX + "skipped/")
        errors = under(PREFIX + "errors/")
        robots = int(stats.get("robotstxt/forbidden", 0))
        if robots:
            skipped["robots_txt"] = robots
        for key, value in stats.items():
            if key.startswith("downloader/response_status_count/") and not key.endswith(("/200", "/301",
                                                                                       "/302", "/304")):
                errors["http_" + key.rsplit("/", 1)[-1]] = int(value)
        return cls(
            inserted=int(stats.get(PREFIX + "stored/inserted", 0)),
            updated=int(stats.get(PREFIX + "stored/updated", 0)),
            unchanged=int(stats.get(PREFIX + "stored/unchanged", 0)),
            items=int(stats.get("item_scraped_count", 0)),
            pages=int(stats.get("response_received_count", 0)),
            feeds_ok=int(stats.get(PREFIX + "feeds/ok", 0)),
            feeds_invalid=int(stats.get(PREFIX + "feeds/invalid", 0)),
            skipped=skipped, errors=errors,
            finish_reason=stats.get("finish_reason"),
            elapsed_s=float(stats.get("elapsed_time_seconds", 0.0)),
            raw=stats,
        )


def crawl_command(feeds: list[str], db_path: Path, *, stats_file: Path | None = None,
                  jobdir: Path | None = None, settings: dict[str, Any] | None = None,
                  sitemaps: list[str] | None = None, sections: list[str] | None = None,
                  sources: list[str] | None = None, threads: list[str] | None = None,
                  forums: list[str] | None = None, spider: str = "news",
                  max_articles: int | None = None) -> list[str]:
    """The ``python -m crawlers.run`` command line for these arguments."""
    cmd = [sys.executable, "-m", "crawlers.run", "--db", str(db_path), "--spider", spider]
    for flag, values in (("--feeds", feeds), ("--sitemaps", sitemaps), ("--sections", sections),
                         ("--sources", sources), ("--threads", threads), ("--forums", forums)):
        if values:
            cmd += [flag, ",".join(values)]
    if stats_file is not None:
        cmd += ["--stats-file", str(stats_file)]
    if jobdir is not None:
        cmd += ["--jobdir", str(jobdir)]
    if max_articles is not None:
        cmd += ["--max-articles", str(max_articles)]
    if settings:
        cmd += ["--settings-json", json.dumps(settings)]
    return cmd


def child_env() -> dict[str, str]:
    """The environment of a crawl child: this one, with the repository on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_crawl(feeds: list[str], db_path: Path, *, jobdir: Path | None = None,
              settings: dict[str, Any] | None = None, timeout: float = 600,
              sitemaps: list[str] | None = None, max_articles: int | None = None,
              sections: list[str] | None = None, sources: list[str] | None = None,
              threads: list[str] | None = None, forums: list[str] | None = None,
              spider: str = "news") -> CrawlStats:
    """Crawl `feeds` (and `sitemaps`) into the SQLite store at `db_path`, in a child process.

    `settings` override Scrapy settings (e.g. ``{"DOWNLOAD_DELAY": 0}``); `jobdir` makes the crawl
    resumable. After `timeout` seconds the child is asked to stop (it flushes what it has) and the
    stats come back with ``timed_out=True``. Raises CrawlError when the child reports nothing.
    """
    if not (feeds or sitemaps or sections or sources or threads or forums):
        raise ValueError("run_crawl needs at least one feed, sitemap, section, source or thread URL")
    with tempfile.TemporaryDirectory(prefix="langnghe-crawl-") as tmp:
        stats_file = Path(tmp) / "stats.json"
        log_file = Path(tmp) / "crawl.log"
        cmd = crawl_command(feeds, db_path, stats_file=stats_file, jobdir=jobdir, settings=settings,
                            sitemaps=sitemaps, sections=sections, sources=sources, threads=threads,
                            forums=forums, spider=spider, max_articles=max_articles)
        env = child_env()
        timed_out = False
        with open(log_file, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO_ROOT))
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                proc.send_signal(signal.SIGINT)  # Scrapy's graceful stop: pipelines flush
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        log_text = log_file.read_text(encoding="utf-8", errors="replace")
        if not stats_file.exists():
            tail = log_text[-4000:]
            raise CrawlError(f"crawl process exited with {proc.returncode} without stats:\n{tail}")
        result = CrawlStats.from_scrapy(json.loads(stats_file.read_text(encoding="utf-8")))
    result.timed_out = timed_out
    result.returncode = proc.returncode
    result.log = log_text[-1_000_000:]
    return result


RUNNING_MARKER = "langnghe-running"


def prepare_jobdir(jobdir: Path) -> bool:
    """Make `jobdir` ready; True when the previous run there was killed (its Scrapy queue and
    fingerprints are set aside, the frontier takes over)."""
    jobdir.mkdir(parents=True, exist_ok=True)
    marker = jobdir / RUNNING_MARKER
    interrupted = marker.exists()
    if interrupted:
        aside = jobdir / f"interrupted-{int(time.time())}"
        aside.mkdir()
        for name in ("requests.queue", "requests.seen", "spider.state"):
            if (jobdir / name).exists():
                (jobdir / name).rename(aside / name)
    marker.write_text(str(os.getpid()), encoding="utf-8")
    return interrupted


def download_slots(source_names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Scrapy ``DOWNLOAD_SLOTS`` (per-domain concurrency) from the source registry."""
    from crawlers.sources import load_registry

    registry = load_registry()
    chosen = [registry.get(n) for n in source_names] if source_names else registry.sources
    return {domain: {"concurrency": s.max_concurrency} for s in chosen for domain in s.domains}


def _crawl_in_this_process(args: argparse.Namespace) -> dict[str, Any]:
    import logging

    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    settings = Settings()
    settings.setmodule("crawlers.settings", priority="project")
    settings.set("LANGNGHE_DB_PATH", str(Path(args.db).resolve()), priority="cmdline")
    sources = [s for s in (args.sources or "").split(",") if s]
    settings.set("DOWNLOAD_SLOTS", download_slots(sources or None), priority="project")
    interrupted = False
    if args.jobdir:
        interrupted = prepare_jobdir(Path(args.jobdir))
        settings.set("JOBDIR", str(args.jobdir), priority="cmdline")
    if args.settings_json:
        for key, value in json.loads(args.settings_json).items():
            settings.set(key, value, priority="cmdline")
    process = CrawlerProcess(settings, install_root_handler=True)
    if interrupted:
        logging.getLogger(__name__).warning(
            "the previous crawl in %s was interrupted; Scrapy's queue was set aside, resuming from the "
            "crawl frontier", args.jobdir)
    if args.spider == "forum":
        from crawlers.spiders.forum import ForumSpider

        crawler = process.create_crawler(ForumSpider)
        process.crawl(crawler, threads=args.threads, forums=args.forums, sources=args.sources)
    else:
        from crawlers.spiders.news import NewsSpider

        crawler = process.create_crawler(NewsSpider)
        process.crawl(crawler, feeds=args.feeds, sitemaps=args.sitemaps, sections=args.sections,
                      sources=args.sources, max_articles=args.max_articles)
    started = time.monotonic()
    process.start()
    stats = dict(crawler.stats.get_stats()) if crawler.stats is not None else {}
    stats.setdefault("elapsed_time_seconds", time.monotonic() - started)
    stats["langnghe/resumed_after_kill"] = int(interrupted)
    if args.jobdir:
        (Path(args.jobdir) / RUNNING_MARKER).unlink(missing_ok=True)
    return stats


def main(argv: list[str] | None = None) -> int:
    """Command line: crawl feeds/sitemaps into a SQLite store (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m crawlers.run",
                                     description="Thu thập bài báo từ RSS/sitemap vào kho SQLite "
                                                 "(crawl news feeds into the SQLite store).")
    parser.add_argument("--feeds", default="", help="RSS/Atom URLs, comma-separated")
    parser.add_argument("--sitemaps", default="", help="sitemap URLs, comma-separated")
    parser.add_argument("--sections", default="", help="section (listing) page URLs, comma-separated")
    parser.add_argument("--sources", default="", help="registry source names, comma-separated")
    parser.add_argument("--threads", default="", help="forum thread URLs (forum spider)")
    parser.add_argument("--forums", default="", help="forum listing URLs (forum spider)")
    parser.add_argument("--spider", choices=("news", "forum"), default="news")
    parser.add_argument("--db", required=True, type=Path, help="SQLite store path")
    parser.add_argument("--jobdir", type=Path, default=None, help="folder that makes the crawl resumable")
    parser.add_argument("--max-articles", type=int, default=None, help="stop queueing after N articles")
    parser.add_argument("--stats-file", type=Path, default=None, help="write the crawl stats here as JSON")
    parser.add_argument("--settings-json", default=None, help="Scrapy settings overrides, as a JSON object")
    args = parser.parse_args(argv)
    if not (args.feeds or args.sitemaps or args.sections or args.sources or args.threads or args.forums):
        parser.error("cần ít nhất một --feeds, --sitemaps, --sections, --sources hoặc --threads "
                     "(at least one feed, sitemap, section, source or thread is needed)")
    stats = _crawl_in_this_process(args)
    payload = json.dumps(stats, default=str, ensure_ascii=False, indent=1, sort_keys=True)
    if args.stats_file:
        args.stats_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.stats_file.with_suffix(".tmp")
        tmp.write_text(payload, encoding="utf-8")
        tmp.replace(args.stats_file)
    else:
        print(payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
