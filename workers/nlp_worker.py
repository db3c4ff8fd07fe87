"""An NLP worker: claim a batch of unprocessed mentions, enrich it, commit it, release it.

Several workers (processes or machines) share one store: each claims mention ids with Redis
leases (`workers.leases.RedisLeases`), so no two hold the same mention at once. The cycle:

1. read a window of unprocessed mentions (``batch_size × scan_factor``, oldest crawled first);
2. claim up to ``batch_size`` of them (ids leased by others are skipped);
3. read the claimed mentions again and drop any already processed (another worker committed
   them between step 1 and 2: its lease was released, so the claim succeeded);
4. enrich them while a heartbeat thread renews the leases every lease/3;
5. renew once more and commit only the mentions whose lease is still ours, in one
   `update_enrichment` call (one transaction on SQLite);
6. release the leases.

A worker killed at any point before 5 commits nothing; its leases expire after the visibility
timeout and another worker takes the batch. Killed during 5, a search engine may hold part of
the batch: step 3 of the next worker skips those. So nothing is lost and nothing is committed twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from langnghe.records import Mention
from storage.base import Store
from workers.leases import RedisLeases, new_token

log = logging.getLogger(__name__)

Processor = Callable[[list[Mention]], list[Mention]]


@dataclass
class WorkerStats:
    batches: int = 0
    committed: int = 0
    skipped_processed: int = 0  # claimed, but already processed by someone else
    lost_leases: int = 0  # processed, but the lease had moved on: not committed
    idle_polls: int = 0
    committed_ids: list[str] = field(default_factory=list)


class _Heartbeat(threading.Thread):
    def __init__(self, leases: RedisLeases, ids: list[str], token: str, every: float) -> None:
        super().__init__(daemon=True)
        self.leases, self.ids, self.token, self.every = leases, ids, token, every
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                self.ids = self.leases.renew(self.ids, self.token)
            except Exception:  # pragma: no cover - Redis hiccup: the final renew decides
                log.exception("lease heartbeat failed")


class NLPWorker:
    """Processes unprocessed mentions of `store` in claimed batches (see the module docstring)."""

    def __init__(self, store: Store, leases: RedisLeases, processor: Processor, *, batch_size: int = 64,
                 scan_factor: int = 4, name: str | None = None,
                 on_commit: Callable[[list[str]], None] | None = None) -> None:
        if batch_size < 1 or scan_factor < 1:
            raise ValueError("batch_size and scan_factor must be at least 1")
        self.store = store
        self.leases = leases
        self.processor = processor
        self.batch_size = batch_size
        self.scan_factor = scan_factor
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.on_commit = on_commit
        self.stats = WorkerStats()
        self._stop = threading.Event()

    def stop(self) -> None:
        """Finish the current batch, then return from `run`."""
        self._stop.set()

    def run_batch(self) -> int:
        """One claim-process-commit cycle; returns the mentions committed (0: nothing to do)."""
        window = self.store.unprocessed_mentions(limit=self.batch_size * self.scan_factor)
        if not window:
            return 0
        token = new_token(self.name)
        claimed = self.leases.claim([m.id for m in window], token, limit=self.batch_size)
        if not claimed:
            return 0
        heartbeat = _Heartbeat(self.leases, list(claimed), token, self.leases.lease_ms / 3000)
        heartbeat.start()
        try:
            fresh = self.store.get_mentions(claimed)
            todo = [m for m in fresh if m.processed_at is None]
            self.stats.skipped_processed += len(fresh) - len(todo)
            if not todo:
                return 0
            enriched = self.processor(todo)
            heartbeat.stopped.set()
            still_ours = set(self.leases.renew([m.id for m in enriched], token))
            commit = [m for m in enriched if m.id in still_ours]
            self.stats.lost_leases += len(enriched) - len(commit)
            if commit:
                self.store.update_enrichment(commit)
                ids = [m.id for m in commit]
                self.stats.committed += len(ids)
                self.stats.committed_ids.extend(ids)
                if self.on_commit is not None:
                    self.on_commit(ids)
            self.stats.batches += 1
            log.info("%s: committed %d mention(s)", self.name, len(commit))
            return len(commit)
        finally:
            heartbeat.stopped.set()
            self.leases.release(claimed, token)

    def run(self, *, idle_sleep: float = 2.0, exit_when_idle: bool = False,
            max_batches: int | None = None) -> WorkerStats:
        """Work until stopped (or until nothing is left, with `exit_when_idle`)."""
        idle_rounds = 0
        while not self._stop.is_set():
            if max_batches is not None and self.stats.batches >= max_batches:
                break
            done = self.run_batch()
            if done:
                idle_rounds = 0
                continue
            self.stats.idle_polls += 1
            if exit_when_idle:
                # nothing claimable: either nothing left, or all leased by others (wait them out)
                if not self.store.unprocessed_mentions(limit=1):
                    break
                idle_rounds += 1
            self._stop.wait(idle_sleep if not exit_when_idle else min(idle_sleep, 0.2 * idle_rounds + 0.1))
        return self.stats
