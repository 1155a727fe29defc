"""The JSON API under /api: typed requests and responses are the contract."""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy import func, select

from designer.auth import public, require
from designer.errors import ApiError, validation_problems
from designer.ops import record_event
from designer.permissions import CUSTOMER_READERS, EVENT_SENDERS, FLOW_READERS, may_edit_kind
from engine import events as ingest
from engine import flows as flowsvc
from engine.compiler import FlowInvalid
from engine.customers import IdentityError, mask_phone, resolve
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.event_types import EVENT_TYPES
from engine.registry import default_registry
from engine.router import EnrollError, Router
from engine.validate import validate

log = logging.getLogger(__name__)
api = APIRouter(prefix="/api")
_events = TypeAdapter(ingest.EventIn)


def _db_url(request: Request) -> str:
    return str(request.app.state.database_url)


def _router(request: Request) -> Router | None:
    return getattr(request.app.state, "router", None)


Reader = Annotated[User, Depends(require(*FLOW_READERS))]
Anyone = Annotated[User, Depends(require("marketer", "ops", "agent", "finance", "developer"))]


# -- health -------------------------------------------------------------------------------------------
@api.get("/health", dependencies=[Depends(public)], tags=["ops"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@api.get("/ready", dependencies=[Depends(public)], tags=["ops"])
def ready(request: Request) -> dict[str, Any]:
    with session_factory(_db_url(request))() as db:
        db.execute(select(1))
    return {"status": "ready", "temporal": _router(request) is not None}


# -- catalogue ----------------------------------------------------------------------------------------
@api.get("/node-types", tags=["flows"])
def node_types(user: Anyone, kind: str | None = None) -> list[dict[str, Any]]:
    """Every node type (built-in and plugin) with its config JSON Schema, for the palette and forms."""
    return default_registry().describe(kind)


@api.get("/event-types", tags=["events"])
def event_types(user: Anyone) -> list[dict[str, Any]]:
    return [{"type": t, "label": label} for t, label in EVENT_TYPES.items()]


# -- events -------------------------------------------------------------------------------------------
class EventResult(BaseModel):
    id: str
    status: str = Field(description="accepted, or duplicate when this source and id were seen before")
    customer_id: str | None
    started: list[str] = Field(default_factory=list, description="journeys this event started")
    signalled: int = 0
    routing: str = Field(description="done, or pending when Temporal could not be reached (retried)")


def _parse_events(raw: bytes, limit_bytes: int, limit_batch: int) -> tuple[list[ingest.EventIn], bool]:
    if len(raw) > limit_bytes:
        raise ApiError(413, f"the request body is {len(raw)} bytes; the limit is {limit_bytes}",
                       "send fewer events per request or a smaller payload", "body")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", "send a JSON object or array", "body") from None
    batch = isinstance(data, list)
    items = data if batch else [data]
    if not items:
        raise ApiError(422, "the batch is empty", "send at least one event", "body")
    if len(items) > limit_batch:
        raise ApiError(413, f"{len(items)} events in one batch; the limit is {limit_batch}",
                       "split the batch", "body")
    parsed, problems = [], []
    for i, item in enumerate(items):
        try:
            parsed.append(_events.validate_python(item))
        except ValidationError as exc:
            problems += validation_problems(list(exc.errors()), f"{i}." if batch else "")
    if problems:
        raise ApiError(422, problems[0]["message"], problems[0]["fix"], problems[0]["field"], problems=problems)
    return parsed, batch


async def deliver(request: Request, event: ingest.EventIn) -> EventResult:
    """Store one event, then route it. Routing failures leave it ``received`` for the re-router."""
    url = _db_url(request)
    started = time.perf_counter()
    status, payload, needs_routing = await run_in_threadpool(ingest.store, event, url)
    result = EventResult(id=event.id, status=status, customer_id=payload["customer_id"], routing="done")
    if not needs_routing:
        record_event(status, time.perf_counter() - started)
        return result
    router = _router(request)
    if router is None:
        result.routing = "pending"
        record_event(status, time.perf_counter() - started)
        return result
    try:
        routed = await router.route(payload)
    except Exception as exc:  # Temporal unreachable: the event is stored; the re-router retries
        log.warning("routing of %s deferred: %s", payload["id"], type(exc).__name__)
        result.routing = "pending"
        await run_in_threadpool(ingest.mark_routed, payload["id"], url, f"{type(exc).__name__}")
        record_event(status, time.perf_counter() - started)
        return result
    await run_in_threadpool(ingest.mark_routed, payload["id"], url)
    result.started, result.signalled = routed["started"], routed["signalled"]
    record_event(status, time.perf_counter() - started)
    return result


@api.post("/events", status_code=202, tags=["events"], response_model=EventResult | list[EventResult],
          openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
              "oneOf": [{"$ref": "#/components/schemas/EventIn"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/EventIn"}}]}}}}})
async def post_events(request: Request,
                      user: Annotated[User, Depends(require(*EVENT_SENDERS))]) -> EventResult | list[EventResult]:
    """Ingest one event (object) or a batch (array). Each is stored once (dedupe on source + id)."""
    settings = request.app.state.settings
    events, batch = _parse_events(await request.body(), settings.max_event_bytes * (
        settings.max_batch_events if request.headers.get("content-type", "").startswith("application/json") else 1
    ), settings.max_batch_events)
    for event in events:
        # the whole event counts (payload and profile attributes alike): whatever is accepted here
        # ends up in journeys' workflow histories, which must stay well under Temporal's payload limit
        parts: tuple[tuple[str, Any], ...] = (
            ("payload", event.payload), ("profile", event.profile.model_dump() if event.profile else None))
        for field, part in parts:
            size = len(json.dumps(part, ensure_ascii=False, default=str).encode())
            if size > settings.max_event_bytes:
                raise ApiError(413, f"event '{event.id}': {field} is {size} bytes; the limit is "
                               f"{settings.max_event_bytes}", "keep it small; store large data elsewhere and send "
                               "a reference", field)
    results = [await deliver(request, e) for e in events]
    return results if batch else results[0]


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
        raise ApiError(404, f"flow '{flow_id}' does not exist", "check the id with GET /api/flows", "id")
    return record


def _may_edit(user: User, kind: str) -> None:
    if not may_edit_kind(user, kind):
        raise ApiError(403, f"your role '{user.role}' cannot change {kind} flows",
                       "ask an admin, or a user with the right role", "kind")


@api.get("/flows", tags=["flows"])
def list_flows(request: Request, user: Reader, kind: str | None = None, status: str | None = None,
               q: str | None = None) -> list[FlowSummary]:
    with session_factory(_db_url(request))() as db:
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
    checked = validate(document)
    return {"ok": checked.ok, "problems": [p.as_dict() for p in checked.problems]}


def _save(request: Request, document: dict[str, Any], user: User, must_exist: str | None) -> dict[str, Any]:
    _may_edit(user, str(document.get("kind") or "journey"))
    with transaction(_db_url(request)) as db:
        if must_exist is not None:
            record = _flow_or_404(db, must_exist)
            _may_edit(user, record.kind)
            if document.get("id") != must_exist:
                raise ApiError(422, f"the document's id '{document.get('id')}' differs from the URL's",
                               f"set \"id\": \"{must_exist}\"", "id")
        try:
            record, checked = flowsvc.save_draft(db, document, user.username)
        except flowsvc.FlowError as exc:
            raise ApiError(422, str(exc), "fix the document", "id") from None
        return {"flow": _summary(record).model_dump(), "problems": [p.as_dict() for p in checked.problems]}


@api.post("/flows", status_code=201, tags=["flows"])
def create_flow(request: Request, document: dict[str, Any], user: Reader) -> dict[str, Any]:
    """Save a new draft (it may have problems; they are returned)."""
    with session_factory(_db_url(request))() as db:
        if isinstance(document.get("id"), str) and db.get(models.FlowRecord, document["id"]) is not None:
            raise ApiError(409, f"flow '{document['id']}' already exists", "use PUT /api/flows/{id} to change it",
                           "id")
    return _save(request, document, user, None)


@api.get("/flows/{flow_id}", tags=["flows"])
def get_flow(request: Request, flow_id: str, user: Reader) -> dict[str, Any]:
    with session_factory(_db_url(request))() as db:
        record = _flow_or_404(db, flow_id)
        checked = validate(record.draft)
        return {"flow": _summary(record).model_dump(), "document": record.draft,
                "problems": [p.as_dict() for p in checked.problems]}


@api.put("/flows/{flow_id}", tags=["flows"])
def save_flow(request: Request, flow_id: str, document: dict[str, Any], user: Reader) -> dict[str, Any]:
    return _save(request, document, user, flow_id)


async def _sync_schedule(request: Request, compiled: dict[str, Any] | None, flow_id: str) -> None:
    router = _router(request)
    if router is None:
        return
    from engine.scheduling import CLOCK_TRIGGERS, sync_flow

    trigger = compiled["nodes"][compiled["trigger"]]["type"] if compiled else None
    if compiled is None or trigger in CLOCK_TRIGGERS:
        try:
            await sync_flow(router.client, compiled, flow_id, router.task_queue)
        except Exception as exc:
            log.warning("schedule of %s will be synced by the worker: %s", flow_id, exc)


@api.post("/flows/{flow_id}/publish", status_code=201, tags=["flows"])
async def publish_flow(request: Request, flow_id: str, user: Reader) -> dict[str, Any]:
    """Publish the draft as the next immutable version (422 listing every problem if it is invalid)."""
    def _publish() -> dict[str, Any]:
        with transaction(_db_url(request)) as db:
            record = _flow_or_404(db, flow_id)
            _may_edit(user, record.kind)
            try:
                version = flowsvc.publish(db, flow_id, user.username)
            except FlowInvalid as exc:
                problems = [p.as_dict() for p in exc.problems]
                raise ApiError(422, f"the flow has {len(problems)} problem(s); publishing needs none",
                               "fix the problems listed", None, problems=problems) from None
            return {"flow": flow_id, "version": version.version, "hash": version.hash, "compiled": version.compiled}

    result = await run_in_threadpool(_publish)
    if (router := _router(request)) is not None:
        router.invalidate()
    await _sync_schedule(request, result.pop("compiled"), flow_id)
    return result


@api.get("/flows/{flow_id}/versions", tags=["flows"])
def list_versions(request: Request, flow_id: str, user: Reader) -> list[dict[str, Any]]:
    with session_factory(_db_url(request))() as db:
        _flow_or_404(db, flow_id)
        rows = db.scalars(select(models.FlowVersion).where(models.FlowVersion.flow_id == flow_id)
                          .order_by(models.FlowVersion.version.desc()))
        return [{"version": v.version, "hash": v.hash, "created_at": v.created_at.isoformat(),
                 "created_by": v.created_by} for v in rows]


@api.get("/flows/{flow_id}/versions/{version}", tags=["flows"])
def get_version(request: Request, flow_id: str, version: int, user: Reader) -> dict[str, Any]:
    with session_factory(_db_url(request))() as db:
        row = db.get(models.FlowVersion, (flow_id, version))
        if row is None:
            raise ApiError(404, f"flow '{flow_id}' has no version {version}", "list versions first", "version")
        return {"version": row.version, "hash": row.hash, "document": row.document, "compiled": row.compiled}


class Rollback(BaseModel):
    version: int = Field(ge=1)


@api.post("/flows/{flow_id}/rollback", status_code=201, tags=["flows"])
async def rollback_flow(request: Request, flow_id: str, body: Rollback, user: Reader) -> dict[str, Any]:
    def _rollback() -> dict[str, Any]:
        with transaction(_db_url(request)) as db:
            _may_edit(user, _flow_or_404(db, flow_id).kind)
            try:
                v = flowsvc.rollback(db, flow_id, body.version, user.username)
            except flowsvc.FlowError as exc:
                raise ApiError(404, str(exc), "pick an existing version", "version") from None
            return {"flow": flow_id, "version": v.version, "compiled": v.compiled}

    result = await run_in_threadpool(_rollback)
    if (router := _router(request)) is not None:
        router.invalidate()
    await _sync_schedule(request, result.pop("compiled"), flow_id)
    return result


class StatusChange(BaseModel):
    status: str = Field(pattern="^(active|paused|archived)$")


@api.post("/flows/{flow_id}/status", tags=["flows"])
async def change_status(request: Request, flow_id: str, body: StatusChange, user: Reader) -> FlowSummary:
    def _change() -> tuple[FlowSummary, dict[str, Any] | None]:
        with transaction(_db_url(request)) as db:
            _may_edit(user, _flow_or_404(db, flow_id).kind)
            try:
                record = flowsvc.set_status(db, flow_id, body.status, user.username)
            except flowsvc.FlowError as exc:
                raise ApiError(409, str(exc), "publish it first", "status") from None
            compiled = None
            if record.status == "active" and record.current_version:
                version = db.get(models.FlowVersion, (flow_id, record.current_version))
                compiled = dict(version.compiled) if version else None
            return _summary(record), compiled

    summary, compiled = await run_in_threadpool(_change)
    if (router := _router(request)) is not None:
        router.invalidate()
    await _sync_schedule(request, compiled, flow_id)
    return summary


@api.get("/flows/{flow_id}/stats", tags=["flows"])
def flow_stats(request: Request, flow_id: str, user: Reader, version: int | None = None) -> dict[str, Any]:
    """Per-node counters of a version (default: the current one)."""
    with session_factory(_db_url(request))() as db:
        try:
            return flowsvc.stats(db, flow_id, version)
        except flowsvc.FlowError as exc:
            raise ApiError(404, str(exc), "check the id", "id") from None


class Enrollment(BaseModel):
    customer: dict[str, str | int] = Field(min_length=1, description="identities, as in events")
    variables: dict[str, Any] = Field(default_factory=dict)
    entry_id: str | None = Field(default=None, max_length=120, description="idempotency key for this entry")


@api.post("/flows/{flow_id}/enroll", status_code=202, tags=["flows"])
async def enroll(request: Request, flow_id: str, body: Enrollment,
                 user: Annotated[User, Depends(require(*EVENT_SENDERS))]) -> dict[str, Any]:
    """trigger.api: put one customer into a published flow."""
    def _customer() -> str:
        with transaction(_db_url(request)) as db:
            try:
                return resolve(db, body.customer)
            except IdentityError as exc:
                raise ApiError(422, str(exc), "send valid identities", "customer") from None

    customer_id = await run_in_threadpool(_customer)
    router = _router(request)
    if router is None:
        raise ApiError(503, "the workflow engine is not reachable right now", "retry in a few seconds")
    try:
        wid = await router.enroll(flow_id, customer_id, body.variables, body.entry_id)
    except EnrollError as exc:
        raise ApiError(409, str(exc), "publish the flow with a trigger.api trigger", "flow") from None
    return {"customer_id": customer_id, "journey": wid, "status": "started" if wid else "not entered"}


# -- customers, journeys, messages ------------------------------------------------------------------------
def _mask(kind: str, value: str) -> str:
    if kind == "phone":
        return mask_phone(value)
    if kind == "email" and "@" in value:
        name, domain = value.split("@", 1)
        return name[:1] + "***@" + domain
    return value


@api.get("/customers", tags=["customers"])
def list_customers(request: Request, user: Annotated[User, Depends(require(*CUSTOMER_READERS))],
                   q: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    with session_factory(_db_url(request))() as db:
        query = select(models.Customer).where(models.Customer.merged_into.is_(None))
        if q:
            query = query.where(models.Customer.name.ilike(f"%{q}%") | (models.Customer.id == q))
        rows = db.scalars(query.order_by(models.Customer.created_at.desc()).limit(limit))
        return [{"id": c.id, "name": c.name, "created_at": c.created_at.isoformat()} for c in rows]


@api.get("/customers/{customer_id}", tags=["customers"])
def get_customer(request: Request, customer_id: str,
                 user: Annotated[User, Depends(require(*CUSTOMER_READERS))]) -> dict[str, Any]:
    from engine.customers import canonical, tags_of

    with session_factory(_db_url(request))() as db:
        if db.get(models.Customer, customer_id) is None:
            raise ApiError(404, f"customer '{customer_id}' does not exist", "search with GET /api/customers", "id")
        cid = canonical(db, customer_id)
        c = db.get(models.Customer, cid)
        assert c is not None
        identities = db.scalars(select(models.Identity).where(models.Identity.customer_id == cid))
        journeys = db.scalars(select(models.Journey).where(models.Journey.customer_id == cid)
                              .order_by(models.Journey.started_at.desc()).limit(100))
        messages = db.scalars(select(models.Message).where(models.Message.customer_id == cid)
                              .order_by(models.Message.id.desc()).limit(100))
        return {
            "id": c.id, "name": c.name, "timezone": c.timezone, "attributes": c.attributes, "tags": tags_of(db, cid),
            "identities": [{"kind": i.kind, "value": _mask(i.kind, i.value)} for i in identities],
            "journeys": [{"id": j.workflow_id, "flow": j.flow_id, "version": j.version, "status": j.status,
                          "node": j.current_node, "started_at": j.started_at.isoformat()} for j in journeys],
            "messages": [{"channel": m.channel, "content": m.content, "status": m.status, "flow": m.flow_id,
                          "node": m.node_id, "at": m.created_at.isoformat()} for m in messages],
        }


@api.get("/journeys", tags=["journeys"])
def list_journeys(request: Request, user: Reader, flow: str | None = None, status: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    with session_factory(_db_url(request))() as db:
        query = select(models.Journey)
        counts = select(models.Journey.status, func.count()).group_by(models.Journey.status)
        if flow:
            query = query.where(models.Journey.flow_id == flow)
            counts = counts.where(models.Journey.flow_id == flow)
        if status:
            query = query.where(models.Journey.status == status)
        rows = db.scalars(query.order_by(models.Journey.started_at.desc()).limit(limit))
        return {"by_status": {str(s): int(n) for s, n in db.execute(counts).all()},
                "journeys": [{"id": j.workflow_id, "flow": j.flow_id, "version": j.version,
                              "customer_id": j.customer_id, "status": j.status, "node": j.current_node,
                              "started_at": j.started_at.isoformat(),
                              "ended_at": j.ended_at.isoformat() if j.ended_at else None} for j in rows]}


@api.post("/journeys/{journey_id:path}/cancel", tags=["journeys"])
async def cancel_journey(request: Request, journey_id: str, user: Reader) -> dict[str, Any]:
    def _journey() -> models.Journey:
        with session_factory(_db_url(request))() as db:
            j = db.get(models.Journey, journey_id)
            if j is None:
                raise ApiError(404, f"journey '{journey_id}' does not exist", "list journeys first", "id")
            kind = db.scalar(select(models.FlowRecord.kind).where(models.FlowRecord.id == j.flow_id)) or "journey"
            _may_edit(user, kind)
            return j

    journey = await run_in_threadpool(_journey)
    router = _router(request)
    if router is None:
        raise ApiError(503, "the workflow engine is not reachable right now", "retry in a few seconds")
    if journey.status not in ("running", "waiting"):
        raise ApiError(409, f"journey is already {journey.status}", "nothing to cancel", "id")
    await router.client.get_workflow_handle(journey_id).signal("cancel", f"by {user.username}")
    return {"id": journey_id, "status": "cancelling"}


@api.get("/messages", tags=["customers"])
def list_messages(request: Request, user: Annotated[User, Depends(require(*CUSTOMER_READERS))],
                  customer_id: str | None = None, flow: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    with session_factory(_db_url(request))() as db:
        query = select(models.Message)
        if customer_id:
            query = query.where(models.Message.customer_id == customer_id)
        if flow:
            query = query.where(models.Message.flow_id == flow)
        rows = db.scalars(query.order_by(models.Message.id.desc()).limit(limit))
        return [{"customer_id": m.customer_id, "channel": m.channel, "content": m.content, "status": m.status,
                 "flow": m.flow_id, "node": m.node_id, "at": m.created_at.isoformat()} for m in rows]


@api.get("/audit", tags=["ops"])
def audit_log(request: Request, user: Annotated[User, Depends(require())],
              limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    with session_factory(_db_url(request))() as db:
        rows = db.scalars(select(models.AuditEntry).order_by(models.AuditEntry.id.desc()).limit(limit))
        return [{"at": a.at.isoformat(), "actor": a.actor, "action": a.action, "target": a.target,
                 "detail": a.detail} for a in rows]
