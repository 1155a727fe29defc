"""Migrated databases for tests without running the migrations again for each one.

Running the Alembic migrations on a fresh SQLite file takes about half a second, and over a thousand tests ask
for one. :func:`migrated_sqlite` migrates once per process (each xdist worker has its own) into a template file
and copies it: the copy is the same file ``upgrade()`` would have written (the migrations run with their engine
disposed of afterwards, so the WAL is checkpointed into the file), at the newest revision, owner-only like a
file ``make_engine`` creates.

Tests of the migrations themselves (downgrades, a revision's data fix) call ``engine.db.session.upgrade``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from pathlib import Path

from engine.db.session import upgrade

_template: Path | None = None
_lock = threading.Lock()


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


def migrated_sqlite(url: str) -> str:
    """Create the SQLite file of ``url`` (``sqlite:///<path>``, which must not exist yet) migrated to the newest
    schema, as ``upgrade(url)`` would, and return ``url``."""
    path = Path(url.split("///", 1)[1])
    if path.exists():
        raise FileExistsError(f"{path} exists: migrated_sqlite only creates a database")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    template = _template_file()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, template.open("rb") as src:
        shutil.copyfileobj(src, out)
    return url
