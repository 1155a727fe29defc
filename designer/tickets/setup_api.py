"""What ops set up for tickets, in the JSON API: ticket types (custom fields, the flow their tickets run),
agent groups (the queues: assignment strategy, business calendar, capacity) and agents (groups, skills,
capacity, working hours, availability).

Roles: ``ops`` (and admin) change them; agents read the groups and set their own availability.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activities.tickets import service
from activities.tickets.assignment import STRATEGIES
from activities.tickets.calendar import BusinessCalendar
from activities.tickets.fields import FieldDef
from designer.auth import get_db_url
from designer.errors import ApiError
from designer.tickets.api import KEY, Creator, Ops, Priority, Staff, in_tx
from designer.tickets.workflow import offered
from engine import auth
from engine.db import models
from engine.db.models import User, utcnow
from engine.db.session import session_factory
from engine.text import Msg

router = APIRouter(prefix="/api", tags=["tickets"])
DbUrl = Annotated[str, Depends(get_db_url)]


# -- ticket types ----------------------------------------------------------------------------------------


class TicketTypeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=KEY, examples=["repair"])
    name: str = Field(min_length=1, max_length=200, examples=["设备报修"])
    fields: list[FieldDef] = Field(default_factory=list, max_length=50)
    flow_id: str | None = Field(default=None, description="the ticket flow its tickets run (kind ticket)")
    default_group: str = Field(default="default", pattern=KEY)
    default_priority: Priority = "P3"
    auto_events: list[Literal["refund.requested"]] = Field(
        default_factory=list, description="events that create a ticket of this type automatically")

    @field_validator("fields")
    @classmethod
    def _unique(cls, value: list[FieldDef]) -> list[FieldDef]:
        keys = [f.key for f in value]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(Msg("field keys repeat: %(keys)s", keys=", ".join(dupes)))
        return value


def _type_view(kind: models.TicketType) -> dict[str, Any]:
    return {"key": kind.key, "name": kind.name, "fields": kind.fields, "flow_id": kind.flow_id,
            "default_group": kind.default_group, "default_priority": kind.default_priority,
            "auto_events": kind.auto_events}


def _check_type_refs(db: Session, body: TicketTypeIn) -> None:
    if db.get(models.AgentGroup, body.default_group) is None:
        raise ApiError(422, Msg("agent group '%(default_group)s' does not exist", default_group=body.default_group),
                       Msg("create it first or use 'default'"), "default_group")
    if body.flow_id:
        flow = db.get(models.FlowRecord, body.flow_id)
        if flow is None or flow.kind != "ticket":
            raise ApiError(422, Msg("'%(flow_id)s' is not a ticket flow", flow_id=body.flow_id),
                           Msg("name a flow of kind ticket"), "flow_id")


@router.get("/ticket-types")
async def list_types(user: Creator, url: DbUrl) -> list[dict[str, Any]]:
    def work() -> list[dict[str, Any]]:
        with session_factory(url)() as db:
            return [_type_view(t) for t in db.scalars(select(models.TicketType).order_by(models.TicketType.key))]

    return await run_in_threadpool(work)


def create_type_in(db: Session, body: TicketTypeIn, user: User) -> dict[str, Any]:
    """Add a ticket type (the API and the setup pages)."""
    if db.get(models.TicketType, body.key) is not None:
        raise ApiError(409, Msg("ticket type '%(key)s' exists", key=body.key), Msg("use PUT to change it"), "key")
    _check_type_refs(db, body)
    kind = models.TicketType(**body.model_dump(mode="json"))
    db.add(kind)
    view = _type_view(kind)
    auth.audit(db, user, "ticket_type.created", f"ticket_type:{body.key}", {}, after=view)
    return view


def update_type_in(db: Session, key: str, body: TicketTypeIn, user: User) -> dict[str, Any]:
    """Change a ticket type (the API and the setup pages), audited before → after."""
    kind = db.get(models.TicketType, key)
    if kind is None:
        raise ApiError(404, Msg("ticket type '%(key)s' does not exist", key=key), Msg("create it with POST"), "key")
    if body.key != key:
        raise ApiError(422, Msg("the key cannot change"), Msg("send key '%(key)s'", key=key), "key")
    _check_type_refs(db, body)
    before = _type_view(kind)
    for name, value in body.model_dump(mode="json").items():
        setattr(kind, name, value)
    kind.updated_at = utcnow()
    view = _type_view(kind)
    auth.audit(db, user, "ticket_type.updated", f"ticket_type:{key}", {}, before=before, after=view, only_changed=True)
    return view


@router.post("/ticket-types", status_code=201)
async def create_type(body: TicketTypeIn, user: Ops, url: DbUrl) -> dict[str, Any]:
    return await in_tx(url, lambda db: create_type_in(db, body, user))


@router.put("/ticket-types/{key}")
async def update_type(key: str, body: TicketTypeIn, user: Ops, url: DbUrl) -> dict[str, Any]:
    return await in_tx(url, lambda db: update_type_in(db, key, body, user))


@router.delete("/ticket-types/{key}", status_code=204)
async def delete_type(key: str, user: Ops, url: DbUrl) -> None:
    """Remove a ticket type that no ticket uses (a type with tickets stays: they need it)."""

    def work(db: Session) -> None:
        kind = db.get(models.TicketType, key)
        if kind is None:
            raise ApiError(404, Msg("ticket type '%(key)s' does not exist", key=key), Msg("check the key"), "key")
        used = db.scalar(select(func.count()).select_from(models.Ticket).where(models.Ticket.type_key == key))
        if used:
            raise ApiError(409, Msg("%(used)s ticket(s) have the type '%(key)s'", used=used, key=key),
                           Msg("keep it, or stop its automatic creation by emptying auto_events"), "key")
        auth.audit(db, user, "ticket_type.deleted", f"ticket_type:{key}", {}, before=_type_view(kind))
        db.delete(kind)

    await in_tx(url, work)


# -- agent groups and agents --------------------------------------------------------------------------------


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=KEY, examples=["refund"])
    name: str = Field(min_length=1, max_length=200)
    strategy: Literal["round_robin", "least_loaded", "skill_based"] = Field(
        default="round_robin", description=", ".join(STRATEGIES))
    supervisor_id: int | None = Field(default=None, description="the user notified on SLA breaches")
    calendar: dict[str, Any] = Field(default_factory=dict,
                                     description="business calendar for SLAs (timezone, working_days, "
                                                 "working_hours, holidays, extra_working_days)")
    capacity: int = Field(default=10, ge=1, le=1000, description="open tickets per agent, unless the agent's own")
    notify_channel: Literal["dry-run", "wecom", "email", "sms", "webhook"] = "wecom"

    @field_validator("calendar")
    @classmethod
    def _calendar(cls, value: dict[str, Any]) -> dict[str, Any]:
        BusinessCalendar.model_validate(value)
        return value


def _group_view(group: models.AgentGroup) -> dict[str, Any]:
    return {"key": group.key, "name": group.name, "strategy": group.strategy, "supervisor_id": group.supervisor_id,
            "calendar": group.calendar, "capacity": group.capacity, "notify_channel": group.notify_channel}


@router.get("/agent-groups")
async def list_groups(user: Staff, url: DbUrl) -> list[dict[str, Any]]:
    def work() -> list[dict[str, Any]]:
        with session_factory(url)() as db:
            return [_group_view(g) for g in db.scalars(select(models.AgentGroup).order_by(models.AgentGroup.key))]

    return await run_in_threadpool(work)


def save_group(db: Session, key: str, body: GroupIn, user: User) -> dict[str, Any]:
    """Create or change a group (the API and the setup pages), audited before → after."""
    if body.key != key:
        raise ApiError(422, Msg("the key in the body differs from the URL"), Msg("send key '%(key)s'", key=key), "key")
    if body.supervisor_id is not None and db.get(models.User, body.supervisor_id) is None:
        raise ApiError(422, Msg("user %(supervisor_id)s does not exist", supervisor_id=body.supervisor_id),
                       Msg("pick an existing user"), "supervisor_id")
    found = db.get(models.AgentGroup, key)
    before = _group_view(found) if found is not None else {}
    group = found or models.AgentGroup(key=key, rr_last=0)
    for name, value in body.model_dump(mode="json").items():
        setattr(group, name, value)
    db.add(group)
    view = _group_view(group)
    auth.audit(db, user, "agent_group.updated" if found is not None else "agent_group.created",
               f"agent_group:{key}", {}, before=before, after=view, only_changed=True)
    return view


@router.put("/agent-groups/{key}")
async def put_group(key: str, body: GroupIn, user: Ops, url: DbUrl) -> dict[str, Any]:
    """Create or change a group (queue)."""
    return await in_tx(url, lambda db: save_group(db, key, body, user))


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    groups: list[str] = Field(default_factory=list, description="group keys")
    skills: list[str] = Field(default_factory=list, max_length=50)
    capacity: int | None = Field(default=None, ge=1, le=1000, description="null: the group's")
    availability: Literal["online", "away", "offline"] = "offline"
    working_hours: dict[str, Any] = Field(default_factory=dict, description="a business calendar; empty: always")
    contact: dict[str, str] = Field(default_factory=dict, description="e.g. {'wecom_userid': 'ZhangSan'}")

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value:
            BusinessCalendar.model_validate(value)
        return value


def _agent_view(agent: models.Agent, user: User | None, load: int | None = None) -> dict[str, Any]:
    return {"user_id": agent.user_id, "username": user.username if user else None,
            "name": (user.display_name or user.username) if user else None, "groups": agent.groups,
            "skills": agent.skills, "capacity": agent.capacity, "availability": agent.availability,
            "working_hours": agent.working_hours, "contact": agent.contact, "load": load}


@router.get("/agents")
async def list_agents(user: Ops, url: DbUrl) -> list[dict[str, Any]]:
    def work() -> list[dict[str, Any]]:
        with session_factory(url)() as db:
            agents = db.scalars(select(models.Agent).order_by(models.Agent.user_id)).all()
            loads = service.loads(db, [a.user_id for a in agents])
            return [_agent_view(a, db.get(User, a.user_id), loads[a.user_id]) for a in agents]

    return await run_in_threadpool(work)


def save_agent(db: Session, user_id: int, body: AgentIn, user: User) -> dict[str, Any]:
    """Make a user an agent or change one (the API, the setup pages, the users page), audited before → after."""
    target = db.get(User, user_id)
    if target is None:
        raise ApiError(404, Msg("user %(user_id)s does not exist", user_id=user_id), Msg("create the user first"),
                       "user_id")
    for group in body.groups:
        if db.get(models.AgentGroup, group) is None:
            raise ApiError(422, Msg("agent group '%(group)s' does not exist", group=group),
                           Msg("create it under /api/agent-groups"),
                           "groups")
    found = db.get(models.Agent, user_id)
    before = _agent_view(found, target) if found is not None else {}
    agent = found or models.Agent(user_id=user_id)
    for name, value in body.model_dump(mode="json").items():
        setattr(agent, name, value)
    agent.updated_at = utcnow()
    db.add(agent)
    view = _agent_view(agent, target)
    auth.audit(db, user, "agent.updated" if found is not None else "agent.created", f"user:{target.username}", {},
               before=before, after=view, only_changed=True)
    return view


@router.put("/agents/{user_id}")
async def put_agent(user_id: int, body: AgentIn, request: Request, user: Ops, url: DbUrl) -> dict[str, Any]:
    """Make a user an agent (or change one): groups, skills (ordered), capacity, hours, contact. An agent put
    online gets the tickets queued in their groups offered again (``offered``: their ids)."""
    view = await in_tx(url, lambda db: save_agent(db, user_id, body, user))
    view["offered"] = await offered(request, url, user_id) if body.availability == "online" else []
    return view


@router.get("/agents/me")
async def me(user: Staff, url: DbUrl) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        with session_factory(url)() as db:
            agent = db.get(models.Agent, user.id)
            if agent is None:
                raise ApiError(404, Msg("you are not set up as an agent"),
                               Msg("ask a supervisor to add you (PUT /api/agents/{user_id})"), "user_id")
            return _agent_view(agent, user, service.loads(db, [user.id])[user.id])

    return await run_in_threadpool(work)


class AvailabilityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    availability: Literal["online", "away", "offline"]


@router.put("/agents/me/availability")
async def my_availability(body: AvailabilityIn, request: Request, user: Staff, url: DbUrl) -> dict[str, Any]:
    """Go online / away / offline. Only online agents (inside their working hours) get new tickets; coming
    online, the tickets queued in your groups meanwhile are offered again (``offered``: their ids)."""

    def work(db: Session) -> dict[str, Any]:
        agent = db.get(models.Agent, user.id)
        if agent is None:
            raise ApiError(404, Msg("you are not set up as an agent"), Msg("ask a supervisor to add you"), "user_id")
        if agent.availability != body.availability:
            auth.audit(db, user, "agent.availability", f"user:{user.username}", {},
                       before={"availability": agent.availability}, after={"availability": body.availability})
        agent.availability = body.availability
        agent.updated_at = utcnow()
        return _agent_view(agent, user)

    view = await in_tx(url, work)
    view["offered"] = await offered(request, url, user.id) if body.availability == "online" else []
    return view
