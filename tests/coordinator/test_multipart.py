"""Multipart uploads on the queries directly: parts, S3 validation, ETag, refs, quota."""

from __future__ import annotations

import hashlib

from coordinator.schema import chunks, tenants, upload_part_chunks, upload_parts, upload_sessions
from tests.coordinator.helpers import (
    chunk_refs,
    expect,
    md5,
    open_meta,
    register_nodes,
    rows,
    setup_tenant,
    sha,
)
from tests.coordinator.test_queries import refcount

MIB = 1 << 20


async def upload_part(meta, key, upload_id, number, pieces, name="big"):
    refs = await chunk_refs(meta, key.tenant_id, pieces)
    size = sum(len(p) for p in pieces)
    return await meta.put_part(
        key.tenant_id,
        "bkt",
        name,
        upload_id,
        number,
        size,
        md5(b"".join(pieces)),
        refs,
        {"crc32": "AAAAAA=="},
    )


async def begin(meta, key, name="big"):
    return await meta.begin_upload(
        key.tenant_id,
        key.user_id,
        "bkt",
        name,
        "multipart",
        0,
        "video/mp4",
        {"m": "1"},
        {"content-disposition": "attachment"},
        "STANDARD",
        None,
    )


def big(tag: bytes, n: int = 5 * MIB) -> bytes:
    return (tag * (n // len(tag) + 1))[:n]


async def test_complete_builds_manifest_and_etag(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        up = await begin(meta, key)
        p1 = [big(b"a", 3 * MIB), big(b"b", 2 * MIB)]  # a part may have several chunks
        p2 = [big(b"c")]
        p3 = [b"tail"]
        i1 = await upload_part(meta, key, up.upload_id, 1, p1)
        i2 = await upload_part(meta, key, up.upload_id, 2, p2)
        i3 = await upload_part(meta, key, up.upload_id, 3, p3)
        assert i1.etag == f'"{md5(b"".join(p1))}"' and i1.size == 5 * MIB
        listed = await meta.list_parts(key.tenant_id, "bkt", "big", up.upload_id, 1000, 0)
        assert [p.part_number for p in listed.parts] == [1, 2, 3] and not listed.is_truncated
        obj = await meta.complete_upload(
            key.tenant_id,
            "bkt",
            "big",
            up.upload_id,
            [(1, i1.etag), (2, i2.etag.strip('"')), (3, i3.etag.upper())],
        )
        want = hashlib.md5(b"".join(bytes.fromhex(md5(b"".join(p))) for p in (p1, p2, p3))).hexdigest()
        assert obj.etag == f'"{want}-3"'
        assert obj.size == 10 * MIB + 4 and obj.content_type == "video/mp4" and obj.metadata == {"m": "1"}
        assert obj.headers == {"content-disposition": "attachment"}
        got = await meta.get_object(key.tenant_id, "bkt", "big", with_chunks=True)
        assert [c.size for c in got.chunks] == [3 * MIB, 2 * MIB, 5 * MIB, 4]
        assert [c.offset for c in got.chunks] == [0, 3 * MIB, 5 * MIB, 10 * MIB]
        assert [(p.part_number, p.offset, p.size) for p in got.parts] == [
            (1, 0, 5 * MIB),
            (2, 5 * MIB, 5 * MIB),
            (3, 10 * MIB, 4),
        ]
        assert got.parts[0].checksums == {"crc32": "AAAAAA=="}
        for piece in p1 + p2 + p3:
            assert await refcount(meta, meta.chunk_key(key.tenant_id, sha(piece))) == 1
        t = (await rows(meta, tenants, tenants.c.tenant_id == key.tenant_id))[0]
        assert (t.used_bytes, t.reserved_bytes) == (10 * MIB + 4, 0)
        assert await rows(meta, upload_sessions) == [] and await rows(meta, upload_parts) == []
        assert await rows(meta, upload_part_chunks) == []
        await expect(
            "NoSuchUpload", meta.complete_upload(key.tenant_id, "bkt", "big", up.upload_id, [(1, i1.etag)])
        )


async def test_complete_error_cases(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        up = await begin(meta, key)
        small = await upload_part(meta, key, up.upload_id, 1, [b"too small"])
        full = await upload_part(meta, key, up.upload_id, 2, [big(b"x")])
        last = await upload_part(meta, key, up.upload_id, 3, [b"last"])
        uid = up.upload_id
        await expect(
            "InvalidPartOrder",
            meta.complete_upload(key.tenant_id, "bkt", "big", uid, [(2, full.etag), (1, small.etag)]),
        )
        await expect(
            "InvalidPartOrder",
            meta.complete_upload(key.tenant_id, "bkt", "big", uid, [(2, full.etag), (2, full.etag)]),
        )
        await expect(
            "InvalidPart",
            meta.complete_upload(key.tenant_id, "bkt", "big", uid, [(2, full.etag), (4, last.etag)]),
        )
        await expect(
            "InvalidPart", meta.complete_upload(key.tenant_id, "bkt", "big", uid, [(2, '"' + "0" * 32 + '"')])
        )
        err = await expect(
            "EntityTooSmall",
            meta.complete_upload(key.tenant_id, "bkt", "big", uid, [(1, small.etag), (2, full.etag)]),
        )
        assert err.status == 400
        await expect("InvalidRequest", meta.complete_upload(key.tenant_id, "bkt", "big", uid, []))
        await expect(
            "NoSuchUpload", meta.complete_upload(key.tenant_id, "bkt", "other-key", uid, [(2, full.etag)])
        )
        await expect(
            "NoSuchUpload", meta.complete_upload(key.tenant_id, "bkt", "big", "0" * 32, [(2, full.etag)])
        )
        await expect(
            "NoSuchBucket", meta.complete_upload(key.tenant_id, "nobkt", "big", uid, [(2, full.etag)])
        )
        await expect("InvalidArgument", upload_part(meta, key, uid, 0, [b"x"]))
        await expect("InvalidArgument", upload_part(meta, key, uid, 10001, [b"x"]))
        # the failed attempts changed nothing: a valid completion still works, skipping part 1
        obj = await meta.complete_upload(key.tenant_id, "bkt", "big", uid, [(2, full.etag), (3, last.etag)])
        assert obj.size == 5 * MIB + 4 and obj.etag.endswith('-2"')
        # the unused part's chunk lost its reference; used ones kept exactly one
        assert await refcount(meta, meta.chunk_key(key.tenant_id, sha(b"too small"))) == 0
        assert await refcount(meta, meta.chunk_key(key.tenant_id, sha(b"last"))) == 1


async def test_reupload_part_replaces_and_abort_releases(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta, quota_bytes=12 * MIB)
        up = await begin(meta, key)
        await upload_part(meta, key, up.upload_id, 1, [big(b"1")])
        await upload_part(meta, key, up.upload_id, 1, [big(b"2", 6 * MIB)])  # replaces part 1
        first = meta.chunk_key(key.tenant_id, sha(big(b"1")))
        assert await refcount(meta, first) == 0
        t = (await rows(meta, tenants, tenants.c.tenant_id == key.tenant_id))[0]
        assert t.reserved_bytes == 6 * MIB
        await expect("QuotaExceeded", upload_part(meta, key, up.upload_id, 2, [big(b"3", 7 * MIB)]))
        # the refused part left nothing: no part 2, no chunk row for its bytes
        listed = await meta.list_parts(key.tenant_id, "bkt", "big", up.upload_id, 10, 0)
        assert [p.part_number for p in listed.parts] == [1]
        assert (
            await rows(
                meta, chunks, chunks.c.chunk_key == meta.chunk_key(key.tenant_id, sha(big(b"3", 7 * MIB)))
            )
            == []
        )
        await meta.abort_upload(key.tenant_id, "bkt", up.upload_id)
        assert await refcount(meta, meta.chunk_key(key.tenant_id, sha(big(b"2", 6 * MIB)))) == 0
        t = (await rows(meta, tenants, tenants.c.tenant_id == key.tenant_id))[0]
        assert (t.used_bytes, t.reserved_bytes) == (0, 0)
        await expect("NoSuchUpload", meta.abort_upload(key.tenant_id, "bkt", up.upload_id))
        await expect("NoSuchUpload", upload_part(meta, key, up.upload_id, 3, [b"x"]))


async def test_list_parts_pagination(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        up = await begin(meta, key)
        for n in range(1, 8):
            await upload_part(meta, key, up.upload_id, n, [f"part{n}".encode()])
        page = await meta.list_parts(key.tenant_id, "bkt", "big", up.upload_id, 3, 0)
        assert [p.part_number for p in page.parts] == [1, 2, 3]
        assert page.is_truncated and page.next_part_number_marker == 3
        page = await meta.list_parts(key.tenant_id, "bkt", "big", up.upload_id, 3, 6)
        assert [p.part_number for p in page.parts] == [7] and not page.is_truncated
        await expect("NoSuchUpload", meta.list_parts(key.tenant_id, "bkt", "big", "nope", 3, 0))
        info = await meta.get_upload(key.tenant_id, "bkt", "big", up.upload_id)
        assert info.kind == "multipart" and info.content_type == "video/mp4"


async def test_list_uploads(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        ids = {}
        for name in ("a/1", "a/2", "b", "c/x/1", "d"):
            ids[name] = (await begin(meta, key, name)).upload_id
        second_b = (await begin(meta, key, "b")).upload_id
        await meta.begin_upload(
            key.tenant_id, key.user_id, "bkt", "single", "put", 0, None, {}, {}, "STANDARD", None
        )  # single PUTs are not listed
        everything = await meta.list_uploads(key.tenant_id, "bkt", "", None, None, None, 1000)
        assert [u.key for u in everything.uploads] == ["a/1", "a/2", "b", "b", "c/x/1", "d"]
        grouped = await meta.list_uploads(key.tenant_id, "bkt", "", "/", None, None, 1000)
        assert [u.key for u in grouped.uploads] == ["b", "b", "d"] and grouped.common_prefixes == ["a/", "c/"]
        page = await meta.list_uploads(key.tenant_id, "bkt", "", None, None, None, 3)
        assert page.is_truncated and page.next_key_marker == "b"
        rest = await meta.list_uploads(
            key.tenant_id, "bkt", "", None, page.next_key_marker, page.next_upload_id_marker, 1000
        )
        assert [u.key for u in rest.uploads] == ["b", "c/x/1", "d"]
        b_ids = sorted([ids["b"], second_b])
        assert rest.uploads[0].upload_id == b_ids[1] and page.uploads[2].upload_id == b_ids[0]
        prefixed = await meta.list_uploads(key.tenant_id, "bkt", "c/", "/", None, None, 1000)
        assert prefixed.uploads == [] and prefixed.common_prefixes == ["c/x/"]
        assert (await meta.list_uploads(key.tenant_id, "bkt", "", None, None, None, 0)).uploads == []
