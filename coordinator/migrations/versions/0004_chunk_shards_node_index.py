"""chunk_shards: one index on (node_id, chunk_key, idx) instead of node_id alone

Reconciliation asks which of a page of shard ids a node lists are placed on it; with only
node_id indexed, SQLite's planner took that index and read all of the node's shards per
page. The composite index answers that query with one search per key and serves every
node_id-prefix query the old one did.

Revision ID: 0004
Revises: r001
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "r001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_chunk_shards_node_chunk", "chunk_shards", ["node_id", "chunk_key", "idx"])
    op.drop_index("ix_chunk_shards_node_id", table_name="chunk_shards")


def downgrade() -> None:
    op.create_index("ix_chunk_shards_node_id", "chunk_shards", ["node_id"])
    op.drop_index("ix_chunk_shards_node_chunk", table_name="chunk_shards")
