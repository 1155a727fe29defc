"""Tickets in the database: create, route, assign, claim, transfer, reply, status, SLA, review, sub-tasks.

One home for every change to a ticket, used by the API and the agent console (designer/tickets/), the
``ticket.*`` node types and the ticket workflow's activities alike. Each function works inside the caller's
write transaction (``engine.db.session.transaction``: ``BEGIN IMMEDIATE`` on SQLite) and takes
``now`` explicitly, so workflows can pass their own (durable, possibly simulated) clock.

Concurrency: an assignment locks the group row and then its agents' rows in user-id order
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises writers), counts loads inside the lock,
and only then picks — so two tickets created at once never push an agent above capacity, and
round-robin turns are taken one at a time. Every change writes a :class:`TicketEvent` (the audit
trail); events written by retried steps carry a unique key, so they are written once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from activities.tickets import assignment, review, sla
from activities.tickets.calendar import BusinessCalendar
from activities.tickets.fields import validate_fields
from engine import auth, follow_ups
from engine.db import models
from engine.durations import parse_duration
from engine.text import N_, Msg, MsgError
from wording.stored import stored, stored_english

log = logging.getLogger(__name__)

STATUSES: tuple[str, ...] = ("open", "pending", "resolved", "closed")
OPEN_STATUSES: tuple[str, ...] = ("open", "pending")
PRIORITIES = sla.PRIORITIES
DEFAULT_GROUP = "default"


class TicketError(MsgError):
    """A change that cannot be made; ``status`` is the HTTP status the API answers with."""


# -- reading --------------------------------------------------------------------------------------


def get_ticket(db: Session, ticket_id: int, lock: bool = False) -> models.Ticket:
    query = select(models.Ticket).where(models.Ticket.id == ticket_id)
    if lock:
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    ticket = db.scalar(query)
    if ticket is None:
        raise TicketError(Msg("ticket %(ticket_id)s does not exist", ticket_id=ticket_id), Msg("check the ticket id"),
                          "id", 404)
    return ticket


def agent_groups_of(db: Session, user_id: int) -> list[str]:
    agent = db.get(models.Agent, user_id)
    return [str(g) for g in (agent.groups if agent else [])]


def queues_of(db: Session, user: models.User) -> list[str] | None:
    """The queues (agent groups) whose tickets the user works: None for every queue (admins and ops, the
    supervisors); an agent's own groups otherwise."""
    if user.role in ("admin", "ops"):
        return None
    return agent_groups_of(db, user.id)


def may_see(db: Session, user: models.User, ticket: models.Ticket) -> bool:
    """Admins and ops (supervisors) see every ticket; an agent those of their groups and those assigned to
    them. (Approvers outside the group see a ticket to decide its review: :func:`may_review`.)"""
    queues = queues_of(db, user)
    return queues is None or ticket.group_key in queues or ticket.assignee_id == user.id


def visible(db: Session, user: models.User) -> ColumnElement[bool]:
    """:func:`may_see` as a WHERE clause over tickets, for lists."""
    queues = queues_of(db, user)
    if queues is None:
        return true()
    return models.Ticket.group_key.in_(queues) | (models.Ticket.assignee_id == user.id)


def may_review(user: models.User, rows: Sequence[models.TicketReview]) -> bool:
    """The user is (or stands in for) an approver of a step of the ticket's review (``rows``: its review
    rows), so they may see the ticket to decide it even outside its group — finance, a department head.
    Whether they may decide a particular step is :func:`activities.tickets.review.may_decide`."""
    return any(user.id in (r.approver_id, r.delegated_to) or r.approver == f"role:{user.role}"
               or r.approver == f"user:{user.username}" for r in rows)


def capacity_of(db: Session, agent: models.Agent, queue: str | None) -> int:
    """How many open tickets the agent may hold: their own capacity, else that of ``queue``, else 10."""
    if agent.capacity:
        return int(agent.capacity)
    group = db.get(models.AgentGroup, queue) if queue else None
    return group.capacity if group else 10


def view(ticket: models.Ticket, now: datetime | None = None) -> dict[str, Any]:
    """The ticket as the API and flows see it."""
    state = sla.SlaState.load(ticket.sla)
    checkpoints: list[dict[str, Any]] = []
    if state.policy:
        for point in _checkpoints(ticket, state):
            checkpoints.append({"key": point.key, "metric": point.metric, "stage": point.stage,
                                "due": point.due.isoformat() if point.due else None,
                                "fired": point.key in state.fired})
    return {
        "id": ticket.id, "type": ticket.type_key, "subject": ticket.subject, "description": ticket.description,
        "customer_id": ticket.customer_id, "status": ticket.status, "priority": ticket.priority,
        "group": ticket.group_key, "assignee_id": ticket.assignee_id, "needs": list(ticket.needs or []),
        "fields": dict(ticket.fields or {}), "source": ticket.source, "channel": ticket.channel,
        "order": ({"channel": ticket.order_channel, "shop": ticket.order_shop, "order_id": ticket.order_id}
                  if ticket.order_id else None),
        "refund_id": ticket.refund_id, "amount_fen": ticket.amount_fen, "parent_id": ticket.parent_id,
        "workflow_id": ticket.workflow_id or None,
        "created_at": ticket.created_at.isoformat(), "updated_at": ticket.updated_at.isoformat(),
        "first_response_at": ticket.first_response_at.isoformat() if ticket.first_response_at else None,
        "resolved_at": ticket.resolved_at.isoformat() if ticket.resolved_at else None,
        "sla": {"paused": state.paused, "fired": list(state.fired), "checkpoints": checkpoints,
                "policy": state.policy},
    }


def record(db: Session, ticket: models.Ticket, kind: str, now: datetime, actor: str = "system", body: str = "",
           public: bool = False, key: str | None = None, **data: Any) -> models.TicketEvent | None:
    """Add one audit-trail entry; with ``key``, only once (a retried step writes nothing new)."""
    if key is not None and db.scalar(select(models.TicketEvent.id).where(models.TicketEvent.key == key)):
        return None
    event = models.TicketEvent(ticket_id=ticket.id, kind=kind, actor=actor, body=body, public=public, key=key,
                               data=data, at=now)
    db.add(event)
    ticket.updated_at = now
    db.flush()
    return event


