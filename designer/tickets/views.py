"""What the agent console shows, as pure view helpers over tickets: the SLA badge (business time left or
over), a list row, a timeline line, the review panel, the customer and order panels, an agent's own
status. Text is gettext (:mod:`designer.i18n`), labels of statuses come from :mod:`designer.display`; the
rules they show (who may see, claim or decide)
come from :mod:`activities.tickets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.tickets import review, service, sla
from activities.tickets.calendar import business_time_between
from designer import i18n, reading
from designer.display import label
from designer.i18n import N_, _
from designer.permissions import TICKET_STAFF
from designer.tickets import labels as _labels  # noqa: F401  (assignment strategies, in words)
from engine import auth
from engine import read_policy as policy
from engine.customers import mask_identity
from engine.db import models
from engine.db.models import User
from engine.durations import parse_duration
from engine.pii import mask_text
from engine.read_policy import Access, MessageFacts, Reader

LIST_LIMIT = 200
#: the timeline's line for each kind of ticket event (``%(name)s``: the event's values)
TIMELINE: dict[str, str] = {
    "assigned": N_("Assigned to %(assignee)s (%(strategy)s)"),
    "claimed": N_("Claimed the ticket"),
    "created": N_("Created (queue %(group)s, %(priority)s)"),
    "csat": N_("Customer rating: %(score)s / 5"),
    "customer_message": N_("Customer wrote"),
    "escalated": N_("Escalated: %(steps)s"),
    "fields": N_("Fields changed: %(changed)s"),
    "note": N_("Internal note"),
    "notified": N_("Notified %(who)s (%(channel)s)"),
    "priority": N_("Priority: %(before)s → %(after)s"),
    "queued": N_("Waiting in queue %(group)s"),
    "reply": N_("Reply to the customer"),
    "review_approve": N_("%(step)s (%(name)s) approved"),
    "review_delegated": N_("%(step)s delegated to %(who)s"),
    "review_opened": N_("Review opened: %(steps)s"),
    "review_outcome": N_("Review outcome: %(outcome)s"),
    "review_reject": N_("%(step)s (%(name)s) rejected"),
    "review_send_back": N_("%(step)s (%(name)s) sent back"),
    "review_timeout": N_("%(step)s (%(name)s) timed out"),
    "routed": N_("Routed to %(group)s (%(priority)s)"),
    "sla_breach": N_("SLA breached: %(metric)s"),
    "sla_started": N_("SLA started"),
    "sla_warning": N_("SLA breaches soon: %(metric)s"),
    "status": N_("Status: %(before)s → %(after)s"),
    "step_done": N_("Step done: %(name)s → %(outcome)s"),
    "step_open": N_("Waiting for step: %(name)s"),
    "subtasks": N_("Sub-tasks created %(children)s"),
    "transferred": N_("Transferred to %(group)s%(assignee)s"),
}
#: a reply's delivery as the pages name it (the stored status → a short code with a text in both languages)
DELIVERY_CODES: dict[str, str] = {"sent": "sent", "queued": "queued", "failed": "failed",
                  "skipped: channel not configured": "not_configured", "skipped: no address": "no_address",
                  "skipped: no customer": "no_customer", "skipped: no channel": "no_channel"}


def delivery_code(status: str | None) -> str:
    return DELIVERY_CODES.get(status or "", "failed" if (status or "").startswith("failed") else "other")


def is_staff(user: User) -> bool:
    """Agents and supervisors work tickets (admin always may); approvers only decide reviews."""
    return auth.has_role(user, *TICKET_STAFF)


def duration_text(span: timedelta) -> str:
    """``1小时20分`` / ``1h 20m``; minutes under an hour, seconds under a minute."""
    seconds = int(abs(span.total_seconds()))
    if seconds >= 3600:
        return _("%(h)sh %(m)sm") % {"h": seconds // 3600, "m": seconds % 3600 // 60}
    if seconds >= 60:
        return _("%(m)s min") % {"m": seconds // 60}
    return _("%(s)s s") % {"s": seconds}


@dataclass(frozen=True)
class SlaBadge:
    """What the console shows for a ticket's SLA: ``state`` is none, paused, done, ok, warning or breached."""

    state: str
    text: str
    metric: str = ""
    due: datetime | None = None


