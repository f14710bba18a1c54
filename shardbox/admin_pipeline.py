"""`shardbox admin events|scan|audit ...`: the background pipeline's admin commands.

    events parked [--json]                  events parked after too many failed attempts
    events replay ID... | --all [--json]    put them back in the queue
    scan [--json]                           scan backlog and the latest rescans
    scan --rescan [--since DATE] [--json]   scan ready objects again (after signature updates)
    scan gate BUCKET on|off                 authenticated S3 reads of scanning objects wait too
    audit BUCKET KEY [--version ID] [--json]  who downloaded, scanned, quarantined a file
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coordinator.client import CoordinatorClient


def add_scan_commands(words: Any, common: argparse.ArgumentParser) -> None:
    """`scan` and `audit` under `shardbox admin` (shardbox/admin.py builds the rest; `common`
    holds the options accepted anywhere: --data, --config, --json, ...)."""
    scan = words.add_parser("scan", parents=[common], help="malware scans: backlog, rescans, per-bucket gate")
    scan.add_argument("--rescan", action="store_true",
                      help="scan ready objects again in the background (after signature updates)")
    scan.add_argument("--since", type=_date, default=None, metavar="DATE",
                      help="with --rescan: only objects created since DATE (YYYY-MM-DD[THH:MM[:SS]], UTC)")
    scan_sub = scan.add_subparsers(dest="action", required=False, metavar="gate")
    gate = scan_sub.add_parser("gate", parents=[common],
                               help="whether authenticated S3 reads of a bucket's objects wait for their "
                                    "scan (425) like anonymous ones")
    gate.add_argument("bucket")
    gate.add_argument("state", choices=["on", "off"])

    audit = words.add_parser("audit", parents=[common],
                             help="audit of one file: downloads, scans, quarantine")
    audit.add_argument("bucket")
    audit.add_argument("key")
    audit.add_argument("--version", default=None, help="one version id (default: every version the key has)")


def _date(value: str) -> float:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {value!r} (YYYY-MM-DD[THH:MM:SS])") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))  # absent unless given (shardbox/admin.py _common)


def _when(t: float | None) -> str:
    return "-" if not t else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + "Z"


async def run_command(client: CoordinatorClient, args: argparse.Namespace) -> int:
    if args.admin_command == "events":
        return await _events(client, args)
    if args.admin_command == "scan":
        return await _scan(client, args)
    return await _audit(client, args)


async def _events(client: CoordinatorClient, args: argparse.Namespace) -> int:
    if args.action == "parked":
        events, after = [], 0
        while True:
            page = await client.list_parked_events(limit=1000, after_id=after)
            events += page
            if len(page) < 1000:
                break
            after = page[-1].id
        if _json(args):
            print(json.dumps({"parked": [_event_doc(e) for e in events]}, indent=2))
            return 0
        if not events:
            print("no parked events")
            return 0
        print(f"{'ID':>8}  {'TYPE':<22} {'ATTEMPTS':>8}  {'PARKED':<20}  LAST ERROR")
        for e in events:
            error = (e.last_error or "").replace("\n", " ")
            print(f"{e.id:>8}  {e.event_type:<22} {e.attempts:>8}  {_when(e.parked_at):<20}  {error[:120]}")
            print(f"{'':>8}  {json.dumps(e.payload, sort_keys=True)[:160]}")
        return 0
    if bool(args.ids) == bool(args.all):
        print("shardbox admin events replay: give event ids or --all (not both)", file=sys.stderr)
        return 2
    count = await client.replay_events(None if args.all else args.ids, actor="admin-cli")
    if _json(args):
        print(json.dumps({"replayed": count}))
    else:
        print(f"{count} event{'s' if count != 1 else ''} back in the queue")
    return 0 if count or args.all else 1


async def _scan(client: CoordinatorClient, args: argparse.Namespace) -> int:
    if args.action == "gate":
        info = await client.set_bucket_scan_gate(args.bucket, args.state == "on", actor="admin-cli")
        doc = {"bucket": info.name, "scan_gate": info.scan_gate}
        print(json.dumps(doc) if _json(args) else
              f"bucket {info.name}: authenticated S3 reads of objects being scanned "
              + ("wait for the scan (425)" if info.scan_gate else "are served (read-after-write)"))
        return 0
    if args.since is not None and not args.rescan:
        print("shardbox admin scan: --since goes with --rescan", file=sys.stderr)
        return 2
    if args.rescan:
        job = await client.request_rescan(args.since, actor="admin-cli")
        if _json(args):
            print(json.dumps({"rescan": _rescan_doc(job)}))
        else:
            since = f"created since {_when(job.since)}" if job.since else "all"
            print(f"rescan {job.id} requested: ready objects ({since}) are scanned again in the background")
        return 0
    status = await client.pipeline_status()
    rescans = await client.list_rescans(10)
    if _json(args):
        print(json.dumps({"scanning": status.scanning, "scanning_oldest_s": status.scanning_oldest_s,
                          "rescans": [_rescan_doc(r) for r in rescans]}, indent=2))
        return 0
    print(f"waiting for their scan: {status.scanning} objects"
          + (f" (oldest {status.scanning_oldest_s:.0f} s)" if status.scanning else ""))
    for r in rescans:
        state = f"finished {_when(r.finished_at)}" if r.finished_at else "running"
        print(f"rescan {r.id}: since {_when(r.since) if r.since else 'the beginning'}, requested "
              f"{_when(r.requested_at)} by {r.requested_by}: {r.scanned} scanned, {r.found} found, {state}")
    return 0


async def _audit(client: CoordinatorClient, args: argparse.Namespace) -> int:
    entries = await client.object_audit(args.bucket, args.key, version_id=args.version)
    if _json(args):
        print(json.dumps({"audit": [_audit_doc(e) for e in entries]}, indent=2))
        return 0
    if not entries:
        print("no audit entries")
        return 0
    for e in entries:
        line = f"{_when(e.at)}  {e.action:<18} {e.actor:<34} {e.client_addr or '-':<16}"
        if e.action == "object.scan":
            line += f" {e.detail.get('result')} ({e.detail.get('scanner')})"
        print(line)
        if e.action == "object.quarantine":
            print(f"{'':>22}{e.detail.get('result')}: {e.detail.get('downloads', 0)} earlier downloads")
            for d in e.detail.get("downloaders", []):
                print(f"{'':>24}{_when(d.get('at'))}  {d.get('actor')}  {d.get('client_addr') or '-'}  "
                      f"({d.get('via')})")
    return 0


def _event_doc(e: Any) -> dict[str, Any]:
    return {"id": e.id, "type": e.event_type, "payload": e.payload, "attempts": e.attempts,
            "created_at": e.created_at, "parked_at": e.parked_at, "last_error": e.last_error}


def _rescan_doc(r: Any) -> dict[str, Any]:
    return {"id": r.id, "since": r.since, "requested_at": r.requested_at, "requested_by": r.requested_by,
            "scanned": r.scanned, "found": r.found, "finished_at": r.finished_at}


def _audit_doc(e: Any) -> dict[str, Any]:
    return {"at": e.at, "actor": e.actor, "action": e.action, "target": e.target, "detail": e.detail,
            "client_addr": e.client_addr, "version_id": e.version_id}
