"""Product uploads: resumable, chunk by chunk, deduplicated at init, committed in one transaction.

A session is a row of upload_sessions (kind "product": the one expiry job and `abort_upload`
serve every kind) with its plan in product_uploads: the destination, the size, and the
SHA-256 of every chunk (the client hashes before it sends anything). At init the quota of
the drive's owner and of the tenant is reserved (one conditional UPDATE each), and every
distinct chunk the tenant already stores is given a reference held by the session
(upload_chunk_refs), so a later GC cannot take it away; the client sends only the others.
A chunk PUT (the gateway checked its SHA-256 and stored it) adds the session's reference
to that chunk. Finalize hands the references to the file's new version and moves the quota
from reserved to used, all in one transaction whose cost depends on the number of chunks,
not on their bytes. Abort (or expiry) drops the references and the reservation.

Chunks are deduplicated within the tenant's scope only (chunk keys are scoped): whether
another tenant stores some content changes neither the answer nor the work done at init.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator import chunkrefs, quota
from coordinator.drive import DriveQueries, adjust_user, drive_bucket, etag_for, split_path
from coordinator.errors import error
from coordinator.events import record_audit
from coordinator.names import check_sha256, new_id
from coordinator.product_records import ChunkTarget, FileEntry, UploadStatus, UploadTarget
from coordinator.records import ChunkRef
from coordinator.schema import chunks, files, product_uploads, upload_chunk_refs, upload_sessions

KIND = "product"
MAX_CHUNKS = 200_000              # 1.5 TiB at 8 MiB
_us, _pu, _ucr, _c, _f = upload_sessions.c, product_uploads.c, upload_chunk_refs.c, chunks.c, files.c
_SESSION = sa.select(upload_sessions, product_uploads).select_from(
    upload_sessions.join(product_uploads, _pu.upload_id == _us.upload_id)
).where(_us.upload_id == sa.bindparam("u"))
_HELD = sa.select(_ucr.sha256).where(_ucr.upload_id == sa.bindparam("u"))


def content_hash_of(digests: list[str]) -> str:
    """SHA-256 over the chunks' raw 32-byte digests, concatenated in order."""
    return hashlib.sha256(b"".join(bytes.fromhex(d) for d in digests)).hexdigest()


def _plan_sizes(size: int, chunk_size: int, count: int) -> list[int]:
    sizes = [chunk_size] * count
    if count:
        sizes[-1] = size - chunk_size * (count - 1)
    return sizes


def _status(row: Any, held: set[str]) -> UploadStatus:
    digests = list(row.chunks)
    missing, seen = [], set()
    for i, d in enumerate(digests):
        if d not in held and d not in seen:
            missing.append(i)
        seen.add(d)
    return UploadStatus(upload_id=row.upload_id, path=row.key, size=row.size, chunk_size=row.chunk_size,
                        missing=missing, landed=[i for i, d in enumerate(digests) if d in held],
                        expires_at=row.expires_at, file_id=row.file_id)


