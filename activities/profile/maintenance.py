"""Profile maintenance: the attributes journeys rely on, kept up to date from events.

An event hook (entry point ``10-profile-maintenance`` in ``tideflow.event_hooks``): it runs once per
accepted event inside the transaction that stores it, so a redelivered event counts nothing twice.

=====================  ========================================================================
attribute              kept by
=====================  ========================================================================
orders_count           ``order.paid``: + 1
total_spent_fen        ``order.paid``: + ``payload.amount_fen`` (integer fen, or a string of
                       digits; a float or anything else is ignored and logged — never float money)
first_order_at         ``order.paid``: the earliest ``occurred_at`` (ISO 8601, UTC)
last_order_at          ``order.paid``: the latest ``occurred_at``
refunds_count          ``refund.completed``: + 1
return_rate            refunds_count / orders_count as a decimal string with 4 places
                       (``"0.3333"``), recomputed when either changes; absent while
                       orders_count is 0
last_interaction_at    any customer-initiated event (:data:`CUSTOMER_INITIATED`, or a ``custom.*``
                       event whose payload has ``"customer_initiated": true``): the latest
                       ``occurred_at``
=====================  ========================================================================

``days_since_interaction`` is not stored: :func:`derived_attributes` computes it when the customer
is read. Times only move forward, so an event that arrives late never winds a date back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.orm import Session

from activities.profile.update_profile import locked_customer
from engine.customers import days_since, derived_attributes, parse_time
from engine.db import models
from engine.db.models import utcnow

__all__ = ["days_since", "derived_attributes", "maintain_profile", "maintained"]

log = logging.getLogger(__name__)

#: events the customer did themselves (not the shop, the courier or the system)
CUSTOMER_INITIATED = frozenset({
    "customer.interacted", "customer.subscribed",
    "wecom.contact_added", "wecom.message_received",
    "wechat.subscribed", "wechat.menu_clicked", "wechat.message_received",
    "product.viewed", "cart.added",
    "order.created", "order.paid",
    "refund.requested", "coupon.redeemed", "survey.answered",
})
RATE_PLACES = Decimal("0.0001")


def is_customer_initiated(event_type: str, payload: Mapping[str, Any] | None) -> bool:
    if event_type in CUSTOMER_INITIATED:
        return True
    return event_type.startswith("custom.") and (payload or {}).get("customer_initiated") is True


def amount_fen(payload: Mapping[str, Any] | None) -> int | None:
    """``payload.amount_fen`` as whole fen, or None when absent or not a whole number (floats are refused)."""
    value = (payload or {}).get("amount_fen")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        return int(value.strip())
    return None


def return_rate(refunds: int, orders: int) -> str | None:
    """refunds / orders as a decimal string with 4 places (half up), or None without orders."""
    if orders <= 0:
        return None
    return str((Decimal(refunds) / Decimal(orders)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()




def _later(current: Any, moment: datetime) -> str:
    found = parse_time(current)
    return current if found is not None and found >= moment else _iso(moment)


def _earlier(current: Any, moment: datetime) -> str:
    found = parse_time(current)
    return current if found is not None and found <= moment else _iso(moment)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def maintained(attributes: Mapping[str, Any], event_type: str, payload: Mapping[str, Any] | None,
               occurred_at: datetime) -> dict[str, Any]:
    """The attributes after this event (pure; the hook stores the result)."""
    out = dict(attributes)
    if is_customer_initiated(event_type, payload):
        out["last_interaction_at"] = _later(out.get("last_interaction_at"), occurred_at)
    if event_type == "order.paid":
        out["orders_count"] = _count(out.get("orders_count")) + 1
        amount = amount_fen(payload)
        if amount is not None:
            out["total_spent_fen"] = _count(out.get("total_spent_fen")) + amount
        out["first_order_at"] = _earlier(out.get("first_order_at"), occurred_at)
        out["last_order_at"] = _later(out.get("last_order_at"), occurred_at)
    if event_type == "refund.completed":
        out["refunds_count"] = _count(out.get("refunds_count")) + 1
    if event_type in ("order.paid", "refund.completed") and "refunds_count" in out:
        rate = return_rate(_count(out.get("refunds_count")), _count(out.get("orders_count")))
        if rate is not None:
            out["return_rate"] = rate
    return out


def maintain_profile(db: Session, event: models.EventRecord) -> None:
    """Event hook: keep the maintained attributes of the event's customer."""
    if not event.customer_id:
        return
    payload = event.payload or {}
    if event.type == "order.paid" and "amount_fen" in payload and amount_fen(payload) is None:
        log.warning("event %s:%s: amount_fen (%s) is not whole fen; the order is counted, its amount is not",
                    event.source, event.external_id, type(payload["amount_fen"]).__name__)
    if event.type not in ("order.paid", "refund.completed") and not is_customer_initiated(event.type, payload):
        return
    customer = locked_customer(db, event.customer_id)
    if customer is None:
        return
    before = dict(customer.attributes or {})
    after = maintained(before, event.type, payload, event.occurred_at)
    if after != before:
        customer.attributes = after
        customer.updated_at = utcnow()
