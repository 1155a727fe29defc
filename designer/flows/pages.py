"""The flow pages: the flow list (search, filter by kind and status; duplicate, archive and restore in
place) and the new-flow page (from blank, or from one of the shipped templates).

Thin routes over :mod:`engine.flows` (drafts, statuses) and :mod:`engine.flow_templates` (the shipped
templates); drawn with the page kit (:mod:`designer.pages`), text in :mod:`designer.flows.text`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from designer import i18n
from designer.auth import safe_next
from designer.flows.api import flow_changed
from designer.i18n import _
from designer.pages import (
    DbUrl,
    PageProblem,
    Pager,
    PageRoute,
    clip,
    forbidden_kind,
    page_number,
    page_user,
    render,
    see_other,
    with_query,
)
from designer.permissions import FLOW_READERS, may_edit_kind
from engine import auth
from engine import flows as flowsvc
from engine.db import models
from engine.db.models import User, utcnow
from engine.db.session import session_factory, transaction
from engine.flow import ID_PATTERN, FlowKind
from engine.flow_templates import BLANK_TRIGGER, blank_flow, flow_templates
from engine.journeys import ACTIVE
from engine.registry import default_registry

KINDS: tuple[str, ...] = get_args(FlowKind)
FLOW_STATUSES = ("draft", "active", "paused", "archived")
#: flow ids that would shadow a page URL under /flows/
RESERVED_IDS = frozenset({"new"})

router = APIRouter(route_class=PageRoute, include_in_schema=False)
FlowReader = Annotated[User, Depends(page_user(*FLOW_READERS))]


def _node_label(node_type: str, lang: str) -> str:
    found = default_registry().get(node_type)
    return found.label.get(lang, node_type) if found is not None and found.label else node_type


def _free_id(db: Session, wanted: str) -> str:
    """``wanted`` if no flow has it, else ``wanted-2``, ``wanted-3`` ..."""
    if db.get(models.FlowRecord, wanted) is None and wanted not in RESERVED_IDS:
        return wanted
    stem = wanted[:74]
    for n in range(2, 1000):
        candidate = f"{stem}-{n}"
        if db.get(models.FlowRecord, candidate) is None:
            return candidate
    return stem + "-" + utcnow().strftime("%H%M%S")


def _id_error(db: Session, flow_id: str) -> tuple[int, str] | None:
    """(status, what is wrong, in the reader's language) when ``flow_id`` cannot be used for a new flow."""
    if not re.fullmatch(ID_PATTERN, flow_id):
        return 422, _("An id has letters, digits, '-', '_' and '.', starts with a letter or digit and has at most "
                      "80 characters.")
    if flow_id.lower() in RESERVED_IDS:
        return 422, _("“%(id)s” is reserved; choose another id.") % {"id": flow_id}
    if db.get(models.FlowRecord, flow_id) is not None:
        return 409, _("The id “%(id)s” is taken; choose another.") % {"id": flow_id}
    return None


def _editable_kinds(user: User) -> list[str]:
    return [k for k in KINDS if may_edit_kind(user, k)]


@router.get("/flows", response_class=HTMLResponse)
def flows_page(request: Request, user: FlowReader, db_url: DbUrl, q: str = "", kind: str = "",
               status: str = "", page: str = "") -> HTMLResponse:
    """The flow list: search, filter by kind and status; duplicate, archive and restore in place."""
    q, kind, status = clip(q), kind if kind in KINDS else "", status if status in FLOW_STATUSES else ""
    with session_factory(db_url)() as db:
        query = select(models.FlowRecord)
        if kind:
            query = query.where(models.FlowRecord.kind == kind)
        query = query.where(models.FlowRecord.status == status) if status else \
            query.where(models.FlowRecord.status != "archived")
        if q:
            like = f"%{q}%"
            query = query.where(models.FlowRecord.name.ilike(like) | models.FlowRecord.id.ilike(like))
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        pager = Pager(request, page_number(page), total)
        flows = list(db.scalars(query.order_by(models.FlowRecord.updated_at.desc(), models.FlowRecord.id)
                                .offset(pager.offset).limit(pager.per)))
        active: dict[str, int] = {}
        failed: dict[str, int] = {}
        if flows:
            active = {str(f): int(n) for f, n in db.execute(
                select(models.Journey.flow_id, func.count())
                .where(models.Journey.flow_id.in_([f.id for f in flows]), models.Journey.status.in_(ACTIVE))
                .group_by(models.Journey.flow_id)).all()}
            failed = {str(f): int(n) for f, n in db.execute(
                select(models.Journey.flow_id, func.count())
                .where(models.Journey.flow_id.in_([f.id for f in flows]), models.Journey.status == "failed")
                .group_by(models.Journey.flow_id)).all()}
    copy_suffix = _(" (copy)")
    rows = [{"flow": f, "may_edit": may_edit_kind(user, f.kind), "active": active.get(f.id, 0),
             "failed": failed.get(f.id, 0),
             "copy_id": f"{f.id[:74]}-copy", "copy_name": f"{f.name}{copy_suffix}"[:200]} for f in flows]
    return render(request, user, "flows/flows.html", rows=rows, pager=pager, q=q, kind=kind, status=status,
                   kinds=KINDS, statuses=FLOW_STATUSES, may_create=bool(_editable_kinds(user)))


def _new_flow_page(request: Request, user: User, db_url: str, status_code: int = 200, *,
                   error: str = "", error_field: str = "", form: Mapping[str, str] | None = None,
                   template_error: tuple[str, str] | None = None) -> HTMLResponse:
    lang = i18n.current_language()
    kinds = _editable_kinds(user)
    with session_factory(db_url)() as db:
        shown = [{"template": tpl, "trigger": _node_label(tpl.trigger, lang), "suggested_id": _free_id(db, tpl.id)}
                 for tpl in flow_templates() if tpl.kind in kinds]
    return render(request, user, "flows/new_flow.html", status_code, kinds=kinds, templates=shown,
                   error=error, error_field=error_field, form=dict(form or {}),
                   template_error=template_error, triggers={k: _node_label(BLANK_TRIGGER[k][0], lang) for k in KINDS})


@router.get("/flows/new", response_class=HTMLResponse)
def new_flow_page(request: Request, user: FlowReader, db_url: DbUrl, kind: str = "") -> HTMLResponse:
    """Create a flow: from blank (id, name, kind) or from one of the shipped templates."""
    if not _editable_kinds(user):
        raise PageProblem(403, user, _("Access denied"), _("Your role cannot create flows."),
                          _("Ask an admin to give your account one of these roles."), back="/flows")
    return _new_flow_page(request, user, db_url, form={"kind": kind if kind in KINDS else ""})


def _create(db_url: str, user: User, document: dict[str, Any], audit: tuple[str, dict[str, Any]] | None) -> None:
    with transaction(db_url) as db:
        flowsvc.save_draft(db, document, user.username)  # records flow.created
        if audit is not None:
            auth.audit(db, user, audit[0], document["id"], audit[1])


@router.post("/flows/new", response_class=HTMLResponse)
def create_blank(request: Request, user: FlowReader, db_url: DbUrl,
                 flow_id: Annotated[str, Form(alias="id", max_length=200)] = "",
                 name: Annotated[str, Form(max_length=400)] = "",
                 kind: Annotated[str, Form(max_length=20)] = "") -> Response:
    """A blank draft of ``kind`` with just its trigger; then the editor."""
    flow_id, name = flow_id.strip(), name.strip()
    form = {"id": flow_id, "name": name, "kind": kind}
    if kind not in KINDS:
        return _new_flow_page(request, user, db_url, 422, error=_("Choose a kind of flow."), error_field="kind",
                              form=form)
    if not may_edit_kind(user, kind):
        raise forbidden_kind(user, kind, back="/flows/new")
    with session_factory(db_url)() as db:
        problem = _id_error(db, flow_id)
    if problem is not None:
        return _new_flow_page(request, user, db_url, problem[0], error=problem[1], error_field="id", form=form)
    if not name:
        return _new_flow_page(request, user, db_url, 422, error=_("Enter a name."), error_field="name", form=form)
    _create(db_url, user, blank_flow(flow_id, name[:200], kind), None)
    return see_other(f"/flows/{flow_id}/edit")


@router.post("/flows/new/from-template", response_class=HTMLResponse)
def create_from_template(request: Request, user: FlowReader, db_url: DbUrl,
                         template: Annotated[str, Form(max_length=200)] = "",
                         flow_id: Annotated[str, Form(alias="id", max_length=200)] = "",
                         name: Annotated[str, Form(max_length=400)] = "") -> Response:
    """Copy a shipped template into a new draft under the id the user chose; then the editor."""
    flow_id, name = flow_id.strip(), name.strip()
    found = next((tpl for tpl in flow_templates() if tpl.key == template), None)
    if found is None:
        raise PageProblem(404, user, _("Not found"), _("There is no template “%(id)s”.") % {"id": template},
                          back="/flows/new")
    if not may_edit_kind(user, found.kind):
        raise forbidden_kind(user, found.kind, back="/flows/new")
    with session_factory(db_url)() as db:
        problem = _id_error(db, flow_id)
    if problem is not None:
        return _new_flow_page(request, user, db_url, problem[0], template_error=(found.key, problem[1]))
    document = copy.deepcopy(found.document)
    document["id"], document["name"] = flow_id, (name or found.name)[:200]
    _create(db_url, user, document, ("flow.created_from_template", {"template": found.key}))
    return see_other(f"/flows/{flow_id}/edit")


def _flow_or_problem(db: Session, user: User, flow_id: str) -> models.FlowRecord:
    record = db.get(models.FlowRecord, flow_id)
    if record is None:
        raise PageProblem(404, user, _("Not found"), _("There is no flow “%(id)s”.") % {"id": flow_id}, back="/flows")
    if not may_edit_kind(user, record.kind):
        raise forbidden_kind(user, record.kind)
    return record


@router.post("/flows/{flow_id}/duplicate", response_class=HTMLResponse)
def duplicate_flow(request: Request, flow_id: str, user: FlowReader, db_url: DbUrl,
                   new_id: Annotated[str, Form(max_length=200)] = "",
                   name: Annotated[str, Form(max_length=400)] = "",
                   back: Annotated[str, Form(max_length=2000)] = "/flows") -> Response:
    """Copy a flow's current draft into a new draft with a new id."""
    new_id, name = new_id.strip(), name.strip()
    with session_factory(db_url)() as db:
        source = _flow_or_problem(db, user, flow_id)
        problem = _id_error(db, new_id)
        document = copy.deepcopy(source.draft)
        source_name, version = source.name, source.current_version
    if problem is not None:
        raise PageProblem(problem[0], user, _("Cannot do that"), problem[1], back=safe_next(back))
    document["id"] = new_id
    document["name"] = (name or source_name + _(" (copy)"))[:200]
    _create(db_url, user, document, ("flow.duplicated", {"from": flow_id, "from_version": version}))
    return see_other(with_query(safe_next(back), notice="duplicated", id=new_id))


def _set_status(db_url: str, user: User, flow_id: str, archive: bool) -> str:
    with transaction(db_url) as db:
        record = _flow_or_problem(db, user, flow_id)
        before = record.status
        if archive:
            after = "archived"
        elif before != "archived":
            return before
        else:
            after = "paused" if record.current_version is not None else "draft"
        if before != after:
            record.status, record.updated_at, record.updated_by = after, utcnow(), user.username
            auth.audit(db, user, "flow.archived" if archive else "flow.restored", flow_id,
                       {"from": before, "to": after})
        return after


@router.post("/flows/{flow_id}/archive", response_class=HTMLResponse)
async def archive_flow(request: Request, flow_id: str, user: FlowReader, db_url: DbUrl,
                       back: Annotated[str, Form(max_length=2000)] = "/flows") -> Response:
    """Archive: the flow takes no new customers (running journeys finish on their version)."""
    await run_in_threadpool(_set_status, db_url, user, flow_id, True)
    await flow_changed(request, flow_id, None)  # an archived flow runs on no clock
    return see_other(with_query(safe_next(back), notice="archived", id=flow_id))


@router.post("/flows/{flow_id}/restore", response_class=HTMLResponse)
async def restore_flow(request: Request, flow_id: str, user: FlowReader, db_url: DbUrl,
                       back: Annotated[str, Form(max_length=2000)] = "/flows") -> Response:
    """Restore an archived flow as paused (published before) or draft; publishing makes it run again."""
    await run_in_threadpool(_set_status, db_url, user, flow_id, False)
    await flow_changed(request, flow_id, None, schedule=False)  # paused or a draft: no clock until published
    return see_other(with_query(safe_next(back), notice="restored", id=flow_id))
