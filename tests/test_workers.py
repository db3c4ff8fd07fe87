"""NLP workers sharing the work through Redis leases (a real redis-server): exclusivity, expiry,
fencing, and a worker SIGKILLed mid-batch losing nothing and committing nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from langnghe.records import Mention, utcnow
from storage.base import Store
from storage.sqlite import SQLiteStore
from tests.redis_node import RedisNode, RedisUnavailable
from tests.store_contract import T0, make_mention
from workers.leases import RedisLeases, new_token
from workers.nlp_worker import NLPWorker

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


def slow_processor(batch: list[Mention]) -> list[Mention]:
    """Test processor (loaded by worker processes): note the batch, take a while, enrich."""
    marker_dir = os.environ.get("LANGNGHE_TEST_MARKERS")
    if marker_dir:
        path = Path(marker_dir) / f"{os.getpid()}.batch"
        path.write_text("\n".join(m.id for m in batch), encoding="utf-8")
    time.sleep(float(os.environ.get("LANGNGHE_TEST_DELAY", "0")) * len(batch))
    stamp = utcnow()
    for m in batch:
        m.topic, m.civic, m.sentiment, m.processed_at = "waste", True, "negative", stamp
        m.areas = ["hcmc"]
    return batch


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


@pytest.fixture
def leases(redis_url: str, request: pytest.FixtureRequest) -> RedisLeases:
    return RedisLeases.from_url(redis_url, namespace=f"t-{request.node.name}", lease_seconds=1.0)


def _mentions(n: int) -> list[Mention]:
    return [make_mention(f"w{i:04d}", title=f"Rác thải {i}", text="Bãi rác ở Thủ Đức",
                         crawled_at=T0 + timedelta(minutes=i)) for i in range(n)]


def test_a_lease_has_one_holder(leases: RedisLeases) -> None:
    a, b = new_token("a"), new_token("b")
    assert leases.claim(["x", "y", "z"], a, limit=2) == ["x", "y"]
    assert leases.claim(["x", "y", "z"], b) == ["z"]
    assert leases.claim(["x", "w1", "y", "w2", "w3"], b, limit=2) == ["w1", "w2"]  # skips held ids
    assert leases.holder("x") == a
    assert leases.renew(["x", "z"], a) == ["x"]  # z is b's
    assert leases.release(["x", "y", "z"], b) == 1  # only z was b's
    assert leases.holder("x") == a and leases.holder("z") is None
    assert leases.claim(["z"], a) == ["z"]


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_fenced(leases: RedisLeases) -> None:
    a, b = new_token("a"), new_token("b")
    assert leases.claim(["x"], a) == ["x"]
    time.sleep(1.2)  # visibility timeout: 1 s
    assert leases.claim(["x"], b) == ["x"]
    assert leases.renew(["x"], a) == []  # a can neither extend …
    assert leases.release(["x"], a) == 0  # … nor drop b's lease
    assert leases.holder("x") == b


def test_lease_seconds_must_be_positive(redis_url: str) -> None:
    with pytest.raises(ValueError):
        RedisLeases.from_url(redis_url, lease_seconds=0)


def test_worker_whose_lease_moved_on_commits_nothing(tmp_path: Path, leases: RedisLeases) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    store.write_mentions(_mentions(3))
    thief = new_token("thief")

    def slow_then_stolen(batch: list[Mention]) -> list[Mention]:
        for m in batch:  # the lease is taken over while we work (as after a long GC pause)
            leases.client.set(f"{leases.namespace}:lease:{m.id}", thief)
        return slow_processor(batch)

    worker = NLPWorker(store, leases, slow_then_stolen, batch_size=3)
    assert worker.run_batch() == 0
    assert worker.stats.lost_leases == 3 and len(store.unprocessed_mentions()) == 3
    store.close()


def test_threads_share_the_work_once(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGNGHE_TEST_DELAY", "0.003")
    store = SQLiteStore(tmp_path / "s.sqlite3")
    store.write_mentions(_mentions(200))
    commits: Counter[str] = Counter()
    lock = threading.Lock()

    def record(ids: list[str]) -> None:
        with lock:
            commits.update(ids)

    workers = [NLPWorker(store, RedisLeases.from_url(redis_url, namespace="threads", lease_seconds=30),
                         slow_processor, batch_size=16, scan_factor=2, name=f"t{i}", on_commit=record)
               for i in range(4)]
    threads = [threading.Thread(target=w.run, kwargs={"exit_when_idle": True, "idle_sleep": 0.05})
               for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert store.unprocessed_mentions() == []
    assert len(commits) == 200 and set(commits.values()) == {1}
    assert sum(1 for w in workers if w.stats.committed) >= 2, [w.stats for w in workers]  # shared
    store.close()


def kill_scenario(store: Store, store_url: str, redis_url: str, tmp_path: Path, n: int = 150) -> None:
    """Three worker processes on `store` (opened by URL in each); the first is SIGKILLed inside its
    first batch. Asserts every mention committed exactly once, the victim's batch by the others."""
    store.write_mentions(_mentions(n))
    markers = tmp_path / "markers"
    markers.mkdir()
    env = dict(os.environ, LANGNGHE_TEST_MARKERS=str(markers), LANGNGHE_TEST_DELAY="0.02",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    namespace = f"kill-{os.getpid()}-{time.monotonic_ns()}"

    def start(i: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "worker", "--store", store_url, "--redis", redis_url,
             "--processor", "tests.test_workers:slow_processor", "--batch-size", "10", "--lease", "3",
             "--namespace", namespace, "--exit-when-idle", "--commit-log", str(tmp_path / f"commits-{i}.log")],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    victim = start(0)
    deadline = time.monotonic() + 60
    marker = markers / f"{victim.pid}.batch"
    while not marker.exists():  # the victim is inside its first batch (claimed, processing)
        assert victim.poll() is None and time.monotonic() < deadline, "the worker never started a batch"
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    in_flight = marker.read_text(encoding="utf-8").split()
    assert len(in_flight) == 10
    others = [start(i) for i in (1, 2)]
    for p in others:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-2000:]
    logs = {i: (tmp_path / f"commits-{i}.log") for i in range(3)}
    committed = Counter(line for i, path in logs.items() if path.exists()
                        for line in path.read_text(encoding="utf-8").split())
    victim_committed = set(logs[0].read_text().split()) if logs[0].exists() else set()
    assert not victim_committed & set(in_flight)  # killed before its commit
    assert len(committed) == n and max(committed.values()) == 1  # nothing lost, nothing twice
    assert set(in_flight) <= set(committed)  # the victim's batch was taken over after the lease expired
    assert store.unprocessed_mentions() == []
    assert all(m.topic == "waste" for m in store.iter_mentions())
    assert store.count_mentions() == n


@pytest.mark.slow
def test_sigkilled_worker_loses_nothing_and_nothing_is_committed_twice(tmp_path: Path, redis_url: str) -> None:
    db = tmp_path / "store.sqlite3"
    with SQLiteStore(db) as store:
        kill_scenario(store, str(db), redis_url, tmp_path)

def test_one_scheduler_ranks_at_a_time(tmp_path: Path, redis_url: str) -> None:
    from workers.scheduler import rank_once, run_scheduler

    store = SQLiteStore(tmp_path / "s.sqlite3")
    leases = RedisLeases.from_url(redis_url, namespace="sched", lease_seconds=60)
    other = new_token("other-scheduler")
    assert leases.claim(["rank"], other) == ["rank"]
    assert rank_once(store, leases) is None  # the other one holds the lock
    leases.release(["rank"], other)
    report = rank_once(store, leases)
    assert isinstance(report, dict)
    assert leases.holder("rank") is None  # released after ranking
    assert run_scheduler(store, leases, interval=0.0, rounds=2) == 2
    store.close()
