"""Objects: reading, listing, deleting and copying versions.

How a write or a delete changes a key's versions is coordinator/versions.py's job; this module
answers reads (one version, the latest objects of a bucket, every version of a bucket) and
runs the calls that delete or copy through that model.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator import chunkrefs, quota, tiers
from coordinator.base import no_such_bucket
from coordinator.db import fast_read
from coordinator.errors import error
from coordinator.events import emit, record_audit
from coordinator.names import check_acl, check_key
from coordinator.records import (
    MAX_TOUCH_BATCH,
    CoordinatorError,
    DeleteResult,
    ListEntry,
    ListResult,
    ObjectId,
    ObjectInfo,
    PartInfo,
    VersionEntry,
    VersionList,
)
from coordinator.schema import buckets, object_chunks, object_parts, object_versions
from coordinator.versions import (
    NewVersion,
    RowValues,
    VersionQueries,
    check_version_id,
    s3_version_id,
    seq_in_id,
)

__all__ = ["MAX_LIST", "SKIP", "NewVersion", "ObjectQueries", "RowValues", "object_info", "read_span"]

_ov = object_versions.c
_oc = object_chunks.c
_op = object_parts.c
# Built once (bind parameters for values): see coordinator/chunkrefs.py on why.
_PARTS = fast_read(
    sa.select(object_parts).where(_op.version_id == sa.bindparam("v")).order_by(_op.part_number)
)
_MANIFEST = sa.select(_oc.chunk_key, _oc.size).where(_oc.version_id == sa.bindparam("v")).order_by(_oc.seq)
# get_object: the bucket (ownership check, versioning state) and the key's latest version in one query.
_BUCKET_AND_LATEST = fast_read(
    sa.select(
        buckets.c.tenant_id.label("bucket_tenant"),
        buckets.c.versioning.label("bucket_versioning"),
        object_versions,
    )
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
_TOUCH = (
    sa.update(object_versions)
    .where(
        _ov.version_id.in_(sa.bindparam("vs", expanding=True)),
        sa.or_(_ov.last_access.is_(None), _ov.last_access < sa.bindparam("stale", type_=sa.Float)),
    )
    .values(last_access=sa.bindparam("now", type_=sa.Float))
)
_VERSION_COLUMNS = (
    _ov.key, _ov.version_id, _ov.seq, _ov.null_version, _ov.delete_marker, _ov.is_latest, _ov.size,
    _ov.etag, _ov.last_modified, _ov.storage_class, _ov.owner_id, _ov.checksums,
)
MAX_LIST = 1000
MAX_DELETE = 1000
TOUCH_GRANULARITY_S = 300.0
_TOUCH_STATEMENT_IDS = 500  # ids per UPDATE: well under SQLite's bound-parameter limit
_LIST_BATCH = 1000
# Per-key transactions of one DeleteObjects call in flight at once (SQLite commits them in
# groups; PostgreSQL needs a pool connection each).
_DELETE_CONCURRENCY = 16
SKIP = "\U0010ffff"  # sorts after every character, so P + SKIP is past every key under P


def object_info(
    row: Any, parts: list[PartInfo] | None = None, chunks: list | None = None, versioning: str | None = None
) -> ObjectInfo:
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
        null_version=bool(row.null_version),
        delete_marker=bool(row.delete_marker),
        is_latest=bool(row.is_latest),
        versioning=versioning,
        owner_id=row.owner_id,
        tags=dict(row.tags or {}),
        acl=row.acl,
        scan_result=getattr(row, "scan_result", None),
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


class ObjectQueries(VersionQueries):
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
        delete_markers: bool = False,
    ) -> ObjectInfo:
        """The version's record (the latest, or `version_id`: "null" names the null version);
        with_chunks adds its manifest, or, when the read is narrowed,
        only the chunks overlapping the bytes it takes, offsets absolute: a byte range (inclusive,
        either end optional, the end may lie past the object), the last `range_suffix` bytes, or
        part `part_number` (by position, as GET ?partNumber= reads it; a non-multipart object
        is its part 1). A selection of no bytes (start >= size, part past the last) gives no
        chunks, not an error: the caller answers 416 knowing the size and the parts.

        The size is only known here, so a suffix or a part can only be narrowed here: a reader
        of the last bytes of a big object (a Parquet or zip footer) or of one part at a time
        would otherwise load every chunk's 14 placements per request.

        A delete marker is answered as such only with `delete_markers` (GET and HEAD show it
        in headers); otherwise a latest delete marker is NoSuchKey and one named by version id
        MethodNotAllowed (405), as S3 answers every other operation on them."""
        ranged = range_start is not None or range_end is not None
        start = 0 if range_start is None else range_start
        if ranged and (start < 0 or (range_end is not None and range_end < start)):
            raise error("InvalidArgument", f"invalid byte range {range_start}-{range_end}")
        if (range_suffix is not None and range_suffix < 0) or (part_number is not None and part_number < 1):
            raise error("InvalidArgument", f"invalid suffix {range_suffix} or part number {part_number}")
        if sum((ranged, range_suffix is not None, part_number is not None)) > 1:
            raise error("InvalidArgument", "at most one of a byte range, a suffix and a part number")
        if version_id is not None:
            check_version_id(version_id)
        narrowed = ranged or range_suffix is not None or part_number is not None

        async def q(conn: AsyncConnection) -> ObjectInfo:
            if version_id is None:
                row = (await conn.execute(_BUCKET_AND_LATEST, {"bucket": bucket, "key": key})).first()
                if row is None or row.bucket_tenant != tenant_id:
                    raise no_such_bucket(bucket)
                if row.version_id is None or (row.delete_marker and not delete_markers):
                    raise error("NoSuchKey", f"the key {key!r} does not exist")
                versioning = row.bucket_versioning
            else:
                versioning = (await self.bucket_row(conn, tenant_id, bucket)).versioning
                row = await self.version_row(conn, bucket, key, version_id)
                if row is None or row.status == "deleted":
                    raise error("NoSuchVersion", f"version {version_id!r} of {key!r} does not exist")
                if row.delete_marker and not delete_markers:
                    raise error("MethodNotAllowed", f"version {version_id!r} of {key!r} is a delete marker")
            parts = await self._parts(conn, row.version_id) if row.part_count else []
            if not with_chunks or row.delete_marker:
                chunks = []
            elif narrowed:
                span = read_span(row.size, parts, range_start, range_end, range_suffix, part_number)
                chunks = [] if span is None else await chunkrefs.load_refs(conn, row.version_id, *span)
            else:
                chunks = await chunkrefs.load_refs(conn, row.version_id)
            return await tiers.with_restore(conn, object_info(row, parts, chunks, versioning))

        return await self.db.read(q)

    async def _version_info(self, conn: AsyncConnection, row: Any, versioning: str | None) -> ObjectInfo:
        """The record of a stored version (parts included), as a write call answers it."""
        parts = await self._parts(conn, row.version_id) if row.part_count else []
        return object_info(row, parts, versioning=versioning)

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
                ).where(
                    _ov.bucket == bucket, _ov.is_latest, _ov.status != "deleted", sa.not_(_ov.delete_marker)
                )
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

    async def list_object_versions(
        self,
        tenant_id: str,
        bucket: str,
        prefix: str,
        delimiter: str | None,
        key_marker: str | None,
        version_id_marker: str | None,
        max_keys: int,
    ) -> VersionList:
        """Every version and delete marker, keys in byte order, each key's newest first; a common
        prefix is one entry and is skipped over whole.

        Starts after every version of `key_marker`, or, with `version_id_marker`, after that
        version of it: a stored id (what next_version_id_marker gives) names its position even
        once the version is gone; "null" names the key's null version (if that is gone too,
        listing goes on with the next key)."""
        if max_keys < 0:
            raise error("InvalidArgument", "max_keys must not be negative")
        if version_id_marker and not key_marker:
            raise error("InvalidArgument", "A version-id marker cannot be specified without a key marker.")
        if version_id_marker:
            check_version_id(version_id_marker)
        limit = min(max_keys, MAX_LIST)
        prefix = prefix or ""
        delimiter = delimiter or None

        async def q(conn: AsyncConnection) -> VersionList:
            await self.bucket_row(conn, tenant_id, bucket)
            result = VersionList()
            if limit == 0:
                return result
            entries: list[tuple[str, Any]] = []  # (key or common prefix, row or None), up to limit + 1
            # The position: strictly after version `after_seq` of `after_key`, or (after_seq None)
            # after every version of after_key; after_key None: from the prefix on.
            after_key = key_marker if key_marker and key_marker >= prefix else None
            after_seq = None
            if after_key is not None and version_id_marker:
                after_seq = await self._marker_seq(conn, bucket, after_key, version_id_marker)
            base = sa.select(*_VERSION_COLUMNS).where(_ov.bucket == bucket, _ov.status != "deleted")
            batch = min(max(limit + 1, 16), _LIST_BATCH)
            while len(entries) <= limit:
                within_key = after_key is not None and after_seq is not None
                if after_key is None:
                    stmt = base.where(_ov.key >= prefix)
                elif within_key:
                    stmt = base.where(_ov.key == after_key, _ov.seq < after_seq)
                else:
                    stmt = base.where(_ov.key > after_key)
                rows = (await conn.execute(stmt.order_by(_ov.key, _ov.seq.desc()).limit(batch))).all()
                jumped = False
                for row in rows:
                    k = row.key
                    if not k.startswith(prefix):
                        return _finish_versions(result, entries, limit)
                    cut = k.find(delimiter, len(prefix)) if delimiter else -1
                    if cut >= 0:
                        common = k[: cut + len(delimiter)]
                        repeated = bool(entries) and entries[-1][0] == common
                        if not (key_marker and common <= key_marker) and not repeated:
                            entries.append((common, None))
                        # Past every key under the common prefix: one query per prefix.
                        after_key, after_seq, jumped = common + SKIP, None, True
                        break
                    entries.append((k, row))
                    after_key, after_seq = k, row.seq
                    if len(entries) > limit:
                        break
                if jumped or len(entries) > limit:
                    continue
                if len(rows) < batch:
                    if not within_key:
                        break
                    after_seq = None  # the marker's key is done: on to the keys after it
            return _finish_versions(result, entries, limit)

        return await self.db.read(q)

    async def _marker_seq(self, conn: AsyncConnection, bucket: str, key: str, version_id: str) -> int | None:
        row = await self.version_row(conn, bucket, key, version_id)
        if row is not None:
            return row.seq
        return seq_in_id(version_id)

    # ---- writes -----------------------------------------------------------------------------

    async def delete_object(
        self,
        tenant_id: str,
        bucket: str,
        key: str,
        version_id: str | None = None,
        owner_id: str | None = None,
        write_id: str | None = None,
        retried: bool = False,
    ) -> DeleteResult:
        """DELETE of a key (as the bucket's versioning state has it: coordinator/versions.py) or
        of one version of it. Idempotent: a missing key or version is not an error; a missing
        bucket is. A retried DELETE (same write_id) whose marker is still the latest gets that
        marker again, not a second one."""
        if version_id is not None:
            check_version_id(version_id)

        async def tx(conn: AsyncConnection) -> DeleteResult:
            bucket_row = await self.bucket_row(conn, tenant_id, bucket)
            actor = owner_id or tenant_id
            if version_id is None:
                return await self.delete_key(conn, bucket_row, actor, key, write_id, retried)
            return await self.delete_version(conn, bucket, actor, key, version_id)

        return await self.db.write(tx)

    async def delete_objects(
        self,
        tenant_id: str,
        bucket: str,
        objects: list[ObjectId],
        owner_id: str | None = None,
        write_id: str | None = None,
        retried: bool = False,
    ) -> list[DeleteResult]:
        """delete_object for up to 1000 keys or versions, each in its own transaction (one
        failing does not undo the others); results in the order asked."""
        if len(objects) > MAX_DELETE:
            raise error("InvalidRequest", f"at most {MAX_DELETE} keys per delete request, got {len(objects)}")
        await self.get_bucket_checked(tenant_id, bucket)
        gate = asyncio.Semaphore(_DELETE_CONCURRENCY)

        async def one(obj: ObjectId) -> DeleteResult:
            if not obj.key:
                return DeleteResult(key=obj.key, deleted=False, error_code="InvalidArgument",
                                    error_message="object key must not be empty", version_id=obj.version_id)
            async with gate:
                try:
                    return await self.delete_object(
                        tenant_id, bucket, obj.key, obj.version_id, owner_id, write_id, retried
                    )
                except CoordinatorError as exc:
                    if exc.status >= 500 or exc.code in ("NoSuchBucket", "AccessDenied"):
                        raise
                    return DeleteResult(key=obj.key, deleted=False, error_code=exc.code,
                                        error_message=exc.message, version_id=obj.version_id)

        return list(await asyncio.gather(*(one(o) for o in objects)))

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
        src_version_id: str | None = None,
        tags: dict[str, str] | None = None,
        acl: str | None = None,
        write_id: str | None = None,
        retried: bool = False,
    ) -> ObjectInfo:
        """Metadata-only copy: a new version referencing the source's chunks (refcount+1 each).

        The source is the key's latest version or `src_version_id` ("null": its null version;
        a delete marker cannot be copied). `tags` None copies the source's tags."""
        check_key(dst_key)
        if src_version_id is not None:
            check_version_id(src_version_id)
        elif src_bucket == dst_bucket and src_key == dst_key and not replace_metadata:
            raise error(
                "InvalidRequest",
                "This copy request is illegal because it is trying to copy an object "
                "to itself without changing the object's metadata, storage class, website redirect "
                "location or encryption attributes.",
            )

        async def tx(conn: AsyncConnection) -> ObjectInfo:
            await self.bucket_row(conn, tenant_id, src_bucket)
            dst = await self.bucket_row(conn, tenant_id, dst_bucket)
            src = await self._copy_source(conn, src_bucket, src_key, src_version_id)
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
                "status": src.status,  # same bytes: the source's scan holds for the copy
                "scan_result": src.scan_result,
                "scanned_at": src.scanned_at,
                "scanner": src.scanner,
                "checksums": dict(src.checksums or {}),
                "part_count": src.part_count,
                "created_at": now,
                "last_modified": now,
                "last_access": None,
                "tags": dict(src.tags or {}) if tags is None else dict(tags),
                "acl": check_acl(acl),
                "write_id": write_id,
            }
            new = NewVersion(values=values, manifest=manifest, parts=parts, versioning=dst.versioning,
                             retried=retried)
            deltas: Counter[str] = Counter()
            old, rows = await self.install_version(conn, new, deltas)
            if new.existing is not None:
                return await self._version_info(conn, new.existing, dst.versioning)
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
                "source_version_id": src.version_id,
                "replaced": old.version_id if old is not None else None,
            }
            await record_audit(conn, owner_id, "object.copy", f"{dst_bucket}/{dst_key}", payload, at=now)
            await emit(conn, "object.copied", payload, at=now)
            return object_info(RowValues(values), [PartInfo(**p) for p in parts], versioning=dst.versioning)

        return await self.db.write(tx)

    async def _copy_source(self, conn: AsyncConnection, bucket: str, key: str, version_id: str | None) -> Any:
        if version_id is None:
            src = await self.latest_row(conn, bucket, key)
            if src is None or src.delete_marker:
                raise error("NoSuchKey", f"the source key {key!r} does not exist")
            return src
        src = await self.version_row(conn, bucket, key, version_id)
        if src is None or src.status == "deleted":
            raise error("NoSuchVersion", f"version {version_id!r} of the source key {key!r} does not exist")
        if src.delete_marker:
            raise error("InvalidRequest", "The source of a copy request may not specifically refer to a "
                        "delete marker by version id.")
        return src

    async def set_object_tags(
        self, tenant_id: str, bucket: str, key: str, version_id: str | None, tags: dict[str, str] | None
    ) -> ObjectInfo:
        """Replace the tags of the latest version or of `version_id` (None or {}: no tags)."""
        return await self._update_version(tenant_id, bucket, key, version_id, "object.tags",
                                          tags=dict(tags) if tags else None)

    async def set_object_acl(
        self, tenant_id: str, bucket: str, key: str, version_id: str | None, acl: str
    ) -> ObjectInfo:
        """A canned ACL on the latest version or on `version_id`: private, or public-read
        (anyone may GET and HEAD it without signing)."""
        return await self._update_version(tenant_id, bucket, key, version_id, "object.acl",
                                          acl=check_acl(acl))

    async def _update_version(
        self, tenant_id: str, bucket: str, key: str, version_id: str | None, action: str, **values: Any
    ) -> ObjectInfo:
        if version_id is not None:
            check_version_id(version_id)

        async def tx(conn: AsyncConnection) -> ObjectInfo:
            bucket_row = await self.bucket_row(conn, tenant_id, bucket)
            if version_id is None:
                row = await self.lock_key(conn, bucket, key)
                if row is None or row.delete_marker or row.status == "deleted":
                    raise error("NoSuchKey", f"the key {key!r} does not exist")
            else:
                await self.lock_key(conn, bucket, key)
                row = await self.version_row(conn, bucket, key, version_id)
                if row is None or row.status == "deleted":
                    raise error("NoSuchVersion", f"version {version_id!r} of {key!r} does not exist")
                if row.delete_marker:
                    raise error("MethodNotAllowed", f"version {version_id!r} of {key!r} is a delete marker")
            await conn.execute(
                sa.update(object_versions).where(_ov.version_id == row.version_id).values(**values)
            )
            await record_audit(conn, tenant_id, action, f"{bucket}/{key}",
                               {"version_id": row.version_id, **values})
            updated = RowValues({**row._asdict(), **values})
            return await self._version_info(conn, updated, bucket_row.versioning)

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


