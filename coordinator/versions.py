"""The version model: how a write or a delete changes the versions of one key.

Every rule of S3 versioning lives here (docs/internals.md "Object versions"):

- A key's versions are ordered by `seq` (newest highest), assigned under the key's lock as
  max(previous newest + 1, now in microseconds): commit order, also across clock steps. The
  newest version has `is_latest` (one per key, a unique index says so); it may be a delete
  marker, and then the key reads as absent.
- Version ids are 32 hex digits: `seq` (16) then 64 random bits, so an id names a position
  in the key's order even after that version is deleted (ListObjectVersions markers).
- A bucket whose versioning is `Enabled` keeps every write as a new version. Never-versioned
  and `Suspended` buckets write the key's *null* version (S3 shows its id as "null"):
  writing it again replaces it, wherever it stands among the key's versions. A
  never-versioned bucket thus holds one null version per key, as before versions existed.
- DELETE without a version id: a never-versioned bucket removes the null version; an
  `Enabled` one adds a delete marker; a `Suspended` one removes the null version and adds
  a null delete marker. DELETE of a version id removes that version (or marker) for good;
  if it was the latest, the newest remaining version becomes the latest.
- Removing a version is the only way its chunk references and its size in the tenant's
  quota are released: `remove_version` returns the references its DELETE ... RETURNING
  found and whether the row was still there, so two racing removals release them once.
- Retries are safe: a version remembers what wrote it (`write_id`: the multipart upload it
  completes, or the SDK's invocation id of a PUT, copy or DELETE). A retried request (its
  answer was lost) that finds, under the key's lock, the version or delete marker its first
  attempt made (same write_id, same ETag) gets that one back instead of making another.

Writers of one key serialise on `Database.lock_name("object:bucket/key")` (an advisory lock
on PostgreSQL; SQLite serialises every writer anyway).
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator import chunkrefs, quota
from coordinator.base import QueryBase
from coordinator.db import RetryTransaction, fast_read, is_unique_violation
from coordinator.errors import error
from coordinator.events import emit, record_audit
from coordinator.names import bare_etag
from coordinator.records import DeleteResult, WriteCondition
from coordinator.schema import object_chunks, object_parts, object_versions

NULL = "null"  # the version id S3 shows for a null version, and accepts to name it
_VERSION_ID = re.compile(r"^[0-9a-f]{32}$")

_ov = object_versions.c
_oc = object_chunks.c
_op = object_parts.c
# Built once (bind parameters for values): see coordinator/chunkrefs.py on why.
_DROP_MANIFEST = sa.delete(object_chunks).where(_oc.version_id == sa.bindparam("v")).returning(_oc.chunk_key)
_DROP_PARTS = sa.delete(object_parts).where(_op.version_id == sa.bindparam("v"))
_DROP_VERSION = sa.delete(object_versions).where(_ov.version_id == sa.bindparam("v"))
_INSERT_VERSION = object_versions.insert()
_INSERT_MANIFEST = object_chunks.insert()
_INSERT_PARTS = object_parts.insert()
_KEY = (_ov.bucket == sa.bindparam("bucket"), _ov.key == sa.bindparam("key"))
# Fast on SQLite: HEAD ?versionId=null is what rclone sends for every object it checks.
_NULL_ROW = fast_read(sa.select(object_versions).where(*_KEY, _ov.null_version))
_VERSION_ROW = fast_read(sa.select(object_versions).where(*_KEY, _ov.version_id == sa.bindparam("v")))
_SET_LATEST = (
    sa.update(object_versions)
    .where(_ov.version_id == sa.bindparam("v"))
    .values(is_latest=sa.bindparam("latest", type_=sa.Boolean))
)
_NEWEST = sa.select(_ov.version_id).where(*_KEY).order_by(_ov.seq.desc()).limit(1)
_WRITTEN_BY = sa.select(object_versions).where(*_KEY, _ov.write_id == sa.bindparam("w"))


def new_version_id(seq: int) -> str:
    return f"{seq:016x}{secrets.token_hex(8)}"


def check_version_id(version_id: str) -> None:
    """"null" or 32 lowercase hex digits (ids of either form this model ever issued)."""
    if version_id != NULL and not _VERSION_ID.match(version_id):
        raise error("InvalidArgument", "Invalid version id specified")


def seq_in_id(version_id: str) -> int | None:
    """The position a version id names, for an id this model issued; None for a null or
    pre-versioning (uuid) id, whose position only its row knows."""
    if not _VERSION_ID.match(version_id):
        return None
    return int(version_id[:16], 16)


def s3_version_id(row: Any) -> str:
    return NULL if row.null_version else row.version_id


@dataclass
class NewVersion:
    """Everything needed to install a version: its row values, manifest and parts.

    `values` holds every column but version_id, seq, null_version and is_latest, which
    `install_version` decides under the key's lock."""

    values: dict[str, Any]
    manifest: list[tuple[str, int]]  # (chunk_key, size) in order
    parts: list[dict[str, Any]] = field(default_factory=list)  # object_parts rows without version_id
    condition: WriteCondition | None = None  # checked against the latest version, under its lock
    versioning: str | None = None  # the bucket's versioning state
    retried: bool = False  # a retry: answer the version values["write_id"] made, if it exists
    existing: Any = None  # set by install_version: that version (nothing was installed)


