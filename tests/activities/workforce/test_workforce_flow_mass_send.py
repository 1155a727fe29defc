"""``action.wecom_mass_send`` on Temporal's time-skipping server against the loopback WeCom: a journey waits
durably for its staff member's confirmation and leaves by ``out`` when WeCom reports the message sent, by
``skipped`` with the reason otherwise (already received another mass message, not confirmed by the deadline,
no owner, not a WeCom contact, no consent); a broadcast sends in bulk — one mass send, one task per staff
member — parks its customers and walks on for each when WeCom's outcome comes in. Nothing is created twice
when the action runs again under its key."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from activities.workforce.mass_send_node import WeComMassSend
from activities.workforce.workflows import mass_send_workflow_id
from engine import flows as flowsvc
from engine.action_context import BulkActionContext, Services
from engine.actions import perform
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.session import session_factory, transaction
from engine.events import EventIn, store
from engine.runtime import BROADCAST_WORKFLOW, JOURNEY_WORKFLOW, ActionRequest, BroadcastInput, JourneyInput
from engine.worker import build_worker
from tests.activities.workforce.mass_send_kit import CONNECTOR, corp, db_url, earlier_today, log
from tests.connectors.fake_wecom import FakeWeCom, fake_wecom
from tests.connectors.image_host import ImageHost, host
from tests.engine.flowkit import customer, flow, publish
from tests.engine.historykit import record
from tests.waiting import until

__all__ = ["corp", "db_url", "fake_wecom", "host"]


def mass_flow(flow_id: str, trigger: tuple[str, str, dict[str, Any]], **config: Any) -> dict[str, Any]:
    return flow(flow_id, [trigger,
                          ("send", "action.wecom_mass_send", {"text": "{{ customer.name }}，双十二会员专享",
                                                              "deadline_hours": 2, **config}),
                          ("got", "action.tag", {"add": ["收到群发"]}),
                          ("missed", "action.tag", {"add": ["未收到群发"]})],
                [("start", "out", "send"), ("send", "out", "got"), ("send", "skipped", "missed")],
                timezone="Asia/Shanghai")


def customer_of(db_url: str, external: str) -> str:
    with session_factory(db_url)() as db:
        found = db.scalar(select(models.Identity.customer_id).where(models.Identity.value == external))
    assert found is not None
    return str(found)


def tags(db_url: str) -> dict[str, list[str]]:
    """Each customer's tags, by their WeCom external_userid (or by name when they have none)."""
    with session_factory(db_url)() as db:
        rows = db.execute(select(func.coalesce(models.Identity.value, models.Customer.name), models.CustomerTag.tag)
                          .join(models.Customer, models.Customer.id == models.CustomerTag.customer_id)
                          .outerjoin(models.Identity, (models.Identity.customer_id == models.Customer.id)
                                     & (models.Identity.kind == "wecom_external_userid"))).all()
    out: dict[str, list[str]] = {}
    for external, tag in rows:
        out.setdefault(external, []).append(tag)
    return out


def tasks(db_url: str) -> list[tuple[str, str]]:
    """(sender, status) of every WeCom task made."""
    with session_factory(db_url)() as db:
        return sorted((t.sender, t.status) for t in db.scalars(select(wf.MassSendTask)))


