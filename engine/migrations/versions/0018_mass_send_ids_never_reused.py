"""mass_sends ids are never reused: AUTOINCREMENT on SQLite

A withdrawn mass send (its workflow's start went unanswered) is deleted, and on SQLite an INTEGER PRIMARY KEY
without AUTOINCREMENT hands the newest deleted row's id to the next row: that send's workflow id
(``mass-send/<id>``) was then taken for the withdrawn one's, and it never started. The table is rebuilt with
AUTOINCREMENT (SQLite has no ALTER for it), keeping its rows and ids; the largest id is where the sequence goes
on. PostgreSQL's serial sequence never hands out an id twice: nothing to do there.

Revision ID: 0018_mass_send_ids
Revises: 0017_web_heartbeat
Create Date: 2026-12-07 02:00:00.000000
"""
from alembic import op


revision = '0018_mass_send_ids'
down_revision = '0017_web_heartbeat'
branch_labels = None
depends_on = None


def _rebuild(autoincrement: bool) -> None:
    """Rebuild mass_sends on SQLite (the rows it references keep pointing at the same ids: env.py turns foreign
    keys off for the migration, and their integrity is checked after)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    with op.batch_alter_table('mass_sends', recreate='always',
                              table_kwargs={'sqlite_autoincrement': autoincrement}):
        pass
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"rows referring to no mass send after rebuilding mass_sends: {broken[:5]}")


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