def current(latest: Any) -> Any:
    """The latest version as readers see it: None if there is none, or it is a delete marker."""
    if latest is None or latest.delete_marker or latest.status == "deleted":
        return None
    return latest


def check_condition(condition: WriteCondition, current_row: Any) -> None:
    """S3's answers to a conditional write whose precondition no longer holds at commit."""
    if condition.if_none_match and current_row is not None:
        raise error("PreconditionFailed", "If-None-Match: the key already has a current version")
    if condition.if_match is not None:
        if current_row is None:
            raise error("NoSuchKey", "If-Match: the key has no current version")
        wanted = condition.if_match.strip()
        if wanted != "*" and bare_etag(wanted) != bare_etag(current_row.etag):
            raise error("PreconditionFailed", "If-Match: the current version has another ETag")


class VersionQueries(QueryBase):
    async def lock_key(self, conn: AsyncConnection, bucket: str, key: str) -> Any:
        """Take the key's lock; returns its latest version row (any status, markers too) or None."""
        await self.db.lock_name(conn, f"object:{bucket}/{key}")
        return await self.latest_row(conn, bucket, key, lock=True)

    async def written_by(self, conn: AsyncConnection, bucket: str, key: str, write_id: str | None) -> Any:
        """The version (or delete marker) of the key that `write_id` made, or None."""
        if not write_id:
            return None
        return (await conn.execute(_WRITTEN_BY, {"bucket": bucket, "key": key, "w": write_id})).first()

    async def version_row(self, conn: AsyncConnection, bucket: str, key: str, version_id: str) -> Any:
        """The version S3 names `version_id` ("null": the null version) of the key, or None."""
        check_version_id(version_id)
        if version_id == NULL:
            return (await conn.execute(_NULL_ROW, {"bucket": bucket, "key": key})).first()
        return (await conn.execute(_VERSION_ROW, {"bucket": bucket, "key": key, "v": version_id})).first()

    async def remove_version(self, conn: AsyncConnection, row: Any) -> tuple[list[str], bool]:
        """Delete a version's rows: (the chunk keys it referenced, one per reference; whether
        this call removed it). A version another transaction removed first gives ([], False)."""
        removed = await conn.execute(_DROP_MANIFEST, {"v": row.version_id})
        keys = [r.chunk_key for r in removed]
        if row.part_count:
            await conn.execute(_DROP_PARTS, {"v": row.version_id})
        gone = (await conn.execute(_DROP_VERSION, {"v": row.version_id})).rowcount == 1
        return (keys, True) if gone else ([], False)

    async def _make_room(
        self, conn: AsyncConnection, latest: Any, bucket: str, key: str, versioning: str | None,
        deltas: Counter[str],
    ) -> tuple[Any, dict[str, Any]]:
        """Before a new latest version of the key (an object or a delete marker) goes in:
        remove the null version it replaces, if any (its references go into `deltas`), and
        take the latest flag off the previous latest. Returns (the removed row or None, the
        version_id / seq / null_version / is_latest values of the new version)."""
        null = versioning != "Enabled"
        replaced = None
        if null and latest is not None:
            replaced = latest if latest.null_version else (
                await conn.execute(_NULL_ROW, {"bucket": bucket, "key": key})).first()
        if replaced is not None:
            keys, removed = await self.remove_version(conn, replaced)
            for k in keys:
                deltas[k] -= 1
            if not removed:
                replaced = None
        if latest is not None and (replaced is None or replaced.version_id != latest.version_id):
            await conn.execute(_SET_LATEST, {"v": latest.version_id, "latest": False})
        now_us = int(self.now() * 1_000_000)
        seq = max(latest.seq + 1, now_us) if latest is not None else now_us
        version = {"version_id": new_version_id(seq), "seq": seq, "null_version": null, "is_latest": True}
        return replaced, version

    async def _insert_version(self, conn: AsyncConnection, values: dict[str, Any]) -> None:
        try:
            await conn.execute(_INSERT_VERSION, values)
        except sa.exc.IntegrityError as exc:
            if is_unique_violation(exc):
                raise RetryTransaction() from None  # a concurrent writer installed this key first
            raise error("NoSuchBucket", f"the bucket {values['bucket']!r} does not exist") from None

    async def install_version(
        self, conn: AsyncConnection, new: NewVersion, deltas: Counter[str]
    ) -> tuple[Any, list[dict[str, Any]]]:
        """Make `new` the key's latest version; returns (the null version it replaced or None,
        manifest rows for write_manifest). Fills in new.values' version columns.

        Adds to `deltas` the references the new version takes and the replaced one drops; the
        caller applies them and settles the quota (size - replaced size; it knows the reservation).
        """
        v = new.values
        latest = await self.lock_key(conn, v["bucket"], v["key"])
        if new.retried:
            done = await self.written_by(conn, v["bucket"], v["key"], v.get("write_id"))
            if done is not None and done.etag == v["etag"]:
                new.existing = done
                return None, []
        if new.condition is not None:
            check_condition(new.condition, current(latest))
        replaced, version = await self._make_room(conn, latest, v["bucket"], v["key"], new.versioning, deltas)
        v.update(version, delete_marker=False)
        rows = []
        offset = 0
        for seq, (ck, size) in enumerate(new.manifest):
            rows.append(
                {"version_id": v["version_id"], "seq": seq, "chunk_key": ck, "offset": offset, "size": size}
            )
            offset += size
            deltas[ck] += 1
        await self._insert_version(conn, v)
        return replaced, rows

    async def write_manifest(
        self, conn: AsyncConnection, new: NewVersion, rows: list[dict[str, Any]]
    ) -> None:
        """Insert the manifest (in batches) and the part table of a new version."""
        for i in range(0, len(rows), 2000):
            await conn.execute(_INSERT_MANIFEST, rows[i : i + 2000])
        if new.parts:
            version_id = new.values["version_id"]
            await conn.execute(_INSERT_PARTS, [{"version_id": version_id, **p} for p in new.parts])

    async def _release(self, conn: AsyncConnection, row: Any, deltas: Counter[str], actor: str) -> None:
        """Settle a removed version: its chunk references, its quota, audit and outbox."""
        now = self.now()
        await chunkrefs.apply_deltas(self.db, conn, deltas, {}, self.scope(row.tenant_id), now)
        if row.size:
            await quota.adjust(conn, row.tenant_id, used_delta=-row.size)
        payload = {
            "version_id": row.version_id,
            "bucket": row.bucket,
            "key": row.key,
            "tenant_id": row.tenant_id,
            "size": row.size,
            "delete_marker": bool(row.delete_marker),
        }
        await record_audit(conn, actor, "object.delete", f"{row.bucket}/{row.key}", payload, at=now)
        await emit(conn, "object.deleted", payload, at=now)

    async def delete_key(
        self, conn: AsyncConnection, bucket_row: Any, owner_id: str, key: str,
        write_id: str | None = None, retried: bool = False,
    ) -> DeleteResult:
        """DELETE without a version id, as the bucket's versioning state has it (module doc)."""
        bucket = bucket_row.name
        latest = await self.lock_key(conn, bucket, key)
        deltas: Counter[str] = Counter()
        again = latest is not None and latest.delete_marker and write_id and latest.write_id == write_id
        if retried and again:
            return DeleteResult(key=key, deleted=True, version_id=s3_version_id(latest), delete_marker=True)
        if bucket_row.versioning is None:
            if latest is not None:
                keys, removed = await self.remove_version(conn, latest)
                if removed:
                    for k in keys:
                        deltas[k] -= 1
                    await self._release(conn, latest, deltas, owner_id)
            return DeleteResult(key=key, deleted=True)
        replaced, version = await self._make_room(conn, latest, bucket, key, bucket_row.versioning, deltas)
        if replaced is not None:
            await self._release(conn, replaced, deltas, owner_id)
        now = self.now()
        marker = {
            **version,
            "bucket": bucket,
            "key": key,
            "tenant_id": bucket_row.tenant_id,
            "owner_id": owner_id,
            "size": 0,
            "etag": "",
            "content_type": None,
            "metadata": {},
            "headers": {},
            "storage_class": "STANDARD",
            "status": "ready",
            "checksums": {},
            "part_count": 0,
            "created_at": now,
            "last_modified": now,
            "last_access": None,
            "delete_marker": True,
            "write_id": write_id,
        }
        await self._insert_version(conn, marker)
        payload = {"version_id": marker["version_id"], "bucket": bucket, "key": key,
                   "tenant_id": bucket_row.tenant_id}
        await record_audit(conn, owner_id, "object.delete_marker", f"{bucket}/{key}", payload, at=now)
        await emit(conn, "object.delete_marker", payload, at=now)
        return DeleteResult(
            key=key, deleted=True, version_id=s3_version_id(RowValues(marker)), delete_marker=True
        )

    async def delete_version(
        self, conn: AsyncConnection, bucket: str, owner_id: str, key: str, version_id: str
    ) -> DeleteResult:
        """Remove one version (or delete marker) for good; a version that is not there is not an
        error (S3 answers 204). If it was the latest, the newest remaining one takes its place."""
        check_version_id(version_id)
        await self.lock_key(conn, bucket, key)
        row = await self.version_row(conn, bucket, key, version_id)
        if row is None:
            return DeleteResult(key=key, deleted=True, version_id=version_id)
        keys, removed = await self.remove_version(conn, row)
        if removed:
            deltas: Counter[str] = Counter()
            for k in keys:
                deltas[k] -= 1
            if row.is_latest:
                newest = (await conn.execute(_NEWEST, {"bucket": bucket, "key": key})).first()
                if newest is not None:
                    await conn.execute(_SET_LATEST, {"v": newest.version_id, "latest": True})
            await self._release(conn, row, deltas, owner_id)
        return DeleteResult(key=key, deleted=True, version_id=s3_version_id(row),
                            delete_marker=bool(row.delete_marker))


class RowValues:
    """Attribute access over a dict, so values just inserted format like a fetched row."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
