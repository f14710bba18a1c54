"""The product's drives on the metadata store: upload sessions hold their chunks, abort and
purge release references and quota, the permission resolver, link download reservations."""

from __future__ import annotations

import base64
import hashlib

import pytest
import sqlalchemy as sa

from coordinator.product_records import UploadTarget
from coordinator.product_rules import ProductRules
from coordinator.records import ChunkRef, CoordinatorError
from coordinator.schema import chunks, tenants, users
from tests.coordinator.helpers import open_meta


def _digests(*parts: bytes) -> list[str]:
    return [hashlib.sha256(p).hexdigest() for p in parts]


def _hash(digests: list[str]) -> str:
    return hashlib.sha256(b"".join(bytes.fromhex(d) for d in digests)).hexdigest()


def _inline(meta, tenant_id: str, data: bytes) -> ChunkRef:
    """A chunk as the gateway reports it after storing it (inline: no nodes needed here)."""
    sha = hashlib.sha256(data).hexdigest()
    return ChunkRef(sha256=sha, chunk_key=meta.chunk_key(tenant_id, sha), size=len(data),
                    enc_size=len(data) + 16, key_id="m1",
                    inline=base64.b64encode(b"x" * (len(data) + 16)).decode())


async def _refcounts(meta) -> dict[str, int]:
    async def q(conn):
        return {r.chunk_key: r.refcount for r in await conn.execute(sa.select(chunks))}
    return await meta.db.read(q)


async def _reserved(meta, user_id: str) -> tuple[int, int, int, int]:
    async def q(conn):
        u = (await conn.execute(sa.select(users).where(users.c.user_id == user_id))).one()
        t = (await conn.execute(sa.select(tenants).where(tenants.c.tenant_id == u.tenant_id))).one()
        return u.reserved_bytes, u.used_bytes, t.reserved_bytes, t.used_bytes
    return await meta.db.read(q)


async def _upload(meta, user: dict, path: str, parts: list[bytes]) -> str:
    d = _digests(*parts)
    s = await meta.upload_init(user["user_id"], UploadTarget(path=path), sum(map(len, parts)), 8,
                               d, _hash(d))
    for i in s.missing:
        await meta.upload_chunk_landed(s.upload_id, i, _inline(meta, user["tenant_id"], parts[i]))
    entry = await meta.upload_finalize(user["user_id"], s.upload_id)
    return entry.id


async def test_a_session_holds_stored_chunks_and_abort_gives_everything_back(database_url: str) -> None:
    async with open_meta(database_url) as meta:
        alice = await meta.create_user("acme", "alice")
        await _upload(meta, alice, "/a.bin", [b"12345678", b"abc"])
        before = await _refcounts(meta)
        d = _digests(b"12345678", b"zzz")
        s = await meta.upload_init(alice["user_id"], UploadTarget(path="/b.bin"), 11, 8, d, _hash(d))
        assert s.missing == [1] and s.landed == [0]
        held = await _refcounts(meta)
        key = meta.chunk_key(alice["tenant_id"], d[0])
        assert held[key] == before[key] + 1
        assert await _reserved(meta, alice["user_id"]) == (11, 11, 11, 11)
        # The generic abort (what the expiry job calls for every kind of session) releases it all.
        await meta.abort_upload(alice["tenant_id"], f"drive_{alice['user_id']}", s.upload_id)
        assert await _refcounts(meta) == before
        assert await _reserved(meta, alice["user_id"]) == (0, 11, 0, 11)
        with pytest.raises(CoordinatorError) as exc:
            await meta.upload_status(alice["user_id"], s.upload_id)
        assert exc.value.code == "NotFound"


async def test_a_chunk_landing_twice_is_held_once(database_url: str) -> None:
    async with open_meta(database_url) as meta:
        alice = await meta.create_user("acme", "alice")
        d = _digests(b"samesame", b"samesame", b"x")
        s = await meta.upload_init(alice["user_id"], UploadTarget(path="/twice.bin"), 17, 8, d, _hash(d))
        assert s.missing == [0, 2]                       # a digest repeated in the file is sent once
        ref = _inline(meta, alice["tenant_id"], b"samesame")
        await meta.upload_chunk_landed(s.upload_id, 0, ref)
        await meta.upload_chunk_landed(s.upload_id, 1, ref)
        with pytest.raises(CoordinatorError):
            await meta.upload_chunk_landed(s.upload_id, 2, ref)   # not the chunk announced there
        await meta.upload_chunk_landed(s.upload_id, 2, _inline(meta, alice["tenant_id"], b"x"))
        await meta.upload_finalize(alice["user_id"], s.upload_id)
        counts = await _refcounts(meta)
        assert counts[ref.chunk_key] == 2                 # two occurrences in the manifest


