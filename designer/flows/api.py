"""Flows in the JSON API: the node-type catalogue, drafts (validate, create, save), publishing,
versions and roll-back, status, per-node statistics and enrolment (``trigger.api``).

Thin routes over :mod:`engine.flows`; who may edit which kind of flow is :mod:`designer.permissions`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import select

from designer import errors, evaluation
from designer.auth import get_db_url, require
from designer.context import engine_router
from designer.errors import ApiError
from designer.permissions import EVENT_SENDERS, EVERY_ROLE, FLOW_READERS, check_may_edit
from engine import flows as flowsvc
from engine.auth import audit
from engine.compiler import FlowInvalid
from engine.customers import IdentityError, resolve
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.registry import default_registry
from engine.router import EnrollError
from engine.scheduling import CLOCK_TRIGGERS, sync_flow
from engine.text import Msg, message_of
from engine.validate import validate

log = logging.getLogger(__name__)
api = APIRouter(prefix="/api")
Reader = Annotated[User, Depends(require(*FLOW_READERS))]
Anyone = Annotated[User, Depends(require(*EVERY_ROLE))]


# -- catalogue ----------------------------------------------------------------------------------------
@api.get("/node-types", tags=["flows"])
def node_types(user: Anyone, kind: str | None = None) -> list[dict[str, Any]]:
    """Every node type (built-in and plugin) with its config JSON Schema, for the palette and forms."""
    return default_registry().describe(kind)


# -- flows --------------------------------------------------------------------------------------------
class FlowSummary(BaseModel):
    id: str
    name: str
    kind: str
    status: str
    current_version: int | None
    updated_at: str


def _summary(r: models.FlowRecord) -> FlowSummary:
    return FlowSummary(id=r.id, name=r.name, kind=r.kind, status=r.status, current_version=r.current_version,
                       updated_at=r.updated_at.isoformat())


def _flow_or_404(db: Any, flow_id: str) -> models.FlowRecord:
    record = db.get(models.FlowRecord, flow_id)
    if record is None:
        raise ApiError(404, Msg("flow '%(flow_id)s' does not exist", flow_id=flow_id),
                       Msg("check the id with GET /api/flows"), "id")
    return record


@api.get("/flows", tags=["flows"])
def list_flows(request: Request, user: Reader, kind: str | None = None, status: str | None = None,
               q: str | None = None) -> list[FlowSummary]:
    with session_factory(get_db_url(request))() as db:
        query = select(models.FlowRecord).order_by(models.FlowRecord.updated_at.desc())
        if kind:
            query = query.where(models.FlowRecord.kind == kind)
        if status:
            query = query.where(models.FlowRecord.status == status)
        if q:
            like = f"%{q}%"
            query = query.where(models.FlowRecord.name.ilike(like) | models.FlowRecord.id.ilike(like))
        return [_summary(r) for r in db.scalars(query)]


@api.post("/flows/validate", tags=["flows"])
def validate_flow(document: dict[str, Any], user: Reader) -> dict[str, Any]:
    """Check a flow document without saving it: every problem with node, field and fix."""
    evaluation.prime(document)  # expression costs on sample data: measured in the evaluation pool
    checked = validate(document)
    return {"ok": checked.ok, "problems": errors.problem_dicts(checked.problems)}


def _save(request: Request, document: dict[str, Any], user: User, must_exist: str | None) -> dict[str, Any]:
    check_may_edit(user, str(document.get("kind") or "journey"))
    evaluation.prime(document)
    with transaction(get_db_url(request)) as db:
        if must_exist is not None:
            record = _flow_or_404(db, must_exist)
            check_may_edit(user, record.kind)
            if document.get("id") != must_exist:
                raise ApiError(422, Msg("the document's id '%(value)s' differs from the URL's",
                                        value=document.get('id')),
                               Msg("set \"id\": \"%(must_exist)s\"", must_exist=must_exist), "id")
        try:
            record, checked = flowsvc.save_draft(db, document, user.username)
        except flowsvc.FlowError as exc:
            raise ApiError(422, message_of(exc), Msg("fix the document"), "id") from None
        return {"flow": _summary(record).model_dump(), "problems": errors.problem_dicts(checked.problems)}


@api.post("/flows", status_code=201, tags=["flows"])
def create_flow(request: Request, document: dict[str, Any], user: Reader) -> dict[str, Any]:
    """Save a new draft (it may have problems; they are returned)."""
    with session_factory(get_db_url(request))() as db:
        if isinstance(document.get("id"), str) and db.get(models.FlowRecord, document["id"]) is not None:
            raise ApiError(409, Msg("flow '%(id)s' already exists", id=document['id']),
                           Msg("use PUT /api/flows/{id} to change it"),
                           "id")
    return _save(request, document, user, None)


@api.get("/flows/{flow_id}", tags=["flows"])
def get_flow(request: Request, flow_id: str, user: Reader) -> dict[str, Any]:
    with session_factory(get_db_url(request))() as db:
        record = _flow_or_404(db, flow_id)
        evaluation.prime(record.draft)
        checked = validate(record.draft)
        return {"flow": _summary(record).model_dump(), "document": record.draft,
                "problems": errors.problem_dicts(checked.problems)}


@api.put("/flows/{flow_id}", tags=["flows"])
def save_flow(request: Request, flow_id: str, document: dict[str, Any], user: Reader) -> dict[str, Any]:
    return _save(request, document, user, flow_id)


async def flow_changed(request: Request, flow_id: str, compiled: dict[str, Any] | None, schedule: bool = True) -> None:
    """Tell the running engine a flow changed (published, rolled back, paused, archived, restored): the
    router forgets its cached flows, and with ``schedule`` the flow's clock schedule (settlement cycles,
    reports) follows ``compiled`` — None drops it. Without Temporal the worker syncs schedules from the
    database when it starts; a failed sync is left to it too."""
    router = engine_router(request)
    if router is None:
        return
    router.invalidate()
    trigger = compiled["nodes"][compiled["trigger"]]["type"] if compiled else None
    if schedule and (compiled is None or trigger in CLOCK_TRIGGERS):
        try:
            await sync_flow(router.client, compiled, flow_id, router.task_queue)
        except Exception as exc:
            log.warning("schedule of %s will be synced by the worker: %s", flow_id, exc)


@api.post("/flows/{flow_id}/publish", status_code=201, tags=["flows"])
async def publish_flow(request: Request, flow_id: str, user: Reader) -> dict[str, Any]:
    """Publish the draft as the next immutable version (422 listing every problem if it is invalid)."""
    def _publish() -> dict[str, Any]:
        with transaction(get_db_url(request)) as db:
            record = _flow_or_404(db, flow_id)
            check_may_edit(user, record.kind)
            evaluation.prime(record.draft)
            try:
                version = flowsvc.publish(db, flow_id, user.username)
            except FlowInvalid as exc:
                problems = errors.problem_dicts(exc.problems)
                raise ApiError(422, Msg("the flow has %(value)s problem(s); publishing needs none",
                                        value=len(problems)),
                               Msg("fix the problems listed"), None, problems=problems) from None
            return {"flow": flow_id, "version": version.version, "hash": version.hash, "compiled": version.compiled}

    result = await run_in_threadpool(_publish)
    await flow_changed(request, flow_id, result.pop("compiled"))
    return result


@api.get("/flows/{flow_id}/versions", tags=["flows"])
def list_versions(request: Request, flow_id: str, user: Reader) -> list[dict[str, Any]]:
    with session_factory(get_db_url(request))() as db:
        _flow_or_404(db, flow_id)
        rows = db.scalars(select(models.FlowVersion).where(models.FlowVersion.flow_id == flow_id)
                          .order_by(models.FlowVersion.version.desc()))
        return [{"version": v.version, "hash": v.hash, "created_at": v.created_at.isoformat(),
                 "created_by": v.created_by} for v in rows]


@api.get("/flows/{flow_id}/versions/{version}", tags=["flows"])
def get_version(request: Request, flow_id: str, version: int, user: Reader) -> dict[str, Any]:
    with session_factory(get_db_url(request))() as db:
        row = db.get(models.FlowVersion, (flow_id, version))
        if row is None:
            raise ApiError(404, Msg("flow '%(flow_id)s' has no version %(version)s", flow_id=flow_id, version=version),
                           Msg("list versions first"), "version")
        return {"version": row.version, "hash": row.hash, "document": row.document, "compiled": row.compiled}


class Rollback(BaseModel):
    version: int = Field(ge=1)


@api.post("/flows/{flow_id}/rollback", status_code=201, tags=["flows"])
async def rollback_flow(request: Request, flow_id: str, body: Rollback, user: Reader) -> dict[str, Any]:
    def _rollback() -> dict[str, Any]:
        with transaction(get_db_url(request)) as db:
            check_may_edit(user, _flow_or_404(db, flow_id).kind)
            old = db.get(models.FlowVersion, (flow_id, body.version))
            if old is not None:
                evaluation.prime(old.document)
            try:
                v = flowsvc.rollback(db, flow_id, body.version, user.username)
            except flowsvc.FlowError as exc:
                raise ApiError(404, message_of(exc), Msg("pick an existing version"), "version") from None
            return {"flow": flow_id, "version": v.version, "compiled": v.compiled}

    result = await run_in_threadpool(_rollback)
    await flow_changed(request, flow_id, result.pop("compiled"))
    return result


class StatusChange(BaseModel):
    status: str = Field(pattern="^(active|paused|archived)$")


@api.post("/flows/{flow_id}/status", tags=["flows"])
async def change_status(request: Request, flow_id: str, body: StatusChange, user: Reader) -> FlowSummary:
    def _change() -> tuple[FlowSummary, dict[str, Any] | None]:
        with transaction(get_db_url(request)) as db:
            check_may_edit(user, _flow_or_404(db, flow_id).kind)
            try:
                record = flowsvc.set_status(db, flow_id, body.status, user.username)
            except flowsvc.FlowError as exc:
                raise ApiError(409, message_of(exc), Msg("publish it first"), "status") from None
            compiled = None
            if record.status == "active" and record.current_version:
                version = db.get(models.FlowVersion, (flow_id, record.current_version))
                compiled = dict(version.compiled) if version else None
            return _summary(record), compiled

    summary, compiled = await run_in_threadpool(_change)
    await flow_changed(request, flow_id, compiled)
    return summary


@api.get("/flows/{flow_id}/stats", tags=["flows"])
def flow_stats(request: Request, flow_id: str, user: Reader, version: int | None = None) -> dict[str, Any]:
    """Per-node counters of a version (default: the current one)."""
    with session_factory(get_db_url(request))() as db:
        try:
            return flowsvc.stats(db, flow_id, version)
        except flowsvc.FlowError as exc:
            raise ApiError(404, message_of(exc), Msg("check the id"), "id") from None


class Enrollment(BaseModel):
    customer: dict[str, str | int] = Field(min_length=1, description="identities, as in events")
    variables: dict[str, Any] = Field(default_factory=dict)
    entry_id: str | None = Field(default=None, max_length=120, description="idempotency key for this entry")


@api.post("/flows/{flow_id}/enroll", status_code=202, tags=["flows"])
async def enroll(request: Request, flow_id: str, body: Enrollment,
                 user: Annotated[User, Depends(require(*EVENT_SENDERS))]) -> dict[str, Any]:
    """trigger.api: put one customer into a published flow."""
    def _customer() -> str:
        with transaction(get_db_url(request)) as db:
            try:
                return resolve(db, body.customer)
            except IdentityError as exc:
                raise ApiError(422, message_of(exc), Msg("send valid identities"), "customer") from None

    customer_id = await run_in_threadpool(_customer)
    router = engine_router(request)
    if router is None:
        raise ApiError(503, Msg("the workflow engine is not reachable right now"), Msg("retry in a few seconds"))
    try:
        wid = await router.enroll(flow_id, customer_id, body.variables, body.entry_id)
    except EnrollError as exc:
        raise ApiError.of(exc) from None

    def _record() -> None:
        with transaction(get_db_url(request)) as db:
            audit(db, user, "journey.enrolled" if wid else "journey.not_entered", f"flow:{flow_id}",
                  {"customer": customer_id, "journey": wid, "entry_id": body.entry_id})

    await run_in_threadpool(_record)
    return {"customer_id": customer_id, "journey": wid, "status": "started" if wid else "not entered"}
