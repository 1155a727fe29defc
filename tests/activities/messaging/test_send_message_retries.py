"""action.send_message run again under the same key (a retried local activity, a workflow task run twice): nothing
is delivered twice and the first outcome is the answer — although the send reads no ledger before it runs (it
finds its own message row in the transaction that reserves it: one read less on every send's path)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from activities.messaging.send_message import SendMessage
from engine.actions import Services, perform
from engine.db import models
from engine.db.session import get_engine, session_factory
from engine.runtime import ActionRequest
from tests.engine.flowkit import customer


def send(db_url: str, cid: str, key: str, channel: str = "sms", template: str = "你好 {{ customer.name }}",
         ends: bool = True) -> dict[str, Any]:
    request = ActionRequest(key=key, workflow_id=key.rsplit("/", 2)[0], flow_id="f", version=1, node_id="send",
                            node_type="action.send_message", customer_id=cid,
                            config={"channel": channel, "template": template, "category": "transactional"},
                            checkpoint={"continues": [], "status": "completed", "stats": []} if ends else None)
    return perform(SendMessage, request, Services(database_url=db_url))


def ledger_reads(db_url: str) -> tuple[list[str], Any]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM ledger" in statement:
            seen.append(statement)

    return seen, record


@pytest.mark.parametrize("channel", ["sms", "dry-run"])
def test_a_send_run_again_delivers_nothing_twice_and_answers_the_first_outcome(
        db_url: str, sms: list[str], channel: str) -> None:
    cid = customer(db_url)
    seen, record = ledger_reads(db_url)
    event.listen(get_engine(db_url), "before_cursor_execute", record)
    try:
        first = send(db_url, cid, "journey/f/c1/send/1", channel)
    finally:
        event.remove(get_engine(db_url), "before_cursor_execute", record)
    assert seen == []  # the first attempt reads no ledger: its message row is what it checks
    again = send(db_url, cid, "journey/f/c1/send/1", channel)
    assert again == first and first["detail"]["status"] == "sent" and first["checkpointed"] == "completed"
    assert sms == (["journey/f/c1/send/1"] if channel == "sms" else [])
    with session_factory(db_url)() as db:
        assert [m.status for m in db.query(models.Message).filter_by(customer_id=cid)] == ["sent"]
        assert db.query(models.LedgerEntry).filter_by(key="journey/f/c1/send/1").count() == 1


def test_a_run_that_fails_after_the_outcome_was_recorded_answers_the_recorded_outcome(
        db_url: str, sms: list[str]) -> None:
    cid = customer(db_url)
    first = send(db_url, cid, "journey/f/c2/send/1")
    # the same key whose template no longer renders (it never would, for one node: this stands for any failure
    # of a run after the first one recorded its outcome)
    assert send(db_url, cid, "journey/f/c2/send/1", template="{{ customer.name | nope }}") == first
    assert sms == ["journey/f/c2/send/1"]


def test_a_reserved_message_not_yet_recorded_is_delivered_again_under_its_key(db_url: str, sms: list[str]) -> None:
    """A crash between the delivery and the transaction that records it leaves the row ``sending``: the next
    attempt delivers again with the same key (the platform's dedupe) and records it once."""
    cid = customer(db_url)
    with session_factory(db_url)() as db, db.begin():
        db.add(models.Message(idempotency_key="journey/f/c3/send/1", customer_id=cid, channel="sms", content="x",
                              status="sending", category="transactional", flow_id="f", node_id="send",
                              workflow_id="journey/f/c3"))
    result = send(db_url, cid, "journey/f/c3/send/1", ends=False)
    assert result["detail"]["status"] == "sent" and sms == ["journey/f/c3/send/1"]
    assert send(db_url, cid, "journey/f/c3/send/1", ends=False) == result and len(sms) == 1