def sla_badge(ticket: models.Ticket, now: datetime) -> SlaBadge:
    """The most urgent running SLA clock of ``ticket``: business time left (or over) to its breach."""
    state = sla.SlaState.load(ticket.sla)
    if not state.policy:
        return SlaBadge("none", _("no SLA"))
    if ticket.status in ("resolved", "closed"):
        breached = any(k.endswith(":breach") for k in state.fired)
        return SlaBadge("breached" if breached else "done", _("breached") if breached else _("stopped"))
    if state.paused:
        return SlaBadge("paused", _("paused"))
    points = [p for p in service.view(ticket)["sla"]["checkpoints"] if p["stage"] == "breach" and p["due"]]
    if not points:
        return SlaBadge("done", _("stopped"))
    point = min(points, key=lambda p: p["due"])
    due = datetime.fromisoformat(point["due"])
    metric = label(point["metric"], "sla_metric")
    calendar = sla.calendar_of(state.calendar)
    if point["fired"] or due <= now:
        over = business_time_between(calendar, due, now) if due <= now else timedelta(0)
        return SlaBadge("breached", _("%(left)s over") % {"left": duration_text(over)}, metric, due)
    left = business_time_between(calendar, now, due)
    warn_text = (state.policy or {}).get("warn_before")
    warn = _parse(warn_text) if warn_text else None
    warned = f"{point['key'].removesuffix(':breach')}:warning" in state.fired
    level = "warning" if warned or (warn is not None and left <= warn) else "ok"
    return SlaBadge(level, _("%(left)s left") % {"left": duration_text(left)}, metric, due)


def _parse(text: str) -> timedelta | None:
    try:
        return parse_duration(text)
    except ValueError:
        return None


def user_names(db: Session, ids: set[int]) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return {u.id: u.display_name or u.username for u in db.scalars(select(User).where(User.id.in_(ids)))}


def _actor(actor: str, names: dict[int, str]) -> str:
    if actor.startswith("user:") and actor[5:].isdigit():
        return names.get(int(actor[5:]), actor)
    return label(actor, "ticket_actor")


def queue_names(db: Session) -> dict[str, str]:
    """The queues (agent groups) by key, with their names."""
    return {g.key: g.name for g in db.scalars(select(models.AgentGroup).order_by(models.AgentGroup.key))}


def customer_names(db: Session, tickets: Sequence[models.Ticket], reader: Reader) -> dict[str, str]:
    """The tickets' customers' names as ``reader`` may see them (the read policy)."""
    wanted = {t.customer_id for t in tickets if t.customer_id}
    if not wanted:
        return {}
    return reading.names_for(db, reader, {str(i): str(n) for i, n in db.execute(
        select(models.Customer.id, models.Customer.name).where(models.Customer.id.in_(wanted))).all() if n})


#: timeline entries whose text is the customer's or a message to them: shown as the read policy says
MESSAGE_KINDS = {"reply": "out", "customer_message": "in", "csat": "in"}


def message_access(db: Session, reader: Reader, ticket: models.Ticket) -> dict[str, Access]:
    """How much of the ticket's messages (its replies, the customer's messages) ``reader`` may read — an
    approver outside the ticket's group (finance) decides from its fields and amounts, not its messages."""
    groups = reading.customer_groups(db, [ticket.customer_id]).get(ticket.customer_id or "", frozenset()) \
        if ticket.customer_id and reader.role == "agent" else frozenset()
    return {kind: policy.message_access(reader, MessageFacts(direction=direction, ticket_group=ticket.group_key,
                                                             ticket_assignee=ticket.assignee_id,
                                                             customer_groups=groups))
            for kind, direction in MESSAGE_KINDS.items()}


