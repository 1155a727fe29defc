"""Tickets (工单) in the JSON API: create, list, read and work tickets (reply, note, status, priority,
transfer, claim), their reviews, steps and sub-tasks. Ticket types, queues and agents are
:mod:`designer.tickets.setup_api`.

Roles: ``agent`` (坐席) works tickets of their own groups; ``ops`` (客服主管, supervisors) sees and
manages every ticket, defines ticket types, agent groups and agents; ``developer`` may create
tickets from integrations; ``admin`` may do everything. An agent asking for a ticket of another
group gets 404, exactly as for a ticket that does not exist (ids cannot be probed).

After every change the ticket's workflow gets the ``changed`` signal, so SLA deadlines are
recomputed at once (a pause, a new priority) and waiting review / step nodes look again.
The full reference, with payloads, is docs/tickets.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activities.tickets import service
from activities.tickets.fields import FieldProblem
from activities.tickets.review import DECISIONS
from activities.tickets.service import TicketError
from designer.auth import get_db_url, require
from designer.errors import ApiError
from designer.permissions import TICKET_CREATORS, TICKET_REVIEWERS, TICKET_STAFF, TICKET_SUPERVISORS
from designer.tickets.workflow import changed, start
from engine.auth import audit
from engine.customers import IdentityError, resolve
from engine.db import models
from engine.db.models import User, utcnow
from engine.db.session import session_factory, transaction
from engine.text import Msg, message_of

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["tickets"])
DbUrl = Annotated[str, Depends(get_db_url)]
Staff = Annotated[User, Depends(require(*TICKET_STAFF))]
Creator = Annotated[User, Depends(require(*TICKET_CREATORS))]
Ops = Annotated[User, Depends(require(*TICKET_SUPERVISORS))]
Reviewer = Annotated[User, Depends(require(*TICKET_REVIEWERS))]
Priority = Literal["P1", "P2", "P3", "P4"]
KEY = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,59}$"
T = TypeVar("T")


# -- plumbing ------------------------------------------------------------------------------------------


def api_error(exc: Exception) -> ApiError:
    if isinstance(exc, TicketError):
        return ApiError(exc.status, exc.message, exc.fix, exc.field)
    if isinstance(exc, FieldProblem):
        return ApiError(422, exc.message, exc.fix, exc.field)
    raise exc


async def in_tx(url: str, work: Callable[[Session], T]) -> T:
    def run() -> T:
        try:
            with transaction(url) as db:
                return work(db)
        except (TicketError, FieldProblem) as exc:
            raise api_error(exc) from None

    return await run_in_threadpool(run)


def _visible(db: Session, user: User, ticket_id: int, lock: bool = False) -> models.Ticket:
    ticket = service.get_ticket(db, ticket_id, lock=lock)
    if not service.may_see(db, user, ticket):
        raise TicketError(Msg("ticket %(ticket_id)s does not exist", ticket_id=ticket_id), Msg("check the ticket id"),
                          "id", 404)
    return ticket


def _detail(db: Session, ticket: models.Ticket) -> dict[str, Any]:
    events = db.scalars(select(models.TicketEvent).where(models.TicketEvent.ticket_id == ticket.id)
                        .order_by(models.TicketEvent.id)).all()
    rows = service.review_rows(db, ticket.id)
    return {**service.view(ticket),
            "events": [{"id": e.id, "kind": e.kind, "public": e.public, "actor": e.actor, "body": e.body,
                        "data": e.data, "at": e.at.isoformat()} for e in events],
            "review": service.review_view(rows) if rows else None,
            "subtasks": service.progress(db, ticket.id),
            "open_steps": service.open_steps(db, ticket.id)}


# -- tickets -------------------------------------------------------------------------------------------


class OrderRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = Field(default="api", max_length=20)
    shop: str = Field(default="api", max_length=80)
    order_id: str = Field(min_length=1, max_length=80)


class TicketIn(BaseModel):
    """A new ticket. The customer is named by id or by identities (resolved like events do)."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(pattern=KEY, examples=["refund"], description="a ticket type key (GET /api/ticket-types)")
    subject: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=20000)
    customer_id: str | None = Field(default=None, max_length=40)
    customer: dict[str, str] | None = Field(default=None, description="identities, e.g. {'phone': '13800138000'}")
    priority: Priority | None = Field(default=None, description="default: the type's")
    group: str | None = Field(default=None, pattern=KEY, description="the queue; default: the type's")
    needs: list[str] = Field(default_factory=list, max_length=20, description="skills needed, most important first")
    fields: dict[str, Any] = Field(default_factory=dict, description="custom fields of the type")
    channel: Literal["dry-run", "wecom", "wechat_oa", "sms", "email", "webhook"] = Field(
        default="wecom", description="where public replies go")
    order: OrderRef | None = None
    amount_fen: int | None = Field(default=None, ge=0, description="money at stake, in fen")
    external_id: str | None = Field(default=None, max_length=120,
                                    description="your id for this ticket: a retry with the same id creates nothing new")


