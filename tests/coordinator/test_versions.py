"""The version model (coordinator/versions.py) on SQLite and PostgreSQL: versioning states,
delete markers, null versions, listing every version page by page, and references and quota
released exactly once."""

from __future__ import annotations

import asyncio

from coordinator.records import ObjectId, WriteCondition
from coordinator.schema import chunks, object_versions, tenants
from coordinator.versions import seq_in_id
from tests.coordinator.helpers import expect, open_meta, put_inline, rows, setup_tenant


async def refcounts(meta) -> dict[str, int]:
    return {r.chunk_key: r.refcount for r in await rows(meta, chunks)}


async def used_bytes(meta, tenant_id: str) -> int:
    (row,) = await rows(meta, tenants, tenants.c.tenant_id == tenant_id)
    return row.used_bytes


async def versions_of(meta, key, bucket="bkt", name=None, page=1000):
    """Every (key, S3 version id, is_latest, delete marker) by walking the pages."""
    out, km, vm = [], None, None
    while True:
        res = await meta.list_object_versions(key.tenant_id, bucket, "", None, km, vm, page)
        out += [
            (v.key, v.version_id, v.is_latest, v.delete_marker)
            for v in res.versions
            if name is None or v.key == name
        ]
        if not res.is_truncated:
            return out
        km, vm = res.next_key_marker, res.next_version_id_marker


async def test_never_versioned_bucket_keeps_one_null_version(database_url):
    async with open_meta(database_url) as meta:
        key = await setup_tenant(meta)
        await put_inline(meta, key, "bkt", "k", b"one")
        info = await put_inline(meta, key, "bkt", "k", b"two")
        assert (info.null_version, info.versioning, info.s3_version_id) == (True, None, "null")
        assert await versions_of(meta, key) == [("k", "null", True, False)]
        assert (await meta.get_object(key.tenant_id, "bkt", "k", version_id="null")).etag == info.etag
        assert len(await refcounts(meta)) == 2 and sorted((await refcounts(meta)).values()) == [0, 1]
        assert await used_bytes(meta, key.tenant_id) == 3
        result = await meta.delete_object(key.tenant_id, "bkt", "k")
        assert (result.version_id, result.delete_marker) == (None, False)
        assert await versions_of(meta, key) == [] and await used_bytes(meta, key.tenant_id) == 0
        await expect("InvalidArgument", meta.get_object(key.tenant_id, "bkt", "k", version_id="bogus"))


