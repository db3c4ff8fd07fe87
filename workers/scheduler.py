"""The scheduler: re-rank every `interval` seconds, one scheduler at a time (a Redis lock).

Several scheduler replicas may run (for availability); the lock ``<namespace>:lock:rank`` (SET NX
with an expiry longer than a ranking takes) lets only one rank at a time, and a crashed holder's
lock expires. Crawling is not scheduled here: crawler containers re-run `workers.cli crawl`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from storage.base import Store
from workers.leases import RedisLeases, new_token

log = logging.getLogger(__name__)


def rank_once(store: Store, leases: RedisLeases, *, days: int = 7) -> dict[str, Any] | None:
    """Rank if no other scheduler is ranking; returns the rank job's report, or None if skipped."""
    from nlp.ranking import update_rankings

    token = new_token("scheduler")
    if not leases.claim(["rank"], token):
        log.info("another scheduler is ranking: skipped")
        return None
    try:
        return update_rankings(store, days=days)
    finally:
        leases.release(["rank"], token)


def run_scheduler(store: Store, leases: RedisLeases, *, interval: float = 900.0, days: int = 7,
                  stop: threading.Event | None = None, rounds: int | None = None) -> int:
    """Rank every `interval` seconds until `stop` is set (or `rounds` rounds); returns rounds run."""
    stop = stop or threading.Event()
    done = 0
    while not stop.is_set() and (rounds is None or done < rounds):
        started = time.monotonic()
        try:
            report = rank_once(store, leases, days=days)
            log.info("ranking: %s", report)
        except Exception:  # keep scheduling: the next round may succeed (logged with traceback)
            log.exception("ranking failed")
        done += 1
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
    return done
