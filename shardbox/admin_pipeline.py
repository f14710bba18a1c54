"""`shardbox admin events ...` (and the scan commands): the background pipeline's admin side."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from coordinator.client import CoordinatorClient


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + "Z"


async def events_command(client: CoordinatorClient, args: argparse.Namespace) -> int:
    if args.action == "parked":
        events, after = [], 0
        while True:
            page = await client.list_parked_events(limit=1000, after_id=after)
            events += page
            if len(page) < 1000:
                break
            after = page[-1].id
        if args.json:
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
    if args.action == "replay":
        if bool(args.ids) == bool(args.all):
            print("shardbox admin events replay: give event ids or --all (not both)", file=sys.stderr)
            return 2
        count = await client.replay_events(None if args.all else args.ids, actor="admin-cli")
        if args.json:
            print(json.dumps({"replayed": count}))
        else:
            print(f"{count} event{'s' if count != 1 else ''} back in the queue")
        return 0 if count or args.all else 1
    return 2


def _event_doc(e: Any) -> dict[str, Any]:
    return {"id": e.id, "type": e.event_type, "payload": e.payload, "attempts": e.attempts,
            "created_at": e.created_at, "parked_at": e.parked_at, "last_error": e.last_error}