@router.post("/tickets", status_code=201)
async def create_ticket(body: TicketIn, request: Request, user: Creator, url: DbUrl) -> dict[str, Any]:
    """Create a ticket: custom fields are validated (a problem names ``fields.<key>``), it is queued in
    its group, and its type's ticket flow starts (routing, assignment, SLA …)."""

    def work(db: Session) -> dict[str, Any]:
        customer_id = body.customer_id
        if customer_id is None and body.customer:
            try:
                customer_id = resolve(db, body.customer, None, {})
            except IdentityError as exc:
                raise ApiError(422, message_of(exc), Msg("send valid identities, e.g. {'phone': '13800138000'}"),
                               "customer") from None
        elif customer_id is not None and db.get(models.Customer, customer_id) is None:
            raise ApiError(422, Msg("customer '%(customer_id)s' does not exist", customer_id=customer_id),
                           Msg("check the id or send 'customer' identities instead"), "customer_id")
        ticket, created = service.create_ticket(
            db, type_key=body.type, subject=body.subject, description=body.description, customer_id=customer_id,
            fields=body.fields, priority=body.priority, group=body.group, needs=body.needs, source="api",
            channel=body.channel, order=body.order.model_dump() if body.order else None, amount_fen=body.amount_fen,
            dedupe_key=f"api:{user.id}:{body.external_id}" if body.external_id else None,
            actor=service.actor_of(user), now=utcnow())
        if created:
            audit(db, user, "ticket.created", f"ticket:{ticket.id}",
                  {"type": ticket.type_key, "customer": customer_id, "group": ticket.group_key})
        return service.view(ticket)

    view = await in_tx(url, work)
    await start(request, url, view["id"])
    return view


@router.get("/tickets")
async def list_tickets(user: Staff, url: DbUrl, queue: str | None = None,
                       status: Literal["open", "pending", "resolved", "closed", "active"] | None = None,
                       assignee: str | None = Query(default=None, description="me, none or a user id"),
                       priority: Priority | None = None, type: str | None = None,
                       parent_id: int | None = None, limit: int = Query(default=50, ge=1, le=500),
                       offset: int = Query(default=0, ge=0)) -> dict[str, Any]:
    """Tickets, newest first. Agents only ever see their groups' tickets (and those assigned to them).
    ``status=active`` is open + pending."""

    def work() -> dict[str, Any]:
        with session_factory(url)() as db:
            query = select(models.Ticket).where(service.visible(db, user))
            if queue:
                query = query.where(models.Ticket.group_key == queue)
            if status == "active":
                query = query.where(models.Ticket.status.in_(service.OPEN_STATUSES))
            elif status:
                query = query.where(models.Ticket.status == status)
            if assignee == "me":
                query = query.where(models.Ticket.assignee_id == user.id)
            elif assignee == "none":
                query = query.where(models.Ticket.assignee_id.is_(None))
            elif assignee:
                if not assignee.isdigit():
                    raise ApiError(422, Msg("assignee '%(assignee)s' is not me, none or a user id", assignee=assignee),
                                   Msg("fix the filter"),
                                   "assignee")
                query = query.where(models.Ticket.assignee_id == int(assignee))
            if priority:
                query = query.where(models.Ticket.priority == priority)
            if type:
                query = query.where(models.Ticket.type_key == type)
            if parent_id is not None:
                query = query.where(models.Ticket.parent_id == parent_id)
            total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = db.scalars(query.order_by(models.Ticket.id.desc()).limit(limit).offset(offset)).all()
            return {"total": total, "tickets": [service.view(t) for t in rows]}

    return await run_in_threadpool(work)


