"""Migrated databases for tests without running the migrations again for each one.

Running the Alembic migrations on a fresh SQLite file takes about half a second, and over a thousand tests ask
for one. :func:`migrated_sqlite` migrates once per process (each xdist worker has its own) into a template file
and copies it: the copy is the same file ``upgrade()`` would have written (the migrations run with their engine
disposed of afterwards, so the WAL is checkpointed into the file), at the newest revision, owner-only like a
file ``make_engine`` creates.

Tests of the migrations themselves (downgrades, a revision's data fix) call ``engine.db.session.upgrade``.

:func:`seeded_sqlite` does the same for a migrated database that ``tideflow.demo.seed`` then filled (publishing
every shipped flow costs a few tenths of a second, and some eighty tests ask for it): one template per process
and per preparation (the users a test adds before seeding) and per password hasher, built by the real seed and
copied, with the report seed answered when it built it. Tests of seed itself call seed.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path
from typing import Any

from engine import auth
from engine.db.session import get_engine, upgrade

_template: Path | None = None
_lock = threading.RLock()  # seeded_sqlite builds its template from a migrated_sqlite copy
_seeded: dict[tuple[object, ...], tuple[Path, dict[str, Any]]] = {}


def _template_file() -> Path:
    global _template
    with _lock:
        if _template is None:
            folder = Path(tempfile.mkdtemp(prefix="tideflow-template-"))
            atexit.register(shutil.rmtree, folder, True)
            file = folder / "template.db"
            upgrade(f"sqlite:///{file}")
            wal = Path(f"{file}-wal")  # none after the migrations' engine was disposed of
            if wal.exists() and wal.stat().st_size:
                raise RuntimeError(f"the template database left {wal} behind: copies would miss its pages")
            _template = file
        return _template


def _dispose(url: str) -> None:
    """Close the pooled connections of ``url``: the last one to close checkpoints the WAL into the file."""
    get_engine(url).dispose()


def _copy(template: Path, url: str, caller: str) -> None:
    path = Path(url.split("///", 1)[1])
    if path.exists():
        raise FileExistsError(f"{path} exists: {caller} only creates a database")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, template.open("rb") as src:
        shutil.copyfileobj(src, out)


def migrated_sqlite(url: str) -> str:
    """Create the SQLite file of ``url`` (``sqlite:///<path>``, which must not exist yet) migrated to the newest
    schema, as ``upgrade(url)`` would, and return ``url``."""
    _copy(_template_file(), url, "migrated_sqlite")
    return url


def seeded_sqlite(url: str, prepare: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``prepare(url)`` (e.g. adding users), then ``tideflow.demo.seed(url)``, on the database ``migrated_sqlite``
    made at ``url`` and nothing has written to since: the file is replaced by a copy of a template those same
    calls built once in this process. Returns seed's report, the one the template's seed answered.

    The template is keyed by ``prepare`` and by the password hasher's parameters (``cheap_passwords`` or the
    real argon2), so its hashes are the ones those calls would have written; ``prepare`` must do the same every
    time. The demo admin's random password and API token are the template's, the same in every copy (they are
    in the report); seed's timestamps (the settlement demo's months) are the template's build time.
    """
    from tideflow.demo import seed

    path = Path(url.split("///", 1)[1])
    _dispose(url)  # no pooled connection may keep the old file's pages
    wal = Path(f"{path}-wal")
    if path.read_bytes() != _template_file().read_bytes() or (wal.exists() and wal.stat().st_size):
        raise ValueError(f"{path} was written to after migrated_sqlite made it: call seed on it instead, "
                         "in the order the test needs")
    params = auth._hasher.time_cost, auth._hasher.memory_cost, auth._hasher.parallelism
    key = (prepare, *params)
    with _lock:
        if key not in _seeded:
            folder = Path(tempfile.mkdtemp(prefix="tideflow-seeded-"))
            atexit.register(shutil.rmtree, folder, True)
            file = folder / "seeded.db"
            template_url = migrated_sqlite(f"sqlite:///{file}")
            if prepare is not None:
                prepare(template_url)
            report = seed(template_url)
            _dispose(template_url)
            if Path(f"{file}-wal").exists() and Path(f"{file}-wal").stat().st_size:
                raise RuntimeError(f"the seeded template left {file}-wal behind: copies would miss its pages")
            _seeded[key] = file, report
        file, report = _seeded[key]
    path.unlink()
    _copy(file, url, "seeded_sqlite")
    return deepcopy(report)