def actor_of(user: models.User | None) -> str:
    return f"user:{user.id}" if user is not None else "system"


def audit_person(db: Session, ticket: models.Ticket, actor: str, action: str, before: dict[str, Any] | None = None,
                 after: dict[str, Any] | None = None, **detail: Any) -> None:
    """A change made by a person (``actor`` ``user:<id>``) goes to the audit log too, before → after; the
    flow's and the SLA's own changes are on the ticket's trail only."""
    if not actor.startswith("user:") or not actor[5:].isdigit():
        return
    user = db.get(models.User, int(actor[5:]))
    if user is not None:
        auth.audit(db, user, f"ticket.{action}", f"ticket:{ticket.id}", detail, before=before, after=after)


# -- creating -------------------------------------------------------------------------------------


def ticket_type(db: Session, key: str) -> models.TicketType:
    found = db.get(models.TicketType, key)
    if found is None:
        raise TicketError(Msg("ticket type '%(key)s' does not exist", key=key),
                          Msg("create it under /api/ticket-types or pick another type"), "type", 422)
    return found


def _group_or_default(db: Session, key: str | None) -> str:
    if key and db.get(models.AgentGroup, key) is not None:
        return key
    if key:
        log.warning("agent group %s does not exist; the ticket goes to the default queue", key)
    if db.get(models.AgentGroup, DEFAULT_GROUP) is None:
        db.add(models.AgentGroup(key=DEFAULT_GROUP, name="默认队列 Default queue"))
        db.flush()
    return DEFAULT_GROUP


def create_ticket(db: Session, *, type_key: str, subject: str, now: datetime, description: str = "",
                  customer_id: str | None = None, fields: dict[str, Any] | None = None, priority: str | None = None,
                  group: str | None = None, needs: Sequence[str] = (), source: str = "api",
                  channel: str = "dry-run", order: dict[str, str] | None = None, refund_id: str | None = None,
                  amount_fen: int | None = None, parent_id: int | None = None, dedupe_key: str | None = None,
                  actor: str = "system", check_fields: bool = True) -> tuple[models.Ticket, bool]:
    """A new ticket (queued in its group), or the existing one with the same ``dedupe_key``."""
    if dedupe_key:
        found = db.scalar(select(models.Ticket).where(models.Ticket.dedupe_key == dedupe_key))
        if found is not None:
            return found, False
    kind = ticket_type(db, type_key)
    values = validate_fields(kind.fields, fields or {}) if check_fields else dict(fields or {})
    if priority is not None and priority not in PRIORITIES:
        raise TicketError(Msg("priority '%(priority)s' is unknown", priority=priority), Msg("use P1, P2, P3 or P4"),
                          "priority")
    order = order or {}
    ticket = models.Ticket(
        type_key=kind.key, subject=subject[:300], description=description, customer_id=customer_id,
        status="open", priority=priority or kind.default_priority, group_key=_group_or_default(db, group or
                                                                                               kind.default_group),
        needs=list(needs), fields=values, source=source, channel=channel, order_channel=order.get("channel"),
        order_shop=order.get("shop"), order_id=order.get("order_id"), refund_id=refund_id, amount_fen=amount_fen,
        parent_id=parent_id, sla={}, dedupe_key=dedupe_key, workflow_id=None if kind.flow_id else "",
        created_at=now, updated_at=now)
    try:
        with db.begin_nested():
            db.add(ticket)
            db.flush()
    except IntegrityError:
        if not dedupe_key:
            raise
        found = db.scalar(select(models.Ticket).where(models.Ticket.dedupe_key == dedupe_key))
        if found is None:
            raise
        return found, False
    if ticket.workflow_id is None:  # its flow's workflow starts right after the commit (engine/follow_ups.py)
        follow_ups.note_ticket(db, ticket.id)
    record(db, ticket, "created", now, actor, data_source=source, group=ticket.group_key, priority=ticket.priority)
    audit_person(db, ticket, actor, "created", after={"type": ticket.type_key, "group": ticket.group_key,
                                                      "priority": ticket.priority, "status": ticket.status})
    return ticket, True


def update_fields(db: Session, ticket: models.Ticket, values: dict[str, Any], now: datetime, actor: str) -> None:
    kind = ticket_type(db, ticket.type_key)
    checked = validate_fields(kind.fields, values, partial=True)
    merged = {**(ticket.fields or {}), **checked}
    for key, value in values.items():
        if value is None or value == "":
            merged.pop(key, None)
    before = dict(ticket.fields or {})
    ticket.fields = merged
    record(db, ticket, "fields", now, actor, changed=sorted(values))
    audit_person(db, ticket, actor, "fields_changed", *auth.changes(before, merged))


# -- routing and assignment ----------------------------------------------------------------------


def route(db: Session, ticket: models.Ticket, group: str, now: datetime, actor: str = "flow",
          needs: Sequence[str] | None = None, priority: str | None = None, key: str | None = None) -> None:
    """Put the ticket in ``group``'s queue (unassigning it when the group changes)."""
    if db.get(models.AgentGroup, group) is None:
        raise TicketError(Msg("agent group '%(group)s' does not exist", group=group),
                          Msg("create it under /api/agent-groups or fix the routing"), "group", 422)
    moved = ticket.group_key != group
    ticket.group_key = group
    if moved:
        ticket.assignee_id = None
    if needs is not None:
        ticket.needs = list(needs)
    if priority is not None:
        ticket.priority = priority
    record(db, ticket, "routed", now, actor, key=key, group=group, needs=list(ticket.needs or []),
           priority=ticket.priority)


