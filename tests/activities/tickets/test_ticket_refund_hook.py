"""Refund → ticket: one ticket per refund, whatever the redeliveries, even concurrent ones, on SQLite
and PostgreSQL; linked to its order and customer; other refund statuses make none."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import select

from engine import events as ingest
from engine.db import models
from engine.db.session import session_factory


def refund_event(event_id: str, status: str = "requested", refund_id: str = "R-7") -> ingest.EventIn:
    return ingest.EventIn(id=event_id, type=f"refund.{status}", source="jd", customer={"phone": "13900139000"},
                          occurred_at=datetime(2026, 11, 23, 8, tzinfo=UTC),
                          payload={"refund_id": refund_id, "order_id": "JD-1", "shop": "flagship", "channel": "jd",
                                   "status": status, "amount_fen": 12900, "reason": "尺码不合适"})


def test_one_ticket_per_refund_under_concurrent_redelivery(any_db_url: str) -> None:
    ids = ["jd:flagship:refund:R-7:requested"] * 4 + [f"push-{n}" for n in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: ingest.store(refund_event(i), any_db_url)[0], ids))
    assert results.count("accepted") == 5
    ingest.store(refund_event("done-1", "completed"), any_db_url)
    ingest.store(refund_event("other", refund_id="R-8"), any_db_url)
    with session_factory(any_db_url)() as db:
        tickets = db.scalars(select(models.Ticket).order_by(models.Ticket.id)).all()
        assert [t.refund_id for t in tickets] == ["R-7", "R-8"]
        first = tickets[0]
        assert (first.type_key, first.group_key, first.source) == ("refund", "default", "refund")
        assert (first.order_channel, first.order_shop, first.order_id, first.amount_fen) == ("jd", "flagship", "JD-1",
                                                                                              12900)
        assert first.fields == {"amount_fen": 12900, "reason": "尺码不合适"}
        assert first.customer_id is not None and first.workflow_id is None  # the starter picks it up
        assert [e.kind for e in db.scalars(select(models.TicketEvent).where(
            models.TicketEvent.ticket_id == first.id))] == ["created"]
