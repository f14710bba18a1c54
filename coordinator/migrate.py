"""Schema migrations (alembic, revisions in coordinator/migrations/versions) applied at start.

Why at start: an operator upgrades shardbox by restarting its coordinators and the metadata
database follows, with no separate step to forget. Several coordinators starting at once
against PostgreSQL serialise on an advisory lock (coordinator/db.py), so one migrates and the
others find the database at head.

Databases created before migrations existed have the baseline's tables but no
`alembic_version`: they are first given what that release added by hand at start (a column
and an index), then stamped at the baseline and upgraded like any other.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer shardbox than this one."""


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "coordinator/migrations has no revisions"
    return head


def current_revision(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade_to_head(conn: sa.Connection) -> None:
    """Bring the schema on `conn` (inside the caller's transaction) to the newest revision."""
    tables = set(sa.inspect(conn).get_table_names())
    cfg = alembic_config(conn)
    if "alembic_version" not in tables and "tenants" in tables:
        _catch_up_first_release(conn)
        command.stamp(cfg, BASELINE)
    current = current_revision(conn)
    script = ScriptDirectory.from_config(cfg)
    if current is not None and script.get_revision(current) is None:
        raise SchemaTooNew(
            f"the metadata database is at schema revision {current}, which this shardbox does not "
            f"know (its newest is {script.get_current_head()}); it was upgraded by a newer release: "
            "run that release"
        )
    command.upgrade(cfg, "head")


def _catch_up_first_release(conn: sa.Connection) -> None:
    """What the first release added to its own older tables at start, before migrations."""
    have = {c["name"] for c in sa.inspect(conn).get_columns("chunks")}
    if "inline_data" not in have:
        kind = "BYTEA" if conn.dialect.name == "postgresql" else "BLOB"
        conn.exec_driver_sql(f"ALTER TABLE chunks ADD COLUMN inline_data {kind}")
    conn.exec_driver_sql(
        'CREATE INDEX IF NOT EXISTS ix_object_chunks_offset ON object_chunks (version_id, "offset")'
    )