@router.get("/tickets/summary")
async def tickets_summary(user: Ops, url: DbUrl) -> dict[str, Any]:
    """The supervisor's view: queues (open / pending / unassigned / breached per group), tickets whose
    SLA breaches within the hour, and every agent's load against capacity."""

    def work() -> dict[str, Any]:
        with session_factory(url)() as db:
            return service.summary(db, utcnow())

    return await run_in_threadpool(work)


@router.get("/tickets/{ticket_id}")
async def get_ticket(ticket_id: int, user: Staff, url: DbUrl) -> dict[str, Any]:
    """One ticket with its audit trail (replies, notes, every change, SLA warnings and escalations),
    its review chain, sub-task progress and the steps the flow waits on."""

    def work() -> dict[str, Any]:
        try:
            with session_factory(url)() as db:
                return _detail(db, _visible(db, user, ticket_id))
        except TicketError as exc:
            raise api_error(exc) from None

    return await run_in_threadpool(work)


class FieldsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fields: dict[str, Any] = Field(description="custom fields to change; null or '' clears an optional one")


@router.patch("/tickets/{ticket_id}/fields")
async def update_fields(ticket_id: int, body: FieldsIn, request: Request, user: Staff, url: DbUrl
                        ) -> dict[str, Any]:
    def work(db: Session) -> dict[str, Any]:
        ticket = _visible(db, user, ticket_id, lock=True)
        service.update_fields(db, ticket, body.fields, utcnow(), service.actor_of(user))
        return service.view(ticket)

    view = await in_tx(url, work)
    await changed(request, ticket_id, "fields")
    return view


async def _act(request: Request, url: DbUrl, user: User, ticket_id: int, what: str,
               change: Callable[[Session, models.Ticket], None]) -> dict[str, Any]:
    def work(db: Session) -> dict[str, Any]:
        ticket = _visible(db, user, ticket_id, lock=True)
        change(db, ticket)
        return service.view(ticket)

    view = await in_tx(url, work)
    await changed(request, ticket_id, what)
    if view.get("parent_id"):  # the parent's flow may be waiting on its sub-tasks
        await changed(request, int(view["parent_id"]), "subtask")
    return view


@router.post("/tickets/{ticket_id}/claim")
async def claim(ticket_id: int, request: Request, user: Staff, url: DbUrl) -> dict[str, Any]:
    """Take the ticket (an agent of its group, within their capacity)."""
    return await _act(request, url, user, ticket_id, "claim",
                      lambda db, t: service.claim(db, t, user, utcnow()))


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group: str | None = Field(default=None, pattern=KEY, description="another queue")
    assignee_id: int | None = Field(default=None, description="an agent of the (new) group")
    note: str = Field(default="", max_length=2000)


@router.post("/tickets/{ticket_id}/transfer")
async def transfer(ticket_id: int, body: TransferIn, request: Request, user: Staff, url: DbUrl) -> dict[str, Any]:
    """Move the ticket to another group's queue and/or agent (it is never left without a queue)."""
    return await _act(request, url, user, ticket_id, "transfer", lambda db, t: service.transfer(
        db, t, utcnow(), service.actor_of(user), body.group, body.assignee_id, body.note))


class TextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=20000)


