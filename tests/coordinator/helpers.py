"""Test helpers working against either `Metadata` (direct) or `CoordinatorClient` (HTTP):
both implement the same API."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from coordinator.db import Database
from coordinator.names import chunk_key
from coordinator.records import ChunkRef, CoordinatorError, KeyInfo, ObjectInfo
from coordinator.service import Metadata


@contextlib.asynccontextmanager
async def open_meta(database_url: str, **settings: Any) -> AsyncIterator[Metadata]:
    db = Database(database_url)
    await db.create_schema()
    try:
        yield Metadata(db, **settings)
    finally:
        await db.close()


def health_doc(
    i: int, *, host: str | None = None, rack: str | None = None, free: int = 10 << 30, pool: str = "hot"
) -> dict[str, Any]:
    return {
        "node_id": f"node-{i:02d}",
        "address": f"http://127.0.0.1:{20000 + i}",
        "pool": pool,
        "host": host,
        "rack": rack,
        "capacity_bytes": 20 << 30,
        "used_bytes": (20 << 30) - free,
        "free_bytes": free,
        "shard_count": 0,
        "volumes": 1,
        "garbage_bytes": 0,
        "last_scrub": None,
    }


async def register_nodes(meta: Metadata, count: int = 14, **kw: Any) -> None:
    for i in range(count):
        doc = health_doc(i, **kw)
        doc.pop("volumes"), doc.pop("garbage_bytes"), doc.pop("last_scrub")
        await meta.heartbeat(**doc)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


async def chunk_refs(api: Any, tenant_id: str, pieces: list[bytes]) -> list[ChunkRef]:
    """Ask for placement and pretend the gateway wrote every shard (checksums are fake)."""
    plans = await api.place_chunks(tenant_id, [(sha(p), len(p)) for p in pieces])
    refs = []
    for p, plan in zip(pieces, plans, strict=True):
        shards = plan.shards
        for s in shards:
            s.checksum = s.checksum or hashlib.md5(f"{plan.chunk_key}.{s.index}".encode()).hexdigest()
        refs.append(
            ChunkRef(
                sha256=plan.sha256,
                chunk_key=plan.chunk_key,
                size=len(p),
                enc_size=len(p) + 16,
                key_id="m1",
                shards=shards,
            )
        )
    return refs


async def put_object(
    api: Any,
    key: KeyInfo,
    bucket: str,
    name: str,
    pieces: list[bytes],
    content_type: str | None = "application/octet-stream",
    metadata: dict[str, str] | None = None,
) -> ObjectInfo:
    size = sum(len(p) for p in pieces)
    upload = await api.begin_upload(
        key.tenant_id,
        key.user_id,
        bucket,
        name,
        "put",
        size,
        content_type,
        metadata or {},
        {},
        "STANDARD",
        None,
    )
    refs = await chunk_refs(api, key.tenant_id, pieces)
    return await api.finalize_put(upload.upload_id, size, md5(b"".join(pieces)), refs, {})


async def setup_tenant(
    meta: Any,
    user: str = "alice",
    tenant: str = "acme",
    bucket: str | None = "bkt",
    quota_bytes: int | None = None,
) -> KeyInfo:
    """A user with a key (and a bucket) on the queries or over the API (CoordinatorClient)."""
    if quota_bytes is not None:
        await meta.create_tenant(tenant, quota_bytes)
    await meta.create_user(tenant, user)
    key = await meta.create_key(user)
    if bucket:
        await meta.create_bucket(key.tenant_id, key.user_id, bucket, "us-east-1")
    return key


def inline_ref(tenant_id: str, data: bytes) -> ChunkRef:
    """What the gateway sends for a small object: the ciphertext (here: data + a fake tag)."""
    digest = sha(data)
    cipher = data + hashlib.md5(data).digest()  # 16 bytes standing in for the GCM tag
    return ChunkRef(
        sha256=digest,
        chunk_key=chunk_key(tenant_id, digest),
        size=len(data),
        enc_size=len(cipher),
        key_id="m1",
        inline=base64.b64encode(cipher).decode(),
    )


async def put_inline(api, key, bucket: str, name: str, data: bytes, **kw):
    return await api.put_object(
        key.tenant_id,
        key.user_id,
        bucket,
        name,
        len(data),
        md5(data),
        kw.get("content_type", "text/plain"),
        kw.get("metadata", {}),
        {},
        "STANDARD",
        [inline_ref(key.tenant_id, data)],
        {},
        kw.get("condition"),
        write_id=kw.get("write_id"),
        retried=kw.get("retried", False),
    )


async def rows(meta: Metadata, table: sa.Table, *where: Any) -> list[Any]:
    """Every row of `table` matching `where`, read straight from the metadata database."""

    async def q(conn):
        return list((await conn.execute(sa.select(table).where(*where))).all())

    return await meta.db.read(q)


async def expect(code: str, coro) -> CoordinatorError:
    """Await `coro`, which must fail with the CoordinatorError `code`; that error."""
    with pytest.raises(CoordinatorError) as info:
        await coro
    assert info.value.code == code, info.value
    return info.value
