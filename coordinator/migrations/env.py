"""Alembic environment: runs migrations on the connection the coordinator hands in
(coordinator/migrate.py), or, from the alembic command line, on `-x url=...`."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from coordinator.schema import metadata

config = context.config


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database with -x url=sqlite:////path/to/db (a sync driver URL)")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _run(conn)
