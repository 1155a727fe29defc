"""The agent console (坐席工作台): server-rendered ticket pages for agents, supervisors and approvers.

- ``/tickets`` — my queue: tickets assigned to me and unassigned ones in my groups' queues, with
  filters, SLA badges (business time left, warning / breached) and claim buttons (htmx, or plain
  forms without JavaScript); the review steps waiting for my decision; my availability (online / away).
- ``/tickets/{id}`` — one ticket: customer (masked), linked order and refund, custom fields, the
  timeline (public replies, internal notes, every change, SLA warnings and escalations), reply and
  note boxes, priority / status / transfer / resolve, the review chain (approve / reject / send back
  with a reason, delegate), the flow's open steps and the sub-tasks with their combined progress.
- ``/tickets/supervisor`` — queues with counts, SLA risk and agent load against capacity (ops, admin).

The satisfaction survey's public pages are :mod:`designer.tickets.csat`; what a ticket looks like on a
page (SLA badge, rows, timeline, panels) is :mod:`designer.tickets.views`.

Every change goes through :mod:`activities.tickets.service` (the same functions the JSON API calls),
then the ticket's workflow gets the ``changed`` signal so SLA deadlines and waiting nodes look again.
Isolation is the API's: an agent asking for a ticket of a group they are not in gets the same 404 as
for a ticket that does not exist. Approvers outside the group (finance) see the tickets whose review
involves them (:func:`activities.tickets.service.may_review`), and may only decide.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from activities.messaging.reach import reach
from activities.tickets import service
from activities.tickets.fields import FieldProblem
from activities.tickets.service import TicketError
from designer import i18n, reading
from designer.auth import get_db_url, safe_next
from designer.display import label
from designer.i18n import _, ngettext, translate
from designer.pages import PageProblem, PageRoute, page_user, render, see_other, with_query
from designer.permissions import CUSTOMER_READERS, TICKET_REVIEWERS, TICKET_STAFF, TICKET_SUPERVISORS
from designer.tickets import labels as _labels  # noqa: F401  (reply delivery and reach, in words)
from designer.tickets.csat import answer_of, csat_url
from designer.tickets.views import (
    DELIVERY_CODES,
    LIST_LIMIT,
    agent_me,
    customer_names,
    customer_panel,
    delivery_code,
    first_queue,
    is_staff,
    message_access,
    order_panel,
    queue_names,
    review_panel,
    sla_badge,
    ticket_row,
    timeline_entry,
    user_names,
    waiting_reviews,
)
from designer.tickets.workflow import changed, offered, start
from engine import auth
from engine.db import models
from engine.db.models import User, utcnow
from engine.db.session import session_factory, transaction
from engine.text import Msg

STATUS_FILTERS = ("active", "open", "pending", "resolved", "closed", "all")
SCOPES = ("mine", "groups")
AVAILABILITY = ("online", "away", "offline")
NOTICES = frozenset({"claimed", "replied", "noted", "status", "priority", "transferred", "resolved", "decided",
                     "delegated", "step", "subtasks", "fields", "availability"})

router = APIRouter(route_class=PageRoute, include_in_schema=False)
DbUrl = Annotated[str, Depends(get_db_url)]
Console = Annotated[User, Depends(page_user(*TICKET_REVIEWERS))]
Agent = Annotated[User, Depends(page_user(*TICKET_STAFF))]
Supervisor = Annotated[User, Depends(page_user(*TICKET_SUPERVISORS))]


# --- who sees what -----------------------------------------------------------------------------------


def _ticket_for(db: Session, user: User, ticket_id: int, lock: bool = False) -> tuple[models.Ticket, bool]:
    """The ticket and whether the user may work it (else they only decide its review). 404 page when
    they may not see it at all — the same answer as for a ticket that does not exist."""
    try:
        ticket = service.get_ticket(db, ticket_id, lock=lock)
    except TicketError:
        raise _unknown(user, ticket_id) from None
    if is_staff(user) and service.may_see(db, user, ticket):
        return ticket, True
    if service.may_review(user, service.review_rows(db, ticket_id)):
        return ticket, False
    raise _unknown(user, ticket_id)


def _unknown(user: User, ticket_id: int) -> PageProblem:
    return PageProblem(404, user, _("Not found"), _("There is no ticket #%(id)s.") % {"id": ticket_id},
                       back="/tickets")


def _problem(user: User, exc: TicketError | FieldProblem, back: str) -> PageProblem:
    """A refused change as the problem page, in the user's language (worded for the cases agents meet)."""
    status = exc.status if isinstance(exc, TicketError) else 422
    title = _("Cannot do that")
    if exc.field == "capacity":
        return PageProblem(status, user, title,
                           _("You already hold as many open tickets as your capacity allows."),
                           _("Resolve or transfer one first."), back=back)
    if exc.field == "body":
        return PageProblem(status, user, title, _("The text is empty."), _("Write something, then send it."),
                           back=back)
    if isinstance(exc, TicketError) and exc.field == "decision" and "reason" in exc.message:
        return PageProblem(status, user, title, _("Rejecting or sending back needs a reason."),
                           _("Write the reason in the reason box, then decide again."), back=back)
    if isinstance(exc, TicketError) and exc.field == "step" and status == 403:
        return PageProblem(status, user, title, _("You are not the approver of this level."),
                           _("Its approver decides it, or delegates it to you."), back=back)
    if isinstance(exc, TicketError) and exc.field == "id" and status == 403:
        return PageProblem(status, user, title, _("The ticket is not in one of your queues."),
                           _("Ask a supervisor to transfer it to your queue."), back=back)
    return PageProblem(status, user, title, _("That did not work: %(detail)s") % {"detail": translate(exc.message)},
                       translate(exc.fix) if exc.fix else "", back=back)