def _lock_agents(db: Session, group: models.AgentGroup) -> list[models.Agent]:
    everyone = db.scalars(select(models.Agent).order_by(models.Agent.user_id)).all()
    members = [a.user_id for a in everyone if group.key in (a.groups or [])]
    if not members:
        return []
    return list(db.scalars(select(models.Agent).where(models.Agent.user_id.in_(members))
                           .order_by(models.Agent.user_id).with_for_update(key_share=True)
                           .execution_options(populate_existing=True)).all())


def loads(db: Session, user_ids: Sequence[int]) -> dict[int, int]:
    """Open + pending tickets per agent."""
    if not user_ids:
        return {}
    rows = db.execute(select(models.Ticket.assignee_id, func.count()).where(
        models.Ticket.assignee_id.in_(list(user_ids)), models.Ticket.status.in_(OPEN_STATUSES))
        .group_by(models.Ticket.assignee_id)).all()
    found = {int(uid): int(n) for uid, n in rows if uid is not None}
    return {uid: found.get(uid, 0) for uid in user_ids}


def _snapshot(agent: models.Agent, group: models.AgentGroup, load: int) -> assignment.AgentSnapshot:
    hours = BusinessCalendar.model_validate(agent.working_hours) if agent.working_hours else None
    return assignment.AgentSnapshot(
        user_id=agent.user_id, availability=agent.availability, capacity=agent.capacity or group.capacity,
        load=load, skills=tuple(str(s) for s in agent.skills or []), working_hours=hours,
        last_assigned_at=agent.last_assigned_at)


def assign(db: Session, ticket: models.Ticket, now: datetime, actor: str = "flow", exclude: Sequence[int] = (),
           key: str | None = None) -> assignment.Pick:
    """Assign by the group's strategy. Nobody available: the ticket stays queued (unassigned) in its group."""
    group = db.scalar(select(models.AgentGroup).where(models.AgentGroup.key == ticket.group_key)
                      .with_for_update(key_share=True).execution_options(populate_existing=True))
    assert group is not None  # foreign key
    agents = _lock_agents(db, group)
    current = loads(db, [a.user_id for a in agents])
    snaps = [_snapshot(a, group, current[a.user_id]) for a in agents]
    pick = assignment.pick_agent(group.strategy, snaps, list(ticket.needs or []), now, group.rr_last, exclude)
    if pick.user_id is not None:
        ticket.assignee_id = pick.user_id
        chosen = next(a for a in agents if a.user_id == pick.user_id)
        chosen.last_assigned_at = now
        if group.strategy == "round_robin":
            group.rr_last = pick.user_id
        record(db, ticket, "assigned", now, actor, key=key, assignee_id=pick.user_id, strategy=group.strategy,
               reason=pick.reason)
    else:
        if exclude and ticket.assignee_id in exclude:
            ticket.assignee_id = None
        record(db, ticket, "queued", now, actor, key=key, group=group.key, reason=pick.reason,
               skipped={str(k): v for k, v in pick.skipped.items()})
    return pick


def offer_queued(db: Session, agent_id: int, now: datetime, limit: int = 100) -> list[int]:
    """An agent came online: offer the tickets queued in their groups (unassigned, open or pending; most
    urgent, then oldest first) again, each by its group's strategy — so a ticket queued while every agent
    was away does not wait for someone to look. Stops per group when nobody in it can take more. Returns
    the ids of the tickets assigned (their workflows are told by the caller)."""
    agent = db.get(models.Agent, agent_id)
    if agent is None or agent.availability != "online":
        return []
    assigned: list[int] = []
    for group in sorted(str(g) for g in agent.groups or []):
        waiting = db.scalars(select(models.Ticket.id).where(
            models.Ticket.group_key == group, models.Ticket.assignee_id.is_(None),
            models.Ticket.status.in_(OPEN_STATUSES)).order_by(models.Ticket.priority, models.Ticket.created_at,
                                                               models.Ticket.id).limit(limit)).all()
        for ticket_id in waiting:
            ticket = get_ticket(db, ticket_id, lock=True)
            if ticket.assignee_id is not None or ticket.group_key != group:
                continue  # taken meanwhile
            if assign(db, ticket, now, actor="reoffer").user_id is None:
                break  # nobody in this group can take more now
            assigned.append(ticket_id)
            if len(assigned) >= limit:
                return assigned
    return assigned


def claim(db: Session, ticket: models.Ticket, user: models.User, now: datetime) -> None:
    """An agent takes a ticket of their group (within capacity)."""
    if (queues := queues_of(db, user)) is not None and ticket.group_key not in queues:
        raise TicketError(Msg("this ticket is not in one of your groups"), Msg("ask a supervisor to transfer it"),
                          "id", 403)
    if ticket.status in ("resolved", "closed"):
        raise TicketError(Msg("the ticket is %(status)s", status=ticket.status), Msg("reopen it first (status open)"),
                          "status", 409)
    agent = db.scalar(select(models.Agent).where(models.Agent.user_id == user.id).with_for_update(key_share=True)
                      .execution_options(populate_existing=True))
    if agent is not None and ticket.assignee_id != user.id:
        capacity = capacity_of(db, agent, ticket.group_key)
        if loads(db, [user.id])[user.id] >= capacity:
            raise TicketError(Msg("you already have %(capacity)s open tickets (your capacity)", capacity=capacity),
                              Msg("resolve or transfer one first"), "capacity", 409)
    previous = ticket.assignee_id
    ticket.assignee_id = user.id
    record(db, ticket, "claimed", now, actor_of(user), assignee_id=user.id, previous=previous)
    audit_person(db, ticket, actor_of(user), "claimed", {"assignee_id": previous}, {"assignee_id": user.id})


