"""The data directory and the databases in it are private to their owner (issue 18, item 6), and the
embedded Temporal UI is off unless asked for, and then on loopback only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.db.session import make_engine
from engine.settings import Settings
from tideflow.stack import UI_PUBLIC_PATH, private_data_dir, temporal_dev_server_args


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask, as many hosts have: what is created must be private anyway."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_sqlite_database_is_owner_only(tmp_path: Path, open_umask: None) -> None:
    db = tmp_path / "fresh" / "tideflow.db"
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (phone TEXT)")
        conn.exec_driver_sql("INSERT INTO t VALUES ('13800138000')")
    assert _mode(db.parent) == 0o700
    for file in db.parent.iterdir():  # the database and its WAL / shared-memory files
        assert _mode(file) == 0o600, file.name
    engine.dispose()


def test_the_data_directory_is_locked_down(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    for name in ("tideflow.db", "tideflow.db-wal", "temporal.db", "secret.key"):
        (data / name).write_text("x")
        (data / name).chmod(0o644)
    private_data_dir(data)
    assert _mode(data) == 0o700
    assert {f.name: _mode(f) for f in data.iterdir()} == dict.fromkeys(
        ("tideflow.db", "tideflow.db-wal", "temporal.db", "secret.key"), 0o600)
    (data / "temporal.db-journal").write_text("made later by the dev server")  # umask 077 from now on
    assert _mode(data / "temporal.db-journal") == 0o600


def test_the_temporal_ui_is_off_by_default(tmp_path: Path) -> None:
    args = temporal_dev_server_args(Settings(temporal_address="127.0.0.1:7233"), tmp_path)
    assert "--headless" in args and "--ui-port" not in args
    assert args[args.index("--ip") + 1] == "127.0.0.1"


def test_when_asked_for_the_temporal_ui_listens_on_loopback_under_the_admin_path(tmp_path: Path) -> None:
    args = temporal_dev_server_args(Settings(temporal_address="127.0.0.1:7233", temporal_ui=True), tmp_path)
    assert "--headless" not in args
    assert args[args.index("--ui-ip") + 1] == "127.0.0.1" and args[args.index("--ui-port") + 1] == "8233"
    assert args[args.index("--ui-public-path") + 1] == UI_PUBLIC_PATH
