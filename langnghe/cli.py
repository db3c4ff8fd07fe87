"""The `langnghe` command."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from langnghe.config import REPO_ROOT, get_settings

if TYPE_CHECKING:
    from storage.base import Store

log = logging.getLogger("langnghe")


def _store(db: Path | None) -> Store:
    """The store of mentions: `--db` when given, else the configured one (LANGNGHE_STORE_URL or SQLite)."""
    from storage.factory import open_configured_store, open_store_url

    return open_store_url(_db_path(db)) if db else open_configured_store()


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the local demo site, crawl it for real, process, rank, and serve the dashboard."""
    from langnghe import jobs
    from langnghe.demo_site import DAYS, build_site, serve_directory, source_names
    from langnghe.records import utcnow

    data_dir: Path = args.data_dir
    site_root = data_dir / "demo-site"
    if site_root.exists():
        shutil.rmtree(site_root)
    site_root.mkdir(parents=True)
    try:
        site = serve_directory(site_root, port=args.site_port)
    except OSError as exc:
        print(f"Không mở được cổng {args.site_port} cho trang demo ({exc}); dùng --site-port.", file=sys.stderr)
        return 2
    base_url = f"http://127.0.0.1:{site.server_address[1]}"
    now = utcnow()
    feeds = build_site(site_root, base_url, now)
    print(f"Demo news site: {base_url}/ ({len(feeds)} RSS feeds)")
    db_path = data_dir / "demo.sqlite3"
    store = _store(db_path)
    started = time.perf_counter()
    report = jobs.run_once(store, db_path, feeds, args.models_dir, now=now, days=DAYS,
                           sources=source_names(base_url), crawl_settings=jobs.LOCAL_SITE_SETTINGS)
    site.shutdown()
    print(f"Crawled: {json.dumps(report.crawl, ensure_ascii=False)}")
    print(f"Processed {report.processed} mentions; stored {store.count_mentions()} in {db_path}")
    print(f"Ranking: {json.dumps(report.ranking, ensure_ascii=False, default=str)}")
    print(f"Pipeline took {time.perf_counter() - started:.1f}s")
    if args.no_serve:
        store.close()
        return 0
    from api.cli_accounts import ensure_demo_admin

    print(ensure_demo_admin(db_path))
    return _serve(store, args.host, args.port)


def _serve(store: Store, host: str, port: int) -> int:
    import uvicorn

    from api.logs import configure_logging
    from api.main import create_app

    configure_logging()
    print(f"Dashboard: http://{host}:{port}/   API: http://{host}:{port}/docs", flush=True)
    uvicorn.run(create_app(store), host=host, port=port, log_level="warning")
    store.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    return _serve(_store(args.db), args.host, args.port)


def _db_path(db: Path | None) -> Path:
    path = db or get_settings().database
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def cmd_crawl(args: argparse.Namespace) -> int:
    """News: RSS feeds, sitemaps, section pages, or sources named in the registry."""
    from crawlers.run import run_crawl

    if not (args.feeds or args.sitemaps or args.sections or args.source):
        print("crawl: give --feeds, --sitemaps, --sections or --source", file=sys.stderr)
        return 2
    stats = run_crawl(args.feeds, _db_path(args.db), jobdir=args.jobdir, sitemaps=args.sitemaps,
                      sections=args.sections, sources=args.source)
    print(json.dumps(stats.to_dict(), ensure_ascii=False, default=str))
    return 0


def cmd_crawl_forum(args: argparse.Namespace) -> int:
    """Forum threads (XenForo): every post a mention."""
    from crawlers.run import run_crawl

    if not (args.source or args.thread):
        print("crawl-forum: give --source or --thread", file=sys.stderr)
        return 2
    stats = run_crawl([], _db_path(args.db), jobdir=args.jobdir, spider="forum", sources=args.source,
                      threads=args.thread)
    print(json.dumps(stats.to_dict(), ensure_ascii=False, default=str))
    return 0


def cmd_social(args: argparse.Namespace) -> int:
    """Facebook pages / YouTube through their official APIs (credentials from LANGNGHE_* settings)."""
    from crawlers.social.facebook import crawl_facebook
    from crawlers.social.youtube import crawl_youtube

    collect = crawl_facebook if args.platform == "facebook" else crawl_youtube
    stats = collect(str(_db_path(args.db)))
    print(json.dumps(stats.to_dict(), ensure_ascii=False, default=str))
    return 0


def cmd_import_hotline(args: argparse.Namespace) -> int:
    """Reports exported from the city's 1022 portal (CSV / JSON / JSONL)."""
    from crawlers.hotline import main as hotline_main

    return hotline_main([str(args.file), "--db", str(_db_path(args.db))])


# Scale-out commands handed whole to workers.cli (their options are documented there and in docs/scale.md)
WORKER_COMMANDS = {"worker": "worker", "migrate": "migrate", "crawl-distributed": "crawl", "scheduler": "scheduler"}


