"""Incoming events: validation with actionable errors, and storing each (source, id) once (engine.events)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from engine import events
from engine.db import models
from engine.db.session import transaction
from engine.event_types import EVENT_TYPES, INTERNAL_TYPES
from engine.events import EventIn, Profile, store


def _event(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "evt-1",
        "type": "order.paid",
        "source": "youzan",
        "customer": {"phone": "13800138000", "youzan_buyer": "yz-42"},
        "occurred_at": "2025-03-01T10:00:00+08:00",
        "payload": {"order_id": "E2025", "amount": 12900},
    }
    data.update(overrides)
    return data


def _error(data: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ValidationError) as exc:
        EventIn.model_validate(data)
    first = exc.value.errors()[0]
    return ".".join(str(p) for p in first["loc"]), first["msg"]


def test_a_good_event() -> None:
    event = EventIn.model_validate(_event())
    assert event.type == "order.paid" and event.source == "youzan"
    assert event.occurred_at == datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    assert event.payload["amount"] == 12900
    assert event.profile is None


def test_defaults() -> None:
    event = EventIn.model_validate({"id": "1", "type": "custom.viewed_product", "customer": {"email": "a@b.cn"}})
    assert (event.source, event.occurred_at, event.payload) == ("api", None, {})


def test_unknown_type_is_rejected_with_a_hint() -> None:
    where, message = _error(_event(type="order.payed"))
    assert where == "type"
    assert "unknown event type 'order.payed'" in message
    assert "did you mean 'order.paid'" in message
    assert "GET /api/event-types" in message and "custom.order_payed" in message


def test_custom_types_need_no_declaration() -> None:
    assert EventIn.model_validate(_event(type="custom.loyalty.points_added")).type == "custom.loyalty.points_added"
    where, _ = _error(_event(type="custom.Bad Name"))
    assert where == "type"


@pytest.mark.parametrize("kind", sorted(INTERNAL_TYPES))
def test_types_tideflow_produces_itself_cannot_be_sent_in(kind: str) -> None:
    assert {"loyalty.points_redeemed", "loyalty.points_earned", "referral.progress"} <= INTERNAL_TYPES
    assert kind in EVENT_TYPES  # a built-in type: journeys can be drawn on it in the picker
    where, message = _error(_event(type=kind))
    assert where == "type" and "produced by Tideflow itself" in message


def test_naive_occurred_at_is_rejected() -> None:
    where, message = _error(_event(occurred_at="2025-03-01T10:00:00"))
    assert where == "occurred_at"
    assert "needs a timezone, e.g. 2026-11-23T10:00:00+08:00" in message


def test_unknown_identity_kind_is_rejected() -> None:
    where, message = _error(_event(customer={"mobile": "13800138000"}))
    assert where == "customer"
    assert "unknown identity kind 'mobile'" in message and "phone" in message


def test_bad_phone_is_rejected_and_masked() -> None:
    where, message = _error(_event(customer={"phone": "1399999"}))
    assert where == "customer"
    assert "is not a phone number" in message
    assert "1399999" not in message


def test_bad_email_is_rejected() -> None:
    assert _error(_event(customer={"email": "nobody"}))[0] == "customer"


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"customer": {}}, "customer"),
        ({"id": ""}, "id"),
        ({"source": "Youzan Shop"}, "source"),
        ({"extra": 1}, "extra"),
        ({"profile": {"nickname": "x"}}, "profile.nickname"),
    ],
)
def test_shape_errors(overrides: dict[str, Any], where: str) -> None:
    assert _error(_event(**overrides))[0] == where


def test_store_accepts_once_and_resolves_the_customer(db_url: str) -> None:
    event = EventIn.model_validate(_event(profile={"name": "李雷", "timezone": "Asia/Shanghai",
                                                   "attributes": {"vip_level": 2}}))
    status, seen, needs_routing = store(event, db_url)
    assert status == "accepted" and needs_routing
    assert seen["id"] == "youzan:evt-1"
    assert (seen["type"], seen["source"], seen["payload"]) == ("order.paid", "youzan", _event()["payload"])
    assert seen["occurred_at"] == "2025-03-01T02:00:00+00:00"
    with transaction(db_url) as db:
        customer = db.get(models.Customer, seen["customer_id"])
        assert customer is not None
        assert (customer.name, customer.timezone) == ("李雷", "Asia/Shanghai")
        assert customer.attributes["vip_level"] == 2  # (profile maintenance adds its own attributes)
        identity = db.get(models.Identity, ("phone", "+8613800138000"))
        assert identity is not None and identity.customer_id == customer.id
        row = db.scalar(select(models.EventRecord))
        assert row is not None and row.status == "received"
        assert row.identities == {"phone": "13800138000", "youzan_buyer": "yz-42"}


def test_store_dedupes_on_source_and_id(db_url: str) -> None:
    first = store(EventIn.model_validate(_event()), db_url)
    again = store(EventIn.model_validate(_event(payload={"changed": True})), db_url)
    assert again[0] == "duplicate"
    assert again[1] == first[1]  # the stored event, not the redelivery
    assert again[2] is True  # not routed yet: the re-router may still route it
    other_source = store(EventIn.model_validate(_event(source="taobao")), db_url)
    other_id = store(EventIn.model_validate(_event(id="evt-2")), db_url)
    assert other_source[0] == other_id[0] == "accepted"
    assert other_source[1]["customer_id"] == other_id[1]["customer_id"] == first[1]["customer_id"]
    with transaction(db_url) as db:
        assert db.scalar(select(func.count()).select_from(models.EventRecord)) == 3


def test_a_routed_duplicate_needs_no_routing(db_url: str) -> None:
    _, seen, _ = store(EventIn.model_validate(_event()), db_url)
    events.mark_routed(seen["id"], db_url)
    status, _, needs_routing = store(EventIn.model_validate(_event()), db_url)
    assert (status, needs_routing) == ("duplicate", False)


def test_pending_lists_unrouted_events(db_url: str) -> None:
    _, a, _ = store(EventIn.model_validate(_event(id="a")), db_url)
    _, b, _ = store(EventIn.model_validate(_event(id="b")), db_url)
    events.mark_routed(a["id"], db_url)
    assert [e["id"] for _row, e in events.pending(db_url, older_than_seconds=0)] == [b["id"]]
    assert events.pending(db_url, older_than_seconds=3600) == []
    events.mark_routed(b["id"], db_url, error="temporal unreachable")
    with transaction(db_url) as db:
        row = db.scalar(select(models.EventRecord).where(models.EventRecord.external_id == "b"))
        assert row is not None and (row.status, row.error) == ("received", "temporal unreachable")


def test_profile_defaults() -> None:
    assert Profile().attributes == {} and Profile().name is None
