"""The schema migrations: they build exactly the schema the queries are written against, and a
database made by the release before migrations existed is brought up to date, data kept."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from coordinator.db import Database
from coordinator.migrate import BASELINE, alembic_config, current_revision, head_revision
from coordinator.schema import metadata
from coordinator.service import Metadata


async def _inspect(db: Database, fn):
    return await db.write(lambda conn: conn.run_sync(fn))


async def test_migrations_build_the_schema_the_code_declares(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.create_schema()

        def diff(conn: sa.Connection) -> list:
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)

        assert await _inspect(db, diff) == []
        assert await _inspect(db, current_revision) == head_revision()
        await db.create_schema()  # every start runs it again: nothing to do, nothing breaks
        assert await _inspect(db, current_revision) == head_revision()
    finally:
        await db.close()


async def test_a_database_of_the_first_release_is_upgraded_with_its_rows(database_url: str) -> None:
    db = Database(database_url)
    try:

        def first_release(conn: sa.Connection) -> None:
            # The baseline revision is that release's schema; without alembic_version and
            # without the column and index it added by hand at start, as it left databases.
            command.upgrade(alembic_config(conn), BASELINE)
            conn.exec_driver_sql("DROP TABLE alembic_version")
            conn.exec_driver_sql("DROP INDEX ix_object_chunks_offset")
            conn.exec_driver_sql("ALTER TABLE chunks DROP COLUMN inline_data")
            conn.exec_driver_sql(
                "INSERT INTO tenants (tenant_id, name, quota_bytes, used_bytes, reserved_bytes, created_at)"
                " VALUES ('t1', 'acme', 100, 7, 0, 1.0)"
            )

        await _inspect(db, first_release)
        await db.create_schema()

        def check(conn: sa.Connection) -> tuple:
            row = conn.exec_driver_sql("SELECT name, used_bytes FROM tenants").one()
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            return tuple(row), current_revision(conn), diff

        assert await _inspect(db, check) == (("acme", 7), head_revision(), [])
    finally:
        await db.close()


async def test_chunks_stored_before_format_ids_are_format_1(database_url: str) -> None:
    db = Database(database_url)
    try:

        def before(conn: sa.Connection) -> None:
            cfg = alembic_config(conn)
            command.upgrade(cfg, ScriptDirectory.from_config(cfg).get_revision("0002").down_revision)
            conn.exec_driver_sql(
                "INSERT INTO chunks (chunk_key, scope, sha256, size, enc_size, key_id, refcount, created_at)"
                " VALUES ('k1', 't1', 'ab', 10, 26, 'm1', 1, 1.0)"
            )

        await _inspect(db, before)
        await db.create_schema()
        row = await _inspect(db, lambda conn: conn.exec_driver_sql("SELECT format FROM chunks").one())
        assert tuple(row) == (1,)
    finally:
        await db.close()


async def test_objects_written_before_versions_read_as_null_versions(database_url: str) -> None:
    db = Database(database_url)
    try:

        def before_versions(conn: sa.Connection) -> None:
            command.upgrade(alembic_config(conn), "0001")
            conn.exec_driver_sql(
                "INSERT INTO tenants (tenant_id, name, quota_bytes, used_bytes, reserved_bytes, created_at)"
                " VALUES ('t1', 'acme', 1000, 5, 0, 1.0)"
            )
            conn.exec_driver_sql(
                "INSERT INTO buckets (name, tenant_id, owner_id, region, created_at)"
                " VALUES ('old', 't1', 'u1', 'us-east-1', 1.0)"
            )
            conn.exec_driver_sql(
                "INSERT INTO object_versions (version_id, bucket, key, tenant_id, owner_id, size, etag,"
                " metadata, headers, storage_class, status, checksums, part_count, created_at,"
                " last_modified, is_latest) VALUES ('0123456789abcdef0123456789abcdef', 'old', 'k', 't1',"
                " 'u1', 5, '\"e\"', '{}', '{}', 'STANDARD', 'ready', '{}', 0, 1700000000.5, 1700000000.5,"
                " true)"
            )

        await _inspect(db, before_versions)
        await db.create_schema()
        meta = Metadata(db)
        got = await meta.get_object("t1", "old", "k", version_id="null")
        assert (got.version_id, got.s3_version_id, got.is_latest, got.versioning) == (
            "0123456789abcdef0123456789abcdef", "null", True, None)
        listed = await meta.list_object_versions("t1", "old", "", None, None, None, 10)
        assert [(v.key, v.version_id, v.is_latest) for v in listed.versions] == [("k", "null", True)]
        await meta.set_bucket_versioning("t1", "old", "Enabled")
        await meta.delete_object("t1", "old", "k")  # a delete marker goes on top of the old version
        listed = await meta.list_object_versions("t1", "old", "", None, None, None, 10)
        shown = [(v.version_id == "null", v.delete_marker) for v in listed.versions]
        assert shown == [(False, True), (True, False)]
    finally:
        await db.close()
