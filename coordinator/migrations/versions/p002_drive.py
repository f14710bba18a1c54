"""product drives: files and folders, product upload plans, grants, share links

Revision ID: p002
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p002"
down_revision = "0003"
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.Float(precision=53)
_ID = sa.String(length=64)


def _ckey(length: int) -> sa.types.TypeEngine:
    return sa.String(length=length).with_variant(sa.String(length=length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("file_id", _ckey(64), nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("owner_id", _ID, nullable=False),
        sa.Column("parent_id", _ckey(64), nullable=False),
        sa.Column("name", _ckey(1024), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("trashed_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.user_id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
        sa.PrimaryKeyConstraint("file_id"),
    )
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.create_index("ix_files_listing", ["parent_id", "kind", "name"], unique=False)
        batch_op.create_index("ix_files_trash", ["owner_id", "trashed_at"], unique=False)
        batch_op.create_index("ux_files_name", ["owner_id", "parent_id", "name"], unique=True,
                              sqlite_where=sa.text("trashed_at IS NULL"),
                              postgresql_where=sa.text("trashed_at IS NULL"))

    op.create_table(
        "product_uploads",
        sa.Column("upload_id", _ckey(64), nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("file_id", _ckey(64), nullable=True),
        sa.Column("parent_id", _ckey(64), nullable=True),
        sa.Column("path", sa.JSON(), nullable=False),
        sa.Column("size", _BIG, nullable=False),
        sa.Column("chunk_size", _BIG, nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("chunks", sa.JSON(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["upload_id"], ["upload_sessions.upload_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("upload_id"),
    )
    op.create_table(
        "upload_chunk_refs",
        sa.Column("upload_id", _ckey(64), nullable=False),
        sa.Column("chunk_key", _ckey(64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["upload_id"], ["upload_sessions.upload_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("upload_id", "chunk_key"),
    )
    op.create_table(
        "grants",
        sa.Column("grant_id", _ID, nullable=False),
        sa.Column("file_id", _ckey(64), nullable=False),
        sa.Column("grantee_id", _ID, nullable=False),
        sa.Column("permission", sa.String(length=8), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["files.file_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["grantee_id"], ["users.user_id"]),
        sa.PrimaryKeyConstraint("grant_id"),
        sa.UniqueConstraint("file_id", "grantee_id", name="uq_grants_file_grantee"),
    )
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grants_grantee_id"), ["grantee_id"], unique=False)

    op.create_table(
        "share_links",
        sa.Column("link_id", _ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("file_id", _ckey(64), nullable=False),
        sa.Column("owner_id", _ID, nullable=False),
        sa.Column("permission", sa.String(length=8), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("max_downloads", sa.Integer(), nullable=True),
        sa.Column("download_count", sa.Integer(), nullable=False),
        sa.Column("revoked_at", _TIME, nullable=True),
        sa.Column("revoked_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(["file_id"], ["files.file_id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.user_id"]),
        sa.PrimaryKeyConstraint("link_id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_share_links_file_id"), ["file_id"], unique=False)
        batch_op.create_index("ix_share_links_owner", ["owner_id", "revoked_at"], unique=False)

    op.create_table(
        "share_link_downloads",
        sa.Column("download_id", _ID, nullable=False),
        sa.Column("link_id", _ID, nullable=False),
        sa.Column("version_id", _ID, nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.Column("client_addr", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["link_id"], ["share_links.link_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("download_id"),
    )
    with op.batch_alter_table("share_link_downloads", schema=None) as batch_op:
        batch_op.create_index("ix_share_link_downloads_link", ["link_id", "finished_at"], unique=False)


def downgrade() -> None:
    for table in ("share_link_downloads", "share_links", "grants", "upload_chunk_refs", "product_uploads",
                  "files"):
        op.drop_table(table)
