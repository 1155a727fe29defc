"""What ops set up for tickets, as pages (the JSON API is :mod:`designer.tickets.setup_api`):

- ``/tickets/setup/groups`` — the ticket groups (queues): strategy, supervisor, capacity, how SLA notices go out,
  with their agents and open tickets; ``/tickets/setup/groups/{key}`` adds or changes one;
- ``/tickets/setup/agents`` — who works tickets: groups, skills, capacity, availability and load;
  ``/tickets/setup/agents/{user_id}`` makes a user an agent or changes one;
- ``/tickets/setup/types`` — ticket types: custom fields, the flow their tickets run, where they queue and what
  creates them; ``/tickets/setup/types/{key}`` adds or changes one.

Every save goes through the API's own functions (the same validation, the same audit entry before → after) and
answers with the page again naming the field when something is wrong. Ops (and admins) only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from activities.tickets import service
from activities.tickets.assignment import STRATEGIES
from designer import i18n
from designer.auth import get_db_url
from designer.errors import ApiError, localized, validation_problems
from designer.i18n import _
from designer.pages import PageProblem, PageRoute, page_user, render, see_other
from designer.permissions import TICKET_SUPERVISORS
from designer.tickets import labels as _labels  # noqa: F401  (strategies and field types, in words)
from designer.tickets.setup_api import (
    AgentIn,
    GroupIn,
    TicketTypeIn,
    _agent_view,
    _group_view,
    _type_view,
    create_type_in,
    save_agent,
    save_group,
    update_type_in,
)
from designer.tickets.workflow import offered
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.text import Msg

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Ops = Annotated[User, Depends(page_user(*TICKET_SUPERVISORS))]
DbUrl = Annotated[str, Depends(get_db_url)]
CHANNELS = ("wecom", "email", "sms", "webhook", "dry-run")
FIELD_TYPES = ("text", "number", "choice", "date")
#: blank rows a type's field table offers for new fields
NEW_FIELD_ROWS = 2


def _problem(exc: ApiError | ValidationError) -> dict[str, Any]:
    """The first problem of a refused save as ``{message, fix, field}`` (the page names the field)."""
    if isinstance(exc, ApiError):
        return localized(exc.body, i18n.current_language())
    first = validation_problems(list(exc.errors(include_input=False)))[0]
    return localized({"message": first["message"], "fix": first.get("fix", ""), "field": first.get("field")},
                     i18n.current_language())


def _users(db: Session) -> dict[int, str]:
    return {u.id: u.display_name or u.username for u in db.scalars(select(User).where(User.disabled_at.is_(None))
                                                                   .order_by(User.username))}


def _ctx(**extra: Any) -> dict[str, Any]:
    return {"is_staff": True, "is_supervisor": True, "me": None, "availabilities": (), **extra}


# -- groups ---------------------------------------------------------------------------------------------------


@router.get("/tickets/setup/groups", response_class=HTMLResponse)
def groups_page(request: Request, user: Ops, db_url: DbUrl) -> HTMLResponse:
    """Every ticket group with its strategy, supervisor, capacity, agents and open tickets."""
    with session_factory(db_url)() as db:
        groups = [_group_view(g) for g in db.scalars(select(models.AgentGroup).order_by(models.AgentGroup.key))]
        open_counts = dict(db.execute(select(models.Ticket.group_key, func.count()).where(
            models.Ticket.status.in_(service.OPEN_STATUSES)).group_by(models.Ticket.group_key)).all())
        members: dict[str, int] = {}
        for agent in db.scalars(select(models.Agent)):
            for key in agent.groups or []:
                members[str(key)] = members.get(str(key), 0) + 1
        users = _users(db)
    return render(request, user, "tickets/setup_groups.html", **_ctx(
        groups=groups, open_counts=open_counts, members=members, users=users,
        notice=_saved(request)))


def _saved(request: Request) -> str | None:
    return _("Saved.") if request.query_params.get("done") == "saved" else None


def _group_form(request: Request, user: User, db_url: str, key: str | None, values: dict[str, Any],
                status_code: int = 200, error: dict[str, Any] | None = None) -> HTMLResponse:
    with session_factory(db_url)() as db:
        users = _users(db)
    return render(request, user, "tickets/setup_group.html", status_code=status_code, **_ctx(
        key=key, g=values, users=users, strategies=STRATEGIES, channels=CHANNELS, error=error))


@router.get("/tickets/setup/groups/{key}", response_class=HTMLResponse)
def group_page(request: Request, key: str, user: Ops, db_url: DbUrl) -> HTMLResponse:
    """One group's form (``new`` for a new group)."""
    if key == "new":
        return _group_form(request, user, db_url, None, {"strategy": "round_robin", "capacity": 10,
                                                         "notify_channel": "wecom"})
    with session_factory(db_url)() as db:
        group = db.get(models.AgentGroup, key)
        if group is None:
            raise PageProblem(404, user, _("Not found"), _("There is no ticket group “%(key)s”.") % {"key": key},
                              back="/tickets/setup/groups")
        values = _group_view(group)
    return _group_form(request, user, db_url, key, values)


