"""Drives: a user's files and folders, the permission resolver, the trash, versions.

A user's drive is a bucket (`drive_<user id>`: an underscore no S3 bucket name can have, and
S3 calls never see it: coordinator/base.py) with versioning enabled. Each file or folder is
a row of `files` with a stable id; a file's content is the object versions of key `<file
id>` in that bucket, so rename and move change one row, never the bytes or the versions,
and a file's history is its object's versions (coordinator/versions.py owns that model).
Folders have no object. Every drive has a root folder (name "", parent "").

The one permission resolver (`access`) answers "can this user do this to that file" for every
product call: the owner may do everything; anyone else needs a grant on the item or on a
folder above it (the strongest one counts), and sees nothing at all (NotFound, as for an
id that does not exist) without one or while the item is in the trash.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator import chunkrefs, quota
from coordinator.db import is_unique_violation
from coordinator.errors import error
from coordinator.events import emit, record_audit
from coordinator.names import new_id
from coordinator.objects import object_info
from coordinator.product_records import FileContent, FileEntry, FolderPage, VersionEntry
from coordinator.records import DRIVE_BUCKET_PREFIX
from coordinator.scan_gate import Reader, refusal
from coordinator.schema import buckets, files, grants, object_versions, users
from coordinator.versions import NewVersion, VersionQueries

LEVELS = {"view": 1, "edit": 2, "owner": 3}
MAX_DEPTH = 64           # folders inside folders
MAX_NAME = 255           # characters of one name
MAX_PAGE = 1000

_f, _g, _ov, _u = files.c, grants.c, object_versions.c, users.c


def drive_bucket(user_id: str) -> str:
    return DRIVE_BUCKET_PREFIX + user_id


def check_name(name: Any) -> str:
    """A file or folder name: 1-255 printable characters, no "/", not "." or ".."."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise error("InvalidArgument", f"a name is 1 to {MAX_NAME} characters")
    if "/" in name or name in (".", "..") or not name.isprintable() or name != name.strip():
        raise error("InvalidArgument", f"{name!r} is not a valid name: no '/', control characters, "
                    "surrounding spaces, '.' or '..'")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise error("InvalidArgument", "a name must be valid UTF-8") from None
    return name


def split_path(path: Any) -> list[str]:
    """'/a/b/c.txt' -> ['a', 'b', 'c.txt'] (empty components are skipped; '/' is [])."""
    if not isinstance(path, str) or len(path) > 4096:
        raise error("InvalidArgument", "a path is a string of at most 4096 characters")
    parts = [p for p in path.split("/") if p]
    if len(parts) > MAX_DEPTH:
        raise error("InvalidArgument", f"paths are at most {MAX_DEPTH} names deep")
    return [check_name(p) for p in parts]


def etag_for(content_hash: str, chunks: int) -> str:
    """The ETag of a product upload: its content hash (not an MD5; the "-N" suffix tells S3
    clients, as for multipart objects, not to compare it with one)."""
    return f'"{content_hash[:32]}-{chunks}"'


