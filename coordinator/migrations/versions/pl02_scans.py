"""malware scans: scan result columns, the scan backlog index, per-bucket gate, download
audit by version, rescan requests

Revision ID: pl02
Revises: p002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "pl02"
down_revision = "p002"
branch_labels = None
depends_on = None

_TIME = sa.Float(precision=53)
_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Columns added in place (a batch rebuild of object_versions would cascade-delete manifests).
    with op.batch_alter_table("object_versions", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("scan_result", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("scanned_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("scanner", sa.Text(), nullable=True))
        batch_op.create_index(
            "ix_object_scanning",
            ["created_at"],
            unique=False,
            sqlite_where=sa.text("status = 'scanning'"),
            postgresql_where=sa.text("status = 'scanning'"),
        )
    with op.batch_alter_table("buckets", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("scan_gate", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("audit", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("version_id", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_audit_version_id"), ["version_id"], unique=False)
    # Outbox ids are never reused on SQLite either (AUTOINCREMENT; PostgreSQL sequences never
    # go back): handled events are deleted, and a late answer about one must not hit another.
    # The outbox has no foreign keys either way, so rebuilding it is safe.
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("outbox", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass
    op.create_table(
        "rescans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("since", _TIME, nullable=False),
        sa.Column("requested_at", _TIME, nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("cursor", sa.String(length=64), server_default="", nullable=False),
        sa.Column("scanned", _BIG, server_default=sa.text("0"), nullable=False),
        sa.Column("found", _BIG, server_default=sa.text("0"), nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("rescans")
    op.drop_index("ix_audit_version_id", table_name="audit")
    op.drop_index("ix_object_scanning", table_name="object_versions")
    for table, columns in (
        ("audit", ("version_id",)),
        ("buckets", ("scan_gate",)),
        ("object_versions", ("scanner", "scanned_at", "scan_result")),
    ):
        for column in columns:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