def transfer(db: Session, ticket: models.Ticket, now: datetime, actor: str, group: str | None = None,
             assignee_id: int | None = None, note: str = "") -> None:
    """Move a ticket to another group's queue and/or agent."""
    if group is None and assignee_id is None:
        raise TicketError(Msg("say where to transfer to"), Msg("send 'group' and/or 'assignee_id'"), "group")
    before = {"group": ticket.group_key, "assignee_id": ticket.assignee_id}
    if group is not None and group != ticket.group_key:
        route(db, ticket, group, now, actor)
    if assignee_id is not None:
        agent = db.get(models.Agent, assignee_id)
        if agent is None or ticket.group_key not in (agent.groups or []):
            raise TicketError(Msg("user %(assignee_id)s is not an agent of group '%(group_key)s'",
                                  assignee_id=assignee_id, group_key=ticket.group_key),
                              Msg("pick an agent of the ticket's group or transfer to their group"), "assignee_id")
        ticket.assignee_id = assignee_id
    record(db, ticket, "transferred", now, actor, body=note, group=ticket.group_key, assignee_id=ticket.assignee_id)
    after = {"group": ticket.group_key, "assignee_id": ticket.assignee_id}
    audit_person(db, ticket, actor, "reassigned", before, after, note=note[:200])


# -- conversation and status ---------------------------------------------------------------------


def reply(db: Session, ticket: models.Ticket, body: str, now: datetime, actor: str,
          key: str | None = None) -> models.TicketEvent:
    """A public reply to the customer: stops the first/next response clocks. Delivery: :func:`deliver_reply`.
    With ``key`` (a flow's reply), a retry returns the reply already made."""
    if not body.strip():
        raise TicketError(Msg("the reply is empty"), Msg("write the reply text"), "body")
    if key is not None:
        done = db.scalar(select(models.TicketEvent).where(models.TicketEvent.key == key))
        if done is not None:
            return done
    state = sla.SlaState.load(ticket.sla)
    state.agent_replied()
    if ticket.first_response_at is None:
        ticket.first_response_at = now
    ticket.sla = state.dump()
    event = record(db, ticket, "reply", now, actor, body=body, public=True, channel=ticket.channel,
                   delivery="queued", key=key)
    assert event is not None
    audit_person(db, ticket, actor, "replied", channel=ticket.channel, event=event.id)
    return event


def customer_message(db: Session, ticket: models.Ticket, body: str, now: datetime) -> None:
    """The customer wrote: a next-response cycle starts; a pending ticket is open again."""
    state = sla.SlaState.load(ticket.sla)
    if ticket.first_response_at is not None:
        state.customer_wrote(now)
    if ticket.status == "pending":
        state.resume(now)
        ticket.status = "open"
    ticket.sla = state.dump()
    record(db, ticket, "customer_message", now, "customer", body=body, public=True)


def note(db: Session, ticket: models.Ticket, body: str, now: datetime, actor: str) -> None:
    if not body.strip():
        raise TicketError(Msg("the note is empty"), Msg("write the note text"), "body")
    record(db, ticket, "note", now, actor, body=body, public=False)


def set_status(db: Session, ticket: models.Ticket, status: str, now: datetime, actor: str, reason: str = "") -> None:
    """open / pending (waiting on the customer: SLA clocks pause) / resolved / closed."""
    if status not in STATUSES:
        raise TicketError(Msg("status '%(status)s' is unknown", status=status),
                          Msg("use open, pending, resolved or closed"), "status")
    if ticket.status == "closed" and status != "closed":
        raise TicketError(Msg("a closed ticket cannot change"), Msg("create a follow-up ticket instead"), "status", 409)
    before = ticket.status
    if before == status:
        return
    state = sla.SlaState.load(ticket.sla)
    reopened = before == "resolved" and status in OPEN_STATUSES
    if reopened:
        # the time it stood resolved does not count against its SLA; the customer waits for an answer again
        if ticket.resolved_at is not None and ticket.resolved_at < now:
            state.pauses.append([ticket.resolved_at.isoformat(), now.isoformat()])
        if ticket.first_response_at is not None:
            state.customer_wrote(now)
    if status == "pending":
        state.pause(now)
    elif before == "pending":
        state.resume(now)
    if status in ("resolved", "closed"):
        ticket.resolved_at = ticket.resolved_at or now
    elif before in ("resolved",):
        ticket.resolved_at = None
    ticket.status = status
    ticket.sla = state.dump()
    record(db, ticket, "status", now, actor, body=reason, before=before, after=status, reopened=reopened)
    audit_person(db, ticket, actor, "reopened" if reopened else "status_changed", {"status": before},
                 {"status": status}, reason=reason[:200])


def set_priority(db: Session, ticket: models.Ticket, priority: str, now: datetime, actor: str,
                 key: str | None = None) -> None:
    if priority not in PRIORITIES:
        raise TicketError(Msg("priority '%(priority)s' is unknown", priority=priority), Msg("use P1, P2, P3 or P4"),
                          "priority")
    if ticket.priority == priority:
        return
    before, ticket.priority = ticket.priority, priority
    record(db, ticket, "priority", now, actor, key=key, before=before, after=priority)
    audit_person(db, ticket, actor, "priority_changed", {"priority": before}, {"priority": priority})


# -- SLA --------------------------------------------------------------------------------------------


def _calendar(db: Session, ticket: models.Ticket, state: sla.SlaState) -> BusinessCalendar:
    if state.calendar:
        return sla.calendar_of(state.calendar)
    group = db.get(models.AgentGroup, ticket.group_key)
    return sla.calendar_of(group.calendar if group else {})


def _clocks(ticket: models.Ticket, state: sla.SlaState) -> sla.Clocks:
    return sla.Clocks(started_at=ticket.created_at, pauses=state.pause_list(),
                      first_response_at=ticket.first_response_at,
                      resolved_at=ticket.resolved_at if ticket.status in ("resolved", "closed") else None,
                      awaiting_reply_since=(datetime.fromisoformat(state.awaiting_reply_since)
                                            if state.awaiting_reply_since else None),
                      reply_cycle=state.reply_cycle)


def _checkpoints(ticket: models.Ticket, state: sla.SlaState,
                 calendar: BusinessCalendar | None = None) -> list[sla.Checkpoint]:
    if not state.policy:
        return []
    policy = sla.SlaPolicy.model_validate(state.policy)
    return sla.checkpoints(policy, calendar or sla.calendar_of(state.calendar), ticket.priority,
                           _clocks(ticket, state))


