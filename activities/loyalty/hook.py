"""The loyalty event hook (``tideflow.event_hooks``): points for paid orders and their reversal on
refunds, in the transaction that stores the event (after the order book hook updated ``orders``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.loyalty import ledger
from activities.loyalty.program import load
from engine.db import models


def loyalty_from_event(db: Session, event: models.EventRecord) -> None:
    if not event.customer_id or event.type not in ("order.paid", "refund.completed"):
        return
    payload = dict(event.payload or {})
    channel = str(payload.get("channel") or "api")
    shop = str(payload.get("shop") or event.source)
    order_id = str(payload.get("order_id") or "")
    if not order_id:
        return
    order = db.scalar(select(models.Order).filter_by(channel=channel, shop=shop, order_id=order_id))
    if order is None or not load(db).enabled:
        return
    if event.type == "order.paid":
        ledger.earn_for_order(db, event.customer_id, order, event.occurred_at)
    else:
        refund_id = str(payload.get("refund_id") or event.external_id)
        ledger.reverse_for_refund(db, event.customer_id, order, f"refund:{channel}:{shop}:{refund_id}",
                                  event.occurred_at)
