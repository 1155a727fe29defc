"""Database engine and sessions. SQLite (WAL, busy timeout) for the embedded stack, PostgreSQL by URL."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from engine.settings import get_settings


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            file = Path(path)
            file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not file.exists():  # created owner-only; SQLite gives its WAL files the same mode
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        # a worker runs up to 64 activity threads and an action may hold a read session while it opens a
        # write transaction: SQLite connections are cheap, so the pool is sized well above that
        # hide_parameters: statement parameters (phones, e-mails, payloads) stay out of logs and error text
        eng = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=32,
                            max_overflow=128, hide_parameters=True)

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
            # we issue BEGIN ourselves (pysqlite's implicit transactions defer the write lock)
            dbapi_conn.isolation_level = None

        @event.listens_for(eng, "begin")
        def _begin(conn: Any) -> None:
            # write transactions take the lock up front: a read-then-write race (frequency caps,
            # stock counters) then waits its turn instead of failing with SQLITE_BUSY
            immediate = conn.get_execution_options().get(IMMEDIATE, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return eng
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_size=20, max_overflow=40, pool_pre_ping=True, hide_parameters=True)


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(url: str | None = None) -> Engine:
    return _engine_for(url or get_settings().resolved_database_url())


@lru_cache(maxsize=8)
def _factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=_engine_for(url), expire_on_commit=False)


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    return _factory(url or get_settings().resolved_database_url())


IMMEDIATE = "tideflow_immediate"


@contextmanager
def transaction(url: str | None = None) -> Iterator[Session]:
    """A session in one write transaction: committed on success, rolled back on any error.

    On SQLite it starts with ``BEGIN IMMEDIATE`` (writers are serialised from the start);
    on PostgreSQL, code that must serialise on a row locks it (``with_for_update``).
    """
    with session_factory(url)() as session, session.begin():
        session.connection(execution_options={IMMEDIATE: True})
        yield session


def upgrade(url: str | None = None) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent.parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().resolved_database_url()).replace("%", "%%"))
    command.upgrade(cfg, "heads")
