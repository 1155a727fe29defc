"""An action whose database is unavailable waits for it within its attempt (engine.actions.run_action): a
database restart does not use up the node's attempts in seconds. The database here is a real SQLite file that
is not there yet (connecting fails with sqlalchemy's OperationalError) and appears while the action waits."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.profile.tag import Tag
from engine.action_context import Services
from engine.actions import make_activity
from engine.customers import resolve
from engine.db import models
from engine.db.session import get_engine, session_factory, transaction
from engine.runtime import ActionRequest
from tests.dbtemplate import migrated_sqlite


def _request(customer_id: str) -> ActionRequest:
    return ActionRequest(key="journey/f/c/tag/1", workflow_id="journey/f/c", flow_id="f", version=1, node_id="tag",
                         node_type=Tag.type, config={"add": ["back-online"]}, customer_id=customer_id)


def _env(seconds: float) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, start_to_close_timeout=timedelta(seconds=seconds))
    return env


def test_an_action_waits_for_its_database_within_the_attempt(tmp_path: Path) -> None:
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    ready_url = f"sqlite:///{prepared}/tideflow.db"
    migrated_sqlite(ready_url)
    with transaction(ready_url) as db:
        cid = resolve(db, {"external_id": "outage-1"})
    get_engine(ready_url).dispose()
    live = tmp_path / "live"
    live.mkdir()
    (live / "tideflow.db").mkdir()  # a directory where the file should be: SQLite cannot open it
    url = f"sqlite:///{live}/tideflow.db"

    def database_back() -> None:
        (live / "tideflow.db").rmdir()
        for part in prepared.iterdir():
            part.rename(live / part.name)

    threading.Timer(0.8, database_back).start()
    started = time.monotonic()
    result = _env(10).run(make_activity(Tag, Services(database_url=url)), _request(cid))
    assert time.monotonic() - started >= 0.8  # it waited for the database …
    assert result["port"] == "out" and result["detail"] == {"added": ["back-online"], "removed": []}
    with session_factory(url)() as db:  # … and did the action once, under its key
        assert list(db.scalars(select(models.CustomerTag.tag).where(models.CustomerTag.customer_id == cid))) == [
            "back-online"]
        assert db.scalar(select(models.LedgerEntry.key)) == "journey/f/c/tag/1"


def test_a_database_that_stays_away_fails_the_attempt_before_its_timeout(tmp_path: Path) -> None:
    (tmp_path / "tideflow.db").mkdir()  # SQLite cannot open a directory, now or later
    url = f"sqlite:///{tmp_path}/tideflow.db"
    started = time.monotonic()
    with pytest.raises(ApplicationError) as failed:
        _env(2).run(make_activity(Tag, Services(database_url=url)), _request("c_nobody"))
    waited = time.monotonic() - started
    # retried for most of the attempt (0.8 of its 2 s), given up before Temporal's timeout would end it
    assert 1.2 <= waited < 2.0, waited
    assert failed.value.type == "OperationalError" and not failed.value.non_retryable
