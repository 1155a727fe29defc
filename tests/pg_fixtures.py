"""Pytest fixtures for the throwaway PostgreSQL cluster (see tests/pg.py).

- ``pg_cluster`` (session): the running cluster; started on first use, killed and removed at session end.
- ``pg_url`` (function): a fresh database per test, migrated to the newest schema, dropped afterwards. It is a
  copy (``CREATE DATABASE … TEMPLATE``) of one database migrated once per cluster.
- ``any_db_url`` (function, parametrized): the same test on a migrated SQLite file and on ``pg_url``.

Missing server binaries make these fixtures FAIL (never skip), so CI cannot silently lose its PostgreSQL
coverage. Tests that use them are marked ``postgres`` automatically; deselect with ``-m "not postgres"``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.db.session import get_engine, session_factory, upgrade
from tests.dbtemplate import migrated_sqlite
from tests.pg import INSTALL_HINT, PostgresCluster, PostgresError, missing_binaries

PG_FIXTURES = frozenset({"pg_cluster", "pg_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the cluster ``postgres``, so ``-m "not postgres"`` deselects it."""
    for item in items:
        if PG_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A private PostgreSQL 15 server for the whole session (per xdist worker)."""
    missing = missing_binaries()
    if missing:
        pytest.fail(f"PostgreSQL tests need the server binaries, missing: {', '.join(map(str, missing))}; "
                    f"{INSTALL_HINT}", pytrace=False)
    cluster = PostgresCluster()
    try:
        cluster.start()
    except PostgresError as exc:
        pytest.fail(f"could not start the throwaway PostgreSQL cluster: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


def _dispose_engines(url: str) -> None:
    """Close the pooled connections engine.db.session cached for ``url`` (they would block DROP DATABASE)."""
    engines: list[Engine] = [get_engine(url)]
    bound = session_factory(url).kw.get("bind")
    if isinstance(bound, Engine) and bound is not engines[0]:
        engines.append(bound)
    for engine in engines:
        engine.dispose()


MIGRATED_TEMPLATE = "tideflow_migrated"


@pytest.fixture(scope="session")
def _pg_migrated(pg_cluster: PostgresCluster) -> str:
    """The name of a database of ``pg_cluster`` migrated to the newest schema, copied by ``pg_url``; nothing
    stays connected to it (a template must have no connections while it is copied)."""
    url = pg_cluster.create_database(MIGRATED_TEMPLATE)
    upgrade(url)
    _dispose_engines(url)
    return MIGRATED_TEMPLATE


@pytest.fixture
def pg_url(pg_cluster: PostgresCluster, _pg_migrated: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, migrated to the newest schema (a copy of ``_pg_migrated``)."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = pg_cluster.create_database(name, template=_pg_migrated)
    try:
        yield url
    finally:
        _dispose_engines(url)
        pg_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return migrated_sqlite(f"sqlite:///{tmp_path / 'tideflow.db'}")