@router.post("/tickets/setup/groups/{key}", response_class=HTMLResponse)
async def save_group_page(request: Request, key: str, user: Ops, db_url: DbUrl) -> Response:
    form = await request.form()
    new = key == "new"
    target = str(form.get("key") or "").strip() if new else key
    supervisor = str(form.get("supervisor_id") or "").strip()
    raw: dict[str, Any] = {"key": target, "name": str(form.get("name") or "").strip(),
                           "strategy": str(form.get("strategy") or ""),
                           "supervisor_id": int(supervisor) if supervisor.isdigit() else None,
                           "capacity": str(form.get("capacity") or "").strip() or 10,
                           "notify_channel": str(form.get("notify_channel") or "")}

    def work() -> None:
        with transaction(db_url) as db:
            existing = db.get(models.AgentGroup, target)
            if new and existing is not None:
                raise ApiError(409, Msg("ticket group '%(target)s' already exists", target=target),
                               Msg("choose another key, or edit that group"), "key")
            body = GroupIn.model_validate({**raw, "calendar": dict(existing.calendar or {}) if existing else {}})
            save_group(db, target, body, user)

    try:
        await run_in_threadpool(work)
    except (ApiError, ValidationError) as exc:
        problem = _problem(exc)
        return _group_form(request, user, db_url, None if new else key, raw,
                           status_code=getattr(exc, "status", 422), error=problem)
    return see_other("/tickets/setup/groups?done=saved")


# -- agents ---------------------------------------------------------------------------------------------------


@router.get("/tickets/setup/agents", response_class=HTMLResponse)
def agents_page(request: Request, user: Ops, db_url: DbUrl) -> HTMLResponse:
    """Who works tickets: groups, skills, capacity, availability and load; add a user as an agent."""
    with session_factory(db_url)() as db:
        agents = db.scalars(select(models.Agent).order_by(models.Agent.user_id)).all()
        loads = service.loads(db, [a.user_id for a in agents])
        rows = []
        for agent in agents:
            view = _agent_view(agent, db.get(User, agent.user_id), loads[agent.user_id])
            view["capacity_shown"] = service.capacity_of(db, agent, str(agent.groups[0]) if agent.groups else None)
            rows.append(view)
        groups = {g.key: g.name for g in db.scalars(select(models.AgentGroup).order_by(models.AgentGroup.key))}
        taken = {a.user_id for a in agents}
        candidates = {uid: name for uid, name in _users(db).items() if uid not in taken}
    return render(request, user, "tickets/setup_agents.html", **_ctx(
        agents=rows, groups=groups, candidates=candidates, notice=_saved(request)))


def _agent_form(request: Request, user: User, db_url: str, user_id: int, values: dict[str, Any],
                status_code: int = 200, error: dict[str, Any] | None = None) -> HTMLResponse:
    with session_factory(db_url)() as db:
        person = db.get(User, user_id)
        if person is None:
            raise PageProblem(404, user, _("Not found"), _("There is no user %(id)s.") % {"id": str(user_id)},
                              back="/tickets/setup/agents")
        groups = {g.key: g.name for g in db.scalars(select(models.AgentGroup).order_by(models.AgentGroup.key))}
        name = person.display_name or person.username
    return render(request, user, "tickets/setup_agent.html", status_code=status_code, **_ctx(
        user_id=user_id, agent_name=name, a=values, groups=groups, availabilities_all=("online", "away", "offline"),
        error=error))


@router.get("/tickets/setup/agents/pick", response_class=HTMLResponse)
def pick_agent(user: Ops, user_id: str = "") -> Response:
    """The "add an agent" picker: on to that user's agent form."""
    return see_other(f"/tickets/setup/agents/{int(user_id)}" if user_id.isdigit() else "/tickets/setup/agents")


@router.get("/tickets/setup/agents/{user_id}", response_class=HTMLResponse)
def agent_page(request: Request, user_id: int, user: Ops, db_url: DbUrl) -> HTMLResponse:
    with session_factory(db_url)() as db:
        agent = db.get(models.Agent, user_id)
        values = _agent_view(agent, None) if agent is not None else {"groups": [], "skills": [], "capacity": None,
                                                                       "availability": "offline", "contact": {}}
    return _agent_form(request, user, db_url, user_id, values)


def _agent_body(form: FormData) -> dict[str, Any]:
    capacity = str(form.get("capacity") or "").strip()
    contact = {k: str(form.get(f"contact.{k}") or "").strip() for k in ("wecom_userid", "email")}
    return {"groups": [str(g) for g in form.getlist("group")],
            "skills": [s.strip() for s in str(form.get("skills") or "").replace("，", ",").split(",") if s.strip()],
            "capacity": capacity or None, "availability": str(form.get("availability") or "offline"),
            "contact": {k: v for k, v in contact.items() if v}}