def cut_page(
    entries: list[tuple[str, Any]], limit: int
) -> tuple[list[tuple[str, Any]], tuple[str, Any] | None]:
    """A listing's page: its first `limit` entries (key or common prefix, row or None; the
    scans collect one more to know whether the listing goes on), and the last of them when it
    does: the next page starts after that entry."""
    if len(entries) <= limit:
        return entries, None
    page = entries[:limit]
    return page, page[-1]


def _finish(result: ListResult, entries: list[tuple[str, Any]], limit: int) -> ListResult:
    entries, last = cut_page(entries, limit)
    if last is not None:
        result.is_truncated = True
        result.next_marker = last[0]
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


def _finish_versions(result: VersionList, entries: list[tuple[str, Any]], limit: int) -> VersionList:
    entries, last = cut_page(entries, limit)
    if last is not None:
        result.is_truncated = True
        result.next_key_marker, row = last
        result.next_version_id_marker = row.version_id if row is not None else None
    for name, row in entries:
        if row is None:
            result.common_prefixes.append(name)
        else:
            result.versions.append(
                VersionEntry(
                    key=row.key,
                    version_id=s3_version_id(row),
                    is_latest=bool(row.is_latest),
                    delete_marker=bool(row.delete_marker),
                    last_modified=row.last_modified,
                    size=row.size,
                    etag=row.etag,
                    storage_class=row.storage_class,
                    owner_id=row.owner_id,
                    checksum_algorithms=sorted(a for a in (row.checksums or {}) if not a.endswith("hex")),
                )
            )
    return result
