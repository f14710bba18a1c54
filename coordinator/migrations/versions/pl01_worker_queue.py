"""worker queue: leases, attempts, backoff and parking on the outbox; named worker leases

Revision ID: pl01
Revises: p001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "pl01"
down_revision = "p001"
branch_labels = None
depends_on = None

_TIME = sa.Float(precision=53)


def upgrade() -> None:
    # Columns added in place (never a batch rebuild: see revision 0002 on why).
    with op.batch_alter_table("outbox", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("lease_until", _TIME, nullable=True))
        batch_op.add_column(sa.Column("available_at", _TIME, nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("parked_at", _TIME, nullable=True))
    # Events nothing consumed before workers existed stay and are handled now, except
    # chunk.unreferenced: GC finds its work through chunks.zero_since, not through events.
    op.execute("DELETE FROM outbox WHERE event_type = 'chunk.unreferenced' OR done_at IS NOT NULL")
    op.create_table(
        "worker_leases",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("holder", sa.Text(), nullable=True),
        sa.Column("lease_until", _TIME, nullable=True),
        sa.Column("not_before", _TIME, nullable=True),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("worker_leases")
    for column in ("parked_at", "last_error", "available_at", "lease_until", "attempts"):
        op.execute(f"ALTER TABLE outbox DROP COLUMN {column}")
