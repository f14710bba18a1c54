"""product accounts: passwords and quota on users, bearer tokens, login rate limiting

Columns are added to users in place (with a server default where NOT NULL): on SQLite a
batch rebuild of users would have to drop a table other tables reference.

Revision ID: p001
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p001"
down_revision = "0001"
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.Float(precision=53)


def upgrade() -> None:
    with op.batch_alter_table("users", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("quota_bytes", _BIG, nullable=True))
        batch_op.add_column(sa.Column("used_bytes", _BIG, server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("reserved_bytes", _BIG, server_default=sa.text("0"), nullable=False))

    op.create_table(
        "auth_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=True),
        sa.Column("client_addr", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"]),
        sa.PrimaryKeyConstraint("token_hash"),
        sa.UniqueConstraint("token_id"),
    )
    with op.batch_alter_table("auth_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auth_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "login_attempts",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("window_start", _TIME, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_attempts_window_start"), ["window_start"], unique=False)


def downgrade() -> None:
    op.drop_table("login_attempts")
    op.drop_table("auth_tokens")
    for column in ("reserved_bytes", "used_bytes", "quota_bytes", "password_hash"):
        op.execute(f"ALTER TABLE users DROP COLUMN {column}")
