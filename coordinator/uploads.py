"""Upload sessions: single PUTs and S3 multipart uploads, from reservation to commit.

A session reserves quota up front (one conditional UPDATE). Finalizing a PUT or completing
a multipart upload is one transaction: chunk references, the new object version (replacing
the key's previous one), manifest, audit, outbox event and the quota moving from reserved to
used. Multipart parts take their chunk references when uploaded, so the bytes are owned
while the upload is open; completing transfers them to the object, aborting drops them.
`put_object` is the session-less form for objects written in one go (small inline ones
above all): the same commit, with the quota checked by the settling UPDATE itself.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from config.tiers import STANDARD, storage_tier
from coordinator import chunkrefs, quota, tiers
from coordinator.base import MAX_PART_NUMBER, MIN_PART_SIZE
from coordinator.errors import error
from coordinator.events import emit, record_audit
from coordinator.names import bare_etag, check_acl, check_key, multipart_etag, new_id, quote_etag
from coordinator.objects import (
    MAX_LIST,
    SKIP,
    NewVersion,
    ObjectQueries,
    RowValues,
    cut_page,
    object_info,
)
from coordinator.records import (
    ChunkRef,
    CoordinatorError,
    ObjectInfo,
    PartInfo,
    PartList,
    UploadInfo,
    UploadList,
    WriteCondition,
)
from coordinator.schema import upload_part_chunks, upload_parts, upload_sessions

_us = upload_sessions.c
_up = upload_parts.c
_upc = upload_part_chunks.c
KINDS = ("put", "multipart")
# Built once (bind parameters for values): see coordinator/chunkrefs.py on why.
_SESSION = sa.select(upload_sessions).where(_us.upload_id == sa.bindparam("u"))
_SESSION_LOCKED = {"sqlite": _SESSION, "postgresql": _SESSION.with_for_update()}
_INSERT_SESSION = upload_sessions.insert()
_DROP_SESSION = sa.delete(upload_sessions).where(_us.upload_id == sa.bindparam("u"))
_BEGUN_BY = sa.select(upload_sessions).where(
    _us.bucket == sa.bindparam("bucket"), _us.key == sa.bindparam("key"), _us.write_id == sa.bindparam("w")
)


def _upload_info(row: Any) -> UploadInfo:
    return UploadInfo(
        upload_id=row.upload_id,
        bucket=row.bucket,
        key=row.key,
        tenant_id=row.tenant_id,
        owner_id=row.owner_id,
        kind=row.kind,
        initiated=row.initiated,
        content_type=row.content_type,
        metadata=dict(row.metadata or {}),
        headers=dict(row.headers or {}),
        storage_class=row.storage_class,
        checksum_algorithm=row.checksum_algorithm,
    )


def _check_sizes(size: int, chunks: list[ChunkRef]) -> None:
    if size < 0:
        raise error("InvalidArgument", "size must not be negative")
    total = sum(c.size for c in chunks)
    if total != size:
        raise error("InvalidArgument", f"chunk sizes add up to {total} bytes, not the declared size {size}")


class UploadQueries(ObjectQueries):
    def _check_refs(self, tenant_id: str, chunks: list[ChunkRef]) -> None:
        chunkrefs.check_refs(chunks, {c.sha256: self.chunk_key(tenant_id, c.sha256) for c in chunks})

    async def _session(
        self,
        conn: AsyncConnection,
        upload_id: str,
        *,
        tenant_id: str | None = None,
        bucket: str | None = None,
        key: str | None = None,
        kind: str | None = None,
    ) -> Any:
        row = (await conn.execute(_SESSION_LOCKED[self.db.dialect], {"u": upload_id})).first()
        if (
            row is None
            or (tenant_id is not None and row.tenant_id != tenant_id)
            or (bucket is not None and row.bucket != bucket)
            or (key is not None and row.key != key)
            or (kind is not None and row.kind != kind)
        ):
            raise error(
                "NoSuchUpload", "the specified upload does not exist; it may have been aborted or completed"
            )
        return row

    async def begin_upload(
        self,
        tenant_id: str,
        owner_id: str,
        bucket: str,
        key: str,
        kind: str,
        reserve_bytes: int,
        content_type: str | None,
        metadata: dict[str, str],
        headers: dict[str, str],
        storage_class: str,
        checksum_algorithm: str | None,
        tags: dict[str, str] | None = None,
        acl: str | None = None,
        write_id: str | None = None,
        retried: bool = False,
    ) -> UploadInfo:
        """A session of kind put|multipart; `tags` and `acl` go to the version it commits. A
        retried call (same write_id) whose first attempt's session is still open gets it back."""
        check_key(key)
        if kind not in KINDS:
            raise error("InvalidArgument", f"kind must be one of {KINDS}, got {kind!r}")
        if reserve_bytes < 0:
            raise error("InvalidArgument", "reserve_bytes must not be negative")

        async def tx(conn: AsyncConnection) -> UploadInfo:
            await self.bucket_row(conn, tenant_id, bucket)
            if retried and write_id:
                row = (await conn.execute(_BEGUN_BY, {"bucket": bucket, "key": key, "w": write_id})).first()
                if row is not None and row.kind == kind and row.tenant_id == tenant_id:
                    return _upload_info(row)
            await quota.reserve(conn, tenant_id, reserve_bytes)
            now = self.now()
            values = {
                "upload_id": new_id(),
                "kind": kind,
                "tenant_id": tenant_id,
                "owner_id": owner_id,
                "bucket": bucket,
                "key": key,
                "reserved_bytes": reserve_bytes,
                "content_type": content_type,
                "metadata": dict(metadata),
                "headers": dict(headers),
                "storage_class": storage_class or "STANDARD",
                "checksum_algorithm": checksum_algorithm,
                "tags": dict(tags) if tags else None,
                "acl": check_acl(acl),
                "write_id": write_id,
                "initiated": now,
                "expires_at": now + self.upload_expiry_s,
            }
            await conn.execute(_INSERT_SESSION, values)
            return _upload_info(RowValues(values))

        return await self.db.write(tx)

    async def get_upload(self, tenant_id: str, bucket: str, key: str, upload_id: str) -> UploadInfo:
        async def q(conn: AsyncConnection) -> UploadInfo:
            await self.bucket_row(conn, tenant_id, bucket)
            row = (await conn.execute(sa.select(upload_sessions).where(_us.upload_id == upload_id))).first()
            if row is None or row.tenant_id != tenant_id or row.bucket != bucket or row.key != key:
                raise error("NoSuchUpload", "the specified upload does not exist")
            return _upload_info(row)

        return await self.db.read(q)

    async def _commit_version(
        self,
        conn: AsyncConnection,
        session: Any,
        new: NewVersion,
        deltas: Counter[str],
        new_refs: dict[str, ChunkRef],
        action: str,
    ) -> ObjectInfo:
        """Install the version, apply references and quota, drop the session, log it."""
        now = new.values["created_at"]
        old, rows = await self.install_version(conn, new, deltas)
        if new.existing is not None:  # a retry whose first attempt committed: answer that
            await quota.adjust(conn, session.tenant_id, reserved_delta=-session.reserved_bytes)
            if session.upload_id is not None:
                await conn.execute(_DROP_SESSION, {"u": session.upload_id})
            return await self._version_info(conn, new.existing, new.versioning)
        await chunkrefs.apply_deltas(self.db, conn, deltas, new_refs, self.scope(session.tenant_id), now)
        await self.write_manifest(conn, new, rows)
        size = new.values["size"]
        await quota.adjust(
            conn,
            session.tenant_id,
            reserved_delta=-session.reserved_bytes,
            used_delta=size - (old.size if old is not None else 0),
        )
        if session.kind == "multipart":
            await conn.execute(sa.delete(upload_part_chunks).where(_upc.upload_id == session.upload_id))
            await conn.execute(sa.delete(upload_parts).where(_up.upload_id == session.upload_id))
        if session.upload_id is not None:  # put_object has no session
            await conn.execute(_DROP_SESSION, {"u": session.upload_id})
        payload = {
            "version_id": new.values["version_id"],
            "bucket": session.bucket,
            "key": session.key,
            "tenant_id": session.tenant_id,
            "size": size,
            "etag": new.values["etag"],
            "replaced": old.version_id if old is not None else None,
        }
        tier = storage_tier(session.storage_class)
        if tier != STANDARD and size >= self.tier_min_bytes:  # written to a colder class: bytes follow
            await tiers.retier_version(self.db.dialect, conn, new.values["version_id"], tier, now)
        await record_audit(conn, session.owner_id, action, f"{session.bucket}/{session.key}", payload, at=now)
        await emit(conn, "object.finalized", payload, at=now)
        parts = [PartInfo(**p) for p in new.parts]
        return object_info(RowValues(new.values), parts, versioning=new.versioning)

    def _version_values(
        self, session: Any, size: int, etag: str, checksums: dict[str, str], part_count: int, now: float,
        write_id: str | None,
    ) -> dict[str, Any]:
        return {
            "bucket": session.bucket,
            "key": session.key,
            "tenant_id": session.tenant_id,
            "owner_id": session.owner_id,
            "size": size,
            "etag": etag,
            "content_type": session.content_type,
            "metadata": dict(session.metadata or {}),
            "headers": dict(session.headers or {}),
            "storage_class": session.storage_class,
            "status": self.initial_status(),
            "checksums": dict(checksums),
            "part_count": part_count,
            "created_at": now,
            "last_modified": now,
            "last_access": None,
            "tags": dict(session.tags) if session.tags else None,
            "acl": session.acl,
            "write_id": write_id,
        }

    async def finalize_put(
        self, upload_id: str, size: int, etag: str, chunks: list[ChunkRef], checksums: dict[str, str],
        condition: WriteCondition | None = None, write_id: str | None = None, retried: bool = False,
    ) -> ObjectInfo:
        _check_sizes(size, chunks)
        attempt = (write_id, retried)

        async def tx(conn: AsyncConnection) -> ObjectInfo:
            session = await self._session(conn, upload_id, kind="put")
            bucket_row = await self.bucket_row(conn, session.tenant_id, session.bucket)
            self._check_refs(session.tenant_id, chunks)
            return await self._commit_put(conn, session, bucket_row, size, etag, chunks, checksums, condition,
                                          attempt)

        return await self.db.write(tx)

    async def _commit_put(self, conn: AsyncConnection, session: RowValues, bucket_row: Any, size: int,
                          etag: str, chunks: list[ChunkRef], checksums: dict[str, str],
                          condition: WriteCondition | None, attempt: tuple[str | None, bool]) -> ObjectInfo:
        """The new version of a one-go PUT (with or without a session), inside its transaction.
        attempt: (write_id, retried), see coordinator/versions.py."""
        now = self.now()
        write_id, retried = attempt
        new = NewVersion(
            values=self._version_values(session, size, quote_etag(etag), checksums, 0, now, write_id),
            manifest=[(c.chunk_key, c.size) for c in chunks],
            condition=condition,
            versioning=bucket_row.versioning,
            retried=retried,
        )
        info = await self._commit_version(
            conn, session, new, Counter(), {c.chunk_key: c for c in chunks}, "object.put"
        )
        await chunkrefs.queue_missing(self.db, conn, chunks, now)
        return info

    async def put_object(
        self,
        tenant_id: str,
        owner_id: str,
        bucket: str,
        key: str,
        size: int,
        etag: str,
        content_type: str | None,
        metadata: dict[str, str],
        headers: dict[str, str],
        storage_class: str,
        chunks: list[ChunkRef],
        checksums: dict[str, str],
        condition: WriteCondition | None = None,
        tags: dict[str, str] | None = None,
        acl: str | None = None,
        write_id: str | None = None,
        retried: bool = False,
    ) -> ObjectInfo:
        """begin_upload + finalize_put in one transaction, for objects written in one go.

        No session and no reservation: the quota check is the conditional UPDATE that
        settles the object (used + reserved + size - replaced size <= quota), so a refused
        PUT changes nothing. Small objects arrive as one inline chunk: one RPC per PUT.
        """
        check_key(key)
        _check_sizes(size, chunks)
        self._check_refs(tenant_id, chunks)

        async def tx(conn: AsyncConnection) -> ObjectInfo:
            bucket_row = await self.bucket_row(conn, tenant_id, bucket)
            session = RowValues(
                {
                    "upload_id": None,
                    "kind": "put",
                    "tenant_id": tenant_id,
                    "owner_id": owner_id,
                    "bucket": bucket,
                    "key": key,
                    "reserved_bytes": 0,
                    "content_type": content_type,
                    "metadata": metadata,
                    "headers": headers,
                    "storage_class": storage_class or "STANDARD",
                    "tags": dict(tags) if tags else None,
                    "acl": check_acl(acl),
                }
            )
            return await self._commit_put(conn, session, bucket_row, size, etag, chunks, checksums, condition,
                                          (write_id, retried))

        return await self.db.write(tx)

    async def abort_upload(self, tenant_id: str, bucket: str, upload_id: str) -> None:
        """Drop a session: its parts' chunk references and its reservation are released."""
        await self.end_session(tenant_id, bucket, upload_id)

    async def end_session(
        self, tenant_id: str, bucket: str, upload_id: str, *, expired: bool = False
    ) -> None:
        """abort_upload, also for the expiry job (audited as upload.expire by "expiry")."""

        async def tx(conn: AsyncConnection) -> None:
            await self.bucket_row(conn, tenant_id, bucket)
            session = await self._session(conn, upload_id, tenant_id=tenant_id, bucket=bucket)
            if session.kind == "product":  # a product upload (coordinator/product_uploads.py)
                await self.release_product_session(conn, session)  # type: ignore[attr-defined]
                await record_audit(conn, session.owner_id, "upload.abort", f"{bucket}/{session.key}",
                                   {"upload_id": upload_id, "kind": session.kind})
                return
            deltas: Counter[str] = Counter()
            for r in await conn.execute(sa.select(_upc.chunk_key).where(_upc.upload_id == upload_id)):
                deltas[r.chunk_key] -= 1
            now = self.now()
            await chunkrefs.apply_deltas(self.db, conn, deltas, {}, self.scope(tenant_id), now)
            await conn.execute(sa.delete(upload_part_chunks).where(_upc.upload_id == upload_id))
            await conn.execute(sa.delete(upload_parts).where(_up.upload_id == upload_id))
            await conn.execute(sa.delete(upload_sessions).where(_us.upload_id == upload_id))
            await quota.adjust(conn, tenant_id, reserved_delta=-session.reserved_bytes)
            await record_audit(
                conn,
                "expiry" if expired else session.owner_id,
                "upload.expire" if expired else "upload.abort",
                f"{bucket}/{session.key}",
                {"upload_id": upload_id, "kind": session.kind, "owner_id": session.owner_id,
                 "reserved_bytes": session.reserved_bytes},
                at=now,
            )

        await self.db.write(tx)

    async def put_part(
        self,
        tenant_id: str,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        size: int,
        etag: str,
        chunks: list[ChunkRef],
        checksums: dict[str, str],
    ) -> PartInfo:
        if not 1 <= part_number <= MAX_PART_NUMBER:
            raise error("InvalidArgument", f"part number must be an integer between 1 and {MAX_PART_NUMBER}")
        _check_sizes(size, chunks)
        self._check_refs(tenant_id, chunks)

        async def tx(conn: AsyncConnection) -> PartInfo:
            await self.bucket_row(conn, tenant_id, bucket)
            session = await self._session(
                conn, upload_id, tenant_id=tenant_id, bucket=bucket, key=key, kind="multipart"
            )
            now = self.now()
            deltas: Counter[str] = Counter()
            old = (
                await conn.execute(
                    sa.select(_up.size).where(_up.upload_id == upload_id, _up.part_number == part_number)
                )
            ).first()
            if old is not None:  # uploading a part number again replaces the earlier upload
                for r in await conn.execute(
                    sa.select(_upc.chunk_key).where(
                        _upc.upload_id == upload_id, _upc.part_number == part_number
                    )
                ):
                    deltas[r.chunk_key] -= 1
                await conn.execute(
                    sa.delete(upload_part_chunks).where(
                        _upc.upload_id == upload_id, _upc.part_number == part_number
                    )
                )
                await conn.execute(
                    sa.delete(upload_parts).where(_up.upload_id == upload_id, _up.part_number == part_number)
                )
            for c in chunks:
                deltas[c.chunk_key] += 1
            await chunkrefs.apply_deltas(
                self.db, conn, deltas, {c.chunk_key: c for c in chunks}, self.scope(tenant_id), now
            )
            quoted = quote_etag(etag)
            await conn.execute(
                upload_parts.insert().values(
                    upload_id=upload_id,
                    part_number=part_number,
                    size=size,
                    etag=quoted,
                    checksums=dict(checksums),
                    last_modified=now,
                )
            )
            if chunks:
                await conn.execute(
                    upload_part_chunks.insert(),
                    [
                        {
                            "upload_id": upload_id,
                            "part_number": part_number,
                            "seq": i,
                            "chunk_key": c.chunk_key,
                            "size": c.size,
                        }
                        for i, c in enumerate(chunks)
                    ],
                )
            growth = size - (old.size if old is not None else 0)
            await quota.adjust(conn, tenant_id, reserved_delta=growth)
            await conn.execute(
                sa.update(upload_sessions)
                .where(_us.upload_id == upload_id)
                .values(reserved_bytes=session.reserved_bytes + growth)
            )
            await chunkrefs.queue_missing(self.db, conn, chunks, now)
            return PartInfo(
                part_number=part_number, size=size, etag=quoted, last_modified=now, checksums=dict(checksums)
            )

        return await self.db.write(tx)

    async def list_parts(
        self, tenant_id: str, bucket: str, key: str, upload_id: str, max_parts: int, part_number_marker: int
    ) -> PartList:
        if max_parts < 0 or part_number_marker < 0:
            raise error("InvalidArgument", "max_parts and part_number_marker must not be negative")
        limit = min(max_parts, MAX_LIST)

        async def q(conn: AsyncConnection) -> PartList:
            await self.bucket_row(conn, tenant_id, bucket)
            row = (await conn.execute(sa.select(upload_sessions).where(_us.upload_id == upload_id))).first()
            if row is None or row.tenant_id != tenant_id or row.bucket != bucket or row.key != key:
                raise error("NoSuchUpload", "the specified upload does not exist")
            rows = (
                await conn.execute(
                    sa.select(upload_parts)
                    .where(_up.upload_id == upload_id, _up.part_number > part_number_marker)
                    .order_by(_up.part_number)
                    .limit(limit + 1)
                )
            ).all()
            result = PartList(
                parts=[
                    PartInfo(
                        part_number=r.part_number,
                        size=r.size,
                        etag=r.etag,
                        last_modified=r.last_modified,
                        checksums=dict(r.checksums or {}),
                    )
                    for r in rows[:limit]
                ]
            )
            if len(rows) > limit:
                result.is_truncated = True
                result.next_part_number_marker = (
                    result.parts[-1].part_number if result.parts else part_number_marker
                )
            return result

        return await self.db.read(q)

    async def list_uploads(
        self,
        tenant_id: str,
        bucket: str,
        prefix: str,
        delimiter: str | None,
        key_marker: str | None,
        upload_id_marker: str | None,
        max_uploads: int,
    ) -> UploadList:
        """In-progress multipart uploads in (key, upload id) order, with S3 markers and grouping."""
        if max_uploads < 0:
            raise error("InvalidArgument", "max_uploads must not be negative")
        limit = min(max_uploads, MAX_LIST)
        prefix = prefix or ""
        delimiter = delimiter or None

        async def q(conn: AsyncConnection) -> UploadList:
            await self.bucket_row(conn, tenant_id, bucket)
            result = UploadList()
            if limit == 0:
                return result
            entries: list[tuple[str, Any]] = []
            # Position: strictly after (after_key, after_id); after_id None means after every id of after_key.
            after_key = key_marker if key_marker and key_marker >= prefix else None
            after_id = upload_id_marker if after_key and upload_id_marker else None
            while len(entries) <= limit:
                stmt = sa.select(upload_sessions).where(_us.bucket == bucket, _us.kind == "multipart")
                if after_key is None:
                    stmt = stmt.where(_us.key >= prefix)
                elif after_id is None:
                    stmt = stmt.where(_us.key > after_key)
                else:
                    stmt = stmt.where(
                        sa.or_(_us.key > after_key, sa.and_(_us.key == after_key, _us.upload_id > after_id))
                    )
                rows = (await conn.execute(stmt.order_by(_us.key, _us.upload_id).limit(MAX_LIST + 1))).all()
                if not rows:
                    break
                jumped = False
                for row in rows:
                    if not row.key.startswith(prefix):
                        return _finish_uploads(result, entries, limit)
                    cut = row.key.find(delimiter, len(prefix)) if delimiter else -1
                    if cut < 0:
                        entries.append((row.key, row))
                        after_key, after_id = row.key, row.upload_id
                    else:
                        common = row.key[: cut + len(delimiter)]
                        if not (key_marker and common <= key_marker) and (
                            not entries or entries[-1][0] != common
                        ):
                            entries.append((common, None))
                        after_key, after_id = common + SKIP, None
                        jumped = True
                    if len(entries) > limit or jumped:
                        break
                if not jumped and len(rows) <= MAX_LIST:
                    break
            return _finish_uploads(result, entries, limit)

        return await self.db.read(q)

    async def complete_upload(
        self, tenant_id: str, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]],
        condition: WriteCondition | None = None,
    ) -> ObjectInfo:
        if not parts:
            raise error("InvalidRequest", "you must specify at least one part")
        numbers = [n for n, _ in parts]
        if any(b <= a for a, b in itertools.pairwise(numbers)):
            raise error(
                "InvalidPartOrder",
                "the list of parts was not in ascending order; parts must be ordered by part number",
            )

        async def tx(conn: AsyncConnection) -> ObjectInfo:
            bucket_row = await self.bucket_row(conn, tenant_id, bucket)
            try:
                session = await self._session(
                    conn, upload_id, tenant_id=tenant_id, bucket=bucket, key=key, kind="multipart"
                )
            except CoordinatorError:
                # Completed already (and the answer lost)? The same parts get the same success.
                done = await self._completed(conn, bucket, key, upload_id, bucket_row.versioning)
                if done is None or done.etag != _etag_or_none([e for _, e in parts]):
                    raise
                return done
            stored = {
                r.part_number: r
                for r in await conn.execute(sa.select(upload_parts).where(_up.upload_id == upload_id))
            }
            used = []
            for number, etag in parts:
                part = stored.get(number)
                if part is None or bare_etag(part.etag) != bare_etag(etag):
                    raise error(
                        "InvalidPart",
                        f"part {number} was not uploaded or its ETag {etag!r} does not "
                        "match the uploaded part",
                    )
                used.append(part)
            for part in used[:-1]:
                if part.size < MIN_PART_SIZE:
                    raise error(
                        "EntityTooSmall",
                        f"part {part.part_number} is {part.size} bytes; every part "
                        f"but the last must be at least {MIN_PART_SIZE} bytes",
                    )
            try:
                etag = multipart_etag([p.etag for p in used])
            except ValueError:
                raise error("InvalidPart", "a part ETag is not an MD5 hex digest") from None
            by_part: dict[int, list[Any]] = {}
            deltas: Counter[str] = Counter()
            for r in await conn.execute(
                sa.select(_upc.part_number, _upc.chunk_key, _upc.size)
                .where(_upc.upload_id == upload_id)
                .order_by(_upc.part_number, _upc.seq)
            ):
                by_part.setdefault(r.part_number, []).append(r)
                deltas[r.chunk_key] -= 1  # the parts' references pass to the object (or are dropped)
            manifest: list[tuple[str, int]] = []
            part_rows: list[dict[str, Any]] = []
            offset = 0
            for p in used:
                manifest += [(r.chunk_key, r.size) for r in by_part.get(p.part_number, [])]
                part_rows.append(
                    {
                        "part_number": p.part_number,
                        "offset": offset,
                        "size": p.size,
                        "etag": p.etag,
                        "checksums": dict(p.checksums or {}),
                        "last_modified": p.last_modified,
                    }
                )
                offset += p.size
            now = self.now()
            new = NewVersion(
                values=self._version_values(session, offset, etag, {}, len(used), now, f"upload:{upload_id}"),
                manifest=manifest,
                parts=part_rows,
                condition=condition,
                versioning=bucket_row.versioning,
            )
            return await self._commit_version(conn, session, new, deltas, {}, "object.complete_multipart")

        return await self.db.write(tx)

    async def _completed(
        self, conn: AsyncConnection, bucket: str, key: str, upload_id: str, versioning: str | None
    ) -> ObjectInfo | None:
        """The version an upload was completed into, while it exists: a CompleteMultipartUpload
        retried because its answer was lost gets the same success instead of NoSuchUpload."""
        row = await self.written_by(conn, bucket, key, f"upload:{upload_id}")
        if row is None or row.status == "deleted":
            return None
        return await self._version_info(conn, row, versioning)


def _etag_or_none(part_etags: list[str]) -> str | None:
    try:
        return multipart_etag(part_etags)
    except ValueError:
        return None


def _finish_uploads(result: UploadList, entries: list[tuple[str, Any]], limit: int) -> UploadList:
    entries, last = cut_page(entries, limit)
    if last is not None:
        result.is_truncated = True
        result.next_key_marker, row = last
        result.next_upload_id_marker = row.upload_id if row is not None else None
    for name, row in entries:
        if row is None:
            result.common_prefixes.append(name)
        else:
            result.uploads.append(_upload_info(row))
    return result