def start_sla(db: Session, ticket: models.Ticket, policy: dict[str, Any], now: datetime,
              calendar: dict[str, Any] | None = None, key: str | None = None) -> None:
    """Attach an SLA policy (and the group's calendar unless one is given) to the ticket."""
    checked = sla.SlaPolicy.model_validate(policy).model_dump(mode="json")
    state = sla.SlaState.load(ticket.sla)
    state.policy = checked
    group = db.get(models.AgentGroup, ticket.group_key)
    state.calendar = dict(calendar or (group.calendar if group else {}) or {})
    sla.calendar_of(state.calendar)  # valid
    ticket.sla = state.dump()
    record(db, ticket, "sla_started", now, "flow", key=key, policy=checked)


def sla_plan(db: Session, ticket: models.Ticket) -> list[dict[str, str]]:
    """The checkpoints still to fire, in due order: what the workflow sets its timer for."""
    state = sla.SlaState.load(ticket.sla)
    return [{"key": c.key, "due": c.due.isoformat()} for c in sla.pending(_checkpoints(ticket, state), state.fired)
            if c.due is not None]


def sla_fire(db: Session, ticket: models.Ticket, now: datetime, workflow_id: str) -> list[dict[str, Any]]:
    """Fire every checkpoint due at ``now`` that has not fired: record it, warn or escalate.

    Returns the notifications to deliver (after the transaction commits) — each with its own key.
    """
    state = sla.SlaState.load(ticket.sla)
    due = sla.due_now(_checkpoints(ticket, state), state.fired, now)
    if not due:
        return []
    policy = sla.SlaPolicy.model_validate(state.policy)
    group = db.get(models.AgentGroup, ticket.group_key)
    notices: list[dict[str, Any]] = []
    for point in due:
        state.fired.append(point.key)
        ticket.sla = state.dump()
        base = f"{workflow_id}/sla/{point.key}"
        record(db, ticket, f"sla_{point.stage}", now, "sla", key=base, checkpoint=point.key, metric=point.metric,
               due=point.due.isoformat() if point.due else None)
        what = "即将超时 will breach soon" if point.stage == "warning" else "已超时 breached"
        text = f"工单 #{ticket.id} {point.metric} SLA {what}: {ticket.subject}"
        if point.stage == "warning":
            if ticket.assignee_id is not None:
                notices.append(_notice(db, ticket, group, ticket.assignee_id, text, f"{base}/assignee", now))
            continue
        for step in policy.escalation:
            if step == "notify_supervisor" and group is not None and group.supervisor_id is not None:
                notices.append(_notice(db, ticket, group, group.supervisor_id, text, f"{base}/supervisor", now))
            elif step == "raise_priority":
                set_priority(db, ticket, sla.raised(ticket.priority), now, "sla", key=f"{base}/priority")
            elif step == "reassign":
                previous = [ticket.assignee_id] if ticket.assignee_id is not None else []
                assign(db, ticket, now, "sla", exclude=previous, key=f"{base}/reassign")
        record(db, ticket, "escalated", now, "sla", key=f"{base}/escalated", checkpoint=point.key,
               steps=list(policy.escalation))
    return [n for n in notices if n]


def _notice(db: Session, ticket: models.Ticket, group: models.AgentGroup | None, user_id: int, text: str,
            key: str, now: datetime) -> dict[str, Any]:
    user = db.get(models.User, user_id)
    channel = group.notify_channel if group else "dry-run"
    record(db, ticket, "notified", now, "sla", key=key, to=user_id, channel=channel,
           username=user.username if user else None, text=text)
    return _notice_of(db, key, channel, user_id, text)


def _notice_of(db: Session, key: str, channel: str, user_id: int, text: str) -> dict[str, Any]:
    agent = db.get(models.Agent, user_id)
    user = db.get(models.User, user_id)
    return {"key": key, "channel": channel, "to": user_id, "text": text,
            "contact": dict(agent.contact or {}) if agent else {},
            "name": (user.display_name or user.username) if user else str(user_id)}


def undelivered_notices(db: Session, ticket_id: int) -> list[dict[str, Any]]:
    """SLA notices recorded but not (yet) delivered — e.g. the worker died right after recording them."""
    events = db.scalars(select(models.TicketEvent).where(models.TicketEvent.ticket_id == ticket_id,
                                                         models.TicketEvent.kind == "notified")
                        .order_by(models.TicketEvent.id)).all()
    return [_notice_of(db, str(e.key), str(e.data["channel"]), int(e.data["to"]), str(e.data["text"]))
            for e in events if "delivery" not in (e.data or {}) and e.key]


def deliver_notice(notice: dict[str, Any], database_url: str | None) -> str:
    """Send an SLA notice to a staff member over the group's channel (WeCom by default); the status to record.

    On ``wecom`` the notice is a WeCom app message to the member the user is (activities/messaging/staff.py,
    as compliance alerts): the customer channel would look for a customer's external_userid and reach nobody.
    ``retry`` means WeCom was busy and nothing went out (the caller tries again). Other channels deliver to the
    agent's contact (``contact`` of their agent row) as before."""
    from activities.messaging import channels

    if notice["channel"] == "wecom":
        from activities.messaging.staff import send_app_message, wecom_member_of
        from engine.db.session import session_factory

        with session_factory(database_url)() as db:
            member = wecom_member_of(db, int(notice["to"]))
        if member is None:
            return f"skipped: {notice['name']} has no WeCom userid (link the member, or set the agent's contact)"
        connector_id, userid = member
        return send_app_message(database_url, [userid], notice["text"], connector_id).status
    deliver = channels.delivery(notice["channel"], database_url)
    if deliver is None:
        return "skipped: channel not configured"
    recipient = {"id": None, "name": notice["name"], **notice["contact"], "staff": True}
    try:
        deliver(recipient, notice["text"], notice["key"], {"category": "transactional", "to_staff": True})
    except Exception as exc:  # a notice that cannot be delivered is recorded, never retried forever
        log.warning("SLA notice %s not delivered: %s", notice["key"], type(exc).__name__)
        return f"failed: {type(exc).__name__}"
    return "sent"


