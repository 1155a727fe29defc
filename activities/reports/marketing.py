"""The marketer's board: new contacts by channel, active journeys, messages sent and skipped (by reason),
conversions and GMV by flow — over a :class:`activities.reports.Range`, per local day.

Definitions (docs/dashboards.md):

- **New contact**: a customer first seen in the range (``customers.created_at``; merged-away duplicates are
  not counted twice). Its **channel** comes from the first resolver in :data:`CHANNEL_RESOLVERS` that knows
  it: the channel code (渠道活码) that attributed the customer on their profile (first touch,
  :mod:`activities.growth.attribution`), else the source of the customer's first event (the connector or
  ``api``).
- **Active journeys**: running or waiting now, by flow.
- **Messages**: outbound messages created in the range by outcome — ``sent``, ``skipped: <reason>``,
  ``deferred: <reason>`` (held for quiet hours, sent later), ``failed: <reason>``; ``sending`` is in flight.
- **Conversions**: journeys that reached their goal (status ``converted``) with the goal reached in the range.
  **GMV** of a conversion: the customer's orders paid between entering the journey and converting (up to
  10 minutes after, for the order that converted), gross of refunds, in fen.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activities.growth.attribution import FIRST_CHANNEL
from activities.reports import Range, chunks, series
from engine.db import models
from engine.db.growth_models import GrowthChannel
from engine.journeys import ACTIVE

ChannelResolver = Callable[[Session, list[str]], dict[str, str]]
#: the orders counted as GMV (a cancelled order never was merchandise sold)
GMV_STATUSES = ("paid", "shipped", "delivered", "completed", "refunded")
#: an order paid this long after the goal was reached still belongs to the conversion (events race)
CONVERSION_SLACK = timedelta(minutes=10)


def first_event_source(db: Session, customer_ids: list[str]) -> dict[str, str]:
    """Customer id → the source of their first event (a connector id, or ``api``)."""
    found: dict[str, str] = {}
    events = models.EventRecord
    for chunk in chunks(customer_ids):
        first = (select(func.min(events.id)).where(events.customer_id.in_(chunk))
                 .group_by(events.customer_id).scalar_subquery())
        for customer_id, source in db.execute(select(events.customer_id, events.source).where(events.id.in_(first))):
            found[str(customer_id)] = str(source)
    return found


def attributed_channel(db: Session, customer_ids: list[str]) -> dict[str, str]:
    """Customer id → the channel code that first attributed the customer (``first_touch_channel``)."""
    found: dict[str, str] = {}
    for chunk in chunks(customer_ids):
        for customer_id, attributes in db.execute(select(models.Customer.id, models.Customer.attributes)
                                                  .where(models.Customer.id.in_(chunk))):
            channel = (attributes or {}).get(FIRST_CHANNEL)
            if isinstance(channel, str) and channel:
                found[str(customer_id)] = channel
    return found


#: how a new contact's channel is found; the first resolver that knows a customer wins: the channel code's
#: attribution on the profile, then the first event's source. Another attribution goes in front of the list.
CHANNEL_RESOLVERS: list[ChannelResolver] = [attributed_channel, first_event_source]
UNKNOWN_CHANNEL = "unknown"


def channels_of(db: Session, customer_ids: list[str]) -> dict[str, str]:
    left = list(customer_ids)
    found: dict[str, str] = {}
    for resolver in CHANNEL_RESOLVERS:
        if not left:
            break
        answered = resolver(db, left)
        found.update({cid: channel for cid, channel in answered.items() if channel})
        left = [cid for cid in left if cid not in found]
    found.update((cid, UNKNOWN_CHANNEL) for cid in left)
    return found


def new_contacts(db: Session, r: Range) -> dict[str, Any]:
    rows = db.execute(select(models.Customer.id, models.Customer.created_at).where(
        models.Customer.created_at >= r.since, models.Customer.created_at < r.until,
        models.Customer.merged_into.is_(None))).all()
    channel = channels_of(db, [str(cid) for cid, _ in rows])
    per_day: dict[str, Counter[Any]] = defaultdict(Counter)
    for cid, created in rows:
        per_day[channel[str(cid)]][r.day_of(created)] += 1
    ranked = sorted(per_day.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    by_channel = {name: sum(days.values()) for name, days in ranked}
    names = dict(db.execute(select(GrowthChannel.key, GrowthChannel.name)
                            .where(GrowthChannel.key.in_(list(by_channel)))).all()) if by_channel else {}
    return {"total": len(rows), "by_channel": by_channel, "channel_names": {str(k): str(v) for k, v in names.items()},
            "series": {name: series(r.days(), dict(per_day[name])) for name in by_channel}}


def active_journeys(db: Session) -> dict[str, Any]:
    rows = db.execute(select(models.Journey.flow_id, func.count()).where(models.Journey.status.in_(sorted(ACTIVE)))
                      .group_by(models.Journey.flow_id)).all()
    by_flow = {str(flow): int(n) for flow, n in sorted(rows, key=lambda row: (-row[1], row[0]))}
    return {"total": sum(by_flow.values()), "by_flow": by_flow}


def outcome(status: str) -> str:
    """sent, skipped, deferred, failed or sending: the kind of a message's status."""
    head = status.split(":", 1)[0].strip()
    return head if head in ("sent", "skipped", "deferred", "failed", "sending") else "other"


