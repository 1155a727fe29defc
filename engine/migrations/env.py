"""Alembic environment: runs migrations against the URL set by engine.db.session.upgrade."""

from __future__ import annotations

from alembic import context

from engine.db.models import Base
from engine.db.session import make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or ""
    connectable = make_engine(url)
    with connectable.connect() as connection:
        if connection.dialect.name == "sqlite":
            # a table rebuilt in batch mode (create a copy, drop the old one, rename the copy) must not take the
            # rows referring to it along: SQLite's DROP TABLE deletes them first when foreign keys are on. The
            # pragma only takes effect outside a transaction, so it is set on the raw connection before the
            # migrations begin theirs (this engine is disposed of afterwards); a migration that rebuilds a table
            # checks the references itself (PRAGMA foreign_key_check)
            connection.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    connectable.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
