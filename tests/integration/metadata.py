"""Read-only peeks into a running cluster's metadata database, for assertions on state
that the S3 API does not show (refcounts)."""

from __future__ import annotations

import asyncio
import json
import sqlite3

from tests.integration.cluster import Cluster


def query(cluster: Cluster, sql: str) -> list[tuple]:
    state = json.loads((cluster.data_dir / "config" / "cluster.json").read_text())
    url = state.get("database_url")
    if not url:
        con = sqlite3.connect(f"file:{cluster.data_dir / 'meta' / 'shardbox.db'}?mode=ro", uri=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    import asyncpg

    async def run() -> list[tuple]:
        con = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return [tuple(r) for r in await con.fetch(sql)]
        finally:
            await con.close()

    return asyncio.run(run())


def chunk_refcounts(cluster: Cluster) -> dict[str, int]:
    return dict(query(cluster, "SELECT chunk_key, refcount FROM chunks WHERE refcount > 0"))