def messages(db: Session, r: Range) -> dict[str, Any]:
    rows = db.execute(select(models.Message.status, models.Message.created_at).where(
        models.Message.direction == "out", models.Message.created_at >= r.since,
        models.Message.created_at < r.until)).all()
    by_status: Counter[str] = Counter()
    per_day: dict[str, Counter[Any]] = defaultdict(Counter)
    for status, created in rows:
        by_status[str(status)] += 1
        per_day[outcome(str(status))][r.day_of(created)] += 1
    kinds = Counter({kind: sum(days.values()) for kind, days in per_day.items()})
    return {"sent": kinds["sent"], "skipped": kinds["skipped"], "deferred": kinds["deferred"],
            "failed": kinds["failed"], "sending": kinds["sending"],
            "skipped_by_reason": {s.split(":", 1)[1].strip(): n for s, n in by_status.most_common()
                                  if outcome(s) == "skipped"},
            "by_status": dict(by_status.most_common()),
            "series": {kind: series(r.days(), dict(per_day[kind]))
                       for kind in ("sent", "skipped", "deferred", "failed")}}


def conversions(db: Session, r: Range) -> dict[str, Any]:
    journeys = db.execute(select(models.Journey.flow_id, models.Journey.customer_id, models.Journey.started_at,
                                 models.Journey.ended_at).where(
        models.Journey.status == "converted", models.Journey.ended_at >= r.since,
        models.Journey.ended_at < r.until)).all()
    orders: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    customers = sorted({str(j.customer_id) for j in journeys if j.customer_id})
    if journeys:
        earliest = min(j.started_at for j in journeys)
        for chunk in chunks(customers):
            for customer_id, paid_at, amount in db.execute(select(
                    models.Order.customer_id, models.Order.paid_at, models.Order.amount_fen).where(
                    models.Order.customer_id.in_(chunk), models.Order.status.in_(GMV_STATUSES),
                    models.Order.paid_at >= earliest, models.Order.paid_at < r.until + CONVERSION_SLACK)):
                if paid_at is not None:
                    orders[str(customer_id)].append((paid_at, int(amount)))
    count: dict[str, Counter[Any]] = defaultdict(Counter)
    gmv: dict[str, Counter[Any]] = defaultdict(Counter)
    for j in journeys:
        day = r.day_of(j.ended_at)
        count[j.flow_id][day] += 1
        ended = j.ended_at + CONVERSION_SLACK
        gmv[j.flow_id][day] += sum(amount for paid, amount in orders.get(str(j.customer_id), [])
                                   if j.started_at <= paid <= ended)
    flows = sorted(count, key=lambda f: (-sum(count[f].values()), f))
    return {"total": len(journeys), "gmv_fen": sum(sum(g.values()) for g in gmv.values()),
            "by_flow": {f: {"conversions": sum(count[f].values()), "gmv_fen": sum(gmv[f].values())} for f in flows},
            "series": {f: series(r.days(), dict(count[f])) for f in flows},
            "gmv_series": {f: series(r.days(), dict(gmv[f])) for f in flows}}


def board(db: Session, r: Range) -> dict[str, Any]:
    """Every figure of the marketer's board."""
    return {"range": r.as_dict(), "days": [d.isoformat() for d in r.days()],
            "new_contacts": new_contacts(db, r), "active_journeys": active_journeys(db),
            "messages": messages(db, r), "conversions": conversions(db, r)}