class ProductUploadQueries(DriveQueries):
    async def _product_session(self, conn: AsyncConnection, upload_id: str, user_id: str | None,
                               lock: bool = True) -> Any:
        """The live session of this uploader (locked on PostgreSQL, in a write); NotFound otherwise."""
        stmt = _SESSION if self.db.dialect == "sqlite" or not lock else _SESSION.with_for_update(
            of=upload_sessions)
        row = (await conn.execute(stmt, {"u": upload_id})).first()
        if (row is None or row.kind != KIND or (user_id is not None and row.user_id != user_id)
                or row.expires_at <= self.now()):
            raise error("NotFound", "no such upload: it may have been finalized, aborted or have expired")
        return row

    async def _held(self, conn: AsyncConnection, upload_id: str) -> set[str]:
        return {r.sha256 for r in await conn.execute(_HELD, {"u": upload_id})}

    # ---- init --------------------------------------------------------------------------------

    async def upload_init(
        self, user_id: str, target: UploadTarget, size: int, chunk_size: int, chunk_digests: list[str],
        content_hash: str, content_type: str | None = None, if_match: str | None = None,
    ) -> UploadStatus:
        if size < 0 or chunk_size <= 0:
            raise error("InvalidArgument", "size must not be negative and chunk_size must be positive")
        count = -(-size // chunk_size)
        if len(chunk_digests) != count:
            raise error("InvalidArgument", f"{size} bytes in chunks of {chunk_size} are {count} chunks, "
                        f"not {len(chunk_digests)}")
        if count > MAX_CHUNKS:
            raise error("InvalidArgument", f"at most {MAX_CHUNKS} chunks per upload")
        for d in chunk_digests:
            check_sha256(d)
        sizes = _plan_sizes(size, chunk_size, count)
        by_digest: dict[str, int] = {}
        for d, n in zip(chunk_digests, sizes, strict=True):
            if by_digest.setdefault(d, n) != n:
                raise error("InvalidArgument", f"chunk {d} is announced with two different sizes")
        check_sha256(content_hash)
        if content_hash_of(chunk_digests) != content_hash:
            raise error("InvalidArgument", "content_hash is not the SHA-256 of the chunk digests")
        if content_type is not None and (len(content_type) > 255 or not content_type.isprintable()):
            raise error("InvalidArgument", "content_type must be at most 255 printable characters")
        names = split_path(target.path) if target.path is not None else None
        if sum(x is not None for x in (target.path, target.parent_id, target.file_id)) != 1:
            raise error("InvalidArgument", "give one of path, parent (with name) or file_id")
        if names == []:
            raise error("InvalidArgument", "the path must name a file")

        async def tx(conn: AsyncConnection) -> UploadStatus:
            file_id, parent_id, left, shown = await self._destination(conn, user_id, target, names)
            owner = (await conn.execute(sa.select(_f.owner_id, _f.tenant_id).where(
                _f.file_id == (file_id or parent_id)))).one()
            if if_match is not None:
                await self._check_if_match(conn, owner.owner_id, file_id, if_match)
            await quota.reserve(conn, owner.tenant_id, size)
            await adjust_user(conn, owner.owner_id, reserved_delta=size)
            now = self.now()
            upload_id = new_id()
            await conn.execute(upload_sessions.insert().values(
                upload_id=upload_id, kind=KIND, tenant_id=owner.tenant_id, owner_id=owner.owner_id,
                bucket=drive_bucket(owner.owner_id), key=shown, reserved_bytes=size,
                content_type=content_type,
                metadata={}, headers={}, storage_class="STANDARD", checksum_algorithm=None, initiated=now,
                expires_at=now + self.rules.upload_expiry_s))
            await conn.execute(product_uploads.insert().values(
                upload_id=upload_id, user_id=user_id, file_id=file_id, parent_id=parent_id, path=left,
                size=size, chunk_size=chunk_size, content_hash=content_hash, chunks=chunk_digests,
                content_type=content_type))
            held = await self._hold_stored(conn, upload_id, owner.tenant_id, list(by_digest), now)
            await record_audit(conn, user_id, "upload.init", shown,
                               {"upload_id": upload_id, "size": size, "chunks": count, "stored": len(held)})
            return _status((await conn.execute(_SESSION, {"u": upload_id})).first(), held)

        return await self.db.write(tx)

    async def _destination(self, conn: AsyncConnection, user_id: str, target: UploadTarget,
                           names: list[str] | None) -> tuple[str | None, str | None, list[str], str]:
        """(existing file to version or None, deepest existing folder, names still to make, the
        path to show)."""
        if target.file_id is not None:
            acc = await self.access(conn, user_id, target.file_id, "edit")
            if acc.row.kind != "file":
                raise error("InvalidArgument", "that is a folder; upload into it with parent and name")
            return acc.row.file_id, None, [], acc.path
        if names is None:
            names = split_path(target.name or "")
            if len(names) != 1:
                raise error("InvalidArgument", "name must be one file name")
            acc = await self.access(conn, user_id, target.parent_id or "", "edit")
            if acc.row.kind != "folder":
                raise error("InvalidArgument", "the parent is a file, not a folder")
            folder, left = acc.row, names
            shown = acc.child_path(names[0])
        else:
            await self.drive_root(conn, user_id)
            folder, left = await self._walk(conn, user_id, names)
            shown = "/" + "/".join(names)
        if not left:
            if folder.kind != "file":
                raise error("AlreadyExists", f"{shown!r} is a folder")
            return folder.file_id, None, [], shown
        existing = (await conn.execute(sa.select(files).where(
            _f.owner_id == folder.owner_id, _f.parent_id == folder.file_id, _f.name == left[0],
            _f.trashed_at.is_(None)))).first()
        if existing is not None and len(left) == 1:
            if existing.kind != "file":
                raise error("AlreadyExists", f"{shown!r} is a folder")
            return existing.file_id, None, [], shown
        return None, folder.file_id, left, shown

    async def _check_if_match(self, conn: AsyncConnection, owner_id: str, file_id: str | None,
                              if_match: str) -> None:
        current = None
        if file_id is not None:
            row = (await conn.execute(sa.select(files).where(_f.file_id == file_id))).one()
            latest = await self._latest(conn, row)
            current = latest.version_id if latest is not None else None
        if current != if_match:
            raise error("EditConflict", f"the file's current version is {current}, not {if_match}")

    async def _hold_stored(self, conn: AsyncConnection, upload_id: str, tenant_id: str, digests: list[str],
                           now: float) -> set[str]:
        """Take a reference on each chunk of `digests` the tenant's scope stores (refcount > 0)."""
        if not digests:
            return set()
        keys = {self.chunk_key(tenant_id, d): d for d in digests}
        stored = set()
        items = list(keys)
        for i in range(0, len(items), 500):
            stored |= {r.chunk_key for r in await conn.execute(sa.select(_c.chunk_key).where(
                _c.chunk_key.in_(items[i:i + 500]), _c.refcount > 0))}
        if stored:
            await chunkrefs.apply_deltas(self.db, conn, Counter(dict.fromkeys(stored, 1)), {},
                                         self.scope(tenant_id), now)
            await conn.execute(upload_chunk_refs.insert(),
                               [{"upload_id": upload_id, "chunk_key": k, "sha256": keys[k]}
                                for k in sorted(stored)])
        return {keys[k] for k in stored}

    # ---- chunks ------------------------------------------------------------------------------

    async def upload_chunk_target(self, upload_id: str, index: int) -> ChunkTarget:
        async def q(conn: AsyncConnection) -> ChunkTarget:
            row = (await conn.execute(_SESSION, {"u": upload_id})).first()
            if row is None or row.kind != KIND or row.expires_at <= self.now():
                raise error("NotFound", "no such upload: it may have been finalized, aborted or have expired")
            digests = list(row.chunks)
            if not 0 <= index < len(digests):
                raise error("InvalidArgument", f"this upload has chunks 0 to {len(digests) - 1}")
            size = _plan_sizes(row.size, row.chunk_size, len(digests))[index]
            held = (await conn.execute(sa.select(_ucr.sha256).where(
                _ucr.upload_id == upload_id, _ucr.sha256 == digests[index]))).first() is not None
            return ChunkTarget(upload_id=upload_id, tenant_id=row.tenant_id, index=index,
                               sha256=digests[index], size=size, landed=held)

        return await self.db.read(q)

    async def upload_chunk_landed(self, upload_id: str, index: int, chunk: ChunkRef) -> None:
        """The gateway stored chunk `index` (its digest checked): the session holds it now."""

        async def tx(conn: AsyncConnection) -> None:
            row = await self._product_session(conn, upload_id, None)
            digests = list(row.chunks)
            if not 0 <= index < len(digests) or digests[index] != chunk.sha256:
                raise error("InvalidArgument", "that chunk is not the one announced at this index")
            chunkrefs.check_refs([chunk], {chunk.sha256: self.chunk_key(row.tenant_id, chunk.sha256)})
            if chunk.sha256 in await self._held(conn, upload_id):
                return
            now = self.now()
            await chunkrefs.apply_deltas(self.db, conn, Counter({chunk.chunk_key: 1}),
                                         {chunk.chunk_key: chunk},
                                         self.scope(row.tenant_id), now)
            await conn.execute(upload_chunk_refs.insert().values(
                upload_id=upload_id, chunk_key=chunk.chunk_key, sha256=chunk.sha256))
            await chunkrefs.queue_missing(self.db, conn, [chunk], now)

        await self.db.write(tx)

    # ---- status, abort, finalize -------------------------------------------------------------

    async def upload_status(self, user_id: str, upload_id: str) -> UploadStatus:
        async def q(conn: AsyncConnection) -> UploadStatus:
            row = await self._product_session(conn, upload_id, user_id, lock=False)
            return _status(row, await self._held(conn, upload_id))

        return await self.db.read(q)

    async def release_product_session(self, conn: AsyncConnection, session: Any) -> None:
        """Drop a product session's chunk references and reservations (abort and expiry)."""
        deltas: Counter[str] = Counter()
        for r in await conn.execute(sa.select(_ucr.chunk_key).where(_ucr.upload_id == session.upload_id)):
            deltas[r.chunk_key] -= 1
        now = self.now()
        await chunkrefs.apply_deltas(self.db, conn, deltas, {}, self.scope(session.tenant_id), now)
        await conn.execute(sa.delete(upload_sessions).where(_us.upload_id == session.upload_id))
        await quota.adjust(conn, session.tenant_id, reserved_delta=-session.reserved_bytes)
        await adjust_user(conn, session.owner_id, reserved_delta=-session.reserved_bytes)

    async def upload_abort(self, user_id: str, upload_id: str) -> None:
        async def tx(conn: AsyncConnection) -> None:
            row = await self._product_session(conn, upload_id, user_id)
            await self.release_product_session(conn, row)
            await record_audit(conn, user_id, "upload.abort", row.key, {"upload_id": upload_id})

        await self.db.write(tx)

    async def upload_finalize(self, user_id: str, upload_id: str, if_match: str | None = None) -> FileEntry:
        async def tx(conn: AsyncConnection) -> FileEntry:
            row = await self._product_session(conn, upload_id, user_id)
            held = await self._held(conn, upload_id)
            status = _status(row, held)
            if status.missing:
                raise error("UploadIncomplete", f"{len(status.missing)} chunks have not arrived yet")
            target = await self._finalize_target(conn, user_id, row)
            digests = list(row.chunks)
            sizes = _plan_sizes(row.size, row.chunk_size, len(digests))
            manifest = [(self.chunk_key(row.tenant_id, d), n) for d, n in zip(digests, sizes, strict=True)]
            deltas: Counter[str] = Counter({self.chunk_key(row.tenant_id, d): -1 for d in held})
            content_type = (row.content_type or mimetypes.guess_type(target.name)[0]
                            or "application/octet-stream")
            await self.install_file_version(
                conn, target, user_id, row.size, etag_for(row.content_hash, len(digests)), content_type,
                self.initial_status(), manifest, deltas, "file.upload", {"upload_id": upload_id},
                reserved=row.reserved_bytes, if_match=if_match)
            await conn.execute(sa.delete(upload_sessions).where(_us.upload_id == upload_id))
            return await self.entry_of(conn, await self.access(conn, user_id, target.file_id))

        return await self.db.write(tx)

    async def _finalize_target(self, conn: AsyncConnection, user_id: str, row: Any) -> Any:
        """The file row the upload becomes a version of (making folders and the file if new)."""
        if row.file_id is not None:
            return (await self.access(conn, user_id, row.file_id, "edit")).row
        acc = await self.access(conn, user_id, row.parent_id, "edit")
        names = list(row.path)
        folder = await self.make_folders(conn, acc.row, names[:-1])
        existing = (await conn.execute(sa.select(files).where(
            _f.owner_id == folder.owner_id, _f.parent_id == folder.file_id, _f.name == names[-1],
            _f.trashed_at.is_(None)))).first()
        if existing is not None:
            if existing.kind != "file":
                raise error("AlreadyExists", f"{names[-1]!r} is a folder")
            return existing
        return await self._insert_item(conn, folder, names[-1], "file")
