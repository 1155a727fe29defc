"""Database engine and sessions. SQLite (WAL, busy timeout) for the embedded stack, PostgreSQL by URL."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from engine.follow_ups import DATABASE_URL
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
            if immediate:
                _begin_immediate(conn.connection.dbapi_connection)
            else:
                conn.exec_driver_sql("BEGIN")

        return eng
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_size=20, max_overflow=40, pool_pre_ping=True, hide_parameters=True)


#: SQLite's own busy handler sleeps 1, 2, 5, 10 … up to 100 ms between tries: under contention the lock is
#: free long before a waiter looks again. A writer waiting for another process polls every BUSY_POLL
#: seconds instead, for at most BUSY_TIMEOUT seconds.
BUSY_POLL = 0.0005
BUSY_TIMEOUT = 30.0


def _begin_immediate(dbapi_conn: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA busy_timeout=0")
        deadline = time.monotonic() + BUSY_TIMEOUT
        wait = BUSY_POLL
        while True:
            try:
                cur.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                    raise
            time.sleep(wait)
            wait = min(wait * 1.5, 0.004)
    finally:
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()


#: one writer per process at a time on a SQLite file: the others wait here (woken in turn) rather than
#: all polling SQLite's lock; only processes compete for it
_writers: dict[str, threading.RLock] = {}
_writers_lock = threading.Lock()


def _writer(url: str) -> threading.RLock:
    with _writers_lock:
        return _writers.setdefault(url, threading.RLock())


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(url: str | None = None) -> Engine:
    return _engine_for(url or get_settings().resolved_database_url())


@lru_cache(maxsize=8)
def _factory(url: str) -> sessionmaker[Session]:
    # sessions know their database: follow-up events committed in them are routed by this process's router
    # for it (engine/follow_ups.py)
    return sessionmaker(bind=_engine_for(url), expire_on_commit=False, info={DATABASE_URL: url})


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    return _factory(url or get_settings().resolved_database_url())


IMMEDIATE = "tideflow_immediate"


@contextmanager
def transaction(url: str | None = None) -> Iterator[Session]:
    """A session in one write transaction: committed on success, rolled back on any error.

    On SQLite it starts with ``BEGIN IMMEDIATE`` (writers are serialised from the start);
    on PostgreSQL, code that must serialise on a row locks it (``with_for_update``).
    """
    resolved = url or get_settings().resolved_database_url()
    writer = _writer(resolved) if resolved.startswith("sqlite") else contextlib.nullcontext()
    with writer, session_factory(resolved)() as session, session.begin():
        session.connection(execution_options={IMMEDIATE: True})
        yield session


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached or dropped the connection (refused, shutting
    down, restarting, a lost connection, SQLite busy past its wait): the infrastructure's failure, worth trying
    again as it is, never the request's own."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    return isinstance(exc, OperationalError | InterfaceError | DisconnectionError)


def upgrade(url: str | None = None) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent.parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().resolved_database_url()).replace("%", "%%"))
    command.upgrade(cfg, "heads")
