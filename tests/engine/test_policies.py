"""The send policy gate: consent, cross-flow frequency caps (atomic), quiet hours (durable deferral)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from activities.messaging.send_message import SendMessage
from engine import events as ingest
from engine.actions import Services, perform
from engine.customers import resolve
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.policies import FrequencyCap, has_consent, quiet_until
from engine.runtime import JOURNEY_WORKFLOW, ActionRequest, JourneyInput
from engine.worker import build_worker
from tests.engine.flowkit import customer, flow, messages, publish
from tests.engine.historykit import record


def test_quiet_window_spanning_midnight() -> None:
    tz = "Asia/Shanghai"  # UTC+8
    at = lambda h, m=0: datetime(2026, 11, 23, h, m, tzinfo=UTC)  # noqa: E731
    assert quiet_until(at(14), tz, "21:00", "09:00") == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 22:00 local
    assert quiet_until(at(0, 30), tz, "21:00", "09:00") == datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 08:30 local
    assert quiet_until(at(1), tz, "21:00", "09:00") is None  # 09:00 local: open again
    assert quiet_until(at(5), tz, "12:00", "14:00") == datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    assert quiet_until(at(5), tz, "10:00", "10:00") is None


def test_consent_and_cap_rules() -> None:
    assert has_consent({}, "wecom")
    assert not has_consent({"wecom": "opted_out"}, "wecom") and has_consent({"wecom": "opted_out"}, "sms")
    assert not has_consent({"all": "opted_out"}, "sms") and has_consent({"all": "opted_out"}, "dry-run")
    assert FrequencyCap.parse("3/P7D") == FrequencyCap(3, timedelta(days=7))
    with pytest.raises(ValueError, match="3/P7D"):
        FrequencyCap.parse("three a week")


def _send(db_url: str, customer_id: str, key: str, category: str = "promotional",
          settings: dict[str, Any] | None = None) -> dict[str, Any]:
    request = ActionRequest(key=key, workflow_id=key, flow_id="f", version=1, node_id="send",
                            node_type="action.send_message", config={"template": "hi", "category": category},
                            customer_id=customer_id, settings=settings or {"frequency_capped": True})
    return perform(SendMessage, request, Services(database_url=db_url))


def test_unsubscribe_event_is_honoured_at_once(db_url: str) -> None:
    first = ingest.store(ingest.EventIn(id="s1", type="customer.interacted", customer={"phone": "13800000009"}),
                         db_url)
    cid = first[1]["customer_id"]
    assert _send(db_url, cid, "k1")["detail"]["status"] == "sent"
    ingest.store(ingest.EventIn(id="u1", type="customer.unsubscribed", customer={"phone": "13800000009"},
                                payload={"channel": "dry-run"}), db_url)
    ingest.store(ingest.EventIn(id="u2", type="customer.unsubscribed", customer={"phone": "13800000009"}), db_url)
    result = _send(db_url, cid, "k2")
    # dry-run is never blocked by consent (it sends nothing), so opt-out is checked on a real channel
    with session_factory(db_url)() as db:
        consent = db.get(models.Customer, cid).consent  # type: ignore[union-attr]
    assert consent == {"dry-run": "opted_out", "all": "opted_out"} and result["port"] == "out"
    from engine.policies import gate

    with transaction(db_url) as db:
        assert gate(db, cid, "wecom", "promotional", {}, datetime.now(UTC), None).outcome == "skipped: no consent"
    ingest.store(ingest.EventIn(id="s2", type="customer.subscribed", customer={"phone": "13800000009"}), db_url)
    with transaction(db_url) as db:
        assert gate(db, cid, "wecom", "promotional", {}, datetime.now(UTC), None).allowed


def test_frequency_cap_spans_flows_and_spares_transactional(db_url: str) -> None:
    cid = customer(db_url)
    outcomes = [_send(db_url, cid, f"flow{i}/send/1")["detail"]["status"] for i in range(5)]
    assert outcomes == ["sent", "sent", "sent", "skipped: capped", "skipped: capped"]
    assert _send(db_url, cid, "receipt/send/1", "transactional")["detail"]["status"] == "sent"
    assert _send(db_url, cid, "nocap/send/1", settings={"frequency_capped": False})["detail"]["status"] == "sent"


@pytest.mark.postgres
def test_frequency_cap_holds_under_concurrency_on_postgres(pg_url: str) -> None:
    with transaction(pg_url) as db:
        cid = resolve(db, {"external_id": uuid.uuid4().hex}, "并发")
    barrier = threading.Barrier(12)
    results: list[str] = []

    def racer(i: int) -> None:
        barrier.wait()
        results.append(_send(pg_url, cid, f"race{i}/send/1")["detail"]["status"])

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("sent") == 3 and results.count("skipped: capped") == 9
    with session_factory(pg_url)() as db:
        sent = db.scalars(select(models.Message).where(models.Message.customer_id == cid,
                                                       models.Message.status == "sent")).all()
    assert len(sent) == 3


def test_frequency_cap_holds_under_concurrency_on_sqlite(db_url: str) -> None:
    cid = customer(db_url)
    threads = [threading.Thread(target=_send, args=(db_url, cid, f"r{i}/send/1")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with session_factory(db_url)() as db:
        statuses = [m.status for m in db.scalars(select(models.Message).where(models.Message.customer_id == cid))]
    assert statuses.count("sent") == 3 and len(statuses) == 8


async def test_quiet_hours_defer_the_message_until_morning(time_env: Any, db_url: str) -> None:
    document = flow("night-owl", [("start", "trigger.api", {}),
                                  ("send", "action.send_message", {"template": "早上好"})],
                    [("start", "out", "send")], quiet_hours={"start": "00:00", "end": "23:59"},
                    timezone="Asia/Shanghai")
    compiled = publish(db_url, document)
    cid = customer(db_url)
    queue = f"q-{uuid.uuid4().hex[:6]}"
    async with build_worker(time_env.client, queue, db_url):
        started = await time_env.get_current_time()
        handle = await time_env.client.start_workflow(
            JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid), id=f"journey/night-owl/{cid}",
            task_queue=queue)
        result = await handle.result()
        ended = await time_env.get_current_time()
        await record(handle, "quiet_hours_deferral")
    assert result["status"] == "completed"
    assert [s["what"] for s in result["timeline"]][:3] == ["step", "deferred", "action"]
    assert ended - started >= timedelta(minutes=1), "the journey waited for the window to open"
    with session_factory(db_url)() as db:
        rows = [(m.status, m.content) for m in db.scalars(select(models.Message)
                                                          .where(models.Message.customer_id == cid)
                                                          .order_by(models.Message.id))]
    assert rows == [("deferred: quiet hours", "早上好"), ("sent", "早上好")]
    assert messages(db_url, cid) == ["早上好", "早上好"]


def test_the_saved_workspace_policy_replaces_the_environments_cap_at_once(db_url: str) -> None:
    """What an admin saves on the messaging settings page is what the next send obeys: the cap (count and
    window, or none), and the default quiet hours for flows that set none (a flow's 00:00–00:00 opts out)."""
    from engine.policies import current_policy, policy_view, save_policy

    with session_factory(db_url)() as db:
        assert policy_view(current_policy(db)) == {"cap": {"count": 3, "window": "P7D"}, "quiet_hours": None,
                                                   "saved": False}  # TIDEFLOW_FREQUENCY_CAP's default
    cid = customer(db_url)
    with transaction(db_url) as db:
        before, after = save_policy(db, "root", 1, "P1D", None)
    assert before["cap"] == {"count": 3, "window": "P7D"} and after["cap"] == {"count": 1, "window": "P1D"}
    assert [_send(db_url, cid, f"p{i}/send/1")["detail"]["status"] for i in range(2)] == ["sent", "skipped: capped"]
    with transaction(db_url) as db:
        save_policy(db, "root", None, "P7D", None)  # the cap switched off
    assert _send(db_url, cid, "p9/send/1")["detail"]["status"] == "sent"
    with transaction(db_url) as db:  # quiet all day long, by default
        save_policy(db, "root", None, "P7D", ("00:00", "23:59"))
    deferred = _send(db_url, cid, "q1/send/1")
    assert deferred["detail"]["status"] == "deferred: quiet hours" and deferred["defer_until"]
    assert _send(db_url, cid, "q2/send/1", "transactional")["detail"]["status"] == "sent"
    opted_out = {"frequency_capped": True, "quiet_hours": {"start": "00:00", "end": "00:00"}}
    assert _send(db_url, cid, "q3/send/1", settings=opted_out)["detail"]["status"] == "sent"
    with transaction(db_url) as db, pytest.raises(ValueError, match="HH:MM"):
        save_policy(db, "root", 2, "P7D", ("9pm", "09:00"))
