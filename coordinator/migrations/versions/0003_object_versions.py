"""object versions: bucket versioning, delete markers, null versions, tags, canned ACLs, CORS

Every existing version was written to a never-versioned bucket: it becomes that key's `null`
version (S3's name for it), its `seq` (position among the key's versions) its creation time in
microseconds, as new versions get it.

Columns are added in place (with a server default where NOT NULL): on SQLite a batch rebuild
of object_versions would cascade-delete every manifest row through the foreign keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("buckets", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("versioning", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("acl", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("cors", sa.JSON(), nullable=True))

    with op.batch_alter_table("object_versions", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("seq", _BIG, server_default=sa.text("0"), nullable=False))
        for name, default in (("null_version", sa.true()), ("delete_marker", sa.false())):
            batch_op.add_column(sa.Column(name, sa.Boolean(), server_default=default, nullable=False))
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("acl", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("write_id", sa.String(length=80), nullable=True))
    op.execute("UPDATE object_versions SET seq = CAST(created_at * 1000000 AS BIGINT)")
    with op.batch_alter_table("object_versions", recreate="never") as batch_op:
        batch_op.create_index("ix_object_write_id", ["bucket", "key", "write_id"], unique=False)
        batch_op.create_index("ux_object_key_seq", ["bucket", "key", "seq"], unique=True)
        batch_op.create_index(
            "ux_object_null",
            ["bucket", "key"],
            unique=True,
            sqlite_where=sa.text("null_version = 1"),
            postgresql_where=sa.text("null_version"),
        )

    with op.batch_alter_table("upload_sessions", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("acl", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("write_id", sa.String(length=80), nullable=True))


def downgrade() -> None:
    """Only for databases that fit the older one-version-per-key model: deleting the other
    versions here would leave their chunks referenced forever."""
    extra = op.get_bind().execute(
        sa.text("SELECT count(*) FROM object_versions WHERE NOT is_latest OR delete_marker")
    ).scalar()
    if extra:
        raise RuntimeError(
            f"{extra} noncurrent versions or delete markers exist; delete them (S3 DeleteObject "
            "with versionId) before downgrading below revision 0003"
        )
    # ALTER TABLE DROP COLUMN in place (SQLite >= 3.35), never a table rebuild (see module doc).
    for name in ("ux_object_null", "ux_object_key_seq", "ix_object_write_id"):
        op.drop_index(name, table_name="object_versions")
    for table, columns in (
        ("upload_sessions", ("write_id", "acl", "tags")),
        ("object_versions", ("write_id", "acl", "tags", "delete_marker", "null_version", "seq")),
        ("buckets", ("cors", "acl", "versioning")),
    ):
        for column in columns:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
