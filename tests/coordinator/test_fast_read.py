"""SQLite's fast path for hot SELECTs gives exactly what SQLAlchemy's own execution gives."""

from __future__ import annotations

from coordinator import base, chunkrefs, identity, objects, versions
from coordinator.sqlite_store import FAST_READ, LoopConnection
from tests.coordinator.helpers import open_meta, put_object, register_nodes, setup_tenant


async def test_fast_read_rows_equal_sqlalchemy_rows(tmp_path):
    async with open_meta(f"sqlite+aiosqlite:///{tmp_path}/m.db") as meta:
        await register_nodes(meta)
        key = await setup_tenant(meta)
        obj = await put_object(meta, key, "bkt", "dir/k", [b"a" * 3000, b"b" * 5000])
        store = meta.db.sqlite
        assert store is not None
        cases = [
            (identity._GET_KEY, {"ak": key.access_key}),
            (identity._GET_KEY, {"ak": "no-such-key"}),
            (base.BUCKET_ROW, {"bucket": "bkt"}),
            (base.LATEST_LIVE, {"bucket": "bkt", "key": "dir/k"}),
            (objects._BUCKET_AND_LATEST, {"bucket": "bkt", "key": "dir/k"}),
            (objects._BUCKET_AND_LATEST, {"bucket": "bkt", "key": "missing"}),
            (versions._VERSION_ROW, {"v": obj.version_id, "bucket": "bkt", "key": "dir/k"}),
            (versions._NULL_ROW, {"bucket": "bkt", "key": "dir/k"}),
            (objects._PARTS, {"v": obj.version_id}),
            (chunkrefs._LOAD_REFS, {"v": obj.version_id}),
            (chunkrefs._LOAD_RANGE_REFS, {"v": obj.version_id, "s": 2999, "e": 3000}),
        ]

        async def compare(conn):
            fast = LoopConnection(conn.sync_connection, {})
            for statement, params in cases:
                assert statement.get_execution_options().get(FAST_READ)
                want = conn.sync_connection.execute(statement, params).all()
                got = (await fast.execute(statement, params)).all()
                assert [tuple(r) for r in got] == [tuple(r) for r in want], statement
                # Same types too (True == 1, so equality alone would miss an unprocessed bool).
                assert [tuple(map(type, r)) for r in got] == [tuple(map(type, r)) for r in want]
                for g, w in zip(got, want, strict=True):  # attribute access by the same names
                    assert all(getattr(g, k) == getattr(w, k) for k in w._fields)
            return len(cases)

        assert await meta.db.read(compare) == len(cases)
        # The JSON and boolean columns come back decoded, as from SQLAlchemy.
        got = await meta.get_object(key.tenant_id, "bkt", "dir/k", with_chunks=True)
        assert isinstance(got.metadata, dict) and isinstance(got.checksums, dict)
        assert [c.size for c in got.chunks] == [3000, 5000]