def ticket_row(ticket: models.Ticket, user: User, my_groups: Sequence[str] | None,
               names: dict[int, str], customers: dict[str, str], now: datetime) -> dict[str, Any]:
    """One line of a ticket list."""
    mine = ticket.assignee_id == user.id
    in_group = my_groups is None or ticket.group_key in my_groups
    return {"ticket": ticket, "sla": sla_badge(ticket, now), "mine": mine,
            "assignee": names.get(ticket.assignee_id) if ticket.assignee_id is not None else None,
            "customer": customers.get(ticket.customer_id or ""),
            "may_claim": (is_staff(user) and in_group and not mine and ticket.status in service.OPEN_STATUSES)}


def waiting_reviews(db: Session, user: User) -> list[dict[str, Any]]:
    rows = db.scalars(select(models.TicketReview).where(models.TicketReview.status == "waiting")
                      .order_by(models.TicketReview.started_at, models.TicketReview.id).limit(LIST_LIMIT)).all()
    mine = [r for r in rows if review.may_decide(user.id, user.role, user.username, r.approver, r.approver_id,
                                                 r.delegated_to)]
    tickets = {t.id: t for t in db.scalars(select(models.Ticket).where(
        models.Ticket.id.in_([r.ticket_id for r in mine])))} if mine else {}
    return [{"row": r, "ticket": tickets[r.ticket_id]} for r in mine if r.ticket_id in tickets]


def agent_me(db: Session, user: User) -> dict[str, Any] | None:
    """The user as an agent: availability, load against capacity (in their first queue), queues."""
    agent = db.get(models.Agent, user.id)
    if agent is None:
        return None
    capacity = service.capacity_of(db, agent, first_queue(agent))
    return {"availability": agent.availability, "load": service.loads(db, [user.id])[user.id],
            "capacity": capacity, "groups": list(agent.groups or [])}


def first_queue(agent: models.Agent | None) -> str | None:
    """The queue an agent's capacity is shown against: their first group."""
    return str(agent.groups[0]) if agent is not None and agent.groups else None


def timeline_entry(event: models.TicketEvent, names: dict[int, str], groups: dict[str, str],
                   access: dict[str, Access] | None = None) -> dict[str, Any]:
    """One line of the timeline: who, when, what (localised), the text if any, public or internal; a
    message's text only when ``access`` (:func:`message_access`) lets the reader read it."""
    data = dict(event.data or {})

    def group(key: Any) -> str:
        return groups.get(str(key), str(key)) if key else ""

    def person(uid: Any) -> str:
        return names.get(int(uid), str(uid)) if isinstance(uid, int) else (str(uid) if uid else "")

    step = _("Level %(n)s") % {"n": data.get("step", "?")}
    values: dict[str, Any] = {
        "group": group(data.get("group")), "priority": data.get("priority", ""),
        "assignee": person(data.get("assignee_id")),
        "strategy": label(data["strategy"], "assignment_strategy") if data.get("strategy") else "",
        "before": label(data.get("before"), "ticket_status"), "after": label(data.get("after"), "ticket_status"),
        "changed": ", ".join(str(c) for c in data.get("changed") or []),
        "metric": label(data.get("metric"), "sla_metric"),
        "steps": i18n.listing([label(s, "escalation") for s in data.get("steps") or []]),
        "who": person(data.get("to")) if isinstance(data.get("to"), int) else (data.get("username") or ""),
        "channel": data.get("channel", ""), "step": step, "name": data.get("name", ""),
        "outcome": label(data.get("outcome"), "review_outcome"),
        "children": " ".join(f"#{c}" for c in data.get("children") or []), "score": data.get("score", ""),
        "kind": event.kind,
    }
    if event.kind == "priority":
        values["before"], values["after"] = data.get("before", ""), data.get("after", "")
    if event.kind == "transferred" and data.get("assignee_id") is not None:
        values["assignee"] = " · " + person(data.get("assignee_id"))
    if event.kind == "review_opened":
        values["steps"] = " → ".join(str(s) for s in data.get("steps") or [])
    if event.kind == "step_done":
        values["outcome"] = data.get("outcome", "")
    template = TIMELINE.get(event.kind)
    line = _(template) % values if template else event.kind.replace("_", " ")
    css = {"reply": "public", "customer_message": "customer", "note": "internal", "sla_warning": "warning",
           "sla_breach": "breach", "escalated": "breach", "review_reject": "breach", "csat": "public"}
    body = event.body if event.kind in ("reply", "customer_message", "note", "transferred", "status",
                                        "review_reject", "review_send_back", "review_approve",
                                        "review_delegated", "step_done") else ""
    if event.kind == "csat":
        body = str(data.get("comment") or "")
    if access is not None and event.kind in MESSAGE_KINDS and body and access[event.kind] is not Access.CLEAR:
        body = _("(your role may not read message content)")
    return {"id": event.id, "at": event.at, "kind": event.kind, "label": line, "body": mask_text(body),
            "actor": _actor(event.actor, names), "public": event.public, "css": css.get(event.kind, ""),
            "delivery": delivery_code(data.get("delivery")) if event.kind == "reply" and data.get("delivery") else None}


