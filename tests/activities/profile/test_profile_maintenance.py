"""Profile maintenance from events: order counts, spend in fen, return rate, last interaction."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities.profile.maintenance import (
    CUSTOMER_INITIATED,
    amount_fen,
    days_since,
    derived_attributes,
    is_customer_initiated,
    maintain_profile,
    maintained,
    return_rate,
)
from engine import event_hooks
from engine.db import models
from engine.db.session import session_factory
from engine.event_types import is_known
from engine.events import EventIn, store

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


# -- pure ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("payload", "expected"), [
    ({"amount_fen": 1990}, 1990), ({"amount_fen": 0}, 0), ({"amount_fen": "1990"}, 1990), ({"amount_fen": " 5 "}, 5),
    ({"amount_fen": 19.9}, None), ({"amount_fen": 1990.0}, None), ({"amount_fen": True}, None),
    ({"amount_fen": -5}, None), ({"amount_fen": "19.90"}, None), ({"amount_fen": "１２"}, None), ({}, None),
    (None, None),
])
def test_amount_is_whole_fen_only(payload: dict[str, Any] | None, expected: int | None) -> None:
    assert amount_fen(payload) == expected


@pytest.mark.parametrize(("refunds", "orders", "expected"), [
    (1, 3, "0.3333"), (2, 3, "0.6667"), (1, 2, "0.5000"), (0, 5, "0.0000"), (3, 3, "1.0000"), (1, 0, None),
    (1, 8, "0.1250"), (1, 7, "0.1429"),
])
def test_return_rate_is_a_four_place_decimal_string(refunds: int, orders: int, expected: str | None) -> None:
    assert return_rate(refunds, orders) == expected


def test_order_paid_counts_spend_and_dates() -> None:
    after = maintained({}, "order.paid", {"amount_fen": 1990}, T0)
    assert after == {"orders_count": 1, "total_spent_fen": 1990, "first_order_at": T0.isoformat(),
                     "last_order_at": T0.isoformat(), "last_interaction_at": T0.isoformat()}
    later = maintained(after, "order.paid", {"amount_fen": "10"}, T0 + timedelta(days=2))
    assert later["orders_count"] == 2 and later["total_spent_fen"] == 2000
    assert later["first_order_at"] == T0.isoformat() and later["last_order_at"] == (T0 + timedelta(days=2)).isoformat()
    # a late-arriving older order moves first_order_at back, never last_order_at / last_interaction_at
    late = maintained(later, "order.paid", {"amount_fen": 5.5}, T0 - timedelta(days=9))
    assert late["orders_count"] == 3 and late["total_spent_fen"] == 2000
    assert late["first_order_at"] == (T0 - timedelta(days=9)).isoformat()
    assert late["last_order_at"] == later["last_order_at"]
    assert late["last_interaction_at"] == later["last_interaction_at"]


def test_refunds_and_the_rate_follow_both_counts() -> None:
    profile = maintained({"orders_count": 2}, "refund.completed", {}, T0)
    assert profile["refunds_count"] == 1 and profile["return_rate"] == "0.5000"
    assert "last_interaction_at" not in profile  # a refund is done by the shop
    profile = maintained(profile, "order.paid", {"amount_fen": 100}, T0)
    assert profile["orders_count"] == 3 and profile["return_rate"] == "0.3333"
    no_orders = maintained({}, "refund.completed", {}, T0)
    assert no_orders == {"refunds_count": 1}
    assert "return_rate" not in maintained({}, "order.paid", {}, T0)


def test_counts_survive_junk_values() -> None:
    after = maintained({"orders_count": "many", "total_spent_fen": 1.5}, "order.paid", {"amount_fen": 10}, T0)
    assert after["orders_count"] == 1 and after["total_spent_fen"] == 10


@pytest.mark.parametrize("event_type", sorted(CUSTOMER_INITIATED))
def test_customer_initiated_events_touch_last_interaction(event_type: str) -> None:
    assert maintained({}, event_type, {}, T0)["last_interaction_at"] == T0.isoformat()


@pytest.mark.parametrize("event_type", ["order.shipped", "order.delivered", "refund.completed", "customer.created",
                                        "wechat.template_delivered", "ticket.created", "customer.unsubscribed"])
def test_other_events_do_not(event_type: str) -> None:
    assert "last_interaction_at" not in maintained({}, event_type, {}, T0)


def test_custom_events_count_when_they_say_so() -> None:
    assert is_customer_initiated("custom.viewed_live", {"customer_initiated": True})
    assert not is_customer_initiated("custom.viewed_live", {"customer_initiated": "yes"})
    assert not is_customer_initiated("custom.viewed_live", None)


def test_the_catalogue_knows_the_initiating_types() -> None:
    unknown = sorted(t for t in CUSTOMER_INITIATED if not is_known(t))
    assert unknown in ([], ["wechat.message_received"])  # proposed for engine/event_types.py


def test_days_since_interaction_is_derived_at_read_time() -> None:
    now = T0 + timedelta(days=30, hours=23)
    assert days_since(T0.isoformat(), now) == 30
    assert days_since((T0 + timedelta(days=40)).isoformat(), now) == 0  # a clock ahead never goes negative
    assert days_since("2026-03-01T10:00:00", T0 + timedelta(days=1)) == 1  # naive means UTC
    assert days_since("yesterday", now) is None and days_since(None, now) is None
    assert derived_attributes({"last_interaction_at": T0.isoformat()}, now) == {"days_since_interaction": 30}
    assert derived_attributes({"days_since_interaction": 45}, now) == {}  # a stored value (demo data) stays


# -- as an event hook -----------------------------------------------------------------------------------------------
@pytest.fixture
def hooked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_hooks, "_hooks", [("10-profile-maintenance", maintain_profile)])


def send(db_url: str, event_type: str, who: str, payload: dict[str, Any] | None = None,
         at: datetime = T0, event_id: str | None = None) -> tuple[str, str | None]:
    status, seen, _ = store(EventIn(id=event_id or uuid.uuid4().hex, type=event_type, customer={"external_id": who},
                                    occurred_at=at, payload=payload or {}), db_url)
    return status, seen["customer_id"]


def attributes(db_url: str, customer_id: str | None) -> dict[str, Any]:
    with session_factory(db_url)() as db:
        row = db.get(models.Customer, customer_id)
        assert row is not None
        return dict(row.attributes)


@pytest.mark.usefixtures("hooked")
def test_events_maintain_the_profile_once_each(db_url: str) -> None:
    _, cid = send(db_url, "wecom.contact_added", "u1", at=T0)
    assert attributes(db_url, cid) == {"last_interaction_at": T0.isoformat()}
    send(db_url, "order.paid", "u1", {"amount_fen": 9900, "order_id": "o1"}, T0 + timedelta(hours=1), "o1-paid")
    status, _ = send(db_url, "order.paid", "u1", {"amount_fen": 9900, "order_id": "o1"}, T0 + timedelta(hours=1),
                     "o1-paid")
    assert status == "duplicate"
    send(db_url, "order.paid", "u1", {"amount_fen": 100}, T0 + timedelta(days=1))
    send(db_url, "order.shipped", "u1", {}, T0 + timedelta(days=2))
    send(db_url, "refund.completed", "u1", {"amount_fen": 100}, T0 + timedelta(days=3))
    profile = attributes(db_url, cid)
    assert profile == {
        "orders_count": 2, "total_spent_fen": 10000, "refunds_count": 1, "return_rate": "0.5000",
        "first_order_at": (T0 + timedelta(hours=1)).isoformat(), "last_order_at": (T0 + timedelta(days=1)).isoformat(),
        "last_interaction_at": (T0 + timedelta(days=1)).isoformat(),
    }


@pytest.mark.usefixtures("hooked")
def test_a_float_amount_is_logged_and_not_added(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="activities.profile.maintenance"):
        _, cid = send(db_url, "order.paid", "u2", {"amount_fen": 19.9}, event_id="float-1")
    assert attributes(db_url, cid)["orders_count"] == 1 and "total_spent_fen" not in attributes(db_url, cid)
    assert "api:float-1" in caplog.text and "float" in caplog.text


@pytest.mark.usefixtures("hooked")
def test_profile_attributes_from_the_event_and_maintenance_combine(db_url: str) -> None:
    status, seen = store(EventIn(id="p1", type="order.paid", customer={"external_id": "u3"}, occurred_at=T0,
                                 profile={"name": "王五", "attributes": {"vip_level": 2}},
                                 payload={"amount_fen": 500}), db_url)[:2]
    assert status == "accepted"
    assert attributes(db_url, seen["customer_id"]) == {
        "vip_level": 2, "orders_count": 1, "total_spent_fen": 500, "first_order_at": T0.isoformat(),
        "last_order_at": T0.isoformat(), "last_interaction_at": T0.isoformat()}