@router.post("/tickets/setup/agents/{user_id}", response_class=HTMLResponse)
async def save_agent_page(request: Request, user_id: int, user: Ops, db_url: DbUrl) -> Response:
    form = await request.form()
    raw = _agent_body(form)

    def work() -> None:
        with transaction(db_url) as db:
            existing = db.get(models.Agent, user_id)
            body = AgentIn.model_validate({**raw, "working_hours": dict(existing.working_hours or {})
                                           if existing else {}})
            save_agent(db, user_id, body, user)

    try:
        await run_in_threadpool(work)
    except (ApiError, ValidationError) as exc:
        return _agent_form(request, user, db_url, user_id, raw, status_code=getattr(exc, "status", 422),
                           error=_problem(exc))
    if raw["availability"] == "online":
        await offered(request, db_url, user_id)
    return see_other("/tickets/setup/agents?done=saved")


# -- ticket types ---------------------------------------------------------------------------------------------


@router.get("/tickets/setup/types", response_class=HTMLResponse)
def types_page(request: Request, user: Ops, db_url: DbUrl) -> HTMLResponse:
    with session_factory(db_url)() as db:
        kinds = [_type_view(k) for k in db.scalars(select(models.TicketType).order_by(models.TicketType.key))]
        groups = {g.key: g.name for g in db.scalars(select(models.AgentGroup))}
        flows = {f.id: f.name for f in db.scalars(select(models.FlowRecord).where(models.FlowRecord.kind == "ticket"))}
        used = dict(db.execute(select(models.Ticket.type_key, func.count()).group_by(models.Ticket.type_key)).all())
    return render(request, user, "tickets/setup_types.html", **_ctx(
        kinds=kinds, groups=groups, flows=flows, used=used, notice=_saved(request)))


def _type_form(request: Request, user: User, db_url: str, key: str | None, values: dict[str, Any],
               status_code: int = 200, error: dict[str, Any] | None = None) -> HTMLResponse:
    with session_factory(db_url)() as db:
        groups = {g.key: g.name for g in db.scalars(select(models.AgentGroup).order_by(models.AgentGroup.key))}
        flows = {f.id: f.name for f in db.scalars(select(models.FlowRecord).where(models.FlowRecord.kind == "ticket")
                                                  .order_by(models.FlowRecord.name))}
    fields = list(values.get("fields") or []) + [{"key": "", "label": "", "type": "text", "required": False,
                                                   "choices": []}] * NEW_FIELD_ROWS
    return render(request, user, "tickets/setup_type.html", status_code=status_code, **_ctx(
        key=key, k=values, fields=fields, groups=groups, flows=flows, priorities=service.PRIORITIES,
        field_types=FIELD_TYPES, error=error))


@router.get("/tickets/setup/types/{key}", response_class=HTMLResponse)
def type_page(request: Request, key: str, user: Ops, db_url: DbUrl) -> HTMLResponse:
    if key == "new":
        return _type_form(request, user, db_url, None, {"default_group": "default", "default_priority": "P3",
                                                        "fields": [], "auto_events": []})
    with session_factory(db_url)() as db:
        kind = db.get(models.TicketType, key)
        if kind is None:
            raise PageProblem(404, user, _("Not found"), _("There is no ticket type “%(key)s”.") % {"key": key},
                              back="/tickets/setup/types")
        values = _type_view(kind)
    return _type_form(request, user, db_url, key, values)


def _type_body(form: FormData, key: str) -> dict[str, Any]:
    fields = []
    for index in range(60):
        field_key = str(form.get(f"fields.{index}.key") or "").strip()
        if f"fields.{index}.key" not in form:
            break
        if not field_key:
            continue  # an empty row: a new field not filled in, or one removed
        kind = str(form.get(f"fields.{index}.type") or "text")
        choices = [c.strip() for c in str(form.get(f"fields.{index}.choices") or "").replace("，", ",").split(",")
                   if c.strip()]
        fields.append({"key": field_key, "label": str(form.get(f"fields.{index}.label") or "").strip(),
                       "type": kind, "required": bool(form.get(f"fields.{index}.required")),
                       "choices": choices if kind == "choice" else []})
    return {"key": key, "name": str(form.get("name") or "").strip(), "fields": fields,
            "flow_id": str(form.get("flow_id") or "") or None,
            "default_group": str(form.get("default_group") or "default"),
            "default_priority": str(form.get("default_priority") or "P3"),
            "auto_events": ["refund.requested"] if form.get("auto_refund") else []}


@router.post("/tickets/setup/types/{key}", response_class=HTMLResponse)
async def save_type_page(request: Request, key: str, user: Ops, db_url: DbUrl) -> Response:
    form = await request.form()
    new = key == "new"
    target = str(form.get("key") or "").strip() if new else key
    raw = _type_body(form, target)

    def work() -> None:
        with transaction(db_url) as db:
            body = TicketTypeIn.model_validate(raw)
            if new:
                create_type_in(db, body, user)
            else:
                update_type_in(db, key, body, user)

    try:
        await run_in_threadpool(work)
    except (ApiError, ValidationError) as exc:
        return _type_form(request, user, db_url, None if new else key, raw, status_code=getattr(exc, "status", 422),
                          error=_problem(exc))
    return see_other("/tickets/setup/types?done=saved")
