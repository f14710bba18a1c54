"""The `shardbox` command: start one role, run everything on one machine, or administer.

Role entry points are imported lazily so `shardbox node` never loads gateway or
coordinator code (and their dependencies) into a storage node process.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from config.settings import ConfigError, load_config
from shardbox.client import USER_COMMANDS  # the user client (click) parses those; the rest is parsed here


def _run_role(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.role)
    if args.role == "node":
        from node.main import rebuild_index, run
        from node.store import StoreLocked
        try:
            if args.action == "rebuild-index":
                print(json.dumps(rebuild_index(cfg), indent=2))
            else:
                run(cfg)
        except StoreLocked as exc:
            print(f"shardbox: {exc}", file=sys.stderr)
            return 2
    elif args.role == "coordinator":
        from coordinator.main import run
        from coordinator.migrate import SchemaTooNew
        try:
            run(cfg)
        except SchemaTooNew as exc:
            print(f"shardbox: {exc}", file=sys.stderr)
            return 2
    elif args.role == "worker":
        from workers.main import run
        run(cfg)
    else:
        from gateway.main import run
        run(cfg)
    return 0


def _run_up(args: argparse.Namespace) -> int:
    from shardbox.up import UpOptions, run_up
    return run_up(UpOptions(data_dir=Path(args.data), port=args.port, database_url=args.database_url,
                            host=args.host, scanner=args.scanner, clamd=args.clamd))


def _run_admin(args: argparse.Namespace) -> int:
    from shardbox.admin import run_admin
    return run_admin(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shardbox", description="Self-hosted, erasure-coded file store "
                                     "with an S3 gateway.",
                                     epilog="Using a server: " + ", ".join(USER_COMMANDS)
                                     + " (shardbox COMMAND --help).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for role, text in (("node", "run a storage node"), ("coordinator", "run the metadata coordinator"),
                       ("gateway", "run an S3 gateway"),
                       ("worker", "run a background worker (scans, garbage collection, expiry)")):
        p = sub.add_parser(role, help=text)
        p.add_argument("--config", required=True, help="TOML config file")
        if role == "node":
            p.add_argument("action", nargs="?", choices=["serve", "rebuild-index"], default="serve",
                           help="serve (default) or rebuild the LMDB index from the volume files")
        else:
            p.set_defaults(action="serve")
        p.set_defaults(func=_run_role, role=role)

    up = sub.add_parser("up", help="run a coordinator, 14 nodes and a gateway on this machine")
    up.add_argument("--data", default="./data", help="data directory (default ./data)")
    up.add_argument("--port", type=int, default=None,
                    help="gateway port (default 9000, or the port of the previous run); the coordinator "
                         "and nodes take the next 15 ports")
    up.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--database-url", default=None,
                    help="metadata database (default SQLite in DATA; e.g. postgresql+asyncpg://u@h/db)")
    up.add_argument("--scanner", choices=["auto", "clamd", "builtin", "none"], default=None,
                    help="malware scanner (default auto: clamd when one answers, else builtin; remembered)")
    up.add_argument("--clamd", default=None, metavar="SOCKET|HOST:PORT",
                    help="the clamd to use (default: Debian's socket if it answers; remembered)")
    up.set_defaults(func=_run_up)

    admin = sub.add_parser("admin", help="manage users and access keys of a running cluster")
    where = admin.add_mutually_exclusive_group()
    where.add_argument("--data", default=None, help="data directory of a `shardbox up` (default ./data)")
    where.add_argument("--config", default=None, help="any role's TOML config of a cluster")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True, metavar="WHAT")
    user = admin_sub.add_parser("user", help="users").add_subparsers(dest="action", required=True)
    user_add = user.add_parser("add", help="create a user and print its first access key")
    user_add.add_argument("name")
    user_add.add_argument("--tenant", default="default", help="tenant (created if missing)")
    user_add.add_argument("--admin", action="store_true", help="make the user an administrator")
    user_add.add_argument("--password", action="store_true",
                          help="set a password for the web page and the product API (asked for on a "
                               "terminal, else read as one line from standard input)")
    user_pw = user.add_parser("password", help="set or reset a user's password (ends their web sessions)")
    user_pw.add_argument("name")
    user.add_parser("list", help="list users")
    key = admin_sub.add_parser("key", help="access keys").add_subparsers(dest="action", required=True)
    key_add = key.add_parser("add", help="create another access key for a user")
    key_add.add_argument("user")
    from shardbox.admin_pipeline import add_commands as add_pipeline_commands
    add_pipeline_commands(admin_sub)
    admin.set_defaults(func=_run_admin)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    if first in USER_COMMANDS:
        from shardbox.client.commands import main as user_main
        return user_main(argv)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"shardbox: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
