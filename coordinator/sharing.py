"""Sharing: grants to people of the tenant, and share links for anyone holding the URL.

Grants (`view` | `edit`) are made by the owner on a file or a folder; a folder's grant holds
for everything below it, and the permission resolver (coordinator/drive.py `access`) reads
them on every call, so a revoked grant is gone on the next request.

A share link is one row (one token) per link: revoking one leaves the others alone. Only the
SHA-256 of its 192-bit token is stored. `link_resolve` is the public lookup: unknown and
revoked links are the same NotFound (so are links to a file in the trash or quarantined),
expired ones Gone (410); a password is checked by the gateway against the hash this returns,
after `link_resolve` counted the attempt (per link and client address). `link_content` is
what every byte-serving request asks: it checks the link again (so revocation, expiry and
quarantine stop even URLs handed out earlier) and, for a transfer that will send the file's
last byte, reserves one of `max_downloads` (reservations and completed downloads together
never exceed it, whatever the concurrency); `link_download_end` counts it when it completed,
with time and client address, or gives the reservation back.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from coordinator import ratelimit
from coordinator.accounts import check_token_hash
from coordinator.drive import drive_bucket, load_object, split_path
from coordinator.errors import error
from coordinator.events import client_addr as audit_client_addr
from coordinator.events import record_audit
from coordinator.names import new_id
from coordinator.product_records import (
    LINK_GONE,
    FileContent,
    FileEntry,
    GrantInfo,
    LinkContent,
    LinkInfo,
    LinkItem,
    LinkView,
)
from coordinator.product_uploads import ProductUploadQueries
from coordinator.records import is_drive_bucket
from coordinator.schema import files, grants, object_versions, share_link_downloads, share_links, users

_f, _g, _l, _d, _ov, _u = (files.c, grants.c, share_links.c, share_link_downloads.c, object_versions.c,
                           users.c)
PERMISSIONS = ("view", "download")
DOWNLOAD_LEASE_S = 6 * 3600.0   # a reservation whose transfer never reported back lapses after this
MAX_LINKS_LISTED = 10_000


def _link_status(row: Any, now: float) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    if row.max_downloads is not None and row.download_count >= row.max_downloads:
        return "exhausted"
    return "active"


class SharingQueries(ProductUploadQueries):
    # ---- grants ------------------------------------------------------------------------------

    async def grant_create(self, user_id: str, file_id: str, grantee: str, permission: str) -> GrantInfo:
        """Give a user of the same tenant view or edit on a file or folder (the owner only);
        granting again changes the permission. NotFound for a user of another tenant too."""
        if permission not in ("view", "edit"):
            raise error("InvalidArgument", "permission must be view or edit")

        async def tx(conn: AsyncConnection) -> GrantInfo:
            acc = await self.access(conn, user_id, file_id, "owner")
            other = (await conn.execute(sa.select(_u.user_id, _u.name).where(
                _u.name == grantee, _u.tenant_id == acc.row.tenant_id))).first()
            if other is None:
                raise error("NotFound", f"no user {grantee!r} in your organisation")
            if other.user_id == acc.row.owner_id:
                raise error("InvalidArgument", "the owner has every permission already")
            now = self.now()
            found = (await conn.execute(sa.select(grants).where(
                _g.file_id == file_id, _g.grantee_id == other.user_id))).first()
            if found is None:
                grant_id = new_id()
                await conn.execute(grants.insert().values(grant_id=grant_id, file_id=file_id,
                                                          grantee_id=other.user_id, permission=permission,
                                                          created_at=now))
            else:
                grant_id = found.grant_id
                await conn.execute(
                    sa.update(grants).where(_g.grant_id == grant_id).values(permission=permission))
            await record_audit(conn, user_id, "grant.create", file_id,
                               {"grantee": grantee, "permission": permission})
            return GrantInfo(id=grant_id, file_id=file_id, user=other.name, permission=permission,
                             created_at=now)

        return await self.db.write(tx)

    async def grant_list(self, user_id: str, file_id: str) -> list[GrantInfo]:
        async def q(conn: AsyncConnection) -> list[GrantInfo]:
            await self.access(conn, user_id, file_id, "owner")
            rows = await conn.execute(sa.select(grants, _u.name).select_from(
                grants.join(users, _u.user_id == _g.grantee_id)
            ).where(_g.file_id == file_id).order_by(_u.name))
            return [GrantInfo(id=r.grant_id, file_id=file_id, user=r.name, permission=r.permission,
                              created_at=r.created_at) for r in rows]

        return await self.db.read(q)

    async def grant_revoke(self, user_id: str, file_id: str, grant_id: str) -> None:
        async def tx(conn: AsyncConnection) -> None:
            await self.access(conn, user_id, file_id, "owner")
            result = await conn.execute(
                sa.delete(grants).where(_g.grant_id == grant_id, _g.file_id == file_id))
            if result.rowcount == 0:
                raise error("NotFound", "no such grant on that item")
            await record_audit(conn, user_id, "grant.revoke", file_id, {"grant_id": grant_id})

        await self.db.write(tx)

    async def shared_with_me(self, user_id: str) -> list[FileEntry]:
        """Items others granted this user directly (not what is below them), newest grant first."""

        async def q(conn: AsyncConnection) -> list[FileEntry]:
            rows = (await conn.execute(sa.select(_g.file_id).where(_g.grantee_id == user_id)
                                       .order_by(_g.created_at.desc()).limit(1000))).all()
            out = []
            for r in rows:
                try:
                    acc = await self.access(conn, user_id, r.file_id)
                except Exception as exc:  # in the trash: not shown
                    if getattr(exc, "code", "") == "NotFound":
                        continue
                    raise
                out.append(await self.entry_of(conn, acc))
            return out

        return await self.db.read(q)

    # ---- share links: the owner's side -------------------------------------------------------

    def _link_info(self, row: Any, name: str, now: float) -> LinkInfo:
        return LinkInfo(id=row.link_id, file_id=row.file_id, file_name=name, permission=row.permission,
                        created_at=row.created_at, status=_link_status(row, now),
                        downloads=row.download_count,
                        max_downloads=row.max_downloads, expires_at=row.expires_at,
                        has_password=row.password_hash is not None, revoked_at=row.revoked_at)

    async def link_create(self, user_id: str, file_id: str, token_hash: str, permission: str,
                          expires_at: float | None = None, password_hash: str | None = None,
                          max_downloads: int | None = None) -> LinkInfo:
        check_token_hash(token_hash)
        if permission not in PERMISSIONS:
            raise error("InvalidArgument", "permission must be view or download")
        if expires_at is not None and expires_at <= self.now():
            raise error("InvalidArgument", "expires_at must lie in the future")
        if max_downloads is not None and not 1 <= max_downloads <= 1_000_000_000:
            raise error("InvalidArgument", "max_downloads must be a positive number")
        if password_hash is not None and not password_hash.startswith("$argon2id$"):
            raise error("InvalidArgument", "password_hash must be an argon2id PHC string")

        async def tx(conn: AsyncConnection) -> LinkInfo:
            acc = await self.access(conn, user_id, file_id, "owner")
            now = self.now()
            values = {"link_id": new_id(), "token_hash": token_hash, "file_id": file_id,
                      "owner_id": acc.row.owner_id, "permission": permission, "created_at": now,
                      "expires_at": expires_at, "password_hash": password_hash,
                      "max_downloads": max_downloads,
                      "download_count": 0, "revoked_at": None, "revoked_reason": None}
            await conn.execute(share_links.insert().values(**values))
            await record_audit(conn, user_id, "share.create", values["link_id"], {
                "file_id": file_id, "permission": permission, "expires_at": expires_at,
                "max_downloads": max_downloads, "password": password_hash is not None})
            return self._link_info(_Row(values), acc.row.name, now)

        return await self.db.write(tx)

    async def link_list(self, user_id: str) -> list[LinkInfo]:
        """Every link of the user that was not revoked (expired and exhausted ones say so)."""
        now = self.now()

        async def q(conn: AsyncConnection) -> list[LinkInfo]:
            rows = await conn.execute(
                sa.select(share_links, _f.name).select_from(share_links.join(files, _f.file_id == _l.file_id))
                .where(_l.owner_id == user_id, _l.revoked_at.is_(None))
                .order_by(_l.created_at.desc(), _l.link_id).limit(MAX_LINKS_LISTED))
            return [self._link_info(r, r.name, now) for r in rows]

        return await self.db.read(q)

    async def link_revoke(self, user_id: str, link_id: str) -> None:
        """Revoke that one link (its row) at once; every other link stays as it is."""

        async def tx(conn: AsyncConnection) -> None:
            result = await conn.execute(sa.update(share_links).where(
                _l.link_id == link_id, _l.owner_id == user_id, _l.revoked_at.is_(None)).values(
                revoked_at=self.now(), revoked_reason="owner"))
            if result.rowcount == 0:
                raise error("NotFound", "no such link")
            await record_audit(conn, user_id, "share.revoke", link_id, {})

        await self.db.write(tx)

    # ---- share links: the public side --------------------------------------------------------

    async def _live_link(self, conn: AsyncConnection, *, token_hash: str | None = None,
                         link_id: str | None = None, lock: bool = False) -> Any:
        stmt = sa.select(share_links)
        stmt = stmt.where(_l.token_hash == token_hash) if token_hash else stmt.where(_l.link_id == link_id)
        if lock and self.db.dialect == "postgresql":
            stmt = stmt.with_for_update()
        row = (await conn.execute(stmt)).first()
        if row is None or row.revoked_at is not None:
            raise error("NotFound", LINK_GONE)
        if row.expires_at is not None and row.expires_at <= self.now():
            raise error("Gone", "this link has expired")
        return row

    async def _link_item(self, conn: AsyncConnection, link: Any,
                         path: str | None) -> tuple[Any, LinkItem, Any]:
        """The item the link (and `path` below a shared folder) names, live: (row, item, version)."""
        try:
            acc = await self.access(conn, link.owner_id, link.file_id)
        except Exception as exc:
            if getattr(exc, "code", "") == "NotFound":
                raise error("NotFound", LINK_GONE) from None
            raise
        row, shown = acc.row, ""
        if path:
            names = split_path(path)
            for name in names:
                if row.kind != "folder":
                    raise error("NotFound", "nothing at that path in this shared folder")
                row = (await conn.execute(sa.select(files).where(
                    _f.parent_id == row.file_id, _f.name == name, _f.trashed_at.is_(None)))).first()
                if row is None:
                    raise error("NotFound", "nothing at that path in this shared folder")
            shown = "/".join(names)
        version = await self._latest(conn, row) if row.kind == "file" else None
        if version is not None and version.status == "quarantined":
            raise error("NotFound", LINK_GONE if not path else "nothing at that path in this shared folder")
        return row, _item(row, shown, version), version

    async def link_resolve(self, token_hash: str, path: str | None = None,
                           password_attempt: bool = False, client_addr: str | None = None) -> LinkView:
        """The link's item (and a folder's contents) if the link is live. NotFound for unknown,
        revoked, trashed or quarantined; Gone for expired or used up. With password_attempt,
        one attempt is counted for (link, address) first: TooManyRequests when too many."""
        check_token_hash(token_hash)

        async def q(conn: AsyncConnection) -> LinkView:
            link = await self._live_link(conn, token_hash=token_hash)
            if link.max_downloads is not None and link.download_count >= link.max_downloads:
                raise error("Gone", "this link has been used as often as it may be")
            if password_attempt and link.password_hash is not None:
                wait = await ratelimit.take(
                    self.db, conn,
                    [(f"l:{link.link_id}|{client_addr or '-'}", self.rules.link_password_attempts)],
                    self.rules.login_window_s, self.now())
                if wait > 0:
                    raise error("TooManyRequests",
                                f"too many password attempts; try again in {int(wait) + 1} s")
            row, item, _version = await self._link_item(conn, link, path)
            view = LinkView(link_id=link.link_id, permission=link.permission, item=item,
                            password_hash=link.password_hash, expires_at=link.expires_at)
            if row.kind == "folder":
                children = (await conn.execute(sa.select(files).where(
                    _f.parent_id == row.file_id, _f.trashed_at.is_(None)).order_by(
                    _f.kind.desc(), _f.name).limit(1000))).all()
                view.items = []
                for c in children:
                    v = await self._latest(conn, c) if c.kind == "file" else None
                    if v is not None and v.status == "quarantined":
                        continue
                    view.items.append(_item(c, f"{item.path}/{c.name}".lstrip("/"), v))
            return view

        return await (self.db.write(q) if password_attempt else self.db.read(q))

    async def _link_file(self, conn: AsyncConnection, link_id: str, file_id: str, version_id: str,
                         lock: bool = False) -> tuple[Any, Any, Any]:
        """The checks of every byte-serving request: (link, access, version) when the link is
        live and not used up, `file_id` is its item or below it, `version_id` that file's current
        version and ready to serve."""
        link = await self._live_link(conn, link_id=link_id, lock=lock)
        try:
            acc = await self.access(conn, link.owner_id, file_id)
        except Exception as exc:
            if getattr(exc, "code", "") == "NotFound":
                raise error("NotFound", LINK_GONE) from None
            raise
        if acc.row.kind != "file" or all(r.file_id != link.file_id for r in acc.chain):
            raise error("NotFound", LINK_GONE)
        v = (await conn.execute(sa.select(object_versions).where(
            _ov.bucket == drive_bucket(link.owner_id), _ov.key == file_id,
            _ov.version_id == version_id))).first()
        if v is None or v.status == "quarantined":
            raise error("NotFound", LINK_GONE)
        if not v.is_latest:
            raise error("Gone", "the file has changed since this URL was made; open the link again")
        if v.status != "ready":
            raise error("TooEarly", "this file is still being scanned for malware; try again shortly")
        if link.max_downloads is not None and link.download_count >= link.max_downloads:
            raise error("Gone", "this link has been used as often as it may be")
        return link, acc, v

    async def link_content(self, link_id: str, file_id: str, version_id: str,
                           range_start: int | None = None, range_end: int | None = None) -> LinkContent:
        """Serve bytes through a link: the link is checked again (revoked, expired, used up,
        the file trashed, quarantined or still scanning); `file_id` must be the link's item or
        below it, `version_id` its current version."""

        async def q(conn: AsyncConnection) -> LinkContent:
            link, acc, v = await self._link_file(conn, link_id, file_id, version_id)
            entry = FileEntry(id=file_id, name=acc.row.name, path="", type="file", owner="",
                              permission="view", updated_at=0.0, size=v.size, version=version_id,
                              status=v.status, content_type=v.content_type)
            obj = await load_object(conn, v, range_start, range_end)
            return LinkContent(content=FileContent(entry=entry, object=obj), permission=link.permission)

        return await self.db.read(q)

    async def link_download_begin(self, link_id: str, file_id: str, version_id: str,
                                  client_addr: str | None = None) -> str:
        """Before a transfer that sends the file's last byte: the link's checks again, then one
        of max_downloads reserved (Gone when none is left). Returns the download's id for
        link_download_end."""

        async def tx(conn: AsyncConnection) -> str:
            link, _acc, _v = await self._link_file(conn, link_id, file_id, version_id, lock=True)
            return await self._reserve_download(conn, link, version_id, client_addr)

        return await self.db.write(tx)

    async def _reserve_download(self, conn: AsyncConnection, link: Any, version_id: str,
                                client_addr: str | None) -> str:
        now = self.now()
        if link.max_downloads is not None:
            running = (await conn.execute(sa.select(sa.func.count()).select_from(share_link_downloads).where(
                _d.link_id == link.link_id, _d.finished_at.is_(None),
                _d.started_at > now - DOWNLOAD_LEASE_S))).scalar()
            if link.download_count + running >= link.max_downloads:
                raise error("Gone", "this link has been used as often as it may be")
        download_id = new_id()
        await conn.execute(share_link_downloads.insert().values(
            download_id=download_id, link_id=link.link_id, version_id=version_id, started_at=now,
            finished_at=None, client_addr=client_addr))
        return download_id

    async def link_download_end(self, download_id: str, completed: bool) -> None:
        """A counted transfer ended: completed, it is one download (audited with time and client
        address); otherwise its reservation is given back."""

        async def tx(conn: AsyncConnection) -> None:
            row = (await conn.execute(sa.select(share_link_downloads).where(
                _d.download_id == download_id, _d.finished_at.is_(None)))).first()
            if row is None:
                return
            if not completed:
                await conn.execute(sa.delete(share_link_downloads).where(_d.download_id == download_id))
                return
            now = self.now()
            await conn.execute(sa.update(share_link_downloads).where(_d.download_id == download_id)
                               .values(finished_at=now))
            await conn.execute(sa.update(share_links).where(_l.link_id == row.link_id).values(
                download_count=_l.download_count + 1))
            token = audit_client_addr.set(row.client_addr)
            try:
                await record_audit(conn, f"link:{row.link_id}", "share.download", row.link_id,
                                   {"download_id": download_id}, at=now, version_id=row.version_id)
            finally:
                audit_client_addr.reset(token)

        await self.db.write(tx)

    # ---- quarantine --------------------------------------------------------------------------

    async def revoke_links_tx(self, conn: AsyncConnection, bucket: str, key: str, now: float) -> int:
        """Inside the caller's transaction (the scan worker's quarantine): revoke every share
        link of the drive file `key` (reason "quarantine"); returns how many. 0 outside drives."""
        if not is_drive_bucket(bucket):
            return 0
        result = await conn.execute(sa.update(share_links).where(
            _l.file_id == key, _l.revoked_at.is_(None)).values(revoked_at=now, revoked_reason="quarantine"))
        return result.rowcount


def _item(row: Any, path: str, version: Any) -> LinkItem:
    item = LinkItem(name=row.name, path=path, type=row.kind, file_id=row.file_id)
    if version is not None and not version.delete_marker:
        item.size, item.content_type, item.status = version.size, version.content_type, version.status
        item.version_id, item.etag = version.version_id, version.etag
    return item


class _Row:
    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

