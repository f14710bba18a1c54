"""tiers and repair: node storage classes, repair claims and log, lifecycle rules, restores, usage

Columns are added in place with server defaults (no batch rebuild of a table others
reference on SQLite).

Revision ID: r001
Revises: pl03
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r001"
down_revision = "pl03"
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.Float(precision=53)


def _ckey(length: int) -> sa.types.TypeEngine:
    return sa.String(length=length).with_variant(sa.String(length=length, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("chunks", recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("tier", sa.String(length=16), server_default="STANDARD", nullable=False)
        )
    with op.batch_alter_table("nodes", recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("storage_class", sa.String(length=16), server_default="STANDARD", nullable=False)
        )
        batch_op.add_column(sa.Column("repair_queued_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("down_since", _TIME, nullable=True))
    with op.batch_alter_table("repair_queue", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("lease_until", _TIME, nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("not_before", _TIME, nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
    op.create_table(
        "repair_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("chunk_key", _ckey(64), nullable=False),
        sa.Column("shards", sa.Integer(), nullable=False),
        sa.Column("bytes", _BIG, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("repair_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repair_log_at"), ["at"], unique=False)
    op.create_table(
        "bucket_lifecycle",
        sa.Column("bucket", _ckey(63), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(["bucket"], ["buckets.name"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("bucket"),
    )
    op.create_table(
        "object_restores",
        sa.Column("version_id", sa.String(length=64), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("requested_at", _TIME, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("expires_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(["version_id"], ["object_versions.version_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("version_id"),
    )
    op.create_table(
        "usage_counters",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("api_requests", _BIG, server_default="0", nullable=False),
        sa.Column("egress_bytes", _BIG, server_default="0", nullable=False),
        sa.Column("ingress_bytes", _BIG, server_default="0", nullable=False),
        sa.Column("scan_calls", _BIG, server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "month"),
    )


def downgrade() -> None:
    op.drop_table("usage_counters")
    op.drop_table("object_restores")
    op.drop_table("bucket_lifecycle")
    with op.batch_alter_table("repair_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repair_log_at"))
    op.drop_table("repair_log")
    with op.batch_alter_table("repair_queue") as batch_op:
        for name in ("last_error", "not_before", "attempts", "lease_until", "claimed_by"):
            batch_op.drop_column(name)
    with op.batch_alter_table("nodes") as batch_op:
        batch_op.drop_column("down_since")
        batch_op.drop_column("repair_queued_at")
        batch_op.drop_column("storage_class")
    with op.batch_alter_table("chunks") as batch_op:
        batch_op.drop_column("tier")