def deliver_reply(database_url: str | None, ticket_id: int, event_id: int) -> str:
    """Send a public reply through the ticket's channel, once (keyed on the reply); returns what happened:
    ``sent``, ``failed``, or ``skipped: …`` when it cannot reach the customer (no customer, the channel not
    set up, no address of the customer on it) — the reply is on the ticket either way."""
    from activities.messaging import channels
    from activities.messaging.reach import reach
    from engine.customers import customer_view
    from engine.db.session import session_factory, transaction
    from engine.pii import mask_text

    key = f"ticket/{ticket_id}/reply/{event_id}"
    with transaction(database_url) as db:
        ticket = get_ticket(db, ticket_id)
        event = db.get(models.TicketEvent, event_id)
        assert event is not None
        if db.scalar(select(models.Message.id).where(models.Message.idempotency_key == key)):
            return str(event.data.get("delivery", "sent"))
        can = reach(db, ticket.customer_id, ticket.channel)
        if not can.ok:
            event.data = {**event.data, "delivery": can.status}
            if ticket.customer_id is not None:
                db.add(models.Message(idempotency_key=key, customer_id=ticket.customer_id, channel=ticket.channel,
                                      content=mask_text(event.body), status=can.status, category="transactional",
                                      workflow_id=ticket.workflow_id or None, created_at=event.at))
            return can.status
        db.add(models.Message(idempotency_key=key, customer_id=ticket.customer_id, channel=ticket.channel,
                              content=mask_text(event.body), status="sending", category="transactional",
                              workflow_id=ticket.workflow_id or None, created_at=event.at))
        channel, body, customer_id = ticket.channel, event.body, ticket.customer_id
    deliver = channels.delivery(channel, database_url)
    if deliver is None:  # unconfigured a moment ago
        status = "skipped: channel not configured"
    else:
        with session_factory(database_url)() as db:
            customer = customer_view(db, customer_id)
        try:
            deliver(customer, body, key, {"category": "transactional", "channel": channel})
            status = "sent"
        except Exception as exc:
            log.warning("ticket reply %s not delivered: %s", key, type(exc).__name__)
            status = "failed"
    with transaction(database_url) as db:
        db.query(models.Message).filter_by(idempotency_key=key).update({"status": status})
        found = db.get(models.TicketEvent, event_id)
        if found is not None:
            found.data = {**found.data, "delivery": status}
    return status


# -- review chains ------------------------------------------------------------------------------------


def _approver_id(db: Session, ticket: models.Ticket, approver: str) -> int | None:
    if approver == "supervisor":
        group = db.get(models.AgentGroup, ticket.group_key)
        return group.supervisor_id if group else None
    if approver.startswith("user:"):
        user = db.scalar(select(models.User).where(models.User.username == approver.removeprefix("user:")))
        return user.id if user else None
    return None


def review_rows(db: Session, ticket_id: int, chain: str | None = None, round_: int | None = None
                ) -> list[models.TicketReview]:
    """The steps of the latest round of ``chain`` (or of the ticket's latest review)."""
    query = select(models.TicketReview).where(models.TicketReview.ticket_id == ticket_id)
    latest = db.execute(query.order_by(models.TicketReview.id.desc()).limit(1)).scalars().first()
    if latest is None:
        return []
    chain = chain or latest.chain
    if round_ is None:
        round_ = db.scalar(select(func.max(models.TicketReview.round)).where(
            models.TicketReview.ticket_id == ticket_id, models.TicketReview.chain == chain)) or 1
    return list(db.scalars(query.where(models.TicketReview.chain == chain, models.TicketReview.round == round_)
                           .order_by(models.TicketReview.step).with_for_update(key_share=True)
                           .execution_options(populate_existing=True)).all())


def open_review(db: Session, ticket: models.Ticket, chain: str, round_: int, steps: Sequence[review.ReviewStep],
                now: datetime) -> list[models.TicketReview]:
    """Create the chain's steps for this round (once); the first one waits."""
    rows = review_rows(db, ticket.id, chain, round_)
    if rows:
        return rows
    start = review.start(len(steps))
    for index, (spec, status) in enumerate(zip(steps, start.statuses, strict=True)):
        db.add(models.TicketReview(
            ticket_id=ticket.id, chain=chain, round=round_, step=index, name=spec.name, approver=spec.approver,
            approver_id=_approver_id(db, ticket, spec.approver), status=status, timeout=spec.timeout,
            on_timeout=spec.on_timeout, started_at=now if status == "waiting" else None,
            due_at=now + parse_duration(spec.timeout) if status == "waiting" and spec.timeout else None))
    db.flush()
    record(db, ticket, "review_opened", now, "flow", key=f"review/{ticket.id}/{chain}/{round_}", chain=chain,
           round=round_, steps=[s.name for s in steps])
    return review_rows(db, ticket.id, chain, round_)


def _apply(db: Session, ticket: models.Ticket, rows: list[models.TicketReview], move: review.Transition,
           now: datetime) -> None:
    for row, status in zip(rows, move.statuses, strict=True):
        if status == "waiting" and row.status != "waiting":
            row.started_at, row.decided_at, row.decided_by, row.delegated_to = now, None, None, None
            row.due_at = now + parse_duration(row.timeout) if row.timeout else None
        row.status = status
    if move.outcome is not None:
        record(db, ticket, "review_outcome", now, "review", chain=rows[0].chain, round=rows[0].round,
               outcome=move.outcome)


