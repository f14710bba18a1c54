"""garbage collection: a chunk's GC claim (its tombstone), orphan shard candidates

Revision ID: pl03
Revises: pl02
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "pl03"
down_revision = "pl02"
branch_labels = None
depends_on = None

_TIME = sa.Float(precision=53)
_CKEY64 = sa.String(length=64).with_variant(sa.String(length=64, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("chunks", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("gc_worker", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("gc_lease_until", _TIME, nullable=True))
    op.create_table(
        "gc_orphans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("shard_id", sa.String(length=200), nullable=False),
        sa.Column("chunk_key", _CKEY64, nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("first_seen", _TIME, nullable=False),
        sa.Column("pass_id", sa.String(length=64), nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("lease_until", _TIME, nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("node_id", "shard_id", name="uq_gc_orphans_node_shard"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("gc_orphans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gc_orphans_chunk_key"), ["chunk_key"], unique=False)


def downgrade() -> None:
    op.drop_table("gc_orphans")
    for column in ("gc_lease_until", "gc_worker"):
        op.execute(f"ALTER TABLE chunks DROP COLUMN {column}")
