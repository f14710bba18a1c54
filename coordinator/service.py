"""`Metadata`: every coordinator operation, straight on the database (no HTTP).

It implements every call declared in coordinator/api.py with the declared signature (the
HTTP layer, coordinator/http.py, serves them; tests/coordinator/test_api_contract.py checks
the two agree), plus what only the coordinator itself uses (node registry, health). Tests
call these methods directly to exercise the queries fast.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from config.settings import CoordinatorSection
from coordinator.accounts import AccountQueries
from coordinator.buckets import BucketQueries
from coordinator.db import Database
from coordinator.erase import EraseQueries
from coordinator.gc import GcQueries
from coordinator.health import HealthQueries
from coordinator.identity import IdentityQueries
from coordinator.product_rules import ProductRules
from coordinator.scans import ScanQueries
from coordinator.sharing import SharingQueries
from coordinator.workqueue import WorkQueueQueries


class Metadata(
    IdentityQueries, HealthQueries, BucketQueries, EraseQueries, AccountQueries, SharingQueries,
    WorkQueueQueries, ScanQueries, GcQueries,
):
    """Implements coordinator.api.CoordinatorAPI, AdminAPI and ProductAPI, plus the node registry."""

    @classmethod
    def from_settings(cls, db: Database, settings: CoordinatorSection) -> Metadata:
        meta = cls(
            db,
            node_down_after_s=settings.node_down_after_s,
            upload_expiry_s=settings.upload_expiry_s,
            dedup_scope=settings.dedup_scope,
            default_quota_bytes=settings.default_quota_bytes,
            gc_grace_s=settings.gc_grace_s,
            scan_new_objects=settings.scan_new_objects,
            node_repair_after_s=settings.node_repair_after_s,
            tier_min_bytes=settings.tier_min_bytes,
        )
        meta.rules = ProductRules.from_section(settings)
        return meta

    async def health(self) -> dict[str, Any]:
        """Database reachable and node counts; raises if the database does not answer."""
        await self.db.read(lambda conn: conn.execute(sa.select(1)))
        counts = await self.node_counts()
        return {
            "status": "ok",
            "db": "ok",
            "backend": self.db.dialect,
            "nodes_up": counts.get("up", 0),
            "nodes_down": counts.get("down", 0),
        }