def _notice(request: Request) -> str | None:
    """The sentence for ``?done=`` after an action (never free text from the URL)."""
    notice = request.query_params.get("done")
    if notice in ("replied", "resolved") and request.query_params.get("delivery", "sent") != "sent":
        return None  # not sent: :func:`_delivery_warning` says so instead
    if notice == "availability" and (request.query_params.get("id") or "0") != "0":
        offered = int(request.query_params.get("id", "0")) if request.query_params.get("id", "").isdigit() else 0
        return ngettext("You are online: %(num)s queued ticket was assigned to an agent.",
                        "You are online: %(num)s queued tickets were assigned to agents.", offered) % {"num": offered}
    if notice not in NOTICES:
        return None
    texts = {
        "availability": _("Your status is updated."), "claimed": _("You claimed ticket #%(id)s."),
        "decided": _("Your review decision is recorded."), "delegated": _("Delegated."),
        "fields": _("Fields saved."), "noted": _("Note added."), "priority": _("Priority changed."),
        "replied": _("Reply sent to the customer."), "resolved": _("Ticket resolved."),
        "status": _("Status changed."), "step": _("Step done."), "subtasks": _("Sub-task created."),
        "transferred": _("Transferred."),
    }
    text = texts[notice]
    return text % {"id": request.query_params.get("id", "")} if "%(id)s" in text else text


def _delivery_warning(request: Request) -> str | None:
    """After a reply (or a resolution with the survey message) that did not reach the customer: what happened."""
    code = request.query_params.get("delivery")
    if request.query_params.get("done") in ("replied", "resolved") and code in {*DELIVERY_CODES.values(), "other"} \
            and code != "sent":
        return _("The reply is on the ticket, but it did not reach the customer: %(reason)s") % {
            "reason": label(code, "reply_delivery")}
    return None


def _change(db_url: str, user: User, ticket_id: int, work: Callable[[Session, models.Ticket], Any],
            staff_only: bool = True) -> tuple[Any, int | None]:
    """Run ``work`` on the (locked, visible) ticket in one transaction; the result and the parent id."""
    back = f"/tickets/{ticket_id}"
    try:
        with transaction(db_url) as db:
            ticket, may_work = _ticket_for(db, user, ticket_id, lock=True)
            if staff_only and not may_work:
                raise _unknown(user, ticket_id)
            return work(db, ticket), ticket.parent_id
    except (TicketError, FieldProblem) as exc:
        raise _problem(user, exc, back) from None


