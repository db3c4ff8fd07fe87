"""Operations: readiness, Prometheus metrics, the scheduler's lock, and OpenAPI fuzzing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.scheduler import Job, PipelineLock, RunInProgress, Scheduler, pipeline_runner
from storage.sqlite import SQLiteStore
from tests.auth_helpers import add_user, bearer
from tests.test_api import ALL_MENTIONS

VN = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    db = SQLiteStore(tmp_path / "ops.sqlite3")
    db.write_mentions(ALL_MENTIONS)
    yield db
    db.close()


def test_readyz_says_what_failed(store: SQLiteStore, tmp_path: Path) -> None:
    with TestClient(create_app(store)) as c:
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json() == {"status": "ready", "checks": {"store": "ok", "accounts": "ok"}}
    broken = SQLiteStore(tmp_path / "broken.sqlite3")
    broken.close()
    with TestClient(create_app(broken)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["store"] == "error"


def test_metrics_need_an_operator_and_count_requests(store: SQLiteStore) -> None:
    with TestClient(create_app(store)) as c:
        add_user(c.app, "ops@langnghe.test", "administrator")
        add_user(c.app, "tt@langnghe.test", "communications")
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=bearer(c, "tt@langnghe.test")).status_code == 403
        admin = bearer(c, "ops@langnghe.test")
        for _ in range(3):
            c.get("/api/v1/issues/top", headers=admin)
        c.get("/api/v1/issues/nothing-here", headers=admin)
        r = c.get("/metrics", headers=admin)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
        lines = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                 if line and not line.startswith("#")}
        assert lines['langnghe_http_requests_total{method="GET",route="/api/v1/issues/top",status="200"}'] >= 3
        assert lines['langnghe_http_requests_total{method="GET",route="/api/v1/issues/{issue_id}",status="404"}'] >= 1
        assert 'langnghe_http_request_duration_seconds_bucket{le="0.1",method="GET",route="/api/v1/issues/top"}' \
            in lines
        assert lines["langnghe_mentions"] == len(ALL_MENTIONS) and lines["langnghe_store_up"] == 1
        assert lines["langnghe_mentions_processed"] == len(ALL_MENTIONS)
    from api.auth.config import AuthConfig

    with TestClient(create_app(store, auth=AuthConfig(metrics_public=True))) as c:
        assert c.get("/metrics").status_code == 200


# --- scheduler ---------------------------------------------------------------------------------

def test_runs_never_overlap_in_a_process(tmp_path: Path) -> None:
    started = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def slow() -> None:
        calls.append("slow")
        started.set()
        release.wait(10)

    scheduler = Scheduler(lock_path=tmp_path / "pipeline.lock")
    scheduler.add(Job("slow", slow, every=timedelta(hours=1)))
    scheduler.add(Job("other", lambda: calls.append("other"), every=timedelta(hours=1)))
    worker = threading.Thread(target=scheduler.run_now, args=("slow",))
    worker.start()
    assert started.wait(5)
    assert scheduler.run_now("other") is False and scheduler.run_now("slow") is False
    release.set()
    worker.join(5)
    assert scheduler.run_now("other") is True
    assert calls == ["slow", "other"]


@pytest.mark.integration
def test_runs_never_overlap_across_processes(tmp_path: Path) -> None:
    lock = tmp_path / "pipeline.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from api.scheduler import PipelineLock\n"
        f"with PipelineLock(Path({str(lock)!r})).hold():\n"
        "    print('held', flush=True); time.sleep(30)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunInProgress, match="another process"), PipelineLock(lock).hold():
            pass
    finally:
        holder.kill()
        holder.wait(10)
    with PipelineLock(lock).hold():  # released when the holder died
        pass


def test_job_times_and_failures() -> None:
    now = [datetime(2025, 11, 20, 6, 0, tzinfo=VN)]  # a Thursday
    scheduler = Scheduler(clock=lambda: now[0])
    daily = scheduler.add(Job("briefing", lambda: "ok", daily=clock_time(7, 0)))
    weekly = scheduler.add(Job("digest", lambda: 1 / 0, weekly=(0, clock_time(7, 30))))
    every = scheduler.add(Job("pipeline", lambda: "ran", every=timedelta(minutes=30)))
    assert daily.next_run == datetime(2025, 11, 20, 7, 0, tzinfo=VN)
    assert weekly.next_run == datetime(2025, 11, 24, 7, 30, tzinfo=VN)
    assert every.next_run == datetime(2025, 11, 20, 6, 30, tzinfo=VN)
    now[0] = datetime(2025, 11, 20, 7, 5, tzinfo=VN)
    assert scheduler.run_due() == ["pipeline", "briefing"]
    assert daily.last_result == "ok" and daily.next_run == datetime(2025, 11, 21, 7, 0, tzinfo=VN)
    now[0] = datetime(2025, 11, 24, 8, 0, tzinfo=VN)
    assert "digest" in scheduler.run_due()
    assert weekly.last_error is not None and "ZeroDivisionError" in weekly.last_error
    assert weekly.next_run == datetime(2025, 12, 1, 7, 30, tzinfo=VN)
    with pytest.raises(ValueError, match="exactly one"):
        Job("x", lambda: None)


def test_pipeline_stops_at_a_failed_stage() -> None:
    done: list[str] = []

    def fail() -> None:
        raise RuntimeError("crawl failed")

    run = pipeline_runner([("process", lambda: done.append("process")), ("rank", fail),
                           ("alerts", lambda: done.append("alerts"))])
    with pytest.raises(RuntimeError, match="crawl failed"):
        run()
    assert done == ["process"]


def test_scheduler_thread_runs_due_jobs(tmp_path: Path) -> None:
    ran = threading.Event()
    scheduler = Scheduler(lock_path=tmp_path / "l", tick=0.05)
    scheduler.add(Job("tick", ran.set, every=timedelta(hours=1)), run_at_start=True)
    scheduler.start()
    try:
        assert ran.wait(5)
    finally:
        scheduler.stop()
    assert scheduler.jobs["tick"].next_run is not None and scheduler.jobs["tick"].next_run > datetime.now(VN)


# --- fuzzing -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_openapi_fuzzing_finds_no_server_error(store: SQLiteStore) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, settings

    app = create_app(store)
    with TestClient(app) as c:
        add_user(c.app, "fuzz@langnghe.test", "administrator")
        headers = bearer(c, "fuzz@langnghe.test")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    count = 0
    started = time.perf_counter()
    for op_result in schema.get_all_operations():
        operation = op_result.ok()
        if operation.path in ("/api/v1/auth/logout", "/api/v1/auth/password") or operation.method == "delete":
            continue  # would end the fuzzer's own session or delete its data
        strategy = operation.as_strategy()

        @settings(max_examples=10, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: object) -> None:
            nonlocal count
            count += 1
            case.headers = {**(case.headers or {}), **headers}  # type: ignore[attr-defined]
            response = case.call()  # type: ignore[attr-defined]
            # 503 is the deliberate answer of e-mail endpoints when SMTP is not configured
            if response.status_code >= 500 and response.status_code != 503:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}")  # type: ignore[attr-defined]

        from hypothesis import given

        given(strategy)(check)()
    assert count > 150 and time.perf_counter() - started < 240
    assert failures == []