async def test_purging_the_trash_releases_versions_references_and_quota(database_url: str) -> None:
    async with open_meta(database_url) as meta:
        alice = await meta.create_user("acme", "alice")
        file_id = await _upload(meta, alice, "/old/x.bin", [b"12345678", b"1"])
        await _upload(meta, alice, "/old/x.bin", [b"87654321"])    # a second version
        folder = (await meta.stat_path(alice["user_id"], "/old")).id
        await meta.trash_file(alice["user_id"], folder)
        assert await meta.purge_trash() == 0                     # within the retention: kept
        assert (await _reserved(meta, alice["user_id"]))[1] == 17
        meta.rules = ProductRules(trash_retention_s=0.0)
        assert await meta.purge_trash() == 1
        assert set((await _refcounts(meta)).values()) == {0}
        assert await _reserved(meta, alice["user_id"]) == (0, 0, 0, 0)
        with pytest.raises(CoordinatorError):
            await meta.get_entry(alice["user_id"], file_id)


async def test_the_resolver_hides_unshared_items_and_refuses_what_is_only_viewed(database_url: str) -> None:
    async with open_meta(database_url) as meta:
        alice = await meta.create_user("acme", "alice")
        bob = await meta.create_user("acme", "bob")
        await meta.create_user("other", "eve")
        file_id = await _upload(meta, alice, "/p/plan.txt", [b"plan"])
        folder = (await meta.stat_path(alice["user_id"], "/p")).id
        with pytest.raises(CoordinatorError) as exc:
            await meta.get_entry(bob["user_id"], file_id)
        assert exc.value.code == "NotFound"
        with pytest.raises(CoordinatorError) as exc:
            await meta.grant_create(alice["user_id"], folder, "eve", "view")   # another tenant
        assert exc.value.code == "NotFound"
        await meta.grant_create(alice["user_id"], folder, "bob", "view")
        entry = await meta.get_entry(bob["user_id"], file_id)
        assert (entry.permission, entry.path, entry.owner) == ("view", "/p/plan.txt", "alice")
        with pytest.raises(CoordinatorError) as exc:
            await meta.trash_file(bob["user_id"], file_id)
        assert (exc.value.code, exc.value.status) == ("AccessDenied", 403)
        await meta.trash_file(alice["user_id"], folder)
        with pytest.raises(CoordinatorError) as exc:
            await meta.get_entry(bob["user_id"], file_id)                    # in the trash: gone
        assert exc.value.code == "NotFound"


async def test_download_reservations_never_exceed_max_downloads(database_url: str) -> None:
    async with open_meta(database_url) as meta:
        alice = await meta.create_user("acme", "alice")
        file_id = await _upload(meta, alice, "/f.bin", [b"data"])
        version = (await meta.get_entry(alice["user_id"], file_id)).version
        link = await meta.link_create(alice["user_id"], file_id, "a" * 64, "download", max_downloads=2)
        first = await meta.link_download_begin(link.id, file_id, version, "10.0.0.1")
        second = await meta.link_download_begin(link.id, file_id, version, "10.0.0.2")
        with pytest.raises(CoordinatorError) as exc:
            await meta.link_download_begin(link.id, file_id, version, "10.0.0.3")
        assert (exc.value.code, exc.value.status) == ("Gone", 410)
        await meta.link_download_end(second, completed=False)       # broke off: the slot comes back
        third = await meta.link_download_begin(link.id, file_id, version, "10.0.0.3")
        await meta.link_download_end(first, completed=True)
        await meta.link_download_end(third, completed=True)
        assert [x.downloads for x in await meta.link_list(alice["user_id"])] == [2]
        with pytest.raises(CoordinatorError) as exc:
            await meta.link_resolve("a" * 64)
        assert exc.value.code == "Gone"
        # A quarantine revokes the link and names the two completed downloads (not the one
        # that broke off) in its audit, in the scan's own transaction.
        assert await meta.record_scan(version, "quarantined", "infected: X", "builtin", ["ready"]) is True
        audit = await meta.object_audit(f"drive_{alice['user_id']}", file_id)
        (quarantine,) = [a for a in audit if a.action == "object.quarantine"]
        assert quarantine.detail["links_revoked"] == 1
        assert sorted((d["via"], d["client_addr"]) for d in quarantine.detail["downloaders"]) == [
            ("share link", "10.0.0.1"), ("share link", "10.0.0.3")]
        assert await meta.link_list(alice["user_id"]) == []                 # revoked: not listed
