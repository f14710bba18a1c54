"""get_object with a byte range: only the manifest rows overlapping it, offsets absolute."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from blob.reader import chunks_for_range
from coordinator.chunkrefs import _LOAD_RANGE_REFS
from coordinator.client import CoordinatorClient
from coordinator.records import CoordinatorError
from tests.coordinator.conftest import SECRET
from tests.coordinator.helpers import expect, open_meta, put_object, register_nodes, setup_tenant
from tests.coordinator.test_multipart import begin, big, upload_part
from tests.coordinator.test_server import new_user, nodes_up

MIB = 1 << 20


def spans(obj) -> list[tuple[int, int]]:
    return [(c.offset, c.size) for c in obj.chunks]


async def ranged(meta, key, start, end, name="obj"):
    return await meta.get_object(
        key.tenant_id, "bkt", name, with_chunks=True, range_start=start, range_end=end
    )


async def test_ranged_manifest_boundaries(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        # chunks at offsets 0, 100, 200, 300 (sizes 100, 100, 100, 50): 350 bytes
        pieces = [bytes([i]) * 100 for i in range(3)] + [b"z" * 50]
        await put_object(meta, key, "bkt", "obj", pieces)
        full = await meta.get_object(key.tenant_id, "bkt", "obj", with_chunks=True)
        assert spans(full) == [(0, 100), (100, 100), (200, 100), (300, 50)]
        assert spans(await ranged(meta, key, 10, 20)) == [(0, 100)]                  # inside one chunk
        assert spans(await ranged(meta, key, 150, 250)) == [(100, 100), (200, 100)]  # spanning two
        assert spans(await ranged(meta, key, 99, 100)) == [(0, 100), (100, 100)]     # across a boundary
        assert spans(await ranged(meta, key, 100, 199)) == [(100, 100)]              # exactly one chunk
        assert spans(await ranged(meta, key, 200, 200)) == [(200, 100)]              # first byte of one
        assert spans(await ranged(meta, key, 299, 299)) == [(200, 100)]              # last byte of one
        assert spans(await ranged(meta, key, 0, 349)) == spans(full)
        assert spans(await ranged(meta, key, 320, 10**12)) == [(300, 50)]            # past the end clamps
        assert spans(await ranged(meta, key, 250, None)) == [(200, 100), (300, 50)]  # bytes=250-
        assert spans(await ranged(meta, key, None, 120)) == [(0, 100), (100, 100)]
        assert spans(await ranged(meta, key, 350, 400)) == []                        # starts past the end
        assert spans(await ranged(meta, key, 10**19, None)) == []
        got = await ranged(meta, key, 150, 250)
        assert [c.chunk_key for c in got.chunks] == [c.chunk_key for c in full.chunks[1:3]]
        assert [len(c.shards) for c in got.chunks] == [14, 14]
        assert [s.index for s in got.chunks[0].shards] == list(range(14))
        assert got.chunks[0].shards == full.chunks[1].shards
        assert (got.size, got.etag, got.version_id) == (full.size, full.etag, full.version_id)
        # without with_chunks a range changes nothing
        plain = await meta.get_object(key.tenant_id, "bkt", "obj", range_start=0, range_end=10)
        assert plain.chunks == [] and plain.size == 350
        await expect("InvalidArgument", ranged(meta, key, -1, 10))
        await expect("InvalidArgument", ranged(meta, key, 20, 10))


async def test_ranged_manifest_inline_and_empty(database_url):
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        await put_object(meta, key, "bkt", "empty", [])
        assert spans(await ranged(meta, key, 0, 10, name="empty")) == []
        await put_object(meta, key, "bkt", "one", [b"x" * 40])
        assert spans(await ranged(meta, key, 5, 5, name="one")) == [(0, 40)]


async def three_part_object(meta):
    """`big`: part 1 = chunks of 3 and 2 MiB, part 2 = one of 5 MiB, part 3 = 4 bytes."""
    await register_nodes(meta)
    key = await setup_tenant(meta)
    up = await begin(meta, key)
    i1 = await upload_part(meta, key, up.upload_id, 1, [big(b"a", 3 * MIB), big(b"b", 2 * MIB)])
    i2 = await upload_part(meta, key, up.upload_id, 2, [big(b"c")])
    i3 = await upload_part(meta, key, up.upload_id, 3, [b"tail"])
    await meta.complete_upload(
        key.tenant_id, "bkt", "big", up.upload_id, [(1, i1.etag), (2, i2.etag), (3, i3.etag)]
    )
    return key


async def test_ranged_manifest_multipart_keeps_parts(database_url):
    async with open_meta(database_url) as meta:
        key = await three_part_object(meta)
        full = await meta.get_object(key.tenant_id, "bkt", "big", with_chunks=True)
        got = await ranged(meta, key, 5 * MIB - 1, 5 * MIB, name="big")  # across parts 1 and 2
        assert spans(got) == [(3 * MIB, 2 * MIB), (5 * MIB, 5 * MIB)]
        assert got.parts == full.parts and len(got.parts) == 3
        assert spans(await ranged(meta, key, 10 * MIB, None, name="big")) == [(10 * MIB, 4)]
        assert spans(await ranged(meta, key, 3 * MIB, 3 * MIB, name="big")) == [(3 * MIB, 2 * MIB)]


async def test_range_query_can_use_the_offset_index(database_url):
    """The ranged manifest is an index range scan on (version_id, offset), not a version scan."""
    async with open_meta(database_url) as meta:

        async def explain(conn):
            stmt = _LOAD_RANGE_REFS.params(v="x", s=0, e=10)
            sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            if conn.dialect.name == "sqlite":
                rows = await conn.execute(sa.text("EXPLAIN QUERY PLAN " + sql))
            else:  # a planner's choice on empty tables proves nothing: only that it can
                await conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
                rows = await conn.execute(sa.text("EXPLAIN " + sql))
            return "\n".join(str(r) for r in rows.all())

        plan = await meta.db.read(explain)
        assert "ix_object_chunks_offset" in plan, plan


async def test_ranged_manifest_through_api(coordinator):
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        await nodes_up(api)
        key = await new_user(api, "alice", "acme")
        await put_object(api, key, "bkt", "obj", [b"a" * 100, b"b" * 100, b"c" * 10])
        got = await ranged(api, key, 150, 205)
        assert spans(got) == [(100, 100), (200, 10)] and got.size == 210
        assert [len(c.shards) for c in got.chunks] == [14, 14]
        assert spans(await ranged(api, key, 199, None)) == [(100, 100), (200, 10)]
        assert spans(await ranged(api, key, 1 << 53, 1 << 53)) == []
        assert len((await api.get_object(key.tenant_id, "bkt", "obj", with_chunks=True)).chunks) == 3
        with pytest.raises(CoordinatorError) as info:
            await ranged(api, key, 10, 5)
        assert (info.value.code, info.value.status) == ("InvalidArgument", 400)


async def test_reader_maps_a_ranged_manifest_to_the_right_bytes(database_url):
    """The gateway's chunks_for_range on a manifest that starts mid-object."""
    async with open_meta(database_url) as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        await put_object(meta, key, "bkt", "obj", [bytes([i]) * 100 for i in range(4)])
        for start, end, want in [
            (150, 250, [(1, 50, 99), (2, 0, 50)]),
            (300, 399, [(3, 0, 99)]),
            (199, 200, [(1, 99, 99), (2, 0, 0)]),
            (5, 5, [(0, 5, 5)]),
        ]:
            got = await ranged(meta, key, start, end)
            picked = chunks_for_range(got.chunks, start, end)
            index = {c.chunk_key: c.offset // 100 for c in got.chunks}
            assert [(index[ref.chunk_key], lo, hi) for ref, lo, hi in picked] == want


async def test_suffix_and_part_select_only_their_chunks(database_url):
    """`bytes=-n` and ?partNumber= are narrowed where the size and the parts are known."""
    async with open_meta(database_url) as meta:
        key = await three_part_object(meta)

        async def get(**narrowing):
            return await meta.get_object(key.tenant_id, "bkt", "big", with_chunks=True, **narrowing)

        full = await get()
        assert spans(full) == [(0, 3 * MIB), (3 * MIB, 2 * MIB), (5 * MIB, 5 * MIB), (10 * MIB, 4)]
        assert spans(await get(range_suffix=4)) == [(10 * MIB, 4)]
        assert spans(await get(range_suffix=5)) == [(5 * MIB, 5 * MIB), (10 * MIB, 4)]
        assert spans(await get(range_suffix=7 * MIB + 4)) == spans(full)[1:]      # from a boundary
        assert spans(await get(range_suffix=7 * MIB + 5)) == spans(full)
        assert spans(await get(range_suffix=1 << 53)) == spans(full)     # longer than the object
        assert spans(await get(range_suffix=0)) == []
        assert spans(await get(part_number=1)) == [(0, 3 * MIB), (3 * MIB, 2 * MIB)]
        assert spans(await get(part_number=2)) == [(5 * MIB, 5 * MIB)]
        assert spans(await get(part_number=3)) == [(10 * MIB, 4)]
        assert spans(await get(part_number=4)) == []
        got = await get(part_number=2)
        assert got.parts == full.parts and got.chunks[0] == full.chunks[2]
        # a non-multipart object is its own part 1
        await put_object(meta, key, "bkt", "plain", [b"x" * 100, b"y" * 50])
        for n, want in ((1, [(0, 100), (100, 50)]), (2, [])):
            plain = await meta.get_object(key.tenant_id, "bkt", "plain", with_chunks=True, part_number=n)
            assert spans(plain) == want
        for bad in ({"range_suffix": -1}, {"part_number": 0}, {"range_suffix": 5, "part_number": 1},
                    {"range_start": 0, "range_suffix": 5}, {"range_end": 9, "part_number": 1}):
            await expect("InvalidArgument", get(**bad))


async def test_suffix_and_part_through_api(coordinator):
    async with CoordinatorClient(coordinator.url, SECRET) as api:
        await nodes_up(api)
        key = await new_user(api, "alice", "acme")
        await put_object(api, key, "bkt", "obj", [b"a" * 100, b"b" * 100, b"c" * 10])

        async def get(**narrowing):
            return await api.get_object(key.tenant_id, "bkt", "obj", with_chunks=True, **narrowing)

        assert spans(await get(range_suffix=11)) == [(100, 100), (200, 10)]
        assert spans(await get(part_number=1)) == [(0, 100), (100, 100), (200, 10)]
        assert spans(await get(part_number=3)) == []
        with pytest.raises(CoordinatorError) as info:
            await get(range_suffix=3, part_number=1)
        assert (info.value.code, info.value.status) == ("InvalidArgument", 400)
