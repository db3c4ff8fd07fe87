"""Command-line account management and the scheduler, for `langnghe` (langnghe/cli.py wires them):

    langnghe user create --email a@b.vn --role administrator      # password: prompt or env
    langnghe user create --email q7@b.vn --role area --area fd:quan-7
    langnghe user list
    langnghe user password --email a@b.vn
    langnghe user deactivate --email a@b.vn
    langnghe user api-key --email a@b.vn --name prometheus
    langnghe schedule --every 30 --feeds feeds.txt                 # crawl→process→rank→alerts loop

The password is read from LANGNGHE_NEW_PASSWORD when set (scripts, CI), else prompted twice
without echo — never taken from the command line, so it stays out of shell history and logs.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
import time
from datetime import timedelta
from pathlib import Path

from api.auth.config import load_secret_key
from api.auth.models import Role
from api.auth.store import AccountError, AccountsStore

PASSWORD_ENV = "LANGNGHE_NEW_PASSWORD"


def open_accounts(db: Path | None = None) -> AccountsStore:
    """The accounts in the database file `db` (default: the configured one)."""
    from langnghe.config import get_settings

    settings = get_settings()
    path = db or settings.database
    return AccountsStore(path, load_secret_key(settings, path.parent))


def read_password() -> str:
    value = os.environ.get(PASSWORD_ENV)
    if value:
        return value
    if not sys.stdin.isatty():
        raise SystemExit(f"Đặt mật khẩu qua biến môi trường {PASSWORD_ENV} / set {PASSWORD_ENV}")
    first = getpass.getpass("Mật khẩu / password: ")
    if first != getpass.getpass("Nhập lại / again: "):
        raise SystemExit("Hai mật khẩu không khớp / the passwords differ")
    return first


def _areas() -> object:
    from api.deps import load_area_catalog

    return load_area_catalog()


def cmd_user(args: argparse.Namespace) -> int:
    """`langnghe user …`"""
    accounts = open_accounts(args.db)
    try:
        if args.user_command == "create":
            try:
                created = accounts.create_user(args.email, read_password(), Role(args.role), name=args.name or "",
                                            department=args.department, area_id=args.area, areas=_areas())
            except AccountError as exc:
                print(str(exc), file=sys.stderr)
                return 2
            print(f"Đã tạo tài khoản #{created.id} {created.email} ({created.role.value}) / account created")
        elif args.user_command == "list":
            for u in accounts.list_users():
                scope = u.department or u.area_id or ""
                print(f"{u.id}\t{u.email}\t{u.role.value}\t{scope}\t{'active' if u.active else 'inactive'}")
        else:
            user = accounts.get_user_by_email(args.email)
            if user is None:
                print(f"Không có tài khoản / no account {args.email}", file=sys.stderr)
                return 2
            if args.user_command == "password":
                try:
                    accounts.set_password(user.id, read_password())
                except AccountError as exc:
                    print(str(exc), file=sys.stderr)
                    return 2
                print("Đã đổi mật khẩu; mọi phiên đã kết thúc / password changed, sessions ended")
            elif args.user_command == "deactivate":
                accounts.update_user(user.id, active=False)
                print("Đã khóa tài khoản / account deactivated")
            elif args.user_command == "api-key":
                key, _ = accounts.create_api_key(user.id, args.name or "cli")
                print(key)  # shown once, to stdout only
    finally:
        accounts.close()
    return 0


def add_user_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `user` and its subcommands to the `langnghe` parser."""
    user = sub.add_parser("user", help="manage accounts (create, list, password, deactivate, api-key)")
    user.add_argument("--db", type=Path, default=None, help="database file (default: the configured one)")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    create = user_sub.add_parser("create", help="create an account (password: prompt or $LANGNGHE_NEW_PASSWORD)")
    create.add_argument("--email", required=True)
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", default="")
    create.add_argument("--department", default=None, help="department code, for --role department")
    create.add_argument("--area", default=None, help="area id (w:…, fd:…), for --role area")
    user_sub.add_parser("list", help="list accounts")
    for name, text in (("password", "set a new password"), ("deactivate", "deactivate an account"),
                       ("api-key", "create an API key (printed once)")):
        p = user_sub.add_parser(name, help=text)
        p.add_argument("--email", required=True)
        if name == "api-key":
            p.add_argument("--name", default="cli")
    user.set_defaults(func=cmd_user)


DEMO_ADMIN = "admin@demo.langnghe"


def ensure_demo_admin(db_path: Path) -> str:
    """For `langnghe demo`: when the database has no account, create an administrator with a
    random password and return the lines to print (the only place the password appears)."""
    accounts = open_accounts(db_path)
    try:
        if accounts.count_users() == 0:
            password = secrets.token_urlsafe(12)
            accounts.create_user(DEMO_ADMIN, password, Role.administrator, name="Demo")
            return (f"Đăng nhập / log in: e-mail {DEMO_ADMIN}  mật khẩu / password {password}\n"
                    "(tài khoản demo, chỉ hiện một lần / demo account, shown once; "
                    "`langnghe user password --email … --db …` đổi mật khẩu)")
        return ("Đăng nhập bằng tài khoản đã có / log in with an existing account "
                "(`langnghe user list --db …`)")
    finally:
        accounts.close()


def cmd_schedule(args: argparse.Namespace) -> int:
    """`langnghe schedule`: run crawl → process → rank → alerts every N minutes until stopped."""
    from api.scheduler import Job, Scheduler, default_stages, pipeline_runner
    from langnghe.config import get_settings
    from storage.sqlite import SQLiteStore

    settings = get_settings()
    db = args.db or settings.database
    feeds = [line.strip() for line in Path(args.feeds).read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")] if args.feeds else []
    store = SQLiteStore(db)
    accounts = open_accounts(db)
    scheduler = Scheduler(lock_path=db.parent / "pipeline.lock")
    stages = default_stages(store, db, feeds, args.models_dir or settings.models_dir, accounts=accounts,
                            areas=_areas())
    scheduler.add(Job("pipeline", pipeline_runner(stages), every=timedelta(minutes=args.every)),
                  run_at_start=True)
    scheduler.start()
    print(f"Lịch chạy mỗi {args.every} phút / running every {args.every} min (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.stop()
        accounts.close()
        store.close()
    return 0


def add_schedule_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("schedule", help="run crawl → process → rank → alerts on a schedule")
    p.add_argument("--db", type=Path, default=None)
    p.add_argument("--models-dir", type=Path, default=None)
    p.add_argument("--feeds", default=None, help="file with one RSS feed URL a line")
    p.add_argument("--every", type=int, default=30, help="minutes between runs (default 30)")
    p.set_defaults(func=cmd_schedule)