async def test_enabled_bucket_keeps_every_write_and_delete_markers_hide_the_key(database_url):
    async with open_meta(database_url) as meta:
        key = await setup_tenant(meta)
        first = await put_inline(meta, key, "bkt", "k", b"v1")  # before versioning: the null version
        info = await meta.set_bucket_versioning(key.tenant_id, "bkt", "Enabled")
        assert info.versioning == "Enabled"
        second = await put_inline(meta, key, "bkt", "k", b"v2")
        third = await put_inline(meta, key, "bkt", "k", b"v3")
        assert (second.null_version, second.versioning) == (False, "Enabled")
        assert seq_in_id(second.version_id) < seq_in_id(third.version_id)
        assert await versions_of(meta, key) == [
            ("k", third.version_id, True, False),
            ("k", second.version_id, False, False),
            ("k", "null", False, False),
        ]
        got = await meta.get_object(key.tenant_id, "bkt", "k", version_id=second.version_id, with_chunks=True)
        assert got.etag == second.etag and not got.is_latest and got.chunks[0].size == 2
        assert (await meta.get_object(key.tenant_id, "bkt", "k", version_id="null")).etag == first.etag
        assert await used_bytes(meta, key.tenant_id) == 6

        marker = await meta.delete_object(key.tenant_id, "bkt", "k")
        assert marker.delete_marker and seq_in_id(third.version_id) < seq_in_id(marker.version_id)
        await expect("NoSuchKey", meta.get_object(key.tenant_id, "bkt", "k"))
        shown = await meta.get_object(key.tenant_id, "bkt", "k", delete_markers=True)
        assert (shown.delete_marker, shown.version_id) == (True, marker.version_id)
        await expect(
            "MethodNotAllowed", meta.get_object(key.tenant_id, "bkt", "k", version_id=marker.version_id)
        )
        assert (await meta.list_objects(key.tenant_id, "bkt", "", None, None, 10)).contents == []
        await expect("BucketNotEmpty", meta.delete_bucket(key.tenant_id, "bkt"))
        # A condition judges the key as absent while a marker is its latest version.
        await expect(
            "NoSuchKey", put_inline(meta, key, "bkt", "k", b"x", condition=WriteCondition(if_match="*"))
        )

        # Deleting the marker brings the object back.
        gone = await meta.delete_object(key.tenant_id, "bkt", "k", version_id=marker.version_id)
        assert (gone.version_id, gone.delete_marker) == (marker.version_id, True)
        assert (await meta.get_object(key.tenant_id, "bkt", "k")).version_id == third.version_id
        assert [
            e.key for e in (await meta.list_objects(key.tenant_id, "bkt", "", None, None, 10)).contents
        ] == ["k"]

        # Deleting the latest version for good makes the next newest the latest.
        await meta.delete_object(key.tenant_id, "bkt", "k", version_id=third.version_id)
        assert (await meta.get_object(key.tenant_id, "bkt", "k")).version_id == second.version_id
        assert await used_bytes(meta, key.tenant_id) == 4
        # A version that is not there: nothing to do, not an error (S3 answers 204).
        again = await meta.delete_object(key.tenant_id, "bkt", "k", version_id=third.version_id)
        assert again.version_id == third.version_id
        for v in (second.version_id, "null"):
            await meta.delete_object(key.tenant_id, "bkt", "k", version_id=v)
        assert await versions_of(meta, key) == [] and await used_bytes(meta, key.tenant_id) == 0
        assert set((await refcounts(meta)).values()) == {0}
        await meta.delete_bucket(key.tenant_id, "bkt")


async def test_suspended_bucket_writes_and_deletes_the_null_version(database_url):
    async with open_meta(database_url) as meta:
        key = await setup_tenant(meta)
        await meta.set_bucket_versioning(key.tenant_id, "bkt", "Enabled")
        kept = await put_inline(meta, key, "bkt", "k", b"kept")
        await meta.set_bucket_versioning(key.tenant_id, "bkt", "Suspended")
        await put_inline(meta, key, "bkt", "k", b"null-1")
        null2 = await put_inline(meta, key, "bkt", "k", b"null-two")  # replaces the null version
        assert (null2.s3_version_id, null2.versioning) == ("null", "Suspended")
        assert await versions_of(meta, key) == [
            ("k", "null", True, False),
            ("k", kept.version_id, False, False),
        ]
        assert await used_bytes(meta, key.tenant_id) == 4 + 8
        marker = await meta.delete_object(key.tenant_id, "bkt", "k")  # a null marker replaces it
        assert (marker.version_id, marker.delete_marker) == ("null", True)
        assert await versions_of(meta, key) == [
            ("k", "null", True, True),
            ("k", kept.version_id, False, False),
        ]
        assert await used_bytes(meta, key.tenant_id) == 4
        # Re-enabled: new writes get ids again, the null marker stays in the history.
        await meta.set_bucket_versioning(key.tenant_id, "bkt", "Enabled")
        newest = await put_inline(meta, key, "bkt", "k", b"new")
        assert [v[1] for v in await versions_of(meta, key)] == [newest.version_id, "null", kept.version_id]
        await expect("InvalidArgument", meta.set_bucket_versioning(key.tenant_id, "bkt", "Off"))


async def test_racing_writers_each_make_a_version_in_commit_order(database_url):
    async with open_meta(database_url) as meta:
        key = await setup_tenant(meta)
        await meta.set_bucket_versioning(key.tenant_id, "bkt", "Enabled")
        infos = await asyncio.gather(
            *(put_inline(meta, key, "bkt", "k", f"w{i}".encode()) for i in range(20))
        )
        listed = await versions_of(meta, key)
        assert len(listed) == 20 and len({v[1] for v in listed}) == 20
        assert {v[1] for v in listed} == {i.version_id for i in infos}
        assert [v[2] for v in listed] == [True] + [False] * 19
        seqs = [seq_in_id(v[1]) for v in listed]
        assert seqs == sorted(seqs, reverse=True)
        assert await used_bytes(meta, key.tenant_id) == sum(i.size for i in infos)


