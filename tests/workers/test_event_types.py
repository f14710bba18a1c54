"""Every event type the coordinator writes to the outbox has a handler in workers/: an event
nobody claims would stay in the outbox forever (and show as outbox lag)."""

from __future__ import annotations

import re
from pathlib import Path

from workers.main import HANDLERS

COORDINATOR = Path(__file__).resolve().parents[2] / "coordinator"


def test_every_emitted_event_type_has_a_handler():
    emitted = set()
    for path in COORDINATOR.glob("*.py"):
        emitted |= set(re.findall(r"""\bemit\(\s*conn,\s*["']([a-z_.]+)["']""", path.read_text()))
    assert {"object.finalized", "object.deleted", "object.quarantined"} <= emitted
    handled = {t for h in HANDLERS for t in h.event_types}
    assert emitted - handled == set()