def decide_review(db: Session, ticket: models.Ticket, step: int, decision: str, reason: str, user: models.User,
                  now: datetime) -> review.Transition:
    rows = review_rows(db, ticket.id)
    if not rows:
        raise TicketError(Msg("this ticket has no review"), Msg("reviews are opened by the ticket's flow"), "step", 404)
    if not 0 <= step < len(rows):
        raise TicketError(Msg("step %(value)s does not exist", value=step + 1), Msg("use a step from 1 to %(value)s",
                                                                                    value=len(rows)), "step", 404)
    row = rows[step]
    if not review.may_decide(user.id, user.role, user.username, row.approver, row.approver_id, row.delegated_to):
        raise TicketError(Msg("you are not the approver of step %(value)s (%(name)s)", value=step + 1, name=row.name),
                          Msg("the approver is %(approver)s; they may delegate it to you",
                              approver=row.approver), "step", 403)
    try:
        move = review.decide([r.status for r in rows], step, decision, reason)
    except review.ReviewError as exc:
        raise TicketError(exc.message, Msg("refresh the review and decide the waiting step"), "decision", 409) from None
    row.decided_by, row.decided_at, row.reason = user.id, now, stored(reason)  # the reviewer's words, kept as typed
    _apply(db, ticket, rows, move, now)
    record(db, ticket, f"review_{decision}", now, actor_of(user), body=reason, step=step + 1, name=row.name,
           chain=row.chain, round=row.round)
    audit_person(db, ticket, actor_of(user), "review_decided", {"step": step + 1, "status": "waiting"},
                 {"step": step + 1, "status": row.status, "decision": decision, "outcome": move.outcome},
                 name=row.name, chain=row.chain, round=row.round, reason=reason[:500])
    return move


def delegate_review(db: Session, ticket: models.Ticket, step: int, to_user: int, user: models.User,
                    now: datetime, reason: str = "") -> None:
    rows = review_rows(db, ticket.id)
    if not 0 <= step < len(rows) or rows[step].status != "waiting":
        raise TicketError(Msg("step %(value)s is not waiting for a decision", value=step + 1),
                          Msg("delegate the waiting step"), "step", 409)
    row = rows[step]
    if not review.may_decide(user.id, user.role, user.username, row.approver, row.approver_id, row.delegated_to):
        raise TicketError(Msg("you are not the approver of step %(value)s", value=step + 1),
                          Msg("only the approver may delegate"), "step",
                          403)
    if db.get(models.User, to_user) is None:
        raise TicketError(Msg("user %(to_user)s does not exist", to_user=to_user), Msg("pick an existing user"),
                          "delegate_to")
    before = row.delegated_to
    row.delegated_to = to_user
    record(db, ticket, "review_delegated", now, actor_of(user), body=reason, step=step + 1, to=to_user)
    audit_person(db, ticket, actor_of(user), "review_delegated", {"step": step + 1, "delegated_to": before},
                 {"step": step + 1, "delegated_to": to_user}, reason=reason[:500])


#: what a step that ran out of time says it did (its ``on_timeout``), kept translatable (wording.stored)
TIMEOUT_REASONS = {"reject": N_("no decision in time: rejected, as the step says on timeout"),
                   "approve": N_("no decision in time: approved, as the step says on timeout"),
                   "skip": N_("no decision in time: skipped, as the step says on timeout")}


def review_timeouts(db: Session, ticket: models.Ticket, rows: list[models.TicketReview], now: datetime
                    ) -> str | None:
    """Apply ``on_timeout`` to waiting steps past due; the chain's outcome if it now has one."""
    while True:
        current = review.waiting_step([r.status for r in rows])
        if current is None:
            return outcome_of(rows)
        row = rows[current]
        if row.due_at is None or row.due_at > now:
            return None
        move = review.time_out([r.status for r in rows], current, row.on_timeout)
        row.decided_at, row.reason = now, stored(Msg(TIMEOUT_REASONS.get(row.on_timeout, TIMEOUT_REASONS["reject"])))
        record(db, ticket, "review_timeout", now, "review", step=current + 1, name=row.name,
               on_timeout=row.on_timeout)
        _apply(db, ticket, rows, move, now)
        if move.outcome is not None:
            return move.outcome


def outcome_of(rows: Sequence[models.TicketReview]) -> str | None:
    statuses = [r.status for r in rows]
    if "waiting" in statuses:
        return None
    if "rejected" in statuses or (statuses and statuses[-1] == "timed_out" and rows[-1].on_timeout == "reject"):
        return "rejected"
    if any(r.status == "timed_out" and r.on_timeout == "reject" for r in rows):
        return "rejected"
    if statuses and statuses[0] == "sent_back" and all(s in ("sent_back", "queued") for s in statuses):
        return "sent_back"
    return "approved"


def review_view(rows: Sequence[models.TicketReview]) -> dict[str, Any]:
    return {
        "chain": rows[0].chain if rows else None, "round": rows[0].round if rows else None,
        "outcome": outcome_of(rows) if rows else None,
        "steps": [{"step": r.step + 1, "name": r.name, "approver": r.approver, "approver_id": r.approver_id,
                   "delegated_to": r.delegated_to, "status": r.status, "reason": stored_english(r.reason),
                   "decided_by": r.decided_by, "decided_at": r.decided_at.isoformat() if r.decided_at else None,
                   "due_at": r.due_at.isoformat() if r.due_at else None} for r in rows],
    }


# -- agent steps (ticket.step) ---------------------------------------------------------------------------


def open_step(db: Session, ticket: models.Ticket, key: str, node: str, name: str, instructions: str,
              outcomes: list[str], now: datetime) -> datetime:
    """Ask the agent for a step (once per key); when it was asked."""
    found = db.scalar(select(models.TicketEvent).where(models.TicketEvent.key == f"{key}/open"))
    if found is not None:
        return found.at
    record(db, ticket, "step_open", now, "flow", body=instructions, key=f"{key}/open", node=node, name=name,
           outcomes=outcomes)
    return now


def step_outcome(db: Session, key: str) -> str | None:
    done = db.scalar(select(models.TicketEvent).where(models.TicketEvent.key == f"{key}/done"))
    return str(done.data["outcome"]) if done is not None else None


