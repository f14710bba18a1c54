"""Objects: reading, listing, deleting and copying versions, and installing a new latest version.

Buckets are not versioned yet: a key has one live version; writing the key again removes
the previous version row (its chunks lose a reference) in the same transaction that
installs the new one.
"""

from __future__ import annotations

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
from coordinator.names import bare_etag, check_key, new_id
from coordinator.records import (
    MAX_TOUCH_BATCH,
    DeleteResult,
    ListEntry,
    ListResult,
    ObjectInfo,
    PartInfo,
    WriteCondition,
)
from coordinator.schema import buckets, object_chunks, object_parts, object_versions

_ov = object_versions.c
_oc = object_chunks.c
_op = object_parts.c
# Built once (bind parameters for values): see coordinator/chunkrefs.py on why.
_DROP_MANIFEST = sa.delete(object_chunks).where(_oc.version_id == sa.bindparam("v")).returning(_oc.chunk_key)
_DROP_PARTS = sa.delete(object_parts).where(_op.version_id == sa.bindparam("v"))
_DROP_VERSION = sa.delete(object_versions).where(_ov.version_id == sa.bindparam("v"))
INSERT_VERSION = object_versions.insert()
_INSERT_MANIFEST = object_chunks.insert()
_INSERT_PARTS = object_parts.insert()
_PARTS = fast_read(
    sa.select(object_parts).where(_op.version_id == sa.bindparam("v")).order_by(_op.part_number)
)
_MANIFEST = sa.select(_oc.chunk_key, _oc.size).where(_oc.version_id == sa.bindparam("v")).order_by(_oc.seq)
# get_object: the bucket (ownership check) and the key's live version in one query.
_BUCKET_AND_LATEST = fast_read(
    sa.select(buckets.c.tenant_id.label("bucket_tenant"), object_versions)
    .select_from(
        buckets.outerjoin(
            object_versions,
            sa.and_(
                _ov.bucket == buckets.c.name,
                _ov.key == sa.bindparam("key"),
                _ov.is_latest,
                _ov.status != "deleted",
            ),
        )
    )
    .where(buckets.c.name == sa.bindparam("bucket"))
)
_VERSION = fast_read(
    sa.select(object_versions).where(
        _ov.version_id == sa.bindparam("v"),
        _ov.bucket == sa.bindparam("bucket"),
        _ov.key == sa.bindparam("key"),
        _ov.status != "deleted",
    )
)
_TOUCH = (
    sa.update(object_versions)
    .where(
        _ov.version_id.in_(sa.bindparam("vs", expanding=True)),
        sa.or_(_ov.last_access.is_(None), _ov.last_access < sa.bindparam("stale", type_=sa.Float)),
    )
    .values(last_access=sa.bindparam("now", type_=sa.Float))
)
MAX_LIST = 1000
MAX_DELETE = 1000
TOUCH_GRANULARITY_S = 300.0
_TOUCH_STATEMENT_IDS = 500  # ids per UPDATE: well under SQLite's bound-parameter limit
_LIST_BATCH = 1000
SKIP = "\U0010ffff"  # sorts after every character, so P + SKIP is past every key under P


@dataclass
class NewVersion:
    """Everything needed to install a version: its row values, manifest and parts."""

    values: dict[str, Any]
    manifest: list[tuple[str, int]]  # (chunk_key, size) in order
    parts: list[dict[str, Any]] = field(default_factory=list)  # object_parts rows without version_id
    condition: WriteCondition | None = None  # checked against the replaced version, under its lock


