"""The migrations build exactly the schema the models describe: a model change without its
Alembic migration (or a migration that drifts from the model) fails here, not on a user's upgrade."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from engine.db.models import Base
from engine.db.session import get_engine

MIGRATIONS = Path(__file__).resolve().parents[2] / "engine" / "migrations"


def test_upgraded_schema_has_no_difference_from_the_models(db_url: str) -> None:
    with get_engine(db_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"render_as_batch": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ; write a migration for: {diff}"


def test_migrations_form_one_line_of_history() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"several migration heads {heads}: chain them (set down_revision)"