def cmd_workers(args: argparse.Namespace) -> int:
    """Scale-out commands (workers.cli): worker, migrate, distributed crawl, scheduler."""
    from workers.cli import main as workers_main

    return workers_main([WORKER_COMMANDS[args.command], *args.rest])


def cmd_sources(args: argparse.Namespace) -> int:
    from crawlers.sources import main as sources_main

    return sources_main(["--json"] if args.json else [])


def cmd_process(args: argparse.Namespace) -> int:
    from langnghe import jobs

    store = _store(args.db)
    count = jobs.process(store, args.models_dir, batch_size=args.batch_size)
    print(f"processed {count} mentions")
    store.close()
    return 0


def cmd_rank(args: argparse.Namespace) -> int:
    """Group issues and store the top-10s; --incremental handles only mentions without an issue yet."""
    from nlp.discovery import DiscoveryConfig
    from nlp.ranking import update_incremental, update_rankings

    store = _store(args.db)
    config = DiscoveryConfig(backend=args.backend)
    if args.incremental:
        summary = update_incremental(store, config=config)
    else:
        summary = update_rankings(store, days=args.days, config=config)
    print(json.dumps(summary, ensure_ascii=False, default=str))
    store.close()
    return 0


def cmd_emerging(args: argparse.Namespace) -> int:
    """Issues whose volume jumps against their baseline today (each raised once)."""
    from dataclasses import asdict

    from nlp.alerts_events import detect_emerging

    store = _store(args.db)
    events = detect_emerging(store)
    print(json.dumps([asdict(e) for e in events], ensure_ascii=False, default=str, indent=1))
    store.close()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from langnghe import jobs

    db = _db_path(args.db)
    store = _store(args.db)
    report = jobs.run_once(store, db, args.feeds, args.models_dir, days=args.days, jobdir=args.jobdir)
    print(json.dumps(vars(report), ensure_ascii=False, default=str))
    store.close()
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from nlp.classify import classify_file

    try:
        count = classify_file(args.input, args.output, models_dir=args.models_dir, batch_size=args.batch_size,
                              backend=args.backend)
    except (ValueError, FileNotFoundError) as exc:
        print(f"classify: {exc}", file=sys.stderr)
        return 2
    print(f"classified {count} mentions → {args.output}", file=sys.stderr)
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from crawlers.extraction import ExtractionError, extract_article

    try:
        article = extract_article(args.file.read_bytes(), args.url)
    except ExtractionError as exc:
        print(f"extract: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"extract: {exc}", file=sys.stderr)
        return 2
    record = {
        "url": article.url, "title": article.title,
        "published_at": article.published_at.isoformat() if article.published_at else None,
        "authors": article.authors, "tags": article.tags, "section": article.section,
        "lead": article.lead, "text": article.text, "language": article.language,
    }
    print(json.dumps(record, ensure_ascii=False, indent=2))
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    """Train or evaluate the classifiers (nlp.training); eval checks the floors of models/baseline.json."""
    from nlp.training import main as training_main

    if not (args.shared / "data").is_dir():
        print(f"{args.model_command}: {args.shared}/data not found (the labelled data sets); pass --shared",
              file=sys.stderr)
        return 2
    if args.model_command == "adapt":
        from nlp.adapter import ADAPTER_FILE
        from nlp.adapter import main as adapter_main

        return adapter_main(["train", "--shared", str(args.shared), "--out", str(args.models_dir / ADAPTER_FILE),
                             "--epochs", str(args.epochs)])
    if args.model_command == "accents":
        from nlp.accents import main as accents_main

        code = accents_main(["build", "--shared", str(args.shared)])
        return code or accents_main(["eval", "--shared", str(args.shared)])
    flags = []
    if getattr(args, "update_baseline", False):
        flags.append("--update-baseline")
    if getattr(args, "allow_lower", False):
        flags += ["--allow-lower", "--reason", args.reason or ""]
    return training_main([args.model_command, str(args.shared), str(args.models_dir), *flags])


def build_parser() -> argparse.ArgumentParser:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="langnghe", description="Lắng Nghe — lắng nghe ý kiến người dân")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", type=Path, default=None, help="SQLite file (default: $LANGNGHE_DB_PATH or var/)")
        return p

    def with_models(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--models-dir", type=Path, default=settings.models_dir)
        return p

    p = with_models(sub.add_parser("demo", help="crawl, process and rank the bundled demo site, then serve it"))
    p.add_argument("--data-dir", type=Path, default=settings.data_dir)
    p.add_argument("--site-port", type=int, default=8765, help="port of the local demo news site")
    p.add_argument("--host", default=settings.host)
    p.add_argument("--port", type=int, default=settings.port)
    p.add_argument("--no-serve", action="store_true", help="stop after ranking")
    p.set_defaults(func=cmd_demo)

    p = with_db(sub.add_parser("serve", help="serve the API and dashboard"))
    p.add_argument("--host", default=settings.host)
    p.add_argument("--port", type=int, default=settings.port)
    p.set_defaults(func=cmd_serve)

    p = with_db(sub.add_parser("crawl", help="crawl news: feeds, sitemaps, section pages or registry sources"))
    p.add_argument("--feeds", nargs="*", default=[])
    p.add_argument("--sitemaps", nargs="*", default=None)
    p.add_argument("--sections", nargs="*", default=None)
    p.add_argument("--source", nargs="*", default=None, help="source names from the registry (langnghe sources)")
    p.add_argument("--jobdir", type=Path, default=None, help="Scrapy JOBDIR for a resumable crawl")
    p.set_defaults(func=cmd_crawl)

    p = with_db(sub.add_parser("crawl-forum", help="crawl forum threads (each post a mention)"))
    p.add_argument("--source", nargs="*", default=None, help="forum sources from the registry, e.g. voz.vn")
    p.add_argument("--thread", nargs="*", default=None, help="thread URLs")
    p.add_argument("--jobdir", type=Path, default=None)
    p.set_defaults(func=cmd_crawl_forum)

    p = with_db(sub.add_parser("social", help="collect Facebook pages or YouTube through their official APIs"))
    p.add_argument("platform", choices=["facebook", "youtube"])
    p.set_defaults(func=cmd_social)

    p = with_db(sub.add_parser("import-hotline", help="import a 1022 portal export (CSV/JSON)"))
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_import_hotline)

    for name, text in (
        ("worker", "an NLP worker sharing the work through Redis leases (docs/scale.md)"),
        ("migrate", "copy the SQLite store into a search engine: --from PATH --to URL"),
        ("crawl-distributed", "a crawler sharing its queue and duplicate filter through Redis"),
        ("scheduler", "re-rank periodically, one scheduler at a time (Redis lock)"),
    ):
        p = sub.add_parser(name, help=text, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=cmd_workers)

    p = sub.add_parser("sources", help="list the source registry")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sources)

    p = with_models(with_db(sub.add_parser("process", help="enrich stored mentions not yet processed")))
    p.add_argument("--batch-size", type=int, default=settings.batch_size)
    p.set_defaults(func=cmd_process)

    p = with_db(sub.add_parser("rank", help="group issues and compute the top-10 per area"))
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--incremental", action="store_true", help="only mentions without an issue yet (fast)")
    p.add_argument("--backend", choices=["auto", "bertopic", "fallback", "lexical"], default="auto",
                   help="issue discovery: BERTopic (extra 'topics'), embeddings, or words only")
    p.set_defaults(func=cmd_rank)

    p = with_db(sub.add_parser("emerging", help="detect emerging issues (volume jumps) for today"))
    p.set_defaults(func=cmd_emerging)

    p = with_models(with_db(sub.add_parser("run", help="crawl + process + rank once")))
    p.add_argument("--feeds", nargs="*", default=[])
    p.add_argument("--jobdir", type=Path, default=None)
    p.add_argument("--days", type=int, default=7)
    p.set_defaults(func=cmd_run)

    p = with_models(sub.add_parser("classify", help="classify a JSONL file of texts"))
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--batch-size", type=int, default=settings.batch_size)
    p.add_argument("--backend", choices=["linear", "hybrid", "encoder"], default=None,
                   help="heads: n-gram + e5 embeddings (default), n-gram only (fast), or e5 only (docs/models.md)")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("extract", help="extract an article from a saved HTML page")
    p.add_argument("--url", required=True)
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_extract)

    shared_default = REPO_ROOT.parent / "shared"

    def model_parser(p: argparse.ArgumentParser, command: str) -> None:
        with_models(p)
        p.add_argument("--shared", type=Path, default=shared_default, help="the labelled data (../shared)")
        if command == "eval":
            p.add_argument("--update-baseline", action="store_true", help="raise the floors to the figures")
            p.add_argument("--allow-lower", action="store_true", help="accept lower floors (needs --reason)")
            p.add_argument("--reason", default=None)
        if command == "adapt":
            p.add_argument("--epochs", type=float, default=1.0)
        p.set_defaults(func=cmd_model, model_command=command)

    model_parser(sub.add_parser("train", help="train the classifiers (= model train)"), "train")
    model_parser(sub.add_parser("eval", help="evaluate the classifiers against the floors (= model eval)"), "eval")

    from api.cli_accounts import add_schedule_parser, add_user_parser

    add_user_parser(sub)
    add_schedule_parser(sub)

    model = sub.add_parser("model", help="train or evaluate the models")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    model_parser(model_sub.add_parser("train", help="train the classifiers"), "train")
    model_parser(model_sub.add_parser("eval", help="evaluate; --update-baseline raises the floors"), "eval")
    model_parser(model_sub.add_parser("adapt", help="fine-tune the encoder adapter (CUDA when present, else "
                                      "the CPU; needs the transformer extra; then run `model train`)"), "adapt")
    model_parser(model_sub.add_parser("accents", help="rebuild the tone-mark restoration model "
                                      "(nlp/data/accents.npz) from VNTC and report its accuracy"), "accents")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in WORKER_COMMANDS:  # options belong to workers.cli, --help included
        return cmd_workers(argparse.Namespace(command=argv[0], rest=argv[1:]))
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
