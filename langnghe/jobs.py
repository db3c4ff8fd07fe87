"""The main job, stage by stage: crawl → understand → store → rank. Each stage is resumable."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from storage.base import Store

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    crawl: dict[str, Any] = field(default_factory=dict)
    processed: int = 0
    ranking: dict[str, Any] = field(default_factory=dict)


# For a site of our own on loopback (the demo): no throttling, many requests at once.
LOCAL_SITE_SETTINGS: dict[str, Any] = {
    "DOWNLOAD_DELAY": 0, "AUTOTHROTTLE_ENABLED": False, "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
}


def crawl(feeds: list[str], db_path: Path, *, jobdir: Path | None = None,
          sources: dict[str, str] | None = None, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Crawl feeds and their articles into the store at `db_path` (a child process)."""
    from crawlers.run import run_crawl

    settings = dict(settings or {})
    if sources:
        settings["LANGNGHE_SOURCES"] = sources
    stats = run_crawl(feeds, db_path, jobdir=jobdir, settings=settings)
    return stats.to_dict()


def process(store: Store, models_dir: Path, *, batch_size: int = 256, backend: str | None = None) -> int:
    """Enrich every mention not yet processed. An encoder `backend` (default: the setting
    ``classifier_backend``) leaves its vectors in the store's issue-state file for `rank`."""
    from nlp.pipeline import default_pipeline, process_pending, vector_db_for

    vector_db = vector_db_for(store, backend)
    try:
        pipeline = default_pipeline(models_dir, batch_size, backend=backend, vector_db=vector_db)
        return process_pending(store, pipeline, batch_size=batch_size)
    finally:
        if vector_db is not None:
            vector_db.close()


def rank(store: Store, *, now: datetime | None = None, days: int = 7) -> dict[str, Any]:
    """Group civic mentions into issues and store the top-10 per area, day and ISO week."""
    from nlp.ranking import update_rankings

    return update_rankings(store, now=now, days=days)


def run_once(store: Store, db_path: Path, feeds: list[str], models_dir: Path, *,
             now: datetime | None = None, days: int = 7, jobdir: Path | None = None,
             sources: dict[str, str] | None = None, crawl_settings: dict[str, Any] | None = None) -> RunReport:
    report = RunReport()
    if feeds:
        report.crawl = crawl(feeds, db_path, jobdir=jobdir, sources=sources, settings=crawl_settings)
        log.info("crawl: %s", report.crawl)
    report.processed = process(store, models_dir)
    report.ranking = rank(store, now=now, days=days)
    return report
