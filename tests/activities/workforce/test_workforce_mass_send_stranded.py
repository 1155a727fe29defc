"""A person's mass send whose workflow Temporal did not start, when taking it back fails too
(``runtime.create_mass_send``, ``mass_sends.fail_unstarted``, ``runtime.fail_stranded_mass_sends``), on real
SQLite and Temporal's time-skipping server against the loopback WeCom.

The database refuses by a trigger (a real refusal, as a disk error or a constraint would be): first only the
withdrawal's DELETE, then every write to the send. No send is left ``sending`` with no workflow: it ends
``failed`` with its reason at once (its recipients' allowance freed, the message log saying so), or, when the
database took no write at all, the worker's sweep ends it so once the database answers again. A send whose
workflow does run is never ended by the sweep."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from activities.workforce import mass_sends, runtime
from activities.workforce.common import WorkforceError
from activities.workforce.mass_sends import Audience, MassSendIn
from activities.workforce.runtime import create_mass_send
from activities.workforce.workflows import mass_send_workflow_id
from engine.db import workforce_models as wf
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.worker import build_worker
from tests.activities.workforce.mass_send_kit import CONNECTOR, LostReplies, corp, db_url, log, stored
from tests.connectors.fake_wecom import FakeWeCom, fake_wecom
from tests.waiting import until

__all__ = ["corp", "db_url", "fake_wecom"]
SEND = MassSendIn(connector_id=CONNECTOR, chat_type="single", name="双十二", text="双十二会员专享", audience=Audience(),
                  deadline_hours=2)
OWNED = {"wmA", "wmB", "wmC", "wmD"}  # wmE has no staff member: skipped from the start


def refuse(db_url: str, *operations: str) -> None:
    """Make the database refuse ``operations`` on mass_sends until :func:`answer`: DELETE, or UPDATE of a send's
    status (storing a send sets its counts after inserting it: that still goes through)."""
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        for op in operations:
            what = "UPDATE OF status" if op == "UPDATE" else op
            db.execute(f"CREATE TRIGGER refuse_{op.lower()} BEFORE {what} ON mass_sends "
                       "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")


def answer(db_url: str) -> None:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        names = db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'refuse_%'")
        for (name,) in names.fetchall():
            db.execute(f"DROP TRIGGER {name}")


def send_row(db_url: str) -> tuple[int, str, str | None, dict[str, int]]:
    with session_factory(db_url)() as db:
        [send] = db.scalars(select(wf.MassSend))
        return send.id, send.status, send.error, mass_sends.counts(db, send.id)


def allowed_now(db_url: str) -> int:
    with session_factory(db_url)() as db:
        return int(mass_sends.preview(db, SEND, utcnow())["allowed"])


async def test_a_send_that_cannot_be_withdrawn_ends_failed_with_its_reason(time_env: Any, corp: FakeWeCom,
                                                                           db_url: str) -> None:
    assert allowed_now(db_url) == 4
    refuse(db_url, "DELETE")
    lost = LostReplies(lose=100, reach=False)
    with pytest.raises(WorkforceError) as refused:
        await create_mass_send(lost.client(time_env.client), db_url, "q", SEND, "marketer", utcnow())
    send_id, status, error, counts = send_row(db_url)
    assert refused.value.status == 503 and refused.value.field == "temporal"
    assert f"mass send {send_id} was not started" in str(refused.value) and "marked failed" in str(refused.value)
    assert "nothing was sent" in str(refused.value) and refused.value.fix
    assert status == "failed" and error == str(mass_sends.NOT_STARTED)
    assert counts == {"not_started": 4, "skipped: no owner": 1}
    assert {k: v for k, v in log(db_url).items() if k in OWNED} == dict.fromkeys(OWNED, "failed: not started")
    answer(db_url)
    assert allowed_now(db_url) == 4  # nobody's allowance is held by a send that will never go


async def test_a_failed_send_whose_workflow_did_start_sends_nothing(time_env: Any, corp: FakeWeCom,
                                                                    db_url: str) -> None:
    """The starts were applied, only their replies lost: the workflow runs later and finds its send failed."""
    refuse(db_url, "DELETE")
    lost = LostReplies(lose=100)
    queue = f"mass-{uuid.uuid4().hex[:8]}"
    with pytest.raises(WorkforceError):
        await create_mass_send(lost.client(time_env.client), db_url, queue, SEND, "marketer", utcnow())
    answer(db_url)
    send_id, status, _, _ = send_row(db_url)
    assert status == "failed"
    async with build_worker(time_env.client, queue, db_url):
        result = await time_env.client.get_workflow_handle(mass_send_workflow_id(send_id)).result()
    assert result["final"] and corp.calls("add_msg_template") == []
    assert send_row(db_url)[1:3] == ("failed", str(mass_sends.NOT_STARTED))


async def test_when_the_database_takes_no_write_the_sweep_ends_the_send_later(time_env: Any, corp: FakeWeCom,
                                                                              db_url: str) -> None:
    refuse(db_url, "DELETE", "UPDATE")
    lost = LostReplies(lose=100, reach=False)
    created = utcnow()
    with pytest.raises(WorkforceError) as refused:
        await create_mass_send(lost.client(time_env.client), db_url, "q", SEND, "marketer", created)
    send_id, status, _, _ = send_row(db_url)
    assert refused.value.status == 503 and f"mass send {send_id} was not started" in str(refused.value)
    assert "nothing was sent" in str(refused.value) and "marks it failed" in str(refused.value)
    assert status == "sending"  # for now: the database refused every write
    answer(db_url)
    # not before the grace period (a send's start may still be under way), then at the worker's next sweep
    assert await runtime.fail_stranded_mass_sends(time_env.client, db_url, created + timedelta(minutes=1)) == []
    assert send_row(db_url)[1] == "sending"
    later = created + runtime.STRANDED_AFTER + timedelta(seconds=1)
    assert await runtime.fail_stranded_mass_sends(time_env.client, db_url, later) == [send_id]
    _, status, error, counts = send_row(db_url)
    assert status == "failed" and error == str(mass_sends.NOT_STARTED)
    assert counts == {"not_started": 4, "skipped: no owner": 1} and allowed_now(db_url) == 4
    assert await runtime.fail_stranded_mass_sends(time_env.client, db_url, later) == []  # once


async def test_the_sweep_leaves_a_send_whose_workflow_runs(time_env: Any, corp: FakeWeCom, db_url: str) -> None:
    """Started, but no worker has picked the workflow up yet: the send has no task and is not stranded."""
    queue = f"mass-{uuid.uuid4().hex[:8]}"
    created = utcnow()
    send_id = await create_mass_send(time_env.client, db_url, queue, SEND, "marketer", created)
    later = created + runtime.STRANDED_AFTER + timedelta(minutes=5)
    assert await runtime.fail_stranded_mass_sends(time_env.client, db_url, later) == []
    assert send_row(db_url)[1] == "sending"
    async with build_worker(time_env.client, queue, db_url):
        await until(lambda: len(corp.calls("add_msg_template")) == 2, "a task per sender")
    assert send_row(db_url)[:2] == (send_id, "sending") and stored(db_url) == (1, 5, 5)


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_the_sweep_ends_a_send_stored_without_a_workflow_once(time_env: Any, corp: FakeWeCom,
                                                                    db_url: str) -> None:
    """A send stored and never started (its start and its withdrawal both failed, or a process died in between),
    on SQLite and PostgreSQL (the row lock differs): ended failed once, its allowance free, a flow's send left
    alone (its activity starts it, and is retried)."""
    created = utcnow()
    with transaction(db_url) as db:
        stranded = mass_sends.create(db, SEND, "marketer", created).id
        flows = mass_sends.create(db, SEND.model_copy(update={"name": "flow"}), "system", created,
                                  flow_id="welcome").id
    later = created + runtime.STRANDED_AFTER + timedelta(seconds=1)
    assert await runtime.fail_stranded_mass_sends(time_env.client, db_url, later) == [stranded]
    assert await runtime.fail_stranded_mass_sends(time_env.client, db_url, later) == []
    with session_factory(db_url)() as db:
        ended, kept = db.get(wf.MassSend, stranded), db.get(wf.MassSend, flows)
        assert ended is not None and kept is not None
        assert (ended.status, ended.error, kept.status) == ("failed", str(mass_sends.NOT_STARTED), "sending")
        assert mass_sends.counts(db, stranded) == {"not_started": 4, "skipped: no owner": 1}
