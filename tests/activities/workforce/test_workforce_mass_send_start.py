"""Starting a person's mass send (``runtime.create_mass_send``) when Temporal's reply to the start is lost, on
Temporal's time-skipping test server (the server is real: it applies the start; only the reply is lost, by a
client interceptor) against the loopback WeCom.

A lost reply is not a start that failed: the start is tried again (idempotent by workflow id), which finds the
workflow and keeps the send. When every reply is lost the send is withdrawn unless its workflow already made
WeCom tasks; a workflow whose send was withdrawn ends without sending anything, and the send's id is never
given to a later send (whose own workflow would otherwise be taken for the withdrawn send's)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from temporalio.service import RPCError, RPCStatusCode

from activities.workforce import runtime
from activities.workforce.common import WorkforceError
from activities.workforce.mass_sends import Audience, MassSendIn
from activities.workforce.runtime import create_mass_send
from activities.workforce.workflows import mass_send_workflow_id
from engine.db import workforce_models as wf
from engine.db.models import utcnow
from engine.db.session import session_factory
from engine.worker import build_worker
from tests.activities.workforce.mass_send_kit import CONNECTOR, LostReplies, corp, db_url, stored
from tests.connectors.fake_wecom import FakeWeCom, fake_wecom
from tests.waiting import until

__all__ = ["corp", "db_url", "fake_wecom"]
SEND = MassSendIn(connector_id=CONNECTOR, chat_type="single", name="双十二", text="双十二会员专享", audience=Audience(),
                  deadline_hours=2)
BOTH = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
PAST_DEADLINE = timedelta(hours=2, minutes=15)  # and its next poll: the send ends, nobody having confirmed


def tasks(db_url: str) -> list[tuple[int, str, str]]:
    """The WeCom tasks made: mass send, sender, status."""
    with session_factory(db_url)() as db:
        return sorted((t.mass_send_id, t.sender, t.status) for t in db.scalars(select(wf.MassSendTask)))


def status(db_url: str, send_id: int) -> str | None:
    with session_factory(db_url)() as db:
        found = db.get(wf.MassSend, send_id)
        return None if found is None else found.status


@BOTH
async def test_a_lost_reply_keeps_the_send_and_it_runs_once(time_env: Any, corp: FakeWeCom, db_url: str) -> None:
    lost = LostReplies(lose=1)
    queue = f"mass-{uuid.uuid4().hex[:8]}"
    send_id = await create_mass_send(lost.client(time_env.client), db_url, queue, SEND, "marketer", utcnow())
    # the retry found the workflow the first start had started: the send is kept, nothing is withdrawn
    assert lost.ids == [mass_send_workflow_id(send_id)] * 2
    assert status(db_url, send_id) == "sending" and stored(db_url) == (1, 5, 5)
    async with build_worker(time_env.client, queue, db_url):
        await until(lambda: tasks(db_url) == [(send_id, "lisi", "waiting"), (send_id, "zhangsan", "waiting")],
                    "a task per sender, waiting for confirmation")
        await time_env.sleep(PAST_DEADLINE)
        result = await time_env.client.get_workflow_handle(mass_send_workflow_id(send_id)).result()
    assert result["final"] and result["counts"] == {"not_sent": 4, "skipped: no owner": 1}  # nobody confirmed
    assert len(corp.calls("add_msg_template")) == 2 and status(db_url, send_id) == "done"  # once per sender


@BOTH
async def test_a_send_withdrawn_after_its_start_was_applied_ends_its_workflow_and_the_next_send_runs(
        time_env: Any, corp: FakeWeCom, db_url: str) -> None:
    lost = LostReplies(lose=100)  # Temporal starts the workflow each time; no reply ever comes back
    queue = f"mass-{uuid.uuid4().hex[:8]}"
    with pytest.raises(WorkforceError) as refused:
        await create_mass_send(lost.client(time_env.client), db_url, queue, SEND, "marketer", utcnow())
    assert refused.value.status == 503 and refused.value.field == "temporal"
    assert lost.starts == runtime.START_ATTEMPTS and len(set(lost.ids)) == 1
    assert stored(db_url) == (0, 0, 0)  # withdrawn: the workflow had made no WeCom task yet
    [withdrawn] = set(lost.ids)
    async with build_worker(time_env.client, queue, db_url):
        # the withdrawn send's workflow runs (the worker was away): it finds no send, ends and sends nothing
        zombie = await time_env.client.get_workflow_handle(withdrawn).result()
        assert zombie["final"] and zombie["withdrawn"] and corp.calls("add_msg_template") == []
        # the next send, in the same database, gets an id of its own: its workflow is started, not taken for
        # the withdrawn send's finished one
        send_id = await create_mass_send(time_env.client, db_url, queue, SEND, "marketer", utcnow())
        assert mass_send_workflow_id(send_id) != withdrawn
        await until(lambda: tasks(db_url) == [(send_id, "lisi", "waiting"), (send_id, "zhangsan", "waiting")],
                    "a task per sender, waiting for confirmation")
        await time_env.sleep(PAST_DEADLINE)
        result = await time_env.client.get_workflow_handle(mass_send_workflow_id(send_id)).result()
    assert result["final"] and status(db_url, send_id) == "done"
    assert len(corp.calls("add_msg_template")) == 2 and stored(db_url) == (1, 5, 5)


@BOTH
async def test_a_send_whose_workflow_made_its_tasks_is_kept_though_no_reply_came(time_env: Any, corp: FakeWeCom,
                                                                                   db_url: str) -> None:
    """Every reply lost, but the worker ran the workflow meanwhile and WeCom has the tasks: withdrawing the send
    would leave WeCom messages going out for a send Tideflow forgot. It is kept and followed."""
    queue = f"mass-{uuid.uuid4().hex[:8]}"

    async def tasks_made() -> None:
        await until(lambda: len(tasks(db_url)) == 2, "the workflow's WeCom tasks")

    lost = LostReplies(lose=100, before_loss=tasks_made)
    async with build_worker(time_env.client, queue, db_url):
        send_id = await create_mass_send(lost.client(time_env.client), db_url, queue, SEND, "marketer", utcnow())
        assert lost.starts == runtime.START_ATTEMPTS and status(db_url, send_id) == "sending"
        await until(lambda: tasks(db_url) == [(send_id, "lisi", "waiting"), (send_id, "zhangsan", "waiting")],
                    "a task per sender, waiting for confirmation")
        await time_env.sleep(PAST_DEADLINE)
        result = await time_env.client.get_workflow_handle(mass_send_workflow_id(send_id)).result()
    assert result["final"] and status(db_url, send_id) == "done" and stored(db_url) == (1, 5, 5)
    assert len(corp.calls("add_msg_template")) == 2


@BOTH
async def test_when_temporal_is_not_reachable_the_send_is_refused_and_nothing_is_kept(
        time_env: Any, corp: FakeWeCom, db_url: str) -> None:
    lost = LostReplies(lose=100, reach=False)
    queue = f"mass-{uuid.uuid4().hex[:8]}"
    with pytest.raises(WorkforceError) as refused:
        await create_mass_send(lost.client(time_env.client), db_url, queue, SEND, "marketer", utcnow())
    assert refused.value.status == 503 and "nothing was stored or sent" in str(refused.value)
    assert lost.starts == runtime.START_ATTEMPTS  # tried a few times, then gave up
    assert stored(db_url) == (0, 0, 0)
    [never] = set(lost.ids)
    with pytest.raises(RPCError) as missing:
        await time_env.client.get_workflow_handle(never).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    send_id = await create_mass_send(time_env.client, db_url, queue, SEND, "marketer", utcnow())
    assert mass_send_workflow_id(send_id) != never  # ids are not handed out twice
    assert corp.calls("add_msg_template") == []