async def _act(request: Request, db_url: str, user: User, ticket_id: int, what: str,
               work: Callable[[Session, models.Ticket], Any], staff_only: bool = True) -> Any:
    result, parent = await run_in_threadpool(_change, db_url, user, ticket_id, work, staff_only)
    await changed(request, ticket_id, what, parent)
    return result


def _back(ticket_id: int, done: str, delivery: str | None = None) -> Response:
    path = f"/tickets/{ticket_id}?done={done}"
    return see_other(with_query(path, delivery=delivery_code(delivery)) if delivery else path)


# --- the queue ----------------------------------------------------------------------------------------


def _queue_context(request: Request, user: User, db_url: str, status: str, priority: str, queue: str,
                   scope: str) -> dict[str, Any]:
    now = utcnow()
    with session_factory(db_url)() as db:
        groups = queue_names(db)
        my_groups = service.queues_of(db, user)
        rows: list[dict[str, Any]] = []
        total = 0
        if is_staff(user):
            query = select(models.Ticket)
            visible = models.Ticket.assignee_id == user.id
            if my_groups is not None:
                in_groups = models.Ticket.group_key.in_(my_groups)
            else:
                in_groups = models.Ticket.group_key.is_not(None)
            if scope == "groups":
                query = query.where(in_groups | visible)
            else:
                query = query.where(visible | (in_groups & models.Ticket.assignee_id.is_(None)))
            if status == "active":
                query = query.where(models.Ticket.status.in_(service.OPEN_STATUSES))
            elif status != "all":
                query = query.where(models.Ticket.status == status)
            if priority:
                query = query.where(models.Ticket.priority == priority)
            if queue:
                query = query.where(models.Ticket.group_key == queue)
            tickets = list(db.scalars(query.order_by(models.Ticket.priority, models.Ticket.id.desc())
                                      .limit(LIST_LIMIT)))
            total = len(tickets)
            names = user_names(db, {t_.assignee_id for t_ in tickets if t_.assignee_id is not None})
            customers = customer_names(db, tickets, reading.reader_of(db, user))
            rows = [ticket_row(x, user, my_groups, names, customers, now) for x in tickets]
        reviews = waiting_reviews(db, user)
        me = agent_me(db, user)
    shown_groups = {k: v for k, v in groups.items() if my_groups is None or k in my_groups}
    return {"rows": rows, "total": total, "reviews": reviews, "me": me, "groups": shown_groups,
            "all_groups": groups, "status": status, "priority": priority, "queue": queue, "scope": scope,
            "statuses": STATUS_FILTERS, "priorities": service.PRIORITIES, "scopes": SCOPES,
            "is_staff": is_staff(user), "is_supervisor": auth.has_role(user, *TICKET_SUPERVISORS),
            "availabilities": AVAILABILITY, "notice": _notice(request)}


@router.get("/tickets", response_class=HTMLResponse)
def queue_page(request: Request, user: Console, db_url: DbUrl, status: str = "active", priority: str = "",
               queue: str = "", scope: str = "mine") -> HTMLResponse:
    """My queue: assigned to me and unassigned in my groups' queues; reviews waiting for me."""
    status = status if status in STATUS_FILTERS else "active"
    priority = priority if priority in service.PRIORITIES else ""
    scope = scope if scope in SCOPES else "mine"
    context = _queue_context(request, user, db_url, status, priority, queue.strip()[:60], scope)
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "tk-list":
        return render(request, user, "tickets/list.html", **context)
    return render(request, user, "tickets/queue.html", **context)