def _approver_text(approver: str) -> str:
    if approver == "supervisor":
        return _("queue supervisor")
    if approver.startswith("role:"):
        role = approver.removeprefix("role:")
        return _("role: %(role)s") % {"role": label(role, "role")}
    return _("user: %(user)s") % {"user": approver.removeprefix("user:")}


def review_panel(db: Session, user: User, ticket_id: int) -> dict[str, Any] | None:
    rows = service.review_rows(db, ticket_id)
    if not rows:
        return None
    people = user_names(db, {x for r in rows for x in (r.approver_id, r.decided_by, r.delegated_to) if x is not None})
    steps = []
    for r in rows:
        may = r.status == "waiting" and review.may_decide(user.id, user.role, user.username, r.approver,
                                                          r.approver_id, r.delegated_to)
        steps.append({"row": r, "n": r.step + 1, "approver": _approver_text(r.approver),
                      "approver_name": people.get(r.approver_id) if r.approver_id else None,
                      "decided_by": people.get(r.decided_by) if r.decided_by else None,
                      "delegated_to": people.get(r.delegated_to) if r.delegated_to else None,
                      "status_text": label(r.status, "review_status"), "may_decide": may})
    outcome = service.outcome_of(rows)
    delegates = [{"id": u.id, "name": u.display_name or u.username, "role": u.role}
                 for u in db.scalars(select(User).where(User.role.in_(("ops", "finance", "agent", "admin")),
                                                        User.disabled_at.is_(None), User.id != user.id)
                                     .order_by(User.username))]
    return {"round": rows[0].round, "chain": rows[0].chain, "steps": steps, "outcome": outcome,
            "outcome_text": label(outcome, "review_outcome") if outcome else "",
            "delegates": delegates}


def customer_panel(db: Session, ticket: models.Ticket, reader: Reader) -> dict[str, Any] | None:
    if not ticket.customer_id:
        return None
    customer = db.get(models.Customer, ticket.customer_id)
    if customer is None:
        return None
    identities = [{"kind": i.kind, "value": mask_identity(i.kind, i.value)}
                  for i in db.scalars(select(models.Identity).where(models.Identity.customer_id == customer.id)
                                      .order_by(models.Identity.kind))]
    tags = list(db.scalars(select(models.CustomerTag.tag).where(models.CustomerTag.customer_id == customer.id)
                           .order_by(models.CustomerTag.tag)))
    attributes = dict(customer.attributes or {})
    name = reading.customer_for(db, reader, customer.id, {"name": customer.name or ""})["name"]
    return {"id": customer.id, "name": name, "identities": identities, "tags": tags,
            "vip": attributes.get("vip_level")}


def order_panel(db: Session, ticket: models.Ticket) -> dict[str, Any]:
    order = refund = None
    if ticket.order_id and ticket.order_channel and ticket.order_shop:
        order = db.scalar(select(models.Order).where(models.Order.channel == ticket.order_channel,
                                                     models.Order.shop == ticket.order_shop,
                                                     models.Order.order_id == ticket.order_id))
    if ticket.refund_id and ticket.order_channel and ticket.order_shop:
        refund = db.scalar(select(models.Refund).where(models.Refund.channel == ticket.order_channel,
                                                       models.Refund.shop == ticket.order_shop,
                                                       models.Refund.refund_id == ticket.refund_id))
    return {"order": order, "refund": refund}