def encode_cursor(kind: str, name: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([kind, name])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        kind, name = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if kind in ("folder", "file") and isinstance(name, str):
            return kind, name
    except (ValueError, TypeError, binascii.Error):
        pass
    raise error("InvalidArgument", "the cursor is not one this API gave out")


@dataclass
class Access:
    """A file row and what the asking user may do with it."""

    row: Any
    level: str                 # owner | edit | view
    chain: list[Any]           # the row and its folders up to the root (the row first)
    trashed: bool              # the row or a folder above it is in the trash
    base: int                  # chain index of the item paths are shown from (root, or the shared item)

    @property
    def path(self) -> str:
        """The item's path as this user sees it (from the drive's root, or from what was shared)."""
        names = [r.name for r in reversed(self.chain[: self.base + 1]) if r.parent_id != ""]
        return "/" + "/".join(names)

    def child_path(self, name: str) -> str:
        return self.path.rstrip("/") + "/" + name


_ANCESTRY = None


def _ancestry() -> Any:
    """A file and its folders up to the root, nearest first (one recursive query)."""
    global _ANCESTRY
    if _ANCESTRY is None:
        base = sa.select(
            _f.file_id, _f.parent_id, _f.name, _f.kind, _f.owner_id, _f.tenant_id, _f.trashed_at,
            _f.created_at, _f.updated_at, sa.literal(0).label("depth"),
        ).where(_f.file_id == sa.bindparam("f")).cte("ancestry", recursive=True)
        up = sa.select(
            _f.file_id, _f.parent_id, _f.name, _f.kind, _f.owner_id, _f.tenant_id, _f.trashed_at,
            _f.created_at, _f.updated_at, (base.c.depth + 1).label("depth"),
        ).where(_f.file_id == base.c.parent_id, base.c.depth < MAX_DEPTH + 1)
        cte = base.union_all(up)
        _ANCESTRY = sa.select(cte).order_by(cte.c.depth)
    return _ANCESTRY


class DriveQueries(VersionQueries):
    # ---- drives ------------------------------------------------------------------------------

    async def drive_root(self, conn: AsyncConnection, user_id: str, *, create: bool = True) -> Any:
        """The user's root folder, creating the drive (bucket and root) on first use."""
        find = sa.select(files).where(_f.owner_id == user_id, _f.parent_id == "", _f.trashed_at.is_(None))
        root = (await conn.execute(find)).first()
        if root is not None or not create:
            return root
        await self.db.lock_name(conn, f"drive:{user_id}")  # two first calls at once make one drive
        root = (await conn.execute(find)).first()
        if root is not None:
            return root
        user = (await conn.execute(sa.select(_u.user_id, _u.tenant_id).where(_u.user_id == user_id))).first()
        if user is None:
            raise error("NotFound", "no such user")
        now = self.now()
        bucket = drive_bucket(user_id)
        exists = (await conn.execute(sa.select(buckets.c.name).where(buckets.c.name == bucket))).first()
        if exists is None:
            await conn.execute(buckets.insert().values(
                name=bucket, tenant_id=user.tenant_id, owner_id=user_id, region="us-east-1", created_at=now,
                versioning="Enabled"))
        values = {"file_id": new_id(), "tenant_id": user.tenant_id, "owner_id": user_id, "parent_id": "",
                  "name": "", "kind": "folder", "created_at": now, "updated_at": now, "trashed_at": None}
        await conn.execute(files.insert().values(**values))
        return (await conn.execute(sa.select(files).where(_f.file_id == values["file_id"]))).first()

    # ---- the permission resolver -------------------------------------------------------------

    async def access(self, conn: AsyncConnection, user_id: str, file_id: str, need: str = "view", *,
                     in_trash: bool = False) -> Access:
        """What `user_id` may do with `file_id`, if at least `need`; NotFound when the user may
        not even see it (or it is in the trash, unless `in_trash` and the user owns it),
        AccessDenied (403) when the user sees it but may not do that."""
        chain = list((await conn.execute(_ancestry(), {"f": file_id})).all()) if file_id else []
        if not chain:
            raise error("NotFound", "no such file or folder")
        row = chain[0]
        trashed = any(r.trashed_at is not None for r in chain)
        base = len(chain) - 1
        if row.owner_id == user_id:
            level = "owner"
        else:
            ids = [r.file_id for r in chain]
            found = {g.file_id: g.permission for g in await conn.execute(
                sa.select(_g.file_id, _g.permission).where(_g.grantee_id == user_id, _g.file_id.in_(ids)))}
            if not found or trashed:
                raise error("NotFound", "no such file or folder")
            level = max(found.values(), key=LEVELS.__getitem__)
            base = max(i for i, r in enumerate(chain) if r.file_id in found)  # the outermost grant
        if trashed and not in_trash:
            raise error("NotFound", "no such file or folder")
        if LEVELS[level] < LEVELS[need]:
            raise error("AccessDenied", f"you may {level} this item, not {need} it")
        return Access(row=row, level=level, chain=chain, trashed=trashed, base=base)

    # ---- entries -----------------------------------------------------------------------------

    async def _latest(self, conn: AsyncConnection, row: Any) -> Any:
        return (await conn.execute(sa.select(object_versions).where(
            _ov.bucket == drive_bucket(row.owner_id), _ov.key == row.file_id, _ov.is_latest))).first()

    async def _owner_name(self, conn: AsyncConnection, owner_id: str) -> str:
        return (await conn.execute(sa.select(_u.name).where(_u.user_id == owner_id))).scalar() or ""

    def _entry(self, row: Any, path: str, owner: str, level: str, version: Any) -> FileEntry:
        entry = FileEntry(id=row.file_id, name=row.name, path=path, type=row.kind, owner=owner,
                          permission=level, updated_at=row.updated_at, trashed_at=row.trashed_at)
        if version is not None and not version.delete_marker:
            entry.size = version.size
            entry.version = version.version_id
            entry.status = version.status
            entry.content_type = version.content_type
            entry.updated_at = max(row.updated_at, version.created_at)
        return entry

    async def entry_of(self, conn: AsyncConnection, acc: Access) -> FileEntry:
        version = await self._latest(conn, acc.row) if acc.row.kind == "file" else None
        owner = await self._owner_name(conn, acc.row.owner_id)
        return self._entry(acc.row, acc.path, owner, acc.level, version)

    async def get_entry(self, user_id: str, file_id: str) -> FileEntry:
        async def q(conn: AsyncConnection) -> FileEntry:
            return await self.entry_of(conn, await self.access(conn, user_id, file_id))

        return await self.db.read(q)

    async def _walk(self, conn: AsyncConnection, user_id: str, names: list[str]) -> tuple[Any, list[str]]:
        """Follow names from the user's root: (the deepest live item reached, the names left)."""
        row = await self.drive_root(conn, user_id, create=False)
        if row is None:
            return None, names
        for i, name in enumerate(names):
            child = (await conn.execute(sa.select(files).where(
                _f.owner_id == user_id, _f.parent_id == row.file_id, _f.name == name,
                _f.trashed_at.is_(None)))).first()
            if child is None:
                return row, names[i:]
            if child.kind != "folder" and i < len(names) - 1:
                raise error("AlreadyExists", f"{'/'.join(names[: i + 1])} is a file, not a folder")
            row = child
        return row, []

    async def stat_path(self, user_id: str, path: str) -> FileEntry:
        names = split_path(path)

        async def q(conn: AsyncConnection) -> FileEntry:
            row, left = await self._walk(conn, user_id, names)
            if row is None and not names:
                row = await self.drive_root(conn, user_id)
            if row is None or left:
                raise error("NotFound", f"nothing at {path!r}")
            return await self.entry_of(conn, await self.access(conn, user_id, row.file_id))

        return await (self.db.write(q) if not names else self.db.read(q))

    async def list_folder(self, user_id: str, folder_id: str | None, path: str | None, cursor: str | None,
                          limit: int) -> FolderPage:
        """A folder's live items, folders first, each group by name (byte order), in pages."""
        limit = max(1, min(limit, MAX_PAGE))
        after = decode_cursor(cursor) if cursor else None
        names = split_path(path) if path is not None and folder_id is None else []

        async def q(conn: AsyncConnection) -> FolderPage:
            fid = folder_id
            if fid is None:
                row, left = await self._walk(conn, user_id, names)
                if row is None and not names:
                    row = await self.drive_root(conn, user_id)
                if row is None or left:
                    raise error("NotFound", f"no folder {path!r}")
                fid = row.file_id
            acc = await self.access(conn, user_id, fid)
            if acc.row.kind != "folder":
                raise error("InvalidArgument", "that is a file, not a folder")
            owner = await self._owner_name(conn, acc.row.owner_id)
            bucket = drive_bucket(acc.row.owner_id)
            items: list[FileEntry] = []
            for kind in ("folder", "file"):
                if after is not None and after[0] == "file" and kind == "folder":
                    continue
                stmt = (
                    sa.select(files, object_versions.c.version_id.label("v_id"))
                    .select_from(files.outerjoin(object_versions, sa.and_(
                        _ov.bucket == bucket, _ov.key == _f.file_id, _ov.is_latest)))
                    .where(_f.parent_id == fid, _f.kind == kind, _f.trashed_at.is_(None))
                    .order_by(_f.name).limit(limit + 1 - len(items))
                )
                if after is not None and after[0] == kind:
                    stmt = stmt.where(_f.name > after[1])
                rows = (await conn.execute(stmt)).all()
                versions = {}
                ids = [r.v_id for r in rows if r.v_id is not None]
                if ids:
                    versions = {v.version_id: v for v in await conn.execute(
                        sa.select(object_versions).where(_ov.version_id.in_(ids)))}
                for r in rows:
                    items.append(self._entry(r, acc.child_path(r.name), owner, acc.level,
                                             versions.get(r.v_id)))
                if len(items) > limit:
                    break
            page = FolderPage(folder=await self.entry_of(conn, acc), items=items[:limit])
            if len(items) > limit:
                last = items[limit - 1]
                page.next = encode_cursor(last.type, last.name)
            return page

        return await (self.db.read(q) if folder_id is not None or names else self.db.write(q))

    # ---- folders, rename, move ---------------------------------------------------------------

    async def _insert_item(self, conn: AsyncConnection, parent: Any, name: str, kind: str) -> Any:
        now = self.now()
        values = {"file_id": new_id(), "tenant_id": parent.tenant_id, "owner_id": parent.owner_id,
                  "parent_id": parent.file_id, "name": name, "kind": kind, "created_at": now,
                  "updated_at": now, "trashed_at": None}
        try:
            await conn.execute(files.insert().values(**values))
        except sa.exc.IntegrityError as exc:
            if is_unique_violation(exc):
                raise error("AlreadyExists", f"{name!r} already exists in that folder") from None
            raise
        return (await conn.execute(sa.select(files).where(_f.file_id == values["file_id"]))).first()

    async def make_folders(self, conn: AsyncConnection, parent: Any, names: list[str]) -> Any:
        """mkdir -p below `parent`: existing folders are followed, missing ones created."""
        for name in names:
            child = (await conn.execute(sa.select(files).where(
                _f.owner_id == parent.owner_id, _f.parent_id == parent.file_id, _f.name == name,
                _f.trashed_at.is_(None)))).first()
            if child is None:
                child = await self._insert_item(conn, parent, name, "folder")
            elif child.kind != "folder":
                raise error("AlreadyExists", f"{name!r} is a file, not a folder")
            parent = child
        return parent

    async def create_folder(self, user_id: str, path: str | None = None, parent_id: str | None = None,
                            name: str | None = None) -> FileEntry:
        """`path` in the user's drive (missing folders above it are made too), or `name` in the
        folder `parent_id` (which may be a folder shared with edit permission)."""
        if (path is None) == (parent_id is None):
            raise error("InvalidArgument", "give either path, or parent and name")
        names = split_path(path) if path is not None else [check_name(name)]
        if not names:
            raise error("AlreadyExists", "the root folder exists already")

        async def tx(conn: AsyncConnection) -> FileEntry:
            if parent_id is None:
                await self.drive_root(conn, user_id)
                top, left = await self._walk(conn, user_id, names)
                if not left:
                    raise error("AlreadyExists", f"{path!r} exists already")
                start = top.file_id
            else:
                start, left = parent_id, names
            acc = await self.access(conn, user_id, start, "edit")
            if acc.row.kind != "folder":
                raise error("InvalidArgument", "the parent is a file, not a folder")
            made = await self.make_folders(conn, acc.row, left)
            await record_audit(conn, user_id, "folder.create", made.file_id, {"name": made.name})
            return await self.entry_of(conn, await self.access(conn, user_id, made.file_id))

        return await self.db.write(tx)

    async def update_file(self, user_id: str, file_id: str, name: str | None = None,
                          parent_id: str | None = None, path: str | None = None) -> FileEntry:
        """Rename and/or move (within its drive): one row changes, never the content."""
        if path is not None and (name is not None or parent_id is not None):
            raise error("InvalidArgument", "give path, or name and/or parent, not both")
        new_names = split_path(path) if path is not None else None
        if new_names is not None and not new_names:
            raise error("InvalidArgument", "nothing can be moved to the root's place")
        if name is not None:
            check_name(name)

        async def tx(conn: AsyncConnection) -> FileEntry:
            acc = await self.access(conn, user_id, file_id, "edit")
            row = acc.row
            if row.parent_id == "":
                raise error("InvalidArgument", "the root folder cannot be renamed or moved")
            new_name, new_parent = name or row.name, parent_id or row.parent_id
            if new_names is not None:
                if acc.level != "owner":
                    raise error("AccessDenied", "only the owner moves items by path; give parent and name")
                top, left = await self._walk(conn, user_id, new_names[:-1])
                if top is None:
                    top = await self.drive_root(conn, user_id)
                new_parent = (await self.make_folders(conn, top, left)).file_id
                new_name = new_names[-1]
            if new_parent != row.parent_id:
                dest = await self.access(conn, user_id, new_parent, "edit")
                if dest.row.kind != "folder":
                    raise error("InvalidArgument", "the destination is a file, not a folder")
                if dest.row.owner_id != row.owner_id:
                    raise error("InvalidArgument", "items move only within their owner's drive")
                if any(r.file_id == row.file_id for r in dest.chain):
                    raise error("InvalidArgument", "a folder cannot move into itself")
            if (new_name, new_parent) == (row.name, row.parent_id):
                return await self.entry_of(conn, acc)
            try:
                await conn.execute(sa.update(files).where(_f.file_id == row.file_id).values(
                    name=new_name, parent_id=new_parent, updated_at=self.now()))
            except sa.exc.IntegrityError as exc:
                if is_unique_violation(exc):
                    raise error("AlreadyExists", f"{new_name!r} already exists in that folder") from None
                raise
            await record_audit(conn, user_id, "file.move", row.file_id,
                               {"name": new_name, "parent_id": new_parent, "from": row.name})
            return await self.entry_of(conn, await self.access(conn, user_id, row.file_id))

        return await self.db.write(tx)

    # ---- trash -------------------------------------------------------------------------------

    async def trash_file(self, user_id: str, file_id: str) -> None:
        """Into the trash (with everything below it), restorable for trash_retention_s."""

        async def tx(conn: AsyncConnection) -> None:
            acc = await self.access(conn, user_id, file_id, "edit")
            if acc.row.parent_id == "":
                raise error("InvalidArgument", "the root folder cannot be deleted")
            now = self.now()
            await conn.execute(sa.update(files).where(_f.file_id == file_id).values(trashed_at=now))
            await record_audit(conn, user_id, "file.trash", file_id, {"name": acc.row.name})

        await self.db.write(tx)

    async def list_trash(self, user_id: str) -> list[FileEntry]:
        cutoff = self.now() - self.rules.trash_retention_s

        async def q(conn: AsyncConnection) -> list[FileEntry]:
            rows = (await conn.execute(sa.select(files).where(
                _f.owner_id == user_id, _f.trashed_at.is_not(None), _f.trashed_at > cutoff)
                .order_by(_f.trashed_at.desc()).limit(MAX_PAGE))).all()
            owner = await self._owner_name(conn, user_id)
            out = []
            for r in rows:
                acc = await self.access(conn, user_id, r.file_id, "owner", in_trash=True)
                version = await self._latest(conn, r) if r.kind == "file" else None
                out.append(self._entry(r, acc.path, owner, "owner", version))
            return out

        return await self.db.read(q)

    async def restore_file(self, user_id: str, file_id: str) -> FileEntry:
        """Out of the trash, to its folder if that is still there (else to the root), under its
        name or, if taken meanwhile, "name (restored)", "name (restored 2)", ..."""
        cutoff = self.now() - self.rules.trash_retention_s

        async def tx(conn: AsyncConnection) -> FileEntry:
            acc = await self.access(conn, user_id, file_id, "owner", in_trash=True)
            row = acc.row
            if row.trashed_at is None or row.trashed_at <= cutoff:
                raise error("NotFound", "that item is not in the trash")
            parent = row.parent_id
            if any(r.trashed_at is not None for r in acc.chain[1:]):
                parent = (await self.drive_root(conn, user_id)).file_id
            name, n = row.name, 1
            while (await conn.execute(sa.select(_f.file_id).where(
                    _f.owner_id == row.owner_id, _f.parent_id == parent, _f.name == name,
                    _f.trashed_at.is_(None)))).first() is not None:
                stem, dot, ext = row.name.rpartition(".")
                stem, ext = (stem, dot + ext) if dot and stem else (row.name, "")
                name = f"{stem} (restored{'' if n == 1 else f' {n}'}){ext}"
                n += 1
            await conn.execute(sa.update(files).where(_f.file_id == file_id).values(
                trashed_at=None, parent_id=parent, name=name, updated_at=self.now()))
            await record_audit(conn, user_id, "file.restore", file_id, {"name": name})
            return await self.entry_of(conn, await self.access(conn, user_id, file_id))

        return await self.db.write(tx)

    async def purge_trash(self, limit: int = 100) -> int:
        """Delete for good what stayed in the trash past trash_retention_s (oldest first, at most
        `limit` trashed items with everything below them): their versions' chunk references and
        quota are released, their links and grants go with them. Returns the items purged."""
        cutoff = self.now() - self.rules.trash_retention_s
        rows = await self.db.read(lambda conn: _all(conn, sa.select(_f.file_id).where(
            _f.trashed_at.is_not(None), _f.trashed_at <= cutoff).order_by(_f.trashed_at).limit(limit)))
        for r in rows:
            await self.db.write(lambda conn, fid=r.file_id: self._purge(conn, fid, "trash.purge"))
        return len(rows)

    async def _purge(self, conn: AsyncConnection, file_id: str, action: str) -> None:
        """Remove an item and everything below it, with every version of every file."""
        top = (await conn.execute(sa.select(files).where(_f.file_id == file_id))).first()
        if top is None:
            return
        todo, rows = [top], []
        while todo:
            row = todo.pop()
            rows.append(row)
            if row.kind == "folder":
                todo += (await conn.execute(sa.select(files).where(_f.parent_id == row.file_id))).all()
        bucket = drive_bucket(top.owner_id)
        freed = 0
        deltas: Counter[str] = Counter()
        for row in rows:
            if row.kind == "file":
                for v in (await conn.execute(sa.select(object_versions).where(
                        _ov.bucket == bucket, _ov.key == row.file_id))).all():
                    keys, removed = await self.remove_version(conn, v)
                    if removed:
                        for k in keys:
                            deltas[k] -= 1
                        freed += v.size
        for row in reversed(rows):  # children first
            await conn.execute(sa.delete(files).where(_f.file_id == row.file_id))
        now = self.now()
        await chunkrefs.apply_deltas(self.db, conn, deltas, {}, self.scope(top.tenant_id), now)
        if freed:
            await quota.adjust(conn, top.tenant_id, used_delta=-freed)
            await conn.execute(sa.update(users).where(_u.user_id == top.owner_id).values(
                used_bytes=_u.used_bytes - freed))
        await record_audit(conn, top.owner_id, action, file_id, {"items": len(rows), "bytes": freed})

    # ---- versions and content ----------------------------------------------------------------

    async def list_versions(self, user_id: str, file_id: str) -> list[VersionEntry]:
        async def q(conn: AsyncConnection) -> list[VersionEntry]:
            acc = await self.access(conn, user_id, file_id)
            if acc.row.kind != "file":
                raise error("InvalidArgument", "folders have no versions")
            rows = await conn.execute(sa.select(object_versions).where(
                _ov.bucket == drive_bucket(acc.row.owner_id), _ov.key == file_id,
                _ov.delete_marker.is_(False)).order_by(_ov.seq.desc()).limit(MAX_PAGE))
            return [VersionEntry(version=v.version_id, size=v.size, created_at=v.created_at,
                                 current=bool(v.is_latest), status=v.status) for v in rows]

        return await self.db.read(q)

    async def restore_version(self, user_id: str, file_id: str, version: str) -> FileEntry:
        """The old version's content becomes the file's new current version (a metadata copy:
        its chunks gain a reference); the versions in between stay."""

        async def tx(conn: AsyncConnection) -> FileEntry:
            acc = await self.access(conn, user_id, file_id, "edit")
            bucket = drive_bucket(acc.row.owner_id)
            old = (await conn.execute(sa.select(object_versions).where(
                _ov.bucket == bucket, _ov.key == file_id, _ov.version_id == version,
                _ov.delete_marker.is_(False)))).first()
            if old is None:
                raise error("NotFound", "no such version of that file")
            if old.status == "quarantined":
                raise error("AccessDenied", "a quarantined version cannot be restored")
            manifest = [(r.chunk_key, r.size) for r in await conn.execute(
                sa.select(chunkrefs.object_chunks.c.chunk_key, chunkrefs.object_chunks.c.size)
                .where(chunkrefs.object_chunks.c.version_id == version)
                .order_by(chunkrefs.object_chunks.c.seq))]
            await self.install_file_version(conn, acc.row, user_id, old.size, old.etag, old.content_type,
                                            old.status, manifest, Counter(), "file.version_restore",
                                            {"from_version": version})
            return await self.entry_of(conn, await self.access(conn, user_id, file_id))

        return await self.db.write(tx)

    async def install_file_version(
        self, conn: AsyncConnection, row: Any, actor: str, size: int, etag: str, content_type: str | None,
        status: str, manifest: list[tuple[str, int]], deltas: Counter[str], action: str,
        detail: dict[str, Any], reserved: int = 0, if_match: str | None = None,
    ) -> str:
        """A new current version of the file `row` (inside the caller's transaction): the
        version, its chunk references (plus `deltas`), quota of owner and tenant (`reserved`
        bytes move from reserved to used), audit, the outbox event. Returns its version id.
        With if_match, the current version must be that one (EditConflict otherwise)."""
        bucket = drive_bucket(row.owner_id)
        now = self.now()
        latest = await self.lock_key(conn, bucket, row.file_id)
        if if_match is not None:
            current = latest.version_id if latest is not None and not latest.delete_marker else None
            if current != if_match:
                raise error("EditConflict", f"the file's current version is {current}, not {if_match}")
        values = {
            "bucket": bucket, "key": row.file_id, "tenant_id": row.tenant_id, "owner_id": row.owner_id,
            "size": size, "etag": etag, "content_type": content_type, "metadata": {}, "headers": {},
            "storage_class": "STANDARD", "status": status, "checksums": {}, "part_count": 0,
            "created_at": now, "last_modified": now, "last_access": None,
        }
        new = NewVersion(values=values, manifest=manifest, versioning="Enabled")
        _replaced, manifest_rows = await self.install_version(conn, new, deltas)
        await chunkrefs.apply_deltas(self.db, conn, deltas, {}, self.scope(row.tenant_id), now)
        await self.write_manifest(conn, new, manifest_rows)
        await quota.adjust(conn, row.tenant_id, reserved_delta=-reserved, used_delta=size)
        await adjust_user(conn, row.owner_id, reserved_delta=-reserved, used_delta=size)
        await conn.execute(sa.update(files).where(_f.file_id == row.file_id).values(updated_at=now))
        version_id = values["version_id"]
        payload = {"version_id": version_id, "bucket": bucket, "key": row.file_id, "tenant_id": row.tenant_id,
                   "size": size, "etag": etag, "replaced": None, "file_id": row.file_id}
        await record_audit(conn, actor, action, f"{bucket}/{row.file_id}", {**payload, **detail}, at=now)
        await emit(conn, "object.finalized", payload, at=now)
        return version_id

    async def file_content(self, user_id: str, file_id: str, version: str | None = None,
                           range_start: int | None = None, range_end: int | None = None) -> FileContent:
        """The entry and the version (current, or `version`) with the chunks holding bytes
        range_start..range_end (inclusive; None: from the start / to the end). Quarantined
        content is refused (AccessDenied); scanning content to anyone but the owner (TooEarly)."""

        async def q(conn: AsyncConnection) -> FileContent:
            acc = await self.access(conn, user_id, file_id)
            if acc.row.kind != "file":
                raise error("InvalidArgument", "a folder has no content")
            bucket = drive_bucket(acc.row.owner_id)
            stmt = sa.select(object_versions).where(_ov.bucket == bucket, _ov.key == file_id)
            stmt = stmt.where(_ov.version_id == version) if version else stmt.where(_ov.is_latest)
            v = (await conn.execute(stmt)).first()
            if v is None or v.delete_marker:
                raise error("NotFound", "that file has no such version")
            check_servable(v.status, acc.level == "owner")
            owner = await self._owner_name(conn, acc.row.owner_id)
            return FileContent(entry=self._entry(acc.row, acc.path, owner, acc.level, v),
                               object=await load_object(conn, v, range_start, range_end))

        return await self.db.read(q)


def check_servable(status: str, owner: bool) -> None:
    """The scan's rule on serving bytes (coordinator/scan_gate.py): the owner reads what they
    just wrote, like an S3 principal; anyone else (a grantee) waits for the scan, like a link."""
    if status not in ("ready", "scanning", "quarantined"):
        raise error("NotFound", "that file has no content")
    refused = refusal(status, Reader.USER if owner else Reader.PUBLIC)
    if refused is None:
        return
    if refused.reason == "quarantined":
        raise error("AccessDenied", "this file was quarantined by the malware scan")
    raise error("TooEarly", refused.message)


async def load_object(conn: AsyncConnection, v: Any, start: int | None, end: int | None) -> Any:
    """The version as ObjectInfo with the chunk refs of the bytes start..end (all if None)."""
    if start is None and end is None:
        refs = await chunkrefs.load_refs(conn, v.version_id)
    elif v.size == 0 or (start or 0) >= v.size:
        refs = []
    else:
        refs = await chunkrefs.load_refs(conn, v.version_id, start or 0, v.size - 1 if end is None else end)
    return object_info(v, [], refs)


async def adjust_user(conn: AsyncConnection, user_id: str, reserved_delta: int = 0,
                      used_delta: int = 0) -> None:
    """A user's own quota, as coordinator/quota.py does the tenant's: a growth must fit."""
    growth = reserved_delta + used_delta
    stmt = sa.update(users).where(_u.user_id == user_id).values(
        reserved_bytes=_u.reserved_bytes + reserved_delta, used_bytes=_u.used_bytes + used_delta)
    if growth > 0:
        stmt = stmt.where(sa.or_(_u.quota_bytes.is_(None),
                                 _u.used_bytes + _u.reserved_bytes + growth <= _u.quota_bytes))
    result = await conn.execute(stmt)
    if result.rowcount == 0:
        row = (await conn.execute(sa.select(users).where(_u.user_id == user_id))).first()
        if row is None:
            raise error("NotFound", "no such user")
        raise error("QuotaExceeded", f"storing {growth} more bytes would exceed the user's quota of "
                    f"{row.quota_bytes} bytes ({row.used_bytes} used, {row.reserved_bytes} reserved)")


async def _all(conn: AsyncConnection, stmt: Any) -> list[Any]:
    return list((await conn.execute(stmt)).all())
