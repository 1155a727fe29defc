"""The order book: canonical order/refund events through real ingestion (engine.events.store)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connectors.canonical import CanonicalOrder, CanonicalRefund, order_event, refund_event
from engine import events as ingest
from engine.db import models
from engine.db.session import session_factory
from engine.events import EventIn

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def send(db_url: str, raw: dict[str, Any], source: str = "yz-shop") -> bool:
    status, _payload, _needs_routing = ingest.store(EventIn.model_validate({"source": source, **raw}), db_url)
    return status == "accepted"


def order(status: str = "paid", **over: Any) -> CanonicalOrder:
    base: dict[str, Any] = {"order_id": "E2026", "shop": "yz-1", "channel": "youzan", "status": status,
                            "amount_fen": 12_900, "items": [{"sku": "A1", "name": "茶", "quantity": 1,
                                                             "price_fen": 12_900}],
                            "attribution": {"agent": "A07"}}
    return CanonicalOrder.model_validate({**base, **over})


def rows(db_url: str) -> tuple[list[models.Order], list[models.Refund]]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.Order))), list(db.scalars(select(models.Refund)))


def test_status_moves_forward_only_and_redelivery_is_once(db_url: str) -> None:
    who = {"phone": "13800138000"}
    assert send(db_url, order_event(order("shipped"), who, AT + timedelta(hours=2)))
    assert send(db_url, order_event(order("paid"), who, AT))  # arrives late
    assert not send(db_url, order_event(order("paid"), who, AT))  # redelivered
    orders, _ = rows(db_url)
    assert len(orders) == 1
    (row,) = orders
    assert (row.status, row.amount_fen, row.paid_at, row.attribution) == ("shipped", 12_900, AT + timedelta(hours=2),
                                                                          {"agent": "A07"})
    assert row.customer_id is not None


def test_completed_refund_counts_once_and_a_full_refund_refunds_the_order(db_url: str) -> None:
    who = {"phone": "13800138000"}
    send(db_url, order_event(order("paid"), who, AT))
    refund = CanonicalRefund(refund_id="R1", order_id="E2026", shop="yz-1", channel="youzan", status="requested",
                             amount_fen=12_900, reason="不想要了")
    send(db_url, refund_event(refund, who, AT + timedelta(days=1)))
    done = refund.model_copy(update={"status": "completed"})
    send(db_url, refund_event(done, who, AT + timedelta(days=2)))
    send(db_url, refund_event(done, who, AT + timedelta(days=2)), source="yz-other-hook")  # same refund, other hook
    orders, refunds = rows(db_url)
    assert [(r.status, r.completed_at) for r in refunds] == [("completed", AT + timedelta(days=2))]
    assert (orders[0].refunded_fen, orders[0].status) == (12_900, "refunded")


def test_brief_api_order_is_booked_under_the_api_channel(db_url: str) -> None:
    send(db_url, {"id": "o-1", "type": "order.paid", "customer": {"phone": "13800138001"},
                  "occurred_at": AT.isoformat(), "payload": {"order_id": "X1", "amount_fen": 500}}, source="api")
    (row,), _ = rows(db_url)
    assert (row.channel, row.shop, row.status, row.amount_fen) == ("api", "api", "paid", 500)


def test_non_canonical_payload_is_logged_not_booked(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert send(db_url, {"id": "o-2", "type": "order.paid", "customer": {"phone": "13800138002"},
                             "payload": {"order_id": "X2", "amount_fen": 9.9}}, source="api")
    assert rows(db_url) == ([], [])
    assert "amount_fen" in caplog.text and "9.9" not in caplog.text


def test_same_phone_in_two_shops_is_one_customer(db_url: str) -> None:
    send(db_url, order_event(order(), {"phone": "13800138000", "youzan_buyer": "yz-u1"}, AT))
    send(db_url, order_event(order(order_id="T9", shop="tb-1", channel="taobao"),
                             {"phone": "+86 138 0013 8000", "taobao_buyer": "tb-u9"}, AT), source="tb-shop")
    orders, _ = rows(db_url)
    assert len(orders) == 2 and len({o.customer_id for o in orders}) == 1