async def test_racing_deletes_of_one_version_release_it_once(database_url):
    async with open_meta(database_url) as meta:
        key = await setup_tenant(meta)
        await meta.set_bucket_versioning(key.tenant_id, "bkt", "Enabled")
        shared = b"same bytes in both versions"
        a = await put_inline(meta, key, "bkt", "k", shared)
        await put_inline(meta, key, "bkt", "k", shared)
        (ck,) = (await refcounts(meta)).keys()
        assert (await refcounts(meta))[ck] == 2
        results = await asyncio.gather(
            *(meta.delete_object(key.tenant_id, "bkt", "k", version_id=a.version_id) for _ in range(10)),
            meta.delete_objects(key.tenant_id, "bkt", [ObjectId("k", a.version_id)] * 5),
        )
        assert all(r.version_id == a.version_id for r in results[:10])
        assert (await refcounts(meta))[ck] == 1
        assert await used_bytes(meta, key.tenant_id) == len(shared)
        assert len(await versions_of(meta, key)) == 1


async def test_listing_versions_page_by_page(database_url):
    async with open_meta(database_url) as meta:
        key = await setup_tenant(meta)
        await meta.set_bucket_versioning(key.tenant_id, "bkt", "Enabled")
        names = ["a", "dir/x", "dir/y", "m", "z"]
        made = {n: [] for n in names}
        for round_ in range(3):
            for n in names:
                made[n].append((await put_inline(meta, key, "bkt", n, f"{n}{round_}".encode())).version_id)
        await meta.delete_object(key.tenant_id, "bkt", "m")
        everything = await versions_of(meta, key)
        assert len(everything) == 16
        assert [v[0] for v in everything] == sorted(v[0] for v in everything)
        for page in (1, 2, 3, 7):
            assert await versions_of(meta, key, page=page) == everything
        # With a delimiter a directory is one entry, and the walk goes past it.
        res = await meta.list_object_versions(key.tenant_id, "bkt", "", "/", None, None, 4)
        assert [v.key for v in res.versions] == ["a", "a", "a"] and res.common_prefixes == ["dir/"]
        assert res.is_truncated and (res.next_key_marker, res.next_version_id_marker) == ("dir/", None)
        res = await meta.list_object_versions(key.tenant_id, "bkt", "", "/", "dir/\U0010ffff", None, 100)
        assert [v.key for v in res.versions] == ["m"] * 4 + ["z"] * 3 and not res.is_truncated
        res = await meta.list_object_versions(key.tenant_id, "bkt", "dir/", None, None, None, 100)
        assert [(v.key, v.version_id) for v in res.versions] == [
            ("dir/x", v) for v in reversed(made["dir/x"])
        ] + [("dir/y", v) for v in reversed(made["dir/y"])]
        # A marker keeps its place when its version is deleted before the next page is asked for.
        first = await meta.list_object_versions(key.tenant_id, "bkt", "", None, None, None, 2)
        for v in first.versions:
            await meta.delete_object(key.tenant_id, "bkt", v.key, version_id=v.version_id)
        rest = await meta.list_object_versions(
            key.tenant_id, "bkt", "", None, first.next_key_marker, first.next_version_id_marker, 100
        )
        assert [(v.key, v.version_id) for v in rest.versions] == [(k, v) for k, v, _, _ in everything[2:]]
        await expect(
            "InvalidArgument", meta.list_object_versions(key.tenant_id, "bkt", "", None, None, "null", 5)
        )


