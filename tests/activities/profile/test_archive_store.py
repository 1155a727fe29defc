"""The message archive: inbound messages stored once and masked, and retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from activities.profile import archive
from activities.profile.archive import archive_inbound, inbound_content, purge_archive
from engine import event_hooks
from engine.customers import resolve
from engine.db import models, retention
from engine.db.session import session_factory, transaction
from engine.events import EventIn, store
from engine.policies import FrequencyCap, gate

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def hooked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_hooks, "_hooks", [("30-message-archive", archive_inbound)])


def send(db_url: str, event_type: str, payload: dict[str, Any], event_id: str | None = None,
         who: str = "wmDEMO001") -> tuple[str, str]:
    status, seen, _ = store(EventIn(id=event_id or uuid.uuid4().hex, type=event_type, source="wecom",
                                    customer={"wecom_external_userid": who}, occurred_at=T0, payload=payload), db_url)
    return status, str(seen["customer_id"])


def archived(db_url: str, customer_id: str | None = None) -> list[models.Message]:
    with session_factory(db_url)() as db:
        query = select(models.Message).order_by(models.Message.id)
        if customer_id:
            query = query.where(models.Message.customer_id == customer_id)
        return list(db.scalars(query))


@pytest.mark.parametrize(("payload", "expected"), [
    ({"content": "你好"}, "你好"), ({"content": "  "}, None), ({"msgtype": "image"}, "[image]"),
    ({"msg_type": "voice", "media_id": "m1"}, "[voice]"), ({"content": 123}, None), ({}, None), (None, None),
    ({"content": "x" * 30_000}, "x" * archive.MAX_CONTENT),
])
def test_inbound_content(payload: dict[str, Any] | None, expected: str | None) -> None:
    assert inbound_content(payload) == expected


@pytest.mark.usefixtures("hooked")
def test_an_inbound_message_is_archived_once_and_masked(db_url: str) -> None:
    text = "我的电话 13800138000，退款打到卡号 6222021234567890128 就行"
    status, cid = send(db_url, "wecom.message_received", {"content": text}, "msg-1")
    assert status == "accepted"
    assert send(db_url, "wecom.message_received", {"content": text}, "msg-1")[0] == "duplicate"
    rows = archived(db_url)
    assert len(rows) == 1
    row = rows[0]
    assert (row.direction, row.channel, row.status, row.category) == ("in", "wecom", "received", "inbound")
    assert row.idempotency_key == "in/wecom:msg-1" and row.customer_id == cid
    assert row.content == "我的电话 138****8000，退款打到卡号 **** **** **** 0128 就行"
    assert row.created_at == T0 and row.flow_id is None


@pytest.mark.usefixtures("hooked")
def test_only_message_events_with_something_to_keep(db_url: str) -> None:
    send(db_url, "wecom.message_received", {"msgtype": "image", "media_id": "m"})
    send(db_url, "wecom.message_received", {"event": "enter_session"})
    send(db_url, "wecom.contact_added", {"content": "not a message"})
    send(db_url, "customer.interacted", {"content": "clicked"})
    assert [m.content for m in archived(db_url)] == ["[image]"]


def test_the_hook_is_idempotent_by_key(db_url: str) -> None:
    with transaction(db_url) as db:
        cid = resolve(db, {"external_id": "x"})
        event = models.EventRecord(source="wecom", external_id="e1", type="wecom.message_received", customer_id=cid,
                                   identities={}, payload={"content": "hi"}, occurred_at=T0)
        archive_inbound(db, event)
        db.flush()
        archive_inbound(db, event)
    assert len(archived(db_url)) == 1


@pytest.mark.usefixtures("hooked")
def test_inbound_messages_never_count_against_the_frequency_cap(db_url: str) -> None:
    _, cid = send(db_url, "wecom.message_received", {"content": "在吗"})
    now = T0 + timedelta(minutes=1)
    with transaction(db_url) as db:
        decision = gate(db, cid, "wecom", "promotional", {}, now, FrequencyCap(1, timedelta(days=7)))
    assert decision.outcome == "sent"


def _message(db: Any, customer_id: str, at: datetime, direction: str = "out") -> None:
    db.add(models.Message(idempotency_key=uuid.uuid4().hex, customer_id=customer_id, channel="wecom", content="hi",
                          status="sent", direction=direction, created_at=at))


def test_purge_deletes_what_is_older_than_the_retention(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "PURGE_BATCH", 3)
    now = T0
    with transaction(db_url) as db:
        cid = resolve(db, {"external_id": "x"})
        for days in (400, 200, 181, 180.5, 179.5, 30, 0):
            _message(db, cid, now - timedelta(days=days), "in" if days > 190 else "out")
        for _ in range(5):
            _message(db, cid, now - timedelta(days=365))
    with transaction(db_url) as db:
        assert purge_archive(db, 180, now) == 9
    with session_factory(db_url)() as db:
        left = sorted((now - m.created_at).days for m in db.scalars(select(models.Message)))
        assert left == [0, 30, 179]
    with transaction(db_url) as db:
        assert purge_archive(db, 180, now) == 0
        assert purge_archive(db, 1, now) == 2
        assert db.scalar(select(func.count()).select_from(models.Message)) == 1
    with pytest.raises(ValueError, match="at least 1"), transaction(db_url) as db:
        purge_archive(db, 0, now)