class RowValues:
    """Attribute access over a dict, so values just inserted format like a fetched row."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def object_info(row: Any, parts: list[PartInfo] | None = None, chunks: list | None = None) -> ObjectInfo:
    return ObjectInfo(
        bucket=row.bucket,
        key=row.key,
        version_id=row.version_id,
        tenant_id=row.tenant_id,
        size=row.size,
        etag=row.etag,
        last_modified=row.last_modified,
        content_type=row.content_type,
        metadata=dict(row.metadata or {}),
        headers=dict(row.headers or {}),
        storage_class=row.storage_class,
        status=row.status,
        checksums=dict(row.checksums or {}),
        parts=parts or [],
        chunks=chunks or [],
    )


def read_span(size: int, parts: list[PartInfo], start: int | None, end: int | None,
              suffix: int | None, part_number: int | None) -> tuple[int, int] | None:
    """First and last byte (inclusive) a narrowed read of an object of `size` bytes takes, or
    None when it takes none. The gateway's Range / partNumber answer reads exactly these bytes."""
    if part_number is not None:
        if not parts:
            return (0, size - 1) if part_number == 1 and size > 0 else None
        if part_number > len(parts):
            return None
        part = parts[part_number - 1]
        return (part.offset, part.offset + part.size - 1) if part.size > 0 else None
    if suffix is not None:
        return (max(0, size - suffix), size - 1) if suffix > 0 and size > 0 else None
    first = start or 0
    if first >= size:
        return None
    return first, size - 1 if end is None else min(end, size - 1)