@router.post("/tickets/{ticket_id}/reply")
async def reply(ticket_id: int, body: TextIn, request: Request, user: Staff, url: DbUrl) -> dict[str, Any]:
    """A public reply, sent to the customer through the channel the ticket came from (once)."""
    made: dict[str, int] = {}

    def change(db: Session, ticket: models.Ticket) -> None:
        made["event"] = service.reply(db, ticket, body.body, utcnow(), service.actor_of(user)).id

    view = await _act(request, url, user, ticket_id, "reply", change)
    view["delivery"] = await run_in_threadpool(service.deliver_reply, url, ticket_id, made["event"])
    return view


@router.post("/tickets/{ticket_id}/customer-message")
async def customer_message(ticket_id: int, body: TextIn, request: Request, user: Creator, url: DbUrl
                           ) -> dict[str, Any]:
    """The customer wrote (from an integration or typed in by the agent): a pending ticket reopens and
    the next-response SLA clock starts."""
    return await _act(request, url, user, ticket_id, "customer",
                      lambda db, t: service.customer_message(db, t, body.body, utcnow()))


@router.post("/tickets/{ticket_id}/notes")
async def add_note(ticket_id: int, body: TextIn, request: Request, user: Staff, url: DbUrl) -> dict[str, Any]:
    """An internal note (never sent to the customer)."""
    return await _act(request, url, user, ticket_id, "note",
                      lambda db, t: service.note(db, t, body.body, utcnow(), service.actor_of(user)))


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "pending", "resolved", "closed"] = Field(
        description="pending = waiting on the customer (SLA clocks pause)")
    reason: str = Field(default="", max_length=2000)


@router.post("/tickets/{ticket_id}/status")
async def set_status(ticket_id: int, body: StatusIn, request: Request, user: Staff, url: DbUrl) -> dict[str, Any]:
    return await _act(request, url, user, ticket_id, "status", lambda db, t: service.set_status(
        db, t, body.status, utcnow(), service.actor_of(user), body.reason))


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=2000)


@router.post("/tickets/{ticket_id}/resolve")
async def resolve_ticket(ticket_id: int, body: ResolveIn, request: Request, user: Staff, url: DbUrl
                         ) -> dict[str, Any]:
    """Resolve the ticket: its SLA clocks stop and its flow ends."""
    return await _act(request, url, user, ticket_id, "status", lambda db, t: service.set_status(
        db, t, "resolved", utcnow(), service.actor_of(user), body.reason))


class PriorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: Priority


@router.post("/tickets/{ticket_id}/priority")
async def set_priority(ticket_id: int, body: PriorityIn, request: Request, user: Staff, url: DbUrl
                       ) -> dict[str, Any]:
    """Change the priority: SLA deadlines are recomputed with the new targets."""
    return await _act(request, url, user, ticket_id, "priority", lambda db, t: service.set_priority(
        db, t, body.priority, utcnow(), service.actor_of(user)))


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject", "send_back"] = Field(description=", ".join(DECISIONS))
    reason: str = Field(default="", max_length=2000, description="required to reject or send back")


@router.get("/tickets/{ticket_id}/reviews")
async def get_review(ticket_id: int, user: Staff, url: DbUrl) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        try:
            with session_factory(url)() as db:
                _visible(db, user, ticket_id)
                return service.review_view(service.review_rows(db, ticket_id))
        except TicketError as exc:
            raise api_error(exc) from None

    return await run_in_threadpool(work)


def _reviewer(db: Session, user: User, ticket_id: int) -> models.Ticket:
    """Approvers (finance, a department head) may not be agents of the group: they see the ticket to decide."""
    ticket = service.get_ticket(db, ticket_id, lock=True)
    if not service.may_review(user, service.review_rows(db, ticket_id)) and not service.may_see(db, user, ticket):
        raise TicketError(Msg("ticket %(ticket_id)s does not exist", ticket_id=ticket_id), Msg("check the ticket id"),
                          "id", 404)
    return ticket


