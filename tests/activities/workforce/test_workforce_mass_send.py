"""Mass sends through WeCom's message templates, against the fake: the allowance shown and kept before sending,
one task per sender waiting for staff confirmation, per-recipient outcomes into the message log, the deadline,
group sends with per-group results, and recipients following a handover to the new owner."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from activities.workforce import groups, handovers, mass_sends
from activities.workforce.common import store_events, wecom_client
from activities.workforce.mass_sends import Audience, MassSendIn
from activities.workforce.runtime import start_mass_send
from activities.workforce.workflows import mass_send_workflow_id
from designer.i18n import translate
from engine.db import workforce_models as wf
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.worker import build_worker
from tests.activities.workforce.mass_send_kit import CONNECTOR, corp, earlier_today, log
from tests.connectors.fake_wecom import FakeWeCom, Reply, fake_wecom
from tests.connectors.image_host import ImageHost, host
from tests.waiting import until
from wording.stored import ELLIPSIS, MAX_REASON, PREFIX

__all__ = ["corp", "fake_wecom", "host"]


async def test_single_mass_send_with_allowance_confirmation_and_outcomes(time_env: Any, corp: FakeWeCom,
                                                                         db_url: str, host: ImageHost) -> None:
    with transaction(db_url) as db:  # wmC already received a mass message from Tideflow today
        earlier = wf.MassSend(connector_id=CONNECTOR, chat_type="single", status="done")
        db.add(earlier)
        db.flush()
        db.add(wf.MassSendRecipient(mass_send_id=earlier.id, recipient="wmC", connector_id=CONNECTOR,
                                    sender="zhangsan", status="sent", counted_at=earlier_today(timedelta(hours=1))))
    corp.receive_mass_message("wmB")  # … and wmB from a staff member's own mass send, which Tideflow cannot see
    payload = MassSendIn(connector_id=CONNECTOR, chat_type="single", name="双十二", text="双十二会员专享",
                         attachments=[f"{host.url}/poster.png"], audience=Audience(), deadline_hours=2)
    with session_factory(db_url)() as db:
        before = mass_sends.preview(db, payload, utcnow())
    assert (before["recipients"], before["allowed"], before["at_limit"], before["no_owner"]) == (5, 3, 1, 1)
    assert before["per_sender"] == {"lisi": {"allowed": 1, "at_limit": 0}, "zhangsan": {"allowed": 2, "at_limit": 1}}
    assert before["window"]["limit"] == 1 and before["tasks"] == 2
    with transaction(db_url) as db:
        send_id = mass_sends.create(db, payload, "marketer", utcnow()).id
    assert log(db_url) == {"wmA": "queued", "wmB": "queued", "wmC": "skipped: at limit", "wmD": "queued",
                           "wmE": "skipped: no owner"}

    queue = f"mass-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, queue, db_url):
        await start_mass_send(time_env.client, CONNECTOR, queue, send_id, poll_seconds=3600)
        handle = time_env.client.get_workflow_handle(mass_send_workflow_id(send_id))

        def tasks() -> dict[str, str]:
            with session_factory(db_url)() as db:
                return {t.sender: t.status for t in db.scalars(select(wf.MassSendTask))}

        # waiting for staff confirmation, per sender
        await until(lambda: tasks() == {"zhangsan": "waiting", "lisi": "waiting"}, "both senders' tasks waiting")
        msgid = next(m for m, t in corp.gstate.tasks.items() if "zhangsan" in t["senders"])
        # the poster went as WeCom media (a pic_url WeCom did not issue is refused): uploaded once for both tasks
        [media_id] = list(corp.media)
        assert corp.media[media_id] == host.files["/poster.png"] and host.fetched == ["/poster.png"]
        assert {str(t["attachments"]) for t in corp.gstate.tasks.values()} == {
            str([{"msgtype": "image", "image": {"media_id": media_id}}])}
        corp.confirm(msgid, "zhangsan")  # lisi never confirms
        await time_env.sleep(timedelta(minutes=61))
        await until(lambda: log(db_url)["wmA"] == "sent", "wmA's message sent")
        assert log(db_url)["wmB"] == "skipped: already received"
        assert log(db_url)["wmD"] == "queued"
        await time_env.sleep(timedelta(hours=1, minutes=5))  # past the deadline and the next poll
        result = await handle.result()
    assert result["final"] and result["counts"] == {"already_received": 1, "not_sent": 1, "sent": 1,
                                                    "skipped: at limit": 1, "skipped: no owner": 1}
    assert log(db_url) == {"wmA": "sent", "wmB": "skipped: already received", "wmC": "skipped: at limit",
                           "wmD": "skipped: not confirmed", "wmE": "skipped: no owner"}
    with session_factory(db_url)() as db:
        view = mass_sends.view(db, db.get(wf.MassSend, send_id))
        allowance = mass_sends.preview(db, payload, utcnow())
    assert {s["sender"]: s["status"] for s in view["senders"]} == {"zhangsan": "sent", "lisi": "expired"}
    # the allowance: only what was really received counts (wmA today; wmB's refusal and wmD's non-send do not)
    assert allowance["allowed"] == 2 and allowance["at_limit"] == 2
    assert corp.problems == []


def test_group_mass_send_per_group_results_and_owner_following(corp: FakeWeCom, db_url: str) -> None:
    corp.add_group("wrA", "zhangsan", "VIP 群", members=("wmA",))
    corp.add_group("wrB", "zhangsan", "新品群", members=("wmB",))
    client, _ = wecom_client(db_url, CONNECTOR)
    store_events(db_url, CONNECTOR, groups.sync_all(db_url, client, CONNECTOR, utcnow())["events"])
    with pytest.raises(Exception, match="unknown or dismissed"), transaction(db_url) as db:
        mass_sends.create(db, MassSendIn(connector_id=CONNECTOR, chat_type="group", text="hi",
                                         chat_ids=["wrNope"]), "m", utcnow())
    with transaction(db_url) as db:
        send_id = mass_sends.create(db, MassSendIn(connector_id=CONNECTOR, chat_type="group", text="周末上新",
                                                   chat_ids=["wrA", "wrB"]), "m", utcnow()).id
    assert mass_sends.dispatch(db_url, client, send_id, utcnow()) == {"tasks": 1}
    assert mass_sends.dispatch(db_url, client, send_id, utcnow()) == {"tasks": 0}  # the next round adds none
    corp.dismiss("wrB")
    corp.confirm(next(iter(corp.gstate.tasks)), "zhangsan")
    assert mass_sends.collect(db_url, client, send_id, utcnow())["final"]
    with session_factory(db_url)() as db:
        view = mass_sends.view(db, db.get(wf.MassSend, send_id))
    assert {r["recipient"]: (r["name"], r["status"]) for r in view["recipients"]} == {
        "wrA": ("VIP 群", "sent"), "wrB": ("新品群", "not_friend")}

    # a single send to group members, whose owner leaves before confirming: the customer follows to lisi's task
    with transaction(db_url) as db:
        members = mass_sends.create(db, MassSendIn(connector_id=CONNECTOR, chat_type="single", text="群成员福利",
                                                   audience=Audience(groups=["wrA"])), "m", utcnow())
        member_id = members.id
        assert [(r.recipient, r.sender) for r in db.scalars(select(wf.MassSendRecipient).where(
            wf.MassSendRecipient.mass_send_id == member_id))] == [("wmA", "zhangsan")]
        assert handovers.requeue_mass_sends(db, CONNECTOR, "wmA", "zhangsan", "lisi") == 1
    corp.contacts["wmA"]["follow_users"] = ["lisi"]
    assert mass_sends.dispatch(db_url, client, member_id, utcnow()) == {"tasks": 1}
    msgid = list(corp.gstate.tasks)[-1]
    assert list(corp.gstate.tasks[msgid]["senders"]) == ["lisi"]


def test_mass_send_input_is_checked(corp: FakeWeCom, db_url: str) -> None:
    with pytest.raises(ValueError, match="at most 9 attachments"):
        MassSendIn(connector_id=CONNECTOR, chat_type="single", text="x",
                   attachments=[f"https://e.com/{i}.png" for i in range(10)])
    with pytest.raises(ValueError, match="4000 bytes"):
        MassSendIn(connector_id=CONNECTOR, chat_type="single", text="字" * 1400)
    with pytest.raises(ValueError, match="expression"):
        Audience(expression="customer.vip ==")
    with transaction(db_url) as db, pytest.raises(Exception, match="nobody to send to"):
        mass_sends.create(db, MassSendIn(connector_id=CONNECTOR, chat_type="single", text="x",
                                         audience=Audience(tags_any=["nobody-has-this"])), "m", utcnow())


def test_a_refused_task_keeps_wecoms_words_within_the_one_bound_for_a_reason(corp: FakeWeCom, db_url: str) -> None:
    """A task WeCom refuses for good keeps its refusal within :data:`wording.stored.MAX_REASON`, the bound of every
    reason saved when it happened: a long errmsg is kept whole below it, a longer one clipped to fit — as a Msg."""
    client, _ = wecom_client(db_url, CONNECTOR)
    long_words = "the sender is not allowed to send this template " * 20 + "END-OF-ERRMSG"  # ~1000 characters
    corp.fail_next("add_msg_template", Reply.errcode(41048, long_words), Reply.errcode(41048, "x" * 10 * MAX_REASON))
    with transaction(db_url) as db:
        send_id = mass_sends.create(db, MassSendIn(connector_id=CONNECTOR, chat_type="single", text="x"), "m",
                                    utcnow()).id
    assert mass_sends.dispatch(db_url, client, send_id, utcnow()) == {"tasks": 0}
    with session_factory(db_url)() as db:
        tasks = db.scalars(select(wf.MassSendTask).where(wf.MassSendTask.mass_send_id == send_id)
                           .order_by(wf.MassSendTask.sender)).all()
        saved = {t.sender: (t.status, t.error) for t in tasks}
        view = mass_sends.view(db, db.get(wf.MassSend, send_id))
    assert [status for status, _ in saved.values()] == ["failed", "failed"]  # lisi's task first, then zhangsan's
    whole, clipped = saved["lisi"][1], saved["zhangsan"][1]
    assert whole is not None and clipped is not None
    assert whole.startswith(PREFIX) and clipped.startswith(PREFIX) and MAX_REASON - 10 < len(clipped) <= MAX_REASON
    said = {s["sender"]: s["error"] for s in view["senders"]}
    assert long_words in str(said["lisi"])  # not clipped at a bound of its own
    assert str(said["zhangsan"]).endswith("x" + ELLIPSIS) and said["zhangsan"].template != "%(detail)s"


def test_an_image_on_a_private_host_fails_the_task_with_the_reason(corp: FakeWeCom, db_url: str,
                                                                     host: ImageHost) -> None:
    """An attachment URL into the local network is not fetched unless the connector allows its host: the task
    fails with the reason and nothing reaches WeCom."""
    client, _ = wecom_client(db_url, CONNECTOR)
    with transaction(db_url) as db:
        send_id = mass_sends.create(db, MassSendIn(connector_id=CONNECTOR, chat_type="single", text="x",
                                                   attachments=[f"{host.url}/poster.png"]), "m", utcnow()).id
    # the default uploader allows no private host (the worker passes the connector's image_hosts)
    assert mass_sends.dispatch(db_url, client, send_id, utcnow()) == {"tasks": 0}
    with session_factory(db_url)() as db:
        view = mass_sends.view(db, db.get(wf.MassSend, send_id))
    assert {s["status"] for s in view["senders"]} == {"failed"}
    assert all("loopback" in str(s["error"]) and "image_hosts" in str(s["error"]) for s in view["senders"])
    # kept as a Msg (wording.stored), so the page shows the reason in the reader's language
    said = view["senders"][0]["error"]
    assert said.template != "%(detail)s" and translate(said, "en") == str(said)
    assert re.search(r"[\u4e00-\u9fff]", translate(said, "zh-CN")), translate(said, "zh-CN")
    assert {r["recipient"]: r["status"] for r in view["recipients"]} == {
        "wmA": "failed", "wmB": "failed", "wmC": "failed", "wmD": "failed", "wmE": "skipped: no owner"}
    assert host.fetched == [] and corp.calls("add_msg_template") == [] and corp.calls("media/upload") == []
    with pytest.raises(ValueError, match="not an http"):
        MassSendIn(connector_id=CONNECTOR, chat_type="single", text="x", attachments=["file:///etc/passwd"])
