"""chunk storage format: chunks.format (1 = the first release's, 2 = segmented and contiguous)

Every chunk stored before this revision was written in format 1, the column default.

Revision ID: 0002
Revises: pl01
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "pl01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("chunks", sa.Column("format", sa.SmallInteger(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("format")
