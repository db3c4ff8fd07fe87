"""Entry points for the deployment's processes (the `langnghe` command wires them as subcommands).

    python -m workers.cli worker   --store URL --redis URL [--batch-size N] [--lease S] [--exit-when-idle]
    python -m workers.cli migrate  --from var/langnghe.sqlite3 --to opensearch+http://127.0.0.1:9200
    python -m workers.cli crawl    --redis URL --store URL --feeds URL[,URL]
    python -m workers.cli scheduler --store URL --redis URL [--interval 900]

Defaults come from the environment: LANGNGHE_STORE_URL, LANGNGHE_REDIS_URL.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from storage.factory import open_store_url, redact
from workers.leases import RedisLeases
from workers.nlp_worker import NLPWorker, Processor

log = logging.getLogger("workers")


def load_processor(spec: str, models_dir: Path, batch_size: int, vector_db: Any = None) -> Processor:
    """``default`` (the NLP pipeline of nlp.pipeline; `vector_db`: where an encoder backend caches
    its vectors for the issue clustering) or ``module:function``."""
    if spec == "default":
        from nlp.pipeline import default_pipeline

        return default_pipeline(models_dir, batch_size, vector_db=vector_db)
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"processor must be 'default' or 'module:function', got {spec!r}")
    fn: Processor = getattr(importlib.import_module(module), name)
    return fn


def run_worker(store_url: str, redis_url: str, *, processor: str = "default", models_dir: Path | None = None,
               batch_size: int = 64, lease_seconds: float = 120.0, namespace: str = "langnghe",
               exit_when_idle: bool = False, commit_log: Path | None = None) -> dict[str, Any]:
    """Run one NLP worker until SIGTERM/SIGINT (or until idle); returns its stats."""
    from langnghe.config import get_settings

    models = models_dir or get_settings().models_dir
    store = open_store_url(store_url)
    leases = RedisLeases.from_url(redis_url, namespace=namespace, lease_seconds=lease_seconds)
    on_commit = None
    if commit_log is not None:
        def on_commit(ids: list[str], _path: Path = commit_log) -> None:
            with open(_path, "a", encoding="utf-8") as fh:
                fh.write("".join(f"{i}\n" for i in ids))
                fh.flush()
                os.fsync(fh.fileno())
    vector_db = None
    if processor == "default":
        from nlp.pipeline import vector_db_for

        vector_db = vector_db_for(store)
    worker = NLPWorker(store, leases, load_processor(processor, models, batch_size, vector_db),
                       batch_size=batch_size, on_commit=on_commit)

    def stop(signum: int, frame: Any) -> None:
        log.info("signal %d: finishing the current batch", signum)
        worker.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker %s on %s, leases in %s", worker.name, redact(store_url), redact(redis_url))
    try:
        stats = worker.run(exit_when_idle=exit_when_idle)
    finally:
        if vector_db is not None:
            vector_db.close()
        store.close()
    data = asdict(stats)
    data.pop("committed_ids")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    env_store = os.environ.get("LANGNGHE_STORE_URL")
    env_redis = os.environ.get("LANGNGHE_REDIS_URL")

    p = sub.add_parser("worker", help="an NLP worker sharing the work through Redis leases")
    p.add_argument("--store", default=env_store, required=env_store is None)
    p.add_argument("--redis", default=env_redis, required=env_redis is None)
    p.add_argument("--processor", default="default")
    p.add_argument("--models-dir", type=Path, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lease", type=float, default=120.0, help="visibility timeout of a claim (s)")
    p.add_argument("--namespace", default="langnghe")
    p.add_argument("--exit-when-idle", action="store_true")
    p.add_argument("--commit-log", type=Path, default=None, help="append committed ids to this file")

    p = sub.add_parser("migrate", help="copy the SQLite store into a search engine (resumable)")
    p.add_argument("--from", dest="source", required=True, type=Path)
    p.add_argument("--to", dest="target", default=env_store, required=env_store is None)
    p.add_argument("--batch-size", type=int, default=2000)
    p.add_argument("--restart", action="store_true", help="ignore the saved position")

    p = sub.add_parser("crawl", help="a crawler sharing its queue and dupefilter through Redis")
    p.add_argument("--store", default=env_store, required=env_store is None)
    p.add_argument("--redis", default=env_redis, required=env_redis is None)
    p.add_argument("--feeds", default="", help="comma-separated feed URLs to seed the shared queue")
    p.add_argument("--key", default="langnghe:news")
    p.add_argument("--idle", type=float, default=10.0, help="stop after this long with an empty queue (s)")
    p.add_argument("--flush", action="store_true", help="clear the shared queue and dupefilter first")
    p.add_argument("--settings-json", default=None, help="Scrapy settings overrides, as a JSON object")

    p = sub.add_parser("scheduler", help="re-rank periodically (one scheduler at a time)")
    p.add_argument("--store", default=env_store, required=env_store is None)
    p.add_argument("--redis", default=env_redis, required=env_redis is None)
    p.add_argument("--interval", type=float, default=900.0, help="seconds between rankings")
    p.add_argument("--days", type=int, default=7)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "worker":
        result = run_worker(args.store, args.redis, processor=args.processor, models_dir=args.models_dir,
                            batch_size=args.batch_size, lease_seconds=args.lease, namespace=args.namespace,
                            exit_when_idle=args.exit_when_idle, commit_log=args.commit_log)
    elif args.command == "migrate":
        from storage.migrate import migrate

        stats = migrate(args.source, args.target, batch_size=args.batch_size, restart=args.restart)
        result = asdict(stats) | {"docs_per_second": round(stats.docs_per_second, 1)}
    elif args.command == "scheduler":
        from workers.scheduler import run_scheduler

        store = open_store_url(args.store)
        leases = RedisLeases.from_url(args.redis, lease_seconds=max(600.0, args.interval))
        stop_event = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: stop_event.set())
        try:
            result = {"rounds": run_scheduler(store, leases, interval=args.interval, days=args.days,
                                              stop=stop_event)}
        finally:
            store.close()
    else:
        from workers.distributed_crawl import run_distributed_crawl

        feeds = [f for f in args.feeds.split(",") if f]
        overrides = json.loads(args.settings_json) if args.settings_json else None
        result = run_distributed_crawl(args.redis, args.store, feeds, key=args.key, idle_seconds=args.idle,
                                       flush=args.flush, settings=overrides)
    json.dump(result, sys.stdout, default=str, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