@router.post("/tickets/{ticket_id}/reviews/{step}/decision")
async def decide(ticket_id: int, step: int, body: DecisionIn, request: Request, user: Reviewer, url: DbUrl
                 ) -> dict[str, Any]:
    """Decide a review step (numbered from 1): approve, reject or send back, with the reason recorded.
    Only the step's approver, their delegate or an admin may decide."""

    def work(db: Session) -> dict[str, Any]:
        ticket = _reviewer(db, user, ticket_id)
        service.decide_review(db, ticket, step - 1, body.decision, body.reason, user, utcnow())
        return service.review_view(service.review_rows(db, ticket_id))

    view = await in_tx(url, work)
    await changed(request, ticket_id, "review")
    return view


class DelegateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_user_id: int
    reason: str = Field(default="", max_length=2000)


@router.post("/tickets/{ticket_id}/reviews/{step}/delegate")
async def delegate(ticket_id: int, step: int, body: DelegateIn, request: Request, user: Reviewer, url: DbUrl
                   ) -> dict[str, Any]:
    """Hand the waiting step to another user, who may then decide it."""

    def work(db: Session) -> dict[str, Any]:
        ticket = _reviewer(db, user, ticket_id)
        service.delegate_review(db, ticket, step - 1, body.to_user_id, user, utcnow(), body.reason)
        return service.review_view(service.review_rows(db, ticket_id))

    view = await in_tx(url, work)
    await changed(request, ticket_id, "review")
    return view


class StepDoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: str = Field(min_length=1, max_length=80, description="one of the step's outcomes")
    note: str = Field(default="", max_length=2000)


@router.post("/tickets/{ticket_id}/steps/{step_id}")
async def complete_step(ticket_id: int, step_id: int, body: StepDoneIn, request: Request, user: Staff,
                        url: DbUrl) -> dict[str, Any]:
    """Complete an agent step the flow waits on (``open_steps`` of the ticket) with one of its outcomes."""
    return await _act(request, url, user, ticket_id, "step", lambda db, t: service.complete_step(
        db, t, step_id, body.outcome, body.note, utcnow(), service.actor_of(user)))


class SubtaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group: str = Field(pattern=KEY, description="the department's agent group")
    subject: str = Field(min_length=1, max_length=300)
    needs: list[str] = Field(default_factory=list)
    priority: Priority | None = None


class SubtasksIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tasks: list[SubtaskIn] = Field(min_length=1, max_length=20)


@router.get("/tickets/{ticket_id}/subtasks")
async def get_subtasks(ticket_id: int, user: Staff, url: DbUrl) -> dict[str, Any]:
    """The combined progress of the ticket's sub-tasks (every department's, whatever the caller's group)."""

    def work() -> dict[str, Any]:
        try:
            with session_factory(url)() as db:
                _visible(db, user, ticket_id)
                return service.progress(db, ticket_id)
        except TicketError as exc:
            raise api_error(exc) from None

    return await run_in_threadpool(work)


@router.post("/tickets/{ticket_id}/subtasks", status_code=201)
async def add_subtasks(ticket_id: int, body: SubtasksIn, request: Request, user: Staff, url: DbUrl
                       ) -> dict[str, Any]:
    """Spawn sub-tickets in other departments' queues; each runs its own flow."""
    made: list[int] = []

    def work(db: Session) -> dict[str, Any]:
        parent = _visible(db, user, ticket_id, lock=True)
        for task in body.tasks:
            if db.get(models.AgentGroup, task.group) is None:
                raise TicketError(Msg("agent group '%(group)s' does not exist", group=task.group),
                                  Msg("use a group from /api/agent-groups"), "tasks.group")
        children = service.create_subtasks(db, parent, [t.model_dump() for t in body.tasks], utcnow(),
                                           service.actor_of(user))
        made.extend(c.id for c in children)
        return service.progress(db, ticket_id)

    view = await in_tx(url, work)
    for child in made:
        await start(request, url, child)
    return view
