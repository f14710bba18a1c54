"""`shardbox admin ...`: operating a cluster through the coordinator's admin API.

Where: `--data DIR` (a `shardbox up` directory: its config/cluster.json), `--config FILE` (any
role's config of a cluster), or `--coordinator URL` with the cluster credential from
`--secret-file FILE` or $SHARDBOX_CLUSTER_SECRET. These options and `--json` are accepted
before or after the command words (`shardbox admin user add bob --tenant acme --data DIR`),
because people type them where they think of them.

Every command prints a human answer, or with `--json` one JSON document. `admin health`
exits 0 (healthy), 1 (degraded) or 2 (data at risk) so it can drive monitoring; other
commands exit 0 on success and 1 on an error (printed to stderr), 2 on bad usage.

Adding a command: a function `async def cmd(client, args) -> int`, its parser in
`add_parser`, and an entry in COMMANDS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from config.settings import ConfigError, load_config

HEALTH_EXIT = {"healthy": 0, "degraded": 1, "at_risk": 2}
Command = Callable[[Any, argparse.Namespace], Awaitable[int]]


# ---- where the coordinator is --------------------------------------------------------------------

def _target(args: argparse.Namespace) -> tuple[str, str]:
    """(coordinator base URL, cluster secret) for this invocation."""
    data, config = getattr(args, "data", None), getattr(args, "config", None)
    url = getattr(args, "coordinator", None)
    if sum(x is not None for x in (data, config, url)) > 1:
        raise ConfigError("give one of --data, --config and --coordinator")
    if url is not None:
        return url.rstrip("/"), _secret(args)
    if config:
        cfg = load_config(config)
        if cfg.coordinator is not None:
            return f"http://{cfg.coordinator.listen}", cfg.cluster.secret
        for section in (cfg.gateway, getattr(cfg, "worker", None), cfg.node):
            if section is not None and getattr(section, "coordinator", None):
                return section.coordinator, cfg.cluster.secret
        raise ConfigError(f"{config}: no coordinator address in this config")
    root = Path(data or "./data")
    state_file = root / "config" / "cluster.json"
    if not state_file.exists():
        raise ConfigError(f"{state_file} not found: is {root} the --data directory of a `shardbox up`? "
                          "(or name a cluster with --config FILE or --coordinator URL)")
    state = json.loads(state_file.read_text())
    return f"http://{state['host']}:{int(state['port']) + 1}", state["secret"]


def _secret(args: argparse.Namespace) -> str:
    path = getattr(args, "secret_file", None)
    if path:
        try:
            secret = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"--secret-file {path}: {exc.strerror}") from None
    else:
        secret = os.environ.get("SHARDBOX_CLUSTER_SECRET", "").strip()
    if len(secret) < 16:
        raise ConfigError("--coordinator needs the cluster credential: --secret-file FILE or "
                          "$SHARDBOX_CLUSTER_SECRET (the [cluster] secret of the cluster's configs)")
    return secret


def read_password(prompt: str = "password: ") -> str:
    """A new password: asked twice on a terminal, else one line of standard input."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("again: ") != first:
            raise ConfigError("the two passwords differ")
    else:
        first = sys.stdin.readline().rstrip("\r\n")
    if not first:
        raise ConfigError("the password must not be empty")
    return first


def _password_hash() -> str:
    from gateway.api.passwords import hash_password

    try:
        return hash_password(read_password())
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


# ---- output ---------------------------------------------------------------------------------------

def _size(n: int | float | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def _ago(ts: float | None, now: float) -> str:
    if not ts:
        return "never"
    s = max(0.0, now - ts)
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= span:
            return f"{s / span:.0f}{unit} ago"
    return f"{s:.0f}s ago"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(headers), *(line(r) for r in rows)])


