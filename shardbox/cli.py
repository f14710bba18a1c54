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
    from shardbox.up import UpOptions, parse_pool, run_up
    pools = dict(parse_pool(spec) for spec in args.pool or [])
    return run_up(UpOptions(data_dir=Path(args.data), port=args.port, database_url=args.database_url,
                            host=args.host, nodes=args.nodes, pools=pools or None,
                            scanner=args.scanner, clamd=args.clamd))


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

    up = sub.add_parser("up", help="run a coordinator, storage nodes, a worker and a gateway on this machine")
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
    up.add_argument("--nodes", type=int, default=None, metavar="N",
                    help="STANDARD storage nodes (default 14, at least 14; remembered for the next run)")
    up.add_argument("--pool", action="append", metavar="NAME=N",
                    help="add a pool of N nodes of a colder tier, e.g. --pool cold=14 or --pool ia=14 "
                         "(repeatable; remembered)")
    up.set_defaults(func=_run_up)

    from shardbox.admin import add_parser as add_admin_parser
    add_admin_parser(sub)
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
