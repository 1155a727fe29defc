"""The order book hook: every accepted ``order.*`` / ``refund.*`` event updates the canonical
``orders`` / ``refunds`` tables, inside the transaction that stores the event (so once per event).

* An order's status only moves forward (:func:`connectors.canonical.status_rank`), so a late or
  out-of-order delivery never turns a shipped order back into a paid one.
* ``POST /api/events`` orders may be brief: ``{"order_id": "…", "amount_fen": 9900}`` is enough;
  ``channel`` defaults to ``api`` and ``shop`` to the event's source.
* A refund's completion adds its amount to ``orders.refunded_fen`` once; when everything is refunded
  the order becomes ``refunded``. Settlement claws refunds back from ``refunds.completed_at``.
* A payload that is not a canonical order is logged (event id and the field at fault, no values) and
  left out of the book; the event itself is stored and routed as usual.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.canonical import (
    ORDER_EVENT_STATUS,
    REFUND_EVENT_STATUS,
    CanonicalOrder,
    CanonicalRefund,
    status_rank,
)
from engine.db import models

log = logging.getLogger(__name__)


def _fields(event: models.EventRecord, status: str) -> dict[str, Any]:
    payload = dict(event.payload or {})
    payload.setdefault("channel", "api")
    payload.setdefault("shop", event.source)
    payload["status"] = status
    return payload


def _complain(event: models.EventRecord, exc: ValidationError) -> None:
    where = ", ".join(".".join(str(p) for p in err["loc"]) or "payload" for err in exc.errors()[:3])
    log.warning("event %s:%s (%s) is not a canonical order/refund (%s); it is not in the order book",
                event.source, event.external_id, event.type, where)


def _get_or_insert(db: Session, model: Any, key: dict[str, str], values: dict[str, Any]) -> tuple[Any, bool]:
    """The row for ``key`` (locked on PostgreSQL), or a new one; a concurrent insert is re-read."""
    query = select(model).filter_by(**key).with_for_update()
    row = db.scalar(query)
    if row is not None:
        return row, False
    try:
        with db.begin_nested():
            row = model(**key, **values)
            db.add(row)
            db.flush()
        return row, True
    except IntegrityError:
        return db.scalars(query).one(), False


def record_order(db: Session, event: models.EventRecord, order: CanonicalOrder) -> models.Order:
    at: datetime = event.occurred_at
    paid_at = order.paid_at or (at if status_rank(order.status) >= status_rank("paid")
                                and order.status != "cancelled" else None)
    values = {"source": event.source, "customer_id": event.customer_id, "status": order.status,
              "amount_fen": order.amount_fen, "refunded_fen": 0, "currency": order.currency,
              "items": [i.model_dump(mode="json") for i in order.items], "attribution": dict(order.attribution),
              "created_at": order.created_at or at, "paid_at": paid_at, "updated_at": models.utcnow()}
    row, created = _get_or_insert(db, models.Order, {"channel": order.channel, "shop": order.shop,
                                                      "order_id": order.order_id}, values)
    if created:
        return row
    if status_rank(order.status) >= status_rank(row.status) and row.status not in ("cancelled", "refunded"):
        row.status = order.status
    if order.amount_fen and order.status in ("created", "paid"):
        row.amount_fen = order.amount_fen
    if order.items:
        row.items = values["items"]
    if order.attribution:
        row.attribution = {**(row.attribution or {}), **order.attribution}
    if row.paid_at is None and paid_at is not None:
        row.paid_at = paid_at
    if row.customer_id is None:
        row.customer_id = event.customer_id
    row.updated_at = models.utcnow()
    return row


def record_refund(db: Session, event: models.EventRecord, refund: CanonicalRefund) -> models.Refund:
    at: datetime = event.occurred_at
    values = {"order_id": refund.order_id, "source": event.source, "customer_id": event.customer_id,
              "status": refund.status, "amount_fen": refund.amount_fen, "reason": refund.reason,
              "requested_at": at, "completed_at": at if refund.status == "completed" else None,
              "updated_at": models.utcnow()}
    row, created = _get_or_insert(db, models.Refund, {"channel": refund.channel, "shop": refund.shop,
                                                       "refund_id": refund.refund_id}, values)
    completed_now = created and refund.status == "completed"
    if not created and row.status == "requested" and refund.status != "requested":
        row.status = refund.status
        row.amount_fen = refund.amount_fen or row.amount_fen
        if refund.reason:
            row.reason = refund.reason
        if refund.status == "completed":
            row.completed_at = at
            completed_now = True
        row.updated_at = models.utcnow()
    if completed_now:
        order = db.scalar(select(models.Order).filter_by(channel=refund.channel, shop=refund.shop,
                                                         order_id=refund.order_id).with_for_update())
        if order is not None:
            order.refunded_fen = (order.refunded_fen or 0) + row.amount_fen
            if order.refunded_fen >= order.amount_fen:
                order.status = "refunded"
            order.updated_at = models.utcnow()
    return row


def keep_order_book(db: Session, event: models.EventRecord) -> None:
    """Event hook (``tideflow.event_hooks``): update the order book from order and refund events."""
    payload = event.payload or {}
    try:
        if event.type in ORDER_EVENT_STATUS and "order_id" in payload:
            record_order(db, event, CanonicalOrder.model_validate(_fields(event, ORDER_EVENT_STATUS[event.type])))
        elif event.type in REFUND_EVENT_STATUS and "refund_id" in payload:
            record_refund(db, event, CanonicalRefund.model_validate(_fields(event,
                                                                            REFUND_EVENT_STATUS[event.type])))
    except ValidationError as exc:
        _complain(event, exc)