class ObjectQueries(QueryBase):
    # ---- helpers shared with uploads -------------------------------------------------------

    async def remove_version(self, conn: AsyncConnection, row: Any) -> list[str]:
        """Delete a version's rows; return the chunk keys it referenced (one per reference)."""
        removed = await conn.execute(_DROP_MANIFEST, {"v": row.version_id})
        keys = [r.chunk_key for r in removed]
        if row.part_count:
            await conn.execute(_DROP_PARTS, {"v": row.version_id})
        await conn.execute(_DROP_VERSION, {"v": row.version_id})
        return keys

    async def install_version(
        self, conn: AsyncConnection, new: NewVersion, deltas: Counter[str]
    ) -> tuple[Any, list[dict[str, Any]]]:
        """Replace the key's latest version with `new`; returns (replaced row or None, manifest rows).

        Adds to `deltas` the references the new version takes and the old one drops; the
        caller applies them. Quota is settled by the caller too (it knows the reservation).
        """
        v = new.values
        await self.db.lock_name(conn, f"object:{v['bucket']}/{v['key']}")
        old = await self.latest_row(conn, v["bucket"], v["key"], lock=True)
        if new.condition is not None:
            _check_condition(new.condition, old if old is not None and old.status != "deleted" else None)
        if old is not None:
            for k in await self.remove_version(conn, old):
                deltas[k] -= 1
        rows = []
        offset = 0
        for seq, (ck, size) in enumerate(new.manifest):
            rows.append(
                {"version_id": v["version_id"], "seq": seq, "chunk_key": ck, "offset": offset, "size": size}
            )
            offset += size
            deltas[ck] += 1
        try:
            await conn.execute(INSERT_VERSION, v)
        except sa.exc.IntegrityError as exc:
            if is_unique_violation(exc):
                raise RetryTransaction() from None  # a concurrent writer installed this key first
            raise error("NoSuchBucket", f"the bucket {v['bucket']!r} does not exist") from None
        return old, rows

    async def write_manifest(
        self, conn: AsyncConnection, new: NewVersion, rows: list[dict[str, Any]]
    ) -> None:
        """Insert the manifest (in batches) and the part table of a new version."""
        for i in range(0, len(rows), 2000):
            await conn.execute(_INSERT_MANIFEST, rows[i : i + 2000])
        if new.parts:
            await conn.execute(
                _INSERT_PARTS, [{"version_id": new.values["version_id"], **p} for p in new.parts]
            )

    # ---- reads ------------------------------------------------------------------------------

    async def get_object(
        self,
        tenant_id: str,
        bucket: str,
        key: str,
        version_id: str | None = None,
        with_chunks: bool = False,
        range_start: int | None = None,
        range_end: int | None = None,
        range_suffix: int | None = None,
        part_number: int | None = None,
    ) -> ObjectInfo:
        """The version's record; with_chunks adds its manifest, or, when the read is narrowed,
        only the chunks overlapping the bytes it takes, offsets absolute: a byte range (inclusive,
        either end optional, the end may lie past the object), the last `range_suffix` bytes, or
        part `part_number` (by position, as GET ?partNumber= reads it; a non-multipart object
        is its part 1). A selection of no bytes (start >= size, part past the last) gives no
        chunks, not an error: the caller answers 416 knowing the size and the parts.

        The size is only known here, so a suffix or a part can only be narrowed here: a reader
        of the last bytes of a big object (a Parquet or zip footer) or of one part at a time
        would otherwise load every chunk's 14 placements per request."""
        ranged = range_start is not None or range_end is not None
        start = 0 if range_start is None else range_start
        if ranged and (start < 0 or (range_end is not None and range_end < start)):
            raise error("InvalidArgument", f"invalid byte range {range_start}-{range_end}")
        if (range_suffix is not None and range_suffix < 0) or (part_number is not None and part_number < 1):
            raise error("InvalidArgument", f"invalid suffix {range_suffix} or part number {part_number}")
        if sum((ranged, range_suffix is not None, part_number is not None)) > 1:
            raise error("InvalidArgument", "at most one of a byte range, a suffix and a part number")
        narrowed = ranged or range_suffix is not None or part_number is not None

        async def q(conn: AsyncConnection) -> ObjectInfo:
            if version_id is None:
                row = (await conn.execute(_BUCKET_AND_LATEST, {"bucket": bucket, "key": key})).first()
                if row is None:
                    raise error("NoSuchBucket", f"the bucket {bucket!r} does not exist")
                if row.bucket_tenant != tenant_id:
                    raise error("AccessDenied", f"the bucket {bucket!r} belongs to another tenant")
                if row.version_id is None:
                    raise error("NoSuchKey", f"the key {key!r} does not exist")
            else:
                await self.bucket_row(conn, tenant_id, bucket)
                row = (await conn.execute(_VERSION, {"v": version_id, "bucket": bucket, "key": key})).first()
                if row is None:
                    raise error("NoSuchVersion", f"version {version_id!r} of {key!r} does not exist")
            parts = await self._parts(conn, row.version_id) if row.part_count else []
            if not with_chunks:
                chunks = []
            elif narrowed:
                span = read_span(row.size, parts, range_start, range_end, range_suffix, part_number)
                chunks = [] if span is None else await chunkrefs.load_refs(conn, row.version_id, *span)
            else:
                chunks = await chunkrefs.load_refs(conn, row.version_id)
            return object_info(row, parts, chunks)

        return await self.db.read(q)

    async def _parts(self, conn: AsyncConnection, version_id: str) -> list[PartInfo]:
        rows = await conn.execute(_PARTS, {"v": version_id})
        return [
            PartInfo(
                part_number=r.part_number,
                size=r.size,
                etag=r.etag,
                last_modified=r.last_modified,
                offset=r.offset,
                checksums=dict(r.checksums or {}),
            )
            for r in rows
        ]

    async def list_objects(
        self,
        tenant_id: str,
        bucket: str,
        prefix: str,
        delimiter: str | None,
        marker: str | None,
        max_keys: int,
    ) -> ListResult:
        """Keys after marker in byte order; a common prefix is one entry and is skipped over whole."""
        if max_keys < 0:
            raise error("InvalidArgument", "max_keys must not be negative")
        limit = min(max_keys, MAX_LIST)
        prefix = prefix or ""
        delimiter = delimiter or None

        async def q(conn: AsyncConnection) -> ListResult:
            await self.bucket_row(conn, tenant_id, bucket)
            result = ListResult()
            if limit == 0:
                return result
            entries: list[tuple[str, Any]] = []  # (key or prefix, row or None), up to limit + 1
            after = marker if marker and marker >= prefix else None
            batch = min(max(limit + 1, 16), _LIST_BATCH)
            while len(entries) <= limit:
                stmt = sa.select(
                    _ov.key, _ov.size, _ov.etag, _ov.last_modified, _ov.storage_class, _ov.owner_id
                ).where(_ov.bucket == bucket, _ov.is_latest, _ov.status != "deleted")
                stmt = stmt.where(_ov.key > after) if after is not None else stmt.where(_ov.key >= prefix)
                rows = (await conn.execute(stmt.order_by(_ov.key).limit(batch))).all()
                current = None  # the common prefix whose keys are being passed over
                for row in rows:
                    k = row.key
                    if not k.startswith(prefix):
                        return _finish(result, entries, limit)
                    if current is not None and k.startswith(current):
                        continue
                    cut = k.find(delimiter, len(prefix)) if delimiter else -1
                    if cut < 0:
                        entries.append((k, row))
                        current = None
                    else:
                        current = k[: cut + len(delimiter)]
                        if not (marker and current <= marker) and (not entries or entries[-1][0] != current):
                            entries.append((current, None))
                    if len(entries) > limit:
                        break
                if len(rows) < batch:
                    break
                # Continue after the last key, or after every key under the prefix being passed
                # over: one query per common prefix however many keys it holds.
                after = current + SKIP if current is not None else rows[-1].key
            return _finish(result, entries, limit)

        return await self.db.read(q)

    # ---- writes -----------------------------------------------------------------------------

    async def _delete_latest(self, conn: AsyncConnection, tenant_id: str, bucket: str, key: str) -> bool:
        await self.db.lock_name(conn, f"object:{bucket}/{key}")
        row = await self.latest_row(conn, bucket, key, lock=True)
        if row is None:
            return False
        now = self.now()
        deltas: Counter[str] = Counter()
        for k in await self.remove_version(conn, row):
            deltas[k] -= 1
        await chunkrefs.apply_deltas(self.db, conn, deltas, {}, self.scope(row.tenant_id), now)
        await quota.adjust(conn, row.tenant_id, used_delta=-row.size)
        payload = {
            "version_id": row.version_id,
            "bucket": bucket,
            "key": key,
            "tenant_id": row.tenant_id,
            "size": row.size,
        }
        await record_audit(conn, tenant_id, "object.delete", f"{bucket}/{key}", payload, at=now)
        await emit(conn, "object.deleted", payload, at=now)
        return True

    async def delete_object(self, tenant_id: str, bucket: str, key: str) -> None:
        """Idempotent: a missing key is not an error; a missing bucket is."""

        async def tx(conn: AsyncConnection) -> None:
            await self.bucket_row(conn, tenant_id, bucket)
            await self._delete_latest(conn, tenant_id, bucket, key)

        await self.db.write(tx)

    async def delete_objects(self, tenant_id: str, bucket: str, keys: list[str]) -> list[DeleteResult]:
        if len(keys) > MAX_DELETE:
            raise error("InvalidRequest", f"at most {MAX_DELETE} keys per delete request, got {len(keys)}")
        await self.get_bucket_checked(tenant_id, bucket)
        results = []
        for key in keys:
            if not key:
                results.append(
                    DeleteResult(
                        key=key,
                        deleted=False,
                        error_code="InvalidArgument",
                        error_message="object key must not be empty",
                    )
                )
                continue

            async def tx(conn: AsyncConnection, key: str = key) -> None:
                await self.bucket_row(conn, tenant_id, bucket)
                await self._delete_latest(conn, tenant_id, bucket, key)

            await self.db.write(tx)
            results.append(DeleteResult(key=key, deleted=True))
        return results

    async def get_bucket_checked(self, tenant_id: str, bucket: str) -> None:
        await self.db.read(lambda conn: self.bucket_row(conn, tenant_id, bucket))

    async def copy_object(
        self,
        tenant_id: str,
        owner_id: str,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        replace_metadata: bool,
        content_type: str | None,
        metadata: dict[str, str],
        headers: dict[str, str],
    ) -> ObjectInfo:
        """Metadata-only copy: a new version referencing the source's chunks (refcount+1 each)."""
        check_key(dst_key)
        if src_bucket == dst_bucket and src_key == dst_key and not replace_metadata:
            raise error(
                "InvalidRequest",
                "This copy request is illegal because it is trying to copy an object "
                "to itself without changing the object's metadata, storage class, website redirect "
                "location or encryption attributes.",
            )

        async def tx(conn: AsyncConnection) -> ObjectInfo:
            await self.bucket_row(conn, tenant_id, src_bucket)
            await self.bucket_row(conn, tenant_id, dst_bucket)
            src = await self.latest_row(conn, src_bucket, src_key)
            if src is None:
                raise error("NoSuchKey", f"the source key {src_key!r} does not exist")
            manifest = [(r.chunk_key, r.size) for r in await conn.execute(_MANIFEST, {"v": src.version_id})]
            parts = (
                [
                    {
                        "part_number": p.part_number,
                        "offset": p.offset,
                        "size": p.size,
                        "etag": p.etag,
                        "checksums": p.checksums,
                        "last_modified": p.last_modified,
                    }
                    for p in await self._parts(conn, src.version_id)
                ]
                if src.part_count
                else []
            )
            now = self.now()
            values = {
                "version_id": new_id(),
                "bucket": dst_bucket,
                "key": dst_key,
                "tenant_id": tenant_id,
                "owner_id": owner_id,
                "size": src.size,
                "etag": src.etag,
                "content_type": content_type if replace_metadata else src.content_type,
                "metadata": dict(metadata) if replace_metadata else dict(src.metadata or {}),
                "headers": dict(headers) if replace_metadata else dict(src.headers or {}),
                "storage_class": src.storage_class,
                "status": src.status,
                "checksums": dict(src.checksums or {}),
                "part_count": src.part_count,
                "created_at": now,
                "last_modified": now,
                "last_access": None,
                "is_latest": True,
            }
            new = NewVersion(values=values, manifest=manifest, parts=parts)
            deltas: Counter[str] = Counter()
            old, rows = await self.install_version(conn, new, deltas)
            await chunkrefs.apply_deltas(self.db, conn, deltas, {}, self.scope(tenant_id), now)
            await self.write_manifest(conn, new, rows)
            await quota.adjust(conn, tenant_id, used_delta=src.size - (old.size if old is not None else 0))
            payload = {
                "version_id": values["version_id"],
                "bucket": dst_bucket,
                "key": dst_key,
                "tenant_id": tenant_id,
                "size": src.size,
                "source": f"{src_bucket}/{src_key}",
            }
            await record_audit(conn, owner_id, "object.copy", f"{dst_bucket}/{dst_key}", payload, at=now)
            await emit(conn, "object.copied", payload, at=now)
            return object_info(RowValues(values), [PartInfo(**p) for p in parts])

        return await self.db.write(tx)

    async def touch_objects(self, version_ids: list[str]) -> None:
        """Record reads for lifecycle decisions; best effort, never an error for a gone version.

        Gateways send the versions they served in batches (one call a second, not one per
        GET). Lifecycle rules work in days, so a version read again within TOUCH_GRANULARITY_S
        keeps its recorded time and the UPDATE changes no row (hot objects do not rewrite rows).
        """
        if len(version_ids) > MAX_TOUCH_BATCH:
            raise error("InvalidArgument", f"at most {MAX_TOUCH_BATCH} versions per touch_objects call")
        ids = sorted(set(version_ids))  # one lock order for concurrent batches (PostgreSQL)
        if not ids:
            return
        now = self.now()

        async def tx(conn: AsyncConnection) -> None:
            for i in range(0, len(ids), _TOUCH_STATEMENT_IDS):
                batch = ids[i : i + _TOUCH_STATEMENT_IDS]
                await conn.execute(_TOUCH, {"vs": batch, "stale": now - TOUCH_GRANULARITY_S, "now": now})

        await self.db.write(tx)


def _check_condition(condition: WriteCondition, current: Any) -> None:
    """S3's answers to a conditional write whose precondition no longer holds at commit."""
    if condition.if_none_match and current is not None:
        raise error("PreconditionFailed", "If-None-Match: the key already has a current version")
    if condition.if_match is not None:
        if current is None:
            raise error("NoSuchKey", "If-Match: the key has no current version")
        wanted = condition.if_match.strip()
        if wanted != "*" and bare_etag(wanted) != bare_etag(current.etag):
            raise error("PreconditionFailed", "If-Match: the current version has another ETag")


def _finish(result: ListResult, entries: list[tuple[str, Any]], limit: int) -> ListResult:
    if len(entries) > limit:
        entries = entries[:limit]
        result.is_truncated = True
        result.next_marker = entries[-1][0]
    for name, row in entries:
        if row is None:
            result.common_prefixes.append(name)
        else:
            result.contents.append(
                ListEntry(
                    key=row.key,
                    size=row.size,
                    etag=row.etag,
                    last_modified=row.last_modified,
                    storage_class=row.storage_class,
                    owner_id=row.owner_id,
                )
            )
    return result
