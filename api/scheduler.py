"""A small in-process scheduler for the pipeline: crawl → process → rank → alerts → digest.

    scheduler = Scheduler(lock_path=data_dir / "pipeline.lock")
    scheduler.add(Job("pipeline", pipeline_runner(stages), every=timedelta(minutes=30)))
    scheduler.add(Job("weekly-digest", send_digest, weekly=(0, time(7, 0))))   # Mondays 07:00
    scheduler.start()          # a daemon thread; scheduler.stop() ends it
    scheduler.run_now("pipeline")  # on demand: False when a run is in progress

Runs never overlap: every job takes one lock, held in-process (a mutex) and across processes
(an exclusive, non-blocking ``flock`` on `lock_path`), so a scheduled run, an on-demand run and a
``langnghe run`` from the command line never run at the same time; a run that finds the lock taken
is skipped and logged, never queued. Times are city time (Asia/Ho_Chi_Minh).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time as time_module
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from api.metrics import SCHEDULER_DURATION, SCHEDULER_LAST_SUCCESS, SCHEDULER_RUNS

log = logging.getLogger(__name__)

CITY_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class RunInProgress(RuntimeError):
    """Another run holds the pipeline lock."""


class PipelineLock:
    """Mutual exclusion of runs in this process and across processes (flock on a file)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._mutex = threading.Lock()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock, or raise RunInProgress at once."""
        if not self._mutex.acquire(blocking=False):
            raise RunInProgress("a run is in progress in this process")
        fd: int | None = None
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError as exc:
                    raise RunInProgress(f"a run is in progress in another process ({self.path})") from exc
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            if fd is not None:
                os.close(fd)  # closing releases the flock
            self._mutex.release()


@dataclass
class Job:
    """A named callable and when it runs: `every` (an interval from the start), `daily` (a
    city time each day) or `weekly` ((weekday 0=Monday, city time))."""

    name: str
    func: Callable[[], Any]
    every: timedelta | None = None
    daily: time | None = None
    weekly: tuple[int, time] | None = None
    next_run: datetime | None = None
    last_result: Any = None
    last_error: str | None = None
    last_finished: datetime | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.every, self.daily, self.weekly)) != 1:
            raise ValueError(f"job {self.name}: give exactly one of every, daily, weekly")
        if self.every is not None and self.every <= timedelta(0):
            raise ValueError(f"job {self.name}: the interval must be positive")

    def following(self, after: datetime) -> datetime:
        """The first run time strictly after `after` (aware)."""
        local = after.astimezone(CITY_TZ)
        if self.every is not None:
            return after + self.every
        if self.daily is not None:
            candidate = datetime.combine(local.date(), self.daily, tzinfo=CITY_TZ)
            return candidate if candidate > local else candidate + timedelta(days=1)
        assert self.weekly is not None
        weekday, at = self.weekly
        days = (weekday - local.weekday()) % 7
        candidate = datetime.combine(local.date() + timedelta(days=days), at, tzinfo=CITY_TZ)
        return candidate if candidate > local else candidate + timedelta(days=7)


@dataclass
class Scheduler:
    """Runs due jobs one at a time in a background thread, under one PipelineLock."""

    lock_path: Path | None = None
    tick: float = 15.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(CITY_TZ))
    jobs: dict[str, Job] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = PipelineLock(self.lock_path)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, job: Job, *, run_at_start: bool = False) -> Job:
        now = self.clock()
        job.next_run = now if run_at_start else job.following(now)
        self.jobs[job.name] = job
        return job

    def run_job(self, job: Job) -> bool:
        """Run one job now under the lock; False (and logged) when another run holds it."""
        started = time_module.perf_counter()
        try:
            with self.lock.hold():
                log.info("job started", extra={"event": "job_started", "job": job.name})
                try:
                    job.last_result = job.func()
                    job.last_error = None
                except Exception as exc:  # noqa: BLE001 - a failed run must not stop the scheduler
                    job.last_error = f"{type(exc).__name__}: {exc}"
                    SCHEDULER_RUNS.labels(job.name, "error").inc()
                    log.exception("job failed", extra={"event": "job_failed", "job": job.name})
                else:
                    SCHEDULER_RUNS.labels(job.name, "ok").inc()
                    SCHEDULER_LAST_SUCCESS.labels(job.name).set(time_module.time())
                    log.info("job finished", extra={"event": "job_finished", "job": job.name,
                                                    "seconds": round(time_module.perf_counter() - started, 3)})
                finally:
                    job.last_finished = self.clock()
                    SCHEDULER_DURATION.labels(job.name).set(time_module.perf_counter() - started)
        except RunInProgress as exc:
            SCHEDULER_RUNS.labels(job.name, "skipped").inc()
            log.warning("job skipped: %s", exc, extra={"event": "job_skipped", "job": job.name})
            return False
        return True

    def run_now(self, name: str) -> bool:
        """Run a job by name now (on demand); False when a run is in progress."""
        return self.run_job(self.jobs[name])

    def run_due(self) -> list[str]:
        """Run every job whose time has come (one after the other); the names of those run."""
        ran = []
        for job in sorted(self.jobs.values(), key=lambda j: j.next_run or self.clock()):
            now = self.clock()
            if job.next_run is not None and job.next_run <= now:
                self.run_job(job)
                job.next_run = job.following(max(now, self.clock()))
                ran.append(job.name)
        return ran

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_due()
            except Exception:  # noqa: BLE001 - keep the loop alive
                log.exception("scheduler loop error")
            self._stop.wait(self.tick)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="langnghe-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def pipeline_runner(stages: Sequence[tuple[str, Callable[[], Any]]]) -> Callable[[], dict[str, Any]]:
    """One job running the stages in order; a stage that fails stops the run (later stages would
    work on stale data) and the error is raised after logging which stage it was."""

    def run() -> dict[str, Any]:
        results: dict[str, Any] = {}
        for name, stage in stages:
            started = time_module.perf_counter()
            try:
                results[name] = stage()
            except Exception:
                log.error("pipeline stage failed", extra={"event": "stage_failed", "stage": name})
                raise
            log.info("pipeline stage done", extra={"event": "stage_done", "stage": name,
                                                   "seconds": round(time_module.perf_counter() - started, 3)})
        return results

    return run


def default_stages(store: Any, db_path: Path, feeds: list[str], models_dir: Path, *,
                   accounts: Any = None, areas: Any = None,
                   digest: Callable[[], Any] | None = None) -> list[tuple[str, Callable[[], Any]]]:
    """crawl → process → rank → saved-search alerts → emerging-issue alerts (→ digest when given)."""
    from langnghe import jobs

    stages: list[tuple[str, Callable[[], Any]]] = []
    if feeds:
        stages.append(("crawl", lambda: jobs.crawl(feeds, db_path)))
    stages.append(("process", lambda: jobs.process(store, models_dir)))
    stages.append(("rank", lambda: jobs.rank(store)))
    if accounts is not None:
        from api.alerts import check_saved_searches

        stages.append(("alerts", lambda: check_saved_searches(store, accounts, areas=areas)))
        import importlib.util

        if importlib.util.find_spec("nlp.alerts_events") is not None:  # the detector is optional

            def emerging() -> Any:
                from api.alerts import notify_emerging
                from langnghe.records import utcnow
                from nlp.alerts_events import detect_emerging

                return notify_emerging(store, detect_emerging(store, utcnow()), accounts=accounts, areas=areas)

            stages.append(("emerging", emerging))
    if digest is not None:
        stages.append(("digest", digest))
    return stages