@router.post("/tickets/{ticket_id}/claim", response_class=HTMLResponse)
async def claim(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
                back: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Take the ticket. htmx gets the ticket's row back; a plain form goes back where it came from."""
    await _act(request, db_url, user, ticket_id, "claim", lambda db, tk: service.claim(db, tk, user, utcnow()))
    if request.headers.get("HX-Request"):
        with session_factory(db_url)() as db:
            ticket = service.get_ticket(db, ticket_id)
            row = ticket_row(ticket, user, service.queues_of(db, user), user_names(db, {user.id}),
                             customer_names(db, [ticket], reading.reader_of(db, user)), utcnow())
            groups = queue_names(db)
        return render(request, user, "tickets/row.html", row=row, groups=groups)
    target = safe_next(back) if back else f"/tickets/{ticket_id}"
    return see_other(with_query(target, done="claimed", id=str(ticket_id)))


@router.post("/tickets/me/availability", response_class=HTMLResponse)
async def set_availability(request: Request, user: Console, db_url: DbUrl,
                           availability: Annotated[str, Form(max_length=20)] = "",
                           back: Annotated[str, Form(max_length=2000)] = "/tickets") -> Response:
    """Online / away / offline: only online agents get new tickets. Coming online, the tickets queued in
    the agent's groups meanwhile are offered again."""
    if availability not in AVAILABILITY:
        raise PageProblem(422, user, _("Cannot do that"), _("Choose online, away or offline."),
                          _("Only online agents get new tickets assigned."), back="/tickets")

    def work() -> None:
        with transaction(db_url) as db:
            agent = db.get(models.Agent, user.id)
            if agent is None:
                raise PageProblem(404, user, _("Not found"), _("You are not set up as an agent."),
                                  _("Ask a supervisor to add you to an agent group."), back="/tickets")
            if agent.availability != availability:
                auth.audit(db, user, "agent.availability", f"user:{user.username}", {},
                           before={"availability": agent.availability}, after={"availability": availability})
            agent.availability, agent.updated_at = availability, utcnow()

    await run_in_threadpool(work)
    offered_ids = await offered(request, db_url, user.id) if availability == "online" else []
    if request.headers.get("HX-Request"):
        with session_factory(db_url)() as db:
            me = agent_me(db, user)
        answer = render(request, user, "tickets/availability.html", me=me, availabilities=AVAILABILITY,
                        offered=len(offered_ids))
        if offered_ids:
            answer.headers["HX-Trigger"] = "tickets-changed"  # the list shows the tickets just offered
        return answer
    return see_other(with_query(safe_next(back), done="availability", id=str(len(offered_ids))))


# --- the supervisor's view ------------------------------------------------------------------------------


@router.get("/tickets/supervisor", response_class=HTMLResponse)
def supervisor_page(request: Request, user: Supervisor, db_url: DbUrl) -> HTMLResponse:
    """Queues with counts, SLA risk (due within the hour or breached) and agent load vs capacity."""
    now = utcnow()
    with session_factory(db_url)() as db:
        summary = service.summary(db, now)
        groups = queue_names(db)
        risk_ids = [r["id"] for r in summary["sla_at_risk"]]
        breached = [x for x in db.scalars(select(models.Ticket).where(
            models.Ticket.status.in_(service.OPEN_STATUSES))) if sla_badge(x, now).state == "breached"]
        wanted = {x.id for x in breached} | set(risk_ids)
        tickets = {x.id: x for x in db.scalars(select(models.Ticket).where(models.Ticket.id.in_(wanted)))} \
            if wanted else {}
        names = user_names(db, {x.assignee_id for x in tickets.values() if x.assignee_id is not None})
        reader = reading.reader_of(db, user)
        risk = sorted((ticket_row(x, user, None, names, customer_names(db, [x], reader), now)
                       for x in tickets.values()),
                      key=lambda r: (r["sla"].due or now))
        agents = summary["agents"]
        for agent in agents:
            row = db.get(models.Agent, agent["user_id"])
            agent["capacity"] = service.capacity_of(db, row, first_queue(row)) if row is not None else 10
            agent["percent"] = min(100, round(100 * agent["load"] / agent["capacity"])) if agent["capacity"] else 0
    queues = [{"key": k, "name": groups.get(k, k), **v} for k, v in sorted(summary["queues"].items())]
    return render(request, user, "tickets/supervisor.html", queues=queues, risk=risk, agents=agents,
                   groups=groups, is_staff=True, is_supervisor=True, notice=_notice(request))


# --- one ticket ---------------------------------------------------------------------------------------


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(request: Request, ticket_id: int, user: Console, db_url: DbUrl) -> HTMLResponse:
    """One ticket: customer, order, fields, timeline, actions, review chain, steps and sub-tasks."""
    now = utcnow()
    with session_factory(db_url)() as db:
        ticket, may_work = _ticket_for(db, user, ticket_id)
        events = list(db.scalars(select(models.TicketEvent).where(models.TicketEvent.ticket_id == ticket_id)
                                 .order_by(models.TicketEvent.at, models.TicketEvent.id)))
        ids: set[int] = {ticket.assignee_id} if ticket.assignee_id is not None else set()
        for e in events:
            if e.actor.startswith("user:") and e.actor[5:].isdigit():
                ids.add(int(e.actor[5:]))
            for k in ("assignee_id", "to", "previous"):
                if isinstance((e.data or {}).get(k), int):
                    ids.add(int(e.data[k]))
        names = user_names(db, ids)
        groups = queue_names(db)
        reader = reading.reader_of(db, user)
        access = message_access(db, reader, ticket)  # an approver outside the group: messages as metadata
        kind = db.get(models.TicketType, ticket.type_key)
        field_defs = list(kind.fields or []) if kind else []
        progress = service.progress(db, ticket_id)
        sub_names = user_names(db, {s["assignee_id"] for s in progress["subtasks"] if s["assignee_id"] is not None})
        for s in progress["subtasks"]:
            s["assignee"] = sub_names.get(s["assignee_id"]) if s["assignee_id"] is not None else None
            s["group_name"] = groups.get(s["group"], s["group"])
        agents = []
        if may_work:
            everyone = db.scalars(select(models.Agent).order_by(models.Agent.user_id)).all()
            agent_names = user_names(db, {a.user_id for a in everyone})
            agents = [{"id": a.user_id, "name": agent_names.get(a.user_id, str(a.user_id)),
                       "groups": list(a.groups or [])} for a in everyone]
        context = {
            "ticket": ticket, "may_work": may_work, "kind": kind, "badge": sla_badge(ticket, now),
            "timeline": [timeline_entry(e, names, groups, access) for e in events],
            "assignee": names.get(ticket.assignee_id) if ticket.assignee_id is not None else None,
            "customer": customer_panel(db, ticket, reader), **order_panel(db, ticket),
            "fields": [{"key": f.get("key"), "label": f.get("label") or f.get("key"), "type": f.get("type", "text"),
                        "choices": f.get("choices") or [], "value": (ticket.fields or {}).get(f.get("key"))}
                       for f in field_defs],
            "extra_fields": {k: v for k, v in (ticket.fields or {}).items()
                             if k not in {f.get("key") for f in field_defs}},
            "review": review_panel(db, user, ticket_id), "steps": service.open_steps(db, ticket_id),
            "progress": progress, "csat": answer_of(db, ticket_id), "groups": groups, "agents": agents,
            "group_name": groups.get(ticket.group_key, ticket.group_key),
            "parent": db.get(models.Ticket, ticket.parent_id) if ticket.parent_id else None,
            "may_claim": may_work and ticket.assignee_id != user.id and ticket.status in service.OPEN_STATUSES,
            "is_open": ticket.status in service.OPEN_STATUSES, "statuses": service.STATUSES,
            "priorities": service.PRIORITIES, "me": agent_me(db, user), "availabilities": AVAILABILITY,
            "is_staff": is_staff(user), "is_supervisor": auth.has_role(user, *TICKET_SUPERVISORS),
            "may_see_customers": auth.has_role(user, *CUSTOMER_READERS),
            "csat_sent": any(e.kind == "reply" and (e.data or {}).get("csat") for e in events),
            "reach": reach(db, ticket.customer_id, ticket.channel),
        }
    return render(request, user, "tickets/detail.html", notice=_notice(request),
                  warning=_delivery_warning(request), **context)


@router.post("/tickets/{ticket_id}/reply", response_class=HTMLResponse)
async def reply(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
                body: Annotated[str, Form(max_length=20000)] = "") -> Response:
    """A public reply, sent to the customer through the ticket's channel (once)."""
    event_id = await _act(request, db_url, user, ticket_id, "reply",
                          lambda db, tk: service.reply(db, tk, body, utcnow(), service.actor_of(user)).id)
    delivered = await run_in_threadpool(service.deliver_reply, db_url, ticket_id, event_id)
    return _back(ticket_id, "replied", delivered)  # the page says what really happened to it


@router.post("/tickets/{ticket_id}/note", response_class=HTMLResponse)
async def note(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
               body: Annotated[str, Form(max_length=20000)] = "") -> Response:
    """An internal note: never sent to the customer."""
    await _act(request, db_url, user, ticket_id, "note",
               lambda db, tk: service.note(db, tk, body, utcnow(), service.actor_of(user)))
    return _back(ticket_id, "noted")


@router.post("/tickets/{ticket_id}/priority", response_class=HTMLResponse)
async def priority(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
                   value: Annotated[str, Form(alias="priority", max_length=4)] = "") -> Response:
    """A new priority: the SLA deadlines follow."""
    await _act(request, db_url, user, ticket_id, "priority",
               lambda db, tk: service.set_priority(db, tk, value, utcnow(), service.actor_of(user)))
    return _back(ticket_id, "priority")


@router.post("/tickets/{ticket_id}/status", response_class=HTMLResponse)
async def status(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
                 value: Annotated[str, Form(alias="status", max_length=12)] = "",
                 reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """open / pending (waiting on the customer: the SLA clocks pause) / resolved / closed."""
    await _act(request, db_url, user, ticket_id, "status",
               lambda db, tk: service.set_status(db, tk, value, utcnow(), service.actor_of(user), reason))
    return _back(ticket_id, "status")


@router.post("/tickets/{ticket_id}/transfer", response_class=HTMLResponse)
async def transfer(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
                   group: Annotated[str, Form(max_length=60)] = "",
                   assignee: Annotated[str, Form(max_length=20)] = "",
                   note_text: Annotated[str, Form(alias="note", max_length=2000)] = "") -> Response:
    """Another queue and/or agent. An agent who hands the ticket to another queue no longer sees it."""
    assignee_id = int(assignee) if assignee.strip().isdigit() else None
    await _act(request, db_url, user, ticket_id, "transfer", lambda db, tk: service.transfer(
        db, tk, utcnow(), service.actor_of(user), group.strip() or None, assignee_id, note_text))
    with session_factory(db_url)() as db:
        still = service.may_see(db, user, service.get_ticket(db, ticket_id))
    if not still:
        return see_other(with_query("/tickets", done="transferred", id=str(ticket_id)))
    return _back(ticket_id, "transferred")


@router.post("/tickets/{ticket_id}/resolve", response_class=HTMLResponse)
async def resolve(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
                  reason: Annotated[str, Form(max_length=2000)] = "",
                  survey: Annotated[str, Form(max_length=10)] = "") -> Response:
    """Resolve; with ``survey``, the resolution message to the customer carries the rating link."""
    link = csat_url(request, ticket_id)
    with i18n.language("zh-CN"):  # customers get Chinese (the shops' language), whoever resolves
        survey_text = _("Your ticket #%(id)s is resolved. Please rate our service: %(url)s") % {"id": ticket_id,
                                                                                               "url": link}

    def work(db: Session, ticket: models.Ticket) -> int | None:
        now = utcnow()
        sent: int | None = None
        if survey and ticket.customer_id and ticket.status not in ("resolved", "closed"):
            made = service.reply(db, ticket, survey_text, now, service.actor_of(user))
            made.data = {**made.data, "csat": True}
            sent = made.id
        service.set_status(db, ticket, "resolved", now, service.actor_of(user), reason)
        return sent

    event_id = await _act(request, db_url, user, ticket_id, "status", work)
    delivered = None
    if event_id is not None:
        delivered = await run_in_threadpool(service.deliver_reply, db_url, ticket_id, event_id)
    return _back(ticket_id, "resolved", delivered)


@router.post("/tickets/{ticket_id}/fields", response_class=HTMLResponse)
async def fields(request: Request, ticket_id: int, user: Agent, db_url: DbUrl) -> Response:
    """Change custom fields (``f.<key>`` form fields; empty clears an optional one)."""
    form = await request.form()
    values: dict[str, Any] = {str(k)[2:]: str(v) for k, v in form.items() if str(k).startswith("f.")}
    if values:
        await _act(request, db_url, user, ticket_id, "fields",
                   lambda db, tk: service.update_fields(db, tk, values, utcnow(), service.actor_of(user)))
    return _back(ticket_id, "fields")


@router.post("/tickets/{ticket_id}/reviews/{step}/decision", response_class=HTMLResponse)
async def decide(request: Request, ticket_id: int, step: int, user: Console, db_url: DbUrl,
                 decision: Annotated[str, Form(max_length=20)] = "",
                 reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Approve, reject or send back review level ``step`` (from 1), with the reason recorded."""
    await _act(request, db_url, user, ticket_id, "review", lambda db, tk: service.decide_review(
        db, tk, step - 1, decision, reason, user, utcnow()), staff_only=False)
    return _back(ticket_id, "decided")


@router.post("/tickets/{ticket_id}/reviews/{step}/delegate", response_class=HTMLResponse)
async def delegate(request: Request, ticket_id: int, step: int, user: Console, db_url: DbUrl,
                   to_user: Annotated[str, Form(max_length=20)] = "",
                   reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Hand the waiting level to another user, who may then decide it."""
    target = int(to_user) if to_user.strip().isdigit() else -1
    await _act(request, db_url, user, ticket_id, "review", lambda db, tk: service.delegate_review(
        db, tk, step - 1, target, user, utcnow(), reason), staff_only=False)
    return _back(ticket_id, "delegated")


@router.post("/tickets/{ticket_id}/steps/{step_id}", response_class=HTMLResponse)
async def complete_step(request: Request, ticket_id: int, step_id: int, user: Agent, db_url: DbUrl,
                        outcome: Annotated[str, Form(max_length=80)] = "",
                        note_text: Annotated[str, Form(alias="note", max_length=2000)] = "") -> Response:
    """Finish a step the flow waits on, with one of its outcomes."""
    await _act(request, db_url, user, ticket_id, "step", lambda db, tk: service.complete_step(
        db, tk, step_id, outcome, note_text, utcnow(), service.actor_of(user)))
    return _back(ticket_id, "step")


@router.post("/tickets/{ticket_id}/subtasks", response_class=HTMLResponse)
async def add_subtask(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
                      group: Annotated[str, Form(max_length=60)] = "",
                      subject: Annotated[str, Form(max_length=300)] = "") -> Response:
    """A sub-task in another department's queue; the parent shows the combined progress."""
    def work(db: Session, ticket: models.Ticket) -> list[int]:
        if db.get(models.AgentGroup, group) is None:
            raise TicketError(Msg("agent group '%(group)s' does not exist", group=group),
                              Msg("pick a queue from the list"), "group")
        if not subject.strip():
            raise TicketError(Msg("the sub-task is empty"), Msg("write what to do"), "body")
        made = service.create_subtasks(db, ticket, [{"group": group, "subject": subject.strip()}], utcnow(),
                                       service.actor_of(user))
        return [c.id for c in made]

    for child in await _act(request, db_url, user, ticket_id, "subtask", work):
        await start(request, db_url, child)
    return _back(ticket_id, "subtasks")
