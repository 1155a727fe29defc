"""Refund → ticket: every ``refund.requested`` event (from any shop, or ``POST /api/events``) becomes
one ticket of each ticket type that lists the event in ``auto_events`` (the shipped ``refund`` type
does), linked to its order and customer.

The hook runs inside the transaction that stores the event (``tideflow.event_hooks``), so the ticket
exists exactly when the event does: never lost. Its dedupe key ``refund:<channel>:<shop>:<refund id>``
is unique, so a redelivered event — or the same refund reported twice under different event ids —
never makes a second ticket. Public replies on the ticket go over the customer's own channel
(:func:`activities.messaging.reach.customer_channel`: the first of WeCom, WeChat OA, SMS, email they have an
address on and that is set up). The ticket's workflow is started right after the event's transaction
commits, by the process that committed it (:mod:`engine.follow_ups`, the ticket kind), else by
:func:`engine.tickets_workflow.start_pending` (the re-router loop); the workflow id is derived, so it
starts once.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.messaging.reach import customer_channel
from activities.tickets import service
from engine.db import models

log = logging.getLogger(__name__)


def ticket_from_refund(db: Session, event: models.EventRecord) -> None:
    """Event hook: a ticket per refund request."""
    if event.type != "refund.requested":
        return
    types = [t for t in db.scalars(select(models.TicketType).order_by(models.TicketType.key))
             if event.type in (t.auto_events or [])]
    payload = dict(event.payload or {})
    refund_id = str(payload.get("refund_id") or event.external_id)
    channel = str(payload.get("channel") or "api")
    shop = str(payload.get("shop") or event.source)
    amount = payload.get("amount_fen")
    amount_fen = amount if isinstance(amount, int) and not isinstance(amount, bool) else None
    # the SLA clock starts when the request reached us (a late delivery does not breach at once)
    opened = max(event.occurred_at, event.received_at or event.occurred_at)
    # replies go where the customer can be reached (their WeCom chat, OA, phone or mail), not always WeCom
    channel_out = customer_channel(db, event.customer_id) if types else ""
    for kind in types:
        suffix = "" if kind.key == "refund" else f":{kind.key}"
        fields = {"amount_fen": amount_fen, "reason": str(payload.get("reason") or "")[:500]}
        known = {f.get("key") for f in kind.fields or []}
        service.create_ticket(
            db, type_key=kind.key, now=opened,
            subject=f"退款申请 Refund {payload.get('order_id', '')} ¥{(amount_fen or 0) / 100:,.2f}",
            description=str(payload.get("reason") or ""), customer_id=event.customer_id,
            fields={k: v for k, v in fields.items() if k in known and v not in (None, "")},
            source="refund", channel=channel_out,
            order={"channel": channel, "shop": shop, "order_id": str(payload.get("order_id") or "")},
            refund_id=refund_id, amount_fen=amount_fen, dedupe_key=f"refund:{channel}:{shop}:{refund_id}{suffix}",
            actor="refund", check_fields=False)
