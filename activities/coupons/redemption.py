"""Coupon redemption (核销) tracked from order events — an event hook (``tideflow.event_hooks``).

When an ``order.paid`` or ``order.completed`` event (or a shop's ``coupon.redeemed``) carries
coupon codes in its payload, each code is marked redeemed if it is the customer's own, still
``issued`` and not expired when the order happened::

    {"order_id": "E20261123001", "coupon_code": "NEW20-7K3QX9M2PD"}
    {"order_id": "E20261123002", "coupons": ["NEW20-7K3QX9M2PD", {"code": "VIP-ABCD2345EF"}]}

The hook runs inside the transaction that stores the event, so a redelivered event
(a duplicate) redeems nothing twice. Anything that does not fit — an unknown code,
someone else's coupon, one already redeemed or expired, a malformed payload — is
ignored and logged at debug level; the hook never raises for bad data, because an order
event must be accepted whatever its coupon field holds.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.coupons.codes import candidates
from activities.coupons.validity import is_expired
from engine.customers import canonical
from engine.db import models
from engine.db.models import utcnow

log = logging.getLogger(__name__)

#: event types whose payload may redeem coupons
REDEEMING_EVENTS: Final = frozenset({"order.paid", "order.completed", "coupon.redeemed"})
#: at most this many codes are looked at per event
MAX_CODES: Final = 20


def codes_in(payload: Any) -> list[str]:
    """The coupon codes an event payload names: ``coupon_code`` and ``coupons`` (strings or ``{"code"}``)."""
    if not isinstance(payload, dict):
        return []
    found: list[str] = []
    single = payload.get("coupon_code")
    if isinstance(single, str):
        found.append(single)
    many = payload.get("coupons")
    if isinstance(many, list):
        for item in many:
            if isinstance(item, dict):
                item = item.get("code")
            if isinstance(item, str):
                found.append(item)
    unique: list[str] = []
    for code in found:
        if code not in unique:
            unique.append(code)
    return unique[:MAX_CODES]


def order_id_in(payload: dict[str, Any]) -> str | None:
    value = payload.get("order_id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text[:120] if text else None


def _find(db: Session, text: str) -> models.Coupon | None:
    options = candidates(text)
    if not options:
        return None
    rows = {c.code: c for c in db.scalars(select(models.Coupon).where(models.Coupon.code.in_(options))
                                          .with_for_update().execution_options(populate_existing=True))}
    return next((rows[code] for code in options if code in rows), None)


def redeem(db: Session, customer_id: str, text: str, order_id: str | None, at: datetime) -> models.Coupon | None:
    """Mark the coupon ``text`` redeemed by ``customer_id`` at ``at``; the coupon, or None when it may not be."""
    coupon = _find(db, text)
    if coupon is None:
        log.debug("coupon %r: no such code", text)
        return None
    if canonical(db, coupon.customer_id) != canonical(db, customer_id):
        log.debug("coupon %s belongs to another customer", coupon.code)
        return None
    if coupon.status != "issued":
        log.debug("coupon %s is %s, not issued", coupon.code, coupon.status)
        return None
    if is_expired(coupon.expires_at, at):
        log.debug("coupon %s expired at %s", coupon.code, coupon.expires_at)
        return None
    coupon.status = "redeemed"
    coupon.redeemed_at = at
    coupon.order_id = order_id
    return coupon


def redeem_from_event(db: Session, event: models.EventRecord) -> None:
    """Event hook: redeem the coupons an order event names (see the module docs)."""
    if event.type not in REDEEMING_EVENTS or not event.customer_id:
        return
    payload = event.payload
    codes = codes_in(payload)
    if not codes or not isinstance(payload, dict):
        return
    order_id = order_id_in(payload)
    at = event.occurred_at or utcnow()
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    for text in codes:
        redeem(db, event.customer_id, text, order_id, at)