def open_steps(db: Session, ticket_id: int) -> list[dict[str, Any]]:
    """Steps the flow is waiting on an agent for."""
    events = db.scalars(select(models.TicketEvent).where(
        models.TicketEvent.ticket_id == ticket_id, models.TicketEvent.kind.in_(("step_open", "step_done")))).all()
    done = {e.key.removesuffix("/done") for e in events if e.kind == "step_done" and e.key}
    return [{"step_id": e.id, "name": e.data.get("name"), "instructions": e.body,
             "outcomes": e.data.get("outcomes", []), "opened_at": e.at.isoformat()}
            for e in events if e.kind == "step_open" and e.key and e.key.removesuffix("/open") not in done]


def complete_step(db: Session, ticket: models.Ticket, step_id: int, outcome: str, note_text: str, now: datetime,
                  actor: str) -> None:
    opened = db.get(models.TicketEvent, step_id)
    if opened is None or opened.ticket_id != ticket.id or opened.kind != "step_open" or not opened.key:
        raise TicketError(Msg("step %(step_id)s is not a step of this ticket", step_id=step_id),
                          Msg("use a step_id from open_steps"), "step_id",
                          404)
    outcomes = list(opened.data.get("outcomes") or [])
    if outcome not in outcomes:
        raise TicketError(Msg("'%(outcome)s' is not an outcome of this step", outcome=outcome),
                          Msg("use one of: %(value)s", value=', '.join(outcomes)),
                          "outcome")
    key = opened.key.removesuffix("/open") + "/done"
    if db.scalar(select(models.TicketEvent.id).where(models.TicketEvent.key == key)):
        raise TicketError(Msg("this step is already done"), Msg("refresh the ticket"), "step_id", 409)
    record(db, ticket, "step_done", now, actor, body=note_text, key=key, name=opened.data.get("name"),
           outcome=outcome)
    audit_person(db, ticket, actor, "step_done", {"step": opened.data.get("name"), "outcome": None},
                 {"step": opened.data.get("name"), "outcome": outcome})


# -- sub-tasks -------------------------------------------------------------------------------------------


def create_subtasks(db: Session, parent: models.Ticket, tasks: Sequence[dict[str, Any]], now: datetime, actor: str,
                    key: str | None = None) -> list[models.Ticket]:
    """One sub-ticket per department (group) under ``parent``; once per ``key`` when given."""
    made: list[models.Ticket] = []
    for index, task in enumerate(tasks):
        child, created = create_ticket(
            db, type_key=str(task.get("type") or parent.type_key), subject=str(task.get("subject") or parent.subject),
            description=str(task.get("description") or ""), customer_id=parent.customer_id,
            group=str(task["group"]), priority=task.get("priority") or parent.priority,
            needs=list(task.get("needs") or []), source="subtask", channel=parent.channel, parent_id=parent.id,
            dedupe_key=f"{key}/{index}" if key else None, actor=actor, now=now, check_fields=False)
        if created and not task.get("type"):
            # a department's sub-task does not run the parent's flow: it is assigned in its group right away
            child.workflow_id = ""
            assign(db, child, now, actor)
        made.append(child)
    record(db, parent, "subtasks", now, actor, key=f"{key}/created" if key else None,
           children=[c.id for c in made])
    return made


def progress(db: Session, parent_id: int) -> dict[str, Any]:
    """The combined view: each sub-task's department, status and assignee, and how many are done."""
    children = db.scalars(select(models.Ticket).where(models.Ticket.parent_id == parent_id)
                          .order_by(models.Ticket.id)).all()
    done = sum(1 for c in children if c.status in ("resolved", "closed"))
    return {"total": len(children), "done": done,
            "percent": round(100 * done / len(children)) if children else 100,
            "subtasks": [{"id": c.id, "subject": c.subject, "group": c.group_key, "status": c.status,
                          "assignee_id": c.assignee_id, "priority": c.priority} for c in children]}


# -- the supervisor's view ---------------------------------------------------------------------------------


def summary(db: Session, now: datetime, groups: Sequence[str] | None = None) -> dict[str, Any]:
    """Queues (open / pending / unassigned per group), SLA risk and agent load."""
    query = select(models.Ticket).where(models.Ticket.status.in_(OPEN_STATUSES))
    if groups is not None:
        query = query.where(models.Ticket.group_key.in_(list(groups)))
    tickets = db.scalars(query).all()
    queues: dict[str, dict[str, int]] = {}
    at_risk: list[dict[str, Any]] = []
    horizon = now + timedelta(hours=1)
    for t in tickets:
        q = queues.setdefault(t.group_key, {"open": 0, "pending": 0, "unassigned": 0, "breached": 0})
        q[t.status] += 1
        if t.assignee_id is None:
            q["unassigned"] += 1
        state = sla.SlaState.load(t.sla)
        if any(k.endswith(":breach") for k in state.fired):
            q["breached"] += 1
        upcoming = [c for c in sla.pending(_checkpoints(t, state), state.fired) if c.stage == "breach"]
        if upcoming and upcoming[0].due is not None and upcoming[0].due <= horizon:
            at_risk.append({"id": t.id, "subject": t.subject, "group": t.group_key, "priority": t.priority,
                            "assignee_id": t.assignee_id, "metric": upcoming[0].metric,
                            "due": upcoming[0].due.isoformat()})
    agents = db.scalars(select(models.Agent).order_by(models.Agent.user_id)).all()
    if groups is not None:
        agents = [a for a in agents if set(a.groups or []) & set(groups)]
    current = loads(db, [a.user_id for a in agents])
    names = {u.id: u.display_name or u.username for u in db.scalars(select(models.User).where(
        models.User.id.in_([a.user_id for a in agents])))}
    return {"queues": queues, "sla_at_risk": sorted(at_risk, key=lambda r: r["due"]),
            "agents": [{"user_id": a.user_id, "name": names.get(a.user_id), "availability": a.availability,
                        "load": current[a.user_id], "capacity": a.capacity, "groups": list(a.groups or [])}
                       for a in agents]}
