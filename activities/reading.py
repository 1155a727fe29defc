"""The read policy (engine/read_policy.py) fed from the database: the facts the pure policy needs — the
reader's ticket groups, the ticket a message replies to, the groups of a customer's tickets — gathered here
once, for the web app's routes and pages (:mod:`designer.reading`) and the chat sidebar
(:mod:`activities.sidebar.picture`) alike. Nothing here decides who sees what: the policy does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.tickets.service import agent_groups_of
from engine.db import models
from engine.db.models import User
from engine.read_policy import MessageFacts, Reader, customer_view, message_view, sees_pii


def reader_of(db: Session, user: User) -> Reader:
    groups = frozenset(agent_groups_of(db, user.id)) if user.role == "agent" else frozenset()
    return Reader(role=user.role, user_id=user.id, groups=groups)


def customer_groups(db: Session, customer_ids: Iterable[str]) -> dict[str, frozenset[str]]:
    """The ticket groups each customer has tickets in."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    found: dict[str, set[str]] = {}
    for cid, group in db.execute(select(models.Ticket.customer_id, models.Ticket.group_key)
                                 .where(models.Ticket.customer_id.in_(ids)).distinct()).all():
        found.setdefault(str(cid), set()).add(str(group))
    return {cid: frozenset(found.get(cid, ())) for cid in ids}


def groups_of_customer(db: Session, reader: Reader, customer_ids: Iterable[str]) -> frozenset[str]:
    """The ticket groups of one customer (all its merged ids together) — asked only for agents, the one role
    whose reading depends on them."""
    if reader.role != "agent":
        return frozenset()
    return frozenset().union(*customer_groups(db, customer_ids).values())


def ticket_of_message(message: models.Message) -> int | None:
    """The ticket a message replies to: ticket replies are keyed ``ticket/<id>/reply/<event>``."""
    parts = (message.idempotency_key or "").split("/")
    return int(parts[1]) if len(parts) > 2 and parts[0] == "ticket" and parts[1].isdigit() else None


def _reply_tickets(db: Session, rows: list[models.Message]) -> dict[int, tuple[str, int | None]]:
    ids = sorted({t for t in (ticket_of_message(m) for m in rows) if t is not None})
    if not ids:
        return {}
    return {int(i): (str(g), a) for i, g, a in db.execute(
        select(models.Ticket.id, models.Ticket.group_key, models.Ticket.assignee_id)
        .where(models.Ticket.id.in_(ids))).all()}


def message_facts(db: Session, reader: Reader, rows: list[models.Message]) -> list[MessageFacts]:
    """What the policy needs to know about each message, in order."""
    replies = _reply_tickets(db, rows)
    groups = customer_groups(db, (m.customer_id for m in rows if m.customer_id)) if reader.role == "agent" else {}
    facts = []
    for m in rows:
        ticket_id = ticket_of_message(m)
        ticket = replies.get(ticket_id) if ticket_id is not None else None
        if ticket_id is not None and ticket is None:
            ticket = ("(deleted ticket)", None)  # still a ticket reply: never shown as a journey message
        facts.append(MessageFacts(direction=m.direction, ticket_group=ticket[0] if ticket else None,
                                  ticket_assignee=ticket[1] if ticket else None,
                                  customer_groups=groups.get(m.customer_id or "", frozenset())))
    return facts


def messages_for(db: Session, reader: Reader, messages: Iterable[models.Message],
                 shape: Callable[[models.Message], Mapping[str, Any]],
                 content_keys: tuple[str, ...] = ("content", "text", "body")) -> list[dict[str, Any]]:
    """``shape(message)`` for each message ``reader`` may see, content hidden where the policy says so;
    messages the reader may not know of are left out."""
    rows = list(messages)
    out = []
    for m, facts in zip(rows, message_facts(db, reader, rows), strict=True):
        seen = message_view(reader, shape(m), facts, content_keys)
        if seen is not None:
            out.append(seen)
    return out


def customer_for(db: Session, reader: Reader, customer_id: str, data: Mapping[str, Any],
                 aliases: Iterable[str] = ()) -> dict[str, Any]:
    """A customer's data as ``reader`` may see it (personal data masked unless the policy says clear);
    ``aliases``: the customer's merged ids, whose tickets count too."""
    return customer_view(reader, data, groups_of_customer(db, reader, [customer_id, *aliases]))


def sees_customer_pii(db: Session, reader: Reader, customer_id: str, aliases: Iterable[str] = ()) -> bool:
    return sees_pii(reader, groups_of_customer(db, reader, [customer_id, *aliases]))


def names_for(db: Session, reader: Reader, names: Mapping[str, str]) -> dict[str, str]:
    """Customers' names (``{customer id: name}``) as ``reader`` may see them: for lists that name customers
    (journeys, tickets, channel adds, leaderboards, review queues, pickers)."""
    groups = customer_groups(db, names) if reader.role == "agent" else {}
    return {cid: str(customer_view(reader, {"name": name}, groups.get(cid, frozenset()))["name"])
            for cid, name in names.items()}


def identities_for(db: Session, reader: Reader, rows: Iterable[tuple[str | None, str, str]]) -> list[str]:
    """Identity values (``(customer id, kind, value)``) as ``reader`` may see them, in order: in clear when the
    reader sees that customer's personal data, else masked (phones ``138****8000``, platform ids cut)."""
    rows = list(rows)
    groups = customer_groups(db, (c for c, _, _ in rows if c)) if reader.role == "agent" else {}
    out = []
    for cid, kind, value in rows:
        seen = customer_view(reader, {"identities": [{"kind": kind, "value": value}]},
                             groups.get(cid or "", frozenset()))
        out.append(str(seen["identities"][0]["value"]))
    return out