async def test_a_journey_waits_for_staff_confirmation_and_takes_the_outcome_port(
        time_env: Any, corp: FakeWeCom, db_url: str, host: ImageHost) -> None:
    compiled = publish(db_url, mass_flow("mass-journey", ("start", "trigger.event", {"event": "custom.go"}),
                                         attachments=[f"{host.url}/poster.png"]))
    corp.receive_mass_message("wmB")  # wmB got a staff member's own mass message today (the corp allows 1 a day)
    corp.add_contact("wmF", "lisi")  # … and wmF one from Tideflow: at the limit before anything is sent
    store(EventIn(id="seed-wmF", type="customer.updated", customer={"wecom_external_userid": "wmF"},
                  profile={"name": "wmF", "attributes": {"wecom_follow_user": "lisi"}}), db_url)
    with transaction(db_url) as db:
        earlier = wf.MassSend(connector_id=CONNECTOR, chat_type="single", status="done")
        db.add(earlier)
        db.flush()
        db.add(wf.MassSendRecipient(mass_send_id=earlier.id, recipient="wmF", connector_id=CONNECTOR,
                                    sender="lisi", status="sent", counted_at=earlier_today(timedelta(minutes=5))))
    with transaction(db_url) as db:  # wmC unsubscribed: the gate stops the send before any mass send is made
        db.get(models.Customer, customer_of(db_url, "wmC")).consent = {"wecom": "opted_out"}  # type: ignore[union-attr]
    queue = f"mass-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, queue, db_url):
        handles = {}
        for external in ("wmA", "wmB", "wmC", "wmD", "wmE", "wmF"):
            cid = customer_of(db_url, external)
            handles[external] = await time_env.client.start_workflow(
                JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid,
                                               entry_event={"id": f"go-{cid}", "type": "custom.go", "payload": {}}),
                id=f"journey/mass-journey/{cid}", task_queue=queue)
        # one mass send per journey; wmA, wmB (zhangsan's) and wmD (lisi's) wait for their staff member
        await until(lambda: tasks(db_url) == [("lisi", "waiting"), ("zhangsan", "waiting"), ("zhangsan", "waiting")],
                    "three waiting tasks")
        for msgid, task in corp.gstate.tasks.items():
            if "zhangsan" in task["senders"]:
                corp.confirm(msgid, "zhangsan")  # lisi never confirms
        results = {external: await handle.result() for external, handle in handles.items()}
        await record(handles["wmA"], "wecom_mass_send_wake")

    def port(external: str) -> tuple[str | None, Any]:
        steps = [s for s in results[external]["timeline"] if s.get("node") == "send"]
        return (next(s["port"] for s in steps if s["what"] == "step"),
                next((s["detail"]["status"] for s in reversed(steps) if s["what"] == "action"), None))

    assert {e: port(e) for e in results} == {
        "wmA": ("out", "sent"), "wmB": ("skipped", "skipped: already received"),
        "wmC": ("skipped", "skipped: no consent"), "wmD": ("skipped", "skipped: not confirmed"),
        "wmE": ("skipped", "skipped: no owner"), "wmF": ("skipped", "skipped: at limit")}
    assert tags(db_url) == {"wmA": ["收到群发"], "wmB": ["未收到群发"], "wmC": ["未收到群发"], "wmD": ["未收到群发"],
                            "wmE": ["未收到群发"], "wmF": ["未收到群发"]}
    assert results["wmB"]["variables"]["wecom_mass_send"]["status"] == "already_received"
    # the outcome ended the wait (the wake signal after the next poll), not the 6 h backstop: wmA's journey
    # deferred once and ran the node twice under one key; wmD waited for the 2 h deadline
    for external, bound in (("wmA", timedelta(minutes=30)), ("wmD", timedelta(hours=2, minutes=30))):
        timeline = results[external]["timeline"]
        started = next(s["at"] for s in timeline if s["what"] == "step")
        left = next(s["at"] for s in timeline if s["what"] == "step" and s["node"] == "send")
        assert datetime.fromisoformat(left) - datetime.fromisoformat(started) < bound
        assert [s["what"] for s in timeline if s.get("node") == "send"].count("deferred") == 1
    # WeCom: one task per journey, each with the poster as uploaded media; the message log follows the outcomes
    assert len(corp.calls("add_msg_template")) == 3 and corp.problems == []
    assert all([a["msgtype"] for a in t["attachments"]] == ["image"] and t["attachments"][0]["image"]["media_id"]
               in corp.media for t in corp.gstate.tasks.values())
    assert log(db_url) == {"wmA": "sent", "wmB": "skipped: already received", "wmC": "skipped: no consent",
                           "wmD": "skipped: not confirmed", "wmE": "skipped: no owner", "wmF": "skipped: at limit"}


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_a_broadcast_sends_in_bulk_and_walks_on_when_the_outcomes_come_in(
        time_env: Any, corp: FakeWeCom, db_url: str) -> None:
    compiled = publish(db_url, mass_flow("mass-broadcast", ("start", "trigger.segment", {"audience": "true"}),
                                         text="周末上新"))
    customer(db_url, "无企微")  # no WeCom contact: skipped at once
    corp.receive_mass_message("wmB")
    queue = f"mass-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, queue, db_url):
        await time_env.client.execute_workflow(BROADCAST_WORKFLOW, BroadcastInput(flow=compiled, run_key="r1"),
                                               id="broadcast/mass-broadcast/r1", task_queue=queue)
        with session_factory(db_url)() as db:
            [send] = db.scalars(select(wf.MassSend)).all()  # one mass send for the page (one text)
            parked = dict(db.execute(select(models.Journey.customer_id, models.Journey.status)).all())
        assert sorted(parked.values()) == ["completed", "completed", "waiting", "waiting", "waiting", "waiting"]
        assert tags(db_url) == {"wmE": ["未收到群发"], "无企微": ["未收到群发"]}  # skipped at once
        await until(lambda: tasks(db_url) == [("lisi", "waiting"), ("zhangsan", "waiting")], "a task per staff member")
        assert sorted((t["sender"], len(t["external_userid"])) for t in corp.tasks) == [("lisi", 1), ("zhangsan", 3)]
        corp.confirm(next(m for m, t in corp.gstate.tasks.items() if "zhangsan" in t["senders"]), "zhangsan")
        await time_env.sleep(timedelta(hours=2, minutes=15))  # past lisi's deadline and the next poll
        summary = await time_env.client.get_workflow_handle(mass_send_workflow_id(send.id)).result()

        # a retried action (its ledger row lost, say) finds the request rows: nothing is made or sent again
        requests = [ActionRequest(key=f"broadcast/mass-broadcast/r1/{customer_of(db_url, e)}/send/1",
                                  workflow_id=f"broadcast/mass-broadcast/r1/{customer_of(db_url, e)}",
                                  flow_id="mass-broadcast", version=1, node_id="send",
                                  node_type="action.wecom_mass_send", config=compiled["nodes"]["send"]["config"],
                                  customer_id=customer_of(db_url, e)) for e in ("wmA", "wmD")]
        services = Services(database_url=db_url, loop=asyncio.get_running_loop(),
                            extras={"temporal_client": time_env.client, "task_queue": queue})
        config = WeComMassSend.Config.model_validate(compiled["nodes"]["send"]["config"])
        again = await asyncio.to_thread(WeComMassSend.run_many, BulkActionContext(
            requests, services, perform_one=lambda r: perform(WeComMassSend, r, services)), config)
    assert summary["final"] and summary["counts"] == {"already_received": 1, "not_sent": 1, "sent": 2,
                                                      "skipped: no owner": 1}
    assert tags(db_url) == {"wmA": ["收到群发"], "wmB": ["未收到群发"], "wmC": ["收到群发"], "wmD": ["未收到群发"],
                            "wmE": ["未收到群发"], "无企微": ["未收到群发"]}
    assert [(r.port, r.detail["status"]) for r in again] == [("out", "sent"), ("skipped", "skipped: not confirmed")]
    with session_factory(db_url)() as db:
        journeys = dict(db.execute(select(models.Journey.customer_id, models.Journey.status)).all())
        assert db.scalar(select(func.count()).select_from(wf.MassSend)) == 1
        assert db.scalar(select(func.count()).select_from(wf.MassSendRequest).where(
            wf.MassSendRequest.notified_at.is_(None))) == 0
        stats = flowsvc.stats(db, "mass-broadcast")["nodes"]
    assert sorted(journeys.values()) == ["completed"] * 6
    assert stats["send"]["entered"] == 6 and stats["send"]["waiting"] == 0
    assert stats["send"]["left"] == {"out": 2, "skipped": 4}
    assert len(corp.calls("add_msg_template")) == 2 and corp.problems == []