def _emit(args: argparse.Namespace, doc: Any, human: Callable[[], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(doc, indent=2, sort_keys=True, default=str))
    else:
        print(human())


def _parse_bytes(text: str) -> int:
    """`500G`, `1.5TiB`, `1000000` -> bytes (K/M/G/T/P are powers of 1024, as `admin usage` shows)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?B)?\s*", text, re.IGNORECASE)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500G, 2T, 1048576)")
    power = "BKMGTP".index(m.group(2).upper() or "B")
    return int(float(m.group(1)) * (1024 ** power))


def _month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text):
        raise argparse.ArgumentTypeError(f"not a month: {text!r} (YYYY-MM)")
    return text


# ---- commands -------------------------------------------------------------------------------------

async def user_add(client: Any, args: argparse.Namespace) -> int:
    password_hash = _password_hash() if args.password else None
    user = await client.create_user(args.tenant, args.name, is_admin=args.admin)
    key = await client.create_key(args.name)
    if password_hash is not None:
        await client.set_password(args.name, password_hash)
    doc = {"user": user, "access_key": key.access_key, "secret_key": key.secret_key,
           "password": password_hash is not None}
    _emit(args, doc, lambda: f"user {args.name} (tenant {args.tenant}) created"
                             + (" with a password" if password_hash else "")
                             + f"\naccess key: {key.access_key}\nsecret key: {key.secret_key}")
    return 0


async def user_password(client: Any, args: argparse.Namespace) -> int:
    await client.set_password(args.name, _password_hash())
    _emit(args, {"user": args.name, "password": True},
          lambda: f"password of {args.name} set; their web sessions have ended")
    return 0


async def user_list(client: Any, args: argparse.Namespace) -> int:
    users = await client.list_users()

    def human() -> str:
        return _table(["USER", "TENANT", "ADMIN", "ACCESS KEYS"],
                      [[u["name"], u.get("tenant_name", ""), "yes" if u.get("is_admin") else "",
                        ", ".join(u.get("access_keys", []))] for u in users])

    _emit(args, users, human)
    return 0


async def user_erase(client: Any, args: argparse.Namespace) -> int:
    if not args.yes:
        print(f"shardbox admin: erasing {args.name} deletes their objects, versions, links, grants and keys "
              "for good; run again with --yes", file=sys.stderr)
        return 1
    doc = await client.erase_user(args.name)
    _emit(args, doc, lambda: f"user {args.name} erased: " + ", ".join(f"{v} {k}" for k, v in doc.items()
                                                                      if isinstance(v, int)))
    return 0


async def key_add(client: Any, args: argparse.Namespace) -> int:
    key = await client.create_key(args.user)
    _emit(args, {"access_key": key.access_key, "secret_key": key.secret_key, "user": args.user},
          lambda: f"access key: {key.access_key}\nsecret key: {key.secret_key}")
    return 0


async def quota_set(client: Any, args: argparse.Namespace) -> int:
    doc = await client.set_quota(args.tenant, args.bytes)
    _emit(args, doc, lambda: f"tenant {args.tenant}: quota {_size(doc['quota_bytes'])} "
                             f"({_size(doc['used_bytes'])} used, {_size(doc['reserved_bytes'])} reserved)")
    return 0


async def health(client: Any, args: argparse.Namespace) -> int:
    doc = await client.cluster_health()
    now = doc["at"]

    def human() -> str:
        rows = [[n["node_id"], n["state"], n["pool"], n["storage_class"],
                 "/".join(x for x in (n["rack"], n["host"]) if x) or "-",
                 f"{_size(n['used_bytes'])} / {_size(n['capacity_bytes'])}", str(n["shard_count"]),
                 _ago(n["last_seen"], now), _ago(n["last_scrub"], now),
                 str(n["corrupt_shards"] or "")]
                for n in doc["nodes"] if n["state"] != "removed"]
        table = _table(["NODE", "STATE", "POOL", "CLASS", "DOMAIN", "USED / CAPACITY", "SHARDS", "HEARTBEAT",
                        "SCRUB", "CORRUPT"], rows)
        hist = doc["chunks_by_surviving_shards"]
        repair = doc["repair"]
        lag = doc["outbox_lag_s"]
        lines = [
            table,
            "",
            "chunks by readable shards: " + "  ".join(f"{k.replace('under_10', '<10')}: {v}"
                                                     for k, v in hist.items()),
            f"repair backlog: {repair['backlog_shards']} shards of {repair['backlog_chunks']} chunks "
            f"({repair['in_progress_shards']} in progress, {repair['backing_off_shards']} backing off); "
            f"rate {repair['shards_per_s']:.2f} shards/s, {_size(repair['bytes_per_s'])}/s "
            f"over the last {repair['window_s'] / 60:.0f} min",
            f"scan backlog: {doc['scan_backlog']} objects   gc backlog: {doc['gc_backlog_chunks']} chunks   "
            f"outbox lag: {'none' if lag is None else f'{lag:.0f}s'}   "
            f"parked events: {doc['parked_events']}",
            f"status: {doc['status'].replace('_', ' ')}",
        ]
        return "\n".join(lines)

    _emit(args, doc, human)
    return HEALTH_EXIT[doc["status"]]


async def nodes_drain(client: Any, args: argparse.Namespace) -> int:
    doc = await client.drain_node(args.node_id)
    _emit(args, doc, lambda: f"node {args.node_id} draining: {doc['queued_shards']} shards queued to move; "
                             "`shardbox admin repair status` shows progress")
    return 0


async def nodes_remove(client: Any, args: argparse.Namespace) -> int:
    doc = await client.remove_node(args.node_id, force=args.force)
    _emit(args, doc, lambda: f"node {args.node_id} removed: "
                             + (f"{doc['queued_shards']} shards queued for rebuild" if doc["queued_shards"]
                                else "it held no shards"))
    return 0


async def repair_status(client: Any, args: argparse.Namespace) -> int:
    doc = await client.repair_status()

    def human() -> str:
        lines = [f"backlog: {doc['backlog_shards']} shards of {doc['backlog_chunks']} chunks "
                 f"({doc['in_progress_shards']} in progress, {doc['backing_off_shards']} backing off)"]
        lines += [f"  {reason}: {v['shards']} shards, {v['chunks']} chunks" for reason, v in
                  sorted(doc["by_reason"].items())]
        lines.append(f"last {doc['window_s'] / 60:.0f} min: {doc['repaired_shards']} shards of "
                     f"{doc['repaired_chunks']} chunks, {_size(doc['repaired_bytes'])} "
                     f"({doc['shards_per_s']:.2f} shards/s)")
        for e in doc["errors"]:
            lines.append(f"  failing: {e['chunk_key'][:16]}.{e['index']} x{e['attempts']}: {e['error']}")
        return "\n".join(lines)

    _emit(args, doc, human)
    return 0


async def usage(client: Any, args: argparse.Namespace) -> int:
    rows = await client.usage_report(month=args.month, tenant_name=args.tenant)

    def human() -> str:
        table = [[r["tenant"], str(r["objects"]), _size(r["logical_bytes"]),
                  ", ".join(f"{k} {_size(v)}" for k, v in sorted(r["logical_bytes_by_class"].items())) or "-",
                  _size(r["physical_bytes"]), _size(r["egress_bytes"]), _size(r["ingress_bytes"]),
                  str(r["api_requests"]), str(r["scan_calls"]), _size(r["quota_bytes"])] for r in rows]
        month = rows[0]["month"] if rows else (args.month or time.strftime("%Y-%m", time.gmtime()))
        return f"usage for {month} (stored bytes: now)\n" + _table(
            ["TENANT", "OBJECTS", "LOGICAL", "BY CLASS", "PHYSICAL", "EGRESS", "INGRESS", "REQUESTS", "SCANS",
             "QUOTA"], table)

    _emit(args, rows, human)
    return 0


async def pipeline(client: Any, args: argparse.Namespace) -> int:
    from shardbox.admin_pipeline import run_command

    return await run_command(client, args)


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("user", "add"): user_add,
    ("user", "list"): user_list,
    ("user", "password"): user_password,
    ("user", "erase"): user_erase,
    ("key", "add"): key_add,
    ("quota", "set"): quota_set,
    ("health", None): health,
    ("nodes", "drain"): nodes_drain,
    ("nodes", "remove"): nodes_remove,
    ("repair", "status"): repair_status,
    ("usage", None): usage,
    ("events", "parked"): pipeline,
    ("events", "replay"): pipeline,
    ("scan", None): pipeline,
    ("scan", "gate"): pipeline,
    ("audit", None): pipeline,
}


# ---- parsing ------------------------------------------------------------------------------------

def _common() -> argparse.ArgumentParser:
    """Options accepted before and after the command words (SUPPRESS: a later, absent copy of
    an option does not overwrite one given earlier)."""
    p = argparse.ArgumentParser(add_help=False)
    s = argparse.SUPPRESS
    p.add_argument("--data", default=s, metavar="DIR", help="`shardbox up` data directory (default ./data)")
    p.add_argument("--config", default=s, metavar="FILE", help="any role's TOML config of a cluster")
    p.add_argument("--coordinator", default=s, metavar="URL", help="coordinator base URL of a cluster")
    p.add_argument("--secret-file", default=s, metavar="FILE",
                   help="with --coordinator: file holding the cluster credential ([cluster] secret)")
    p.add_argument("--json", action="store_true", default=s, help="print one JSON document")
    return p


def add_parser(sub: argparse._SubParsersAction) -> None:
    common = _common()
    admin = sub.add_parser("admin", parents=[common],
                           help="operate a cluster: health, nodes, repair, users, quotas, usage")
    words = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")

    def group(name: str, text: str) -> argparse._SubParsersAction:
        return words.add_parser(name, parents=[common], help=text).add_subparsers(
            dest="action", required=True, metavar="ACTION")

    def leaf(parent: argparse._SubParsersAction, name: str, text: str) -> argparse.ArgumentParser:
        return parent.add_parser(name, parents=[common], help=text)

    user = group("user", "users")
    p = leaf(user, "add", "create a user and print its first access key")
    p.add_argument("name")
    p.add_argument("--tenant", default="default", help="tenant (created if missing)")
    p.add_argument("--admin", action="store_true", help="make the user an administrator")
    p.add_argument("--password", action="store_true",
                   help="set a password for the web page and the product API (asked for on a terminal, "
                        "else read as one line from standard input)")
    p = leaf(user, "password", "set or reset a user's password (ends their web sessions)")
    p.add_argument("name")
    leaf(user, "list", "list users")
    p = leaf(user, "erase", "GDPR erasure: the user's objects, versions, links, grants and keys")
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="really erase")

    key = group("key", "access keys")
    p = leaf(key, "add", "create another access key for a user")
    p.add_argument("user")

    quota = group("quota", "tenant quotas")
    p = leaf(quota, "set", "set a tenant's quota")
    p.add_argument("tenant")
    p.add_argument("bytes", type=_parse_bytes, help="e.g. 500G, 2T or a byte count")

    words.add_parser("health", parents=[common],
                     help="nodes and data health; exit 0 healthy, 1 degraded, 2 data at risk")

    nodes = group("nodes", "storage nodes")
    p = leaf(nodes, "drain", "move every shard off a node (placement stops using it)")
    p.add_argument("node_id")
    p = leaf(nodes, "remove", "forget a node; its shards are rebuilt elsewhere at once")
    p.add_argument("node_id")
    p.add_argument("--force", action="store_true", help="remove even an up node still holding shards")

    repair = group("repair", "shard repair")
    leaf(repair, "status", "repair backlog, rate and failures")

    events_words = group("events", "background work events")
    leaf(events_words, "parked", "list events parked after too many failed attempts")
    p = leaf(events_words, "replay", "put parked events back in the queue")
    p.add_argument("ids", nargs="*", type=int, help="event ids (see `events parked`)")
    p.add_argument("--all", action="store_true", help="every parked event")

    from shardbox.admin_pipeline import add_scan_commands
    add_scan_commands(words, common)

    p = words.add_parser("usage", parents=[common], help="per-tenant usage for billing")
    p.add_argument("--month", type=_month, default=None, help="YYYY-MM (default: this month, UTC)")
    p.add_argument("--tenant", default=None, help="one tenant only")
    admin.set_defaults(func=run_admin)


async def _admin(args: argparse.Namespace) -> int:
    from coordinator.client import CoordinatorClient
    from coordinator.records import CoordinatorError

    command = COMMANDS[(args.admin_command, getattr(args, "action", None))]
    url, secret = _target(args)
    client = CoordinatorClient(url, secret)
    try:
        return await command(client, args)
    except CoordinatorError as exc:
        if exc.code == "ServiceUnavailable" and "unreachable" in exc.message:
            print(f"shardbox admin: cannot reach the coordinator at {url}", file=sys.stderr)
        else:
            print(f"shardbox admin: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await client.close()


def run_admin(args: argparse.Namespace) -> int:
    args.json = getattr(args, "json", False)
    return asyncio.run(_admin(args))