async def test_emptying_a_bucket_the_portable_way(database_url):
    async with open_meta(database_url) as meta:
        key = await setup_tenant(meta)
        await put_inline(meta, key, "bkt", "plain", b"p")
        await meta.set_bucket_versioning(key.tenant_id, "bkt", "Enabled")
        for i in range(5):
            await put_inline(meta, key, "bkt", f"k{i % 2}", f"{i}".encode())
        await meta.delete_object(key.tenant_id, "bkt", "k0")
        km = vm = None
        while True:  # list a page, delete what it showed, ask for the next page
            res = await meta.list_object_versions(key.tenant_id, "bkt", "", None, km, vm, 3)
            out = await meta.delete_objects(
                key.tenant_id, "bkt", [ObjectId(v.key, v.version_id) for v in res.versions]
            )
            assert all(r.deleted for r in out)
            if not res.is_truncated:
                break
            km, vm = res.next_key_marker, res.next_version_id_marker
        assert await rows(meta, object_versions) == []
        assert await used_bytes(meta, key.tenant_id) == 0 and set((await refcounts(meta)).values()) == {0}
        await meta.delete_bucket(key.tenant_id, "bkt")


async def test_retried_complete_answers_the_same_success(database_url):
    from tests.coordinator.helpers import chunk_refs, register_nodes

    MIB = 1 << 20
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        up = await meta.begin_upload(
            key.tenant_id, key.user_id, "bkt", "big", "multipart", 0, None, {}, {}, "STANDARD", None
        )
        body = b"x" * MIB
        refs = await chunk_refs(meta, key.tenant_id, [body])
        part = await meta.put_part(key.tenant_id, "bkt", "big", up.upload_id, 1, MIB, "0" * 32, refs, {})
        done = await meta.complete_upload(key.tenant_id, "bkt", "big", up.upload_id, [(1, part.etag)])
        again = await meta.complete_upload(key.tenant_id, "bkt", "big", up.upload_id, [(1, part.etag)])
        assert (again.etag, again.version_id, again.size) == (done.etag, done.version_id, MIB)
        await expect(
            "NoSuchUpload",
            meta.complete_upload(key.tenant_id, "bkt", "big", up.upload_id, [(1, '"' + "1" * 32 + '"')]),
        )
        await meta.delete_object(key.tenant_id, "bkt", "big")
        await expect(
            "NoSuchUpload", meta.complete_upload(key.tenant_id, "bkt", "big", up.upload_id, [(1, part.etag)])
        )


async def test_a_retried_write_gets_the_version_its_first_attempt_made(database_url):
    async with open_meta(database_url) as meta:
        key = await setup_tenant(meta)
        await meta.set_bucket_versioning(key.tenant_id, "bkt", "Enabled")
        first = await put_inline(meta, key, "bkt", "k", b"data", write_id="sdk:call-1")
        again = await put_inline(meta, key, "bkt", "k", b"data", write_id="sdk:call-1", retried=True)
        assert again.version_id == first.version_id
        other = await put_inline(meta, key, "bkt", "k", b"data", write_id="sdk:call-2", retried=True)
        assert other.version_id != first.version_id  # another call: its own version
        assert len(await versions_of(meta, key)) == 2
        assert await used_bytes(meta, key.tenant_id) == 8
        marker = await meta.delete_object(key.tenant_id, "bkt", "k", write_id="sdk:del-1")
        same = await meta.delete_object(key.tenant_id, "bkt", "k", write_id="sdk:del-1", retried=True)
        assert same.version_id == marker.version_id and same.delete_marker
        assert [v[3] for v in await versions_of(meta, key)] == [True, False, False]
        copy = await meta.copy_object(
            key.tenant_id,
            key.user_id,
            "bkt",
            "k",
            "bkt",
            "c",
            False,
            None,
            {},
            {},
            src_version_id=first.version_id,
            write_id="sdk:cp",
            retried=True,
        )
        recopy = await meta.copy_object(
            key.tenant_id,
            key.user_id,
            "bkt",
            "k",
            "bkt",
            "c",
            False,
            None,
            {},
            {},
            src_version_id=first.version_id,
            write_id="sdk:cp",
            retried=True,
        )
        assert recopy.version_id == copy.version_id
        args = (key.tenant_id, key.user_id, "bkt", "mp", "multipart", 0, None, {}, {}, "STANDARD", None)
        up = await meta.begin_upload(*args, write_id="sdk:mp")
        assert (await meta.begin_upload(*args, write_id="sdk:mp", retried=True)).upload_id == up.upload_id
        assert (await meta.begin_upload(*args, write_id="sdk:mp")).upload_id != up.upload_id