def test_what_wecom_would_refuse_is_refused_in_the_flow_or_the_journey() -> None:
    """Bad configs are errors on the canvas (the config model); a text that renders too long or empty for one
    customer fails that customer's action with the reason, before anything reaches WeCom."""
    config = WeComMassSend.Config
    for bad, says in (({"text": "x", "attachments": [f"https://e.com/{i}.png" for i in range(10)]}, "at most 9"),
                      ({"text": "x", "attachments": ["file:///etc/passwd"]}, "not an http"),
                      ({"text": "  "}, "a text or an attachment"),
                      ({"text": "x", "deadline_hours": 0}, "greater than or equal to 1"),
                      ({"text": "x", "at_limit": "always"}, "exclude"),
                      ({"text": "x", "surprise": 1}, "Extra inputs")):
        try:
            config.model_validate(bad)
        except ValueError as exc:
            assert says in str(exc), (bad, str(exc))
        else:
            raise AssertionError(f"accepted {bad}")
    from activities.workforce.mass_send_node import _render
    from engine.actions import ActionFailed

    long = config.model_validate({"text": "{{ customer.bio }}"})
    for bio, says in (("字" * 1400, "4200 bytes"), ("", "empty")):
        try:
            _render(long, {"customer": {"bio": bio}}, "send")
        except ActionFailed as exc:
            assert says in str(exc) and "send" in str(exc)
        else:
            raise AssertionError("rendered")
