"""Shared fixtures: a migrated SQLite database per test, a throwaway PostgreSQL cluster per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.db.session import upgrade


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite database, migrated to the newest schema."""
    url = f"sqlite:///{tmp_path / 'tideflow.db'}"
    upgrade(url)
    return url


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own data dir, so nothing leaks into ./.tideflow."""
    from engine.settings import get_settings

    monkeypatch.setenv("TIDEFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TIDEFLOW_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
