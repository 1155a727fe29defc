"""The quarantine API: what kept failing (events, ticket starts, connector pushes), for an operator to see,
fix and send again. Thin routes over :mod:`engine.quarantine`; admins only (entries hold event payloads)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError

from designer.auth import require
from designer.errors import ApiError, validation_problems
from designer.events.api import deliver_many
from engine import events as ingest
from engine import quarantine
from engine.db.models import User
from engine.db.quarantine_models import QuarantineEntry
from engine.db.session import session_factory, transaction
from engine.text import Msg

router = APIRouter(prefix="/api/quarantine", tags=["quarantine"])
Operator = Annotated[User, Depends(require("admin"))]


class Entry(BaseModel):
    id: int
    kind: str = Field(description="event (routing kept failing), ticket_start, or push (a connector delivery "
                                  "that maps to an invalid event)")
    ref: str = Field(description="<source>:<event id>, ticket:<id>, or <connector>:<event id>")
    status: str = Field(description="open, redriven or dropped")
    attempts: int
    error: str
    payload: dict[str, Any]
    created_at: str
    updated_at: str
    redriven_at: str | None
    redriven_by: str | None


class EntryPage(BaseModel):
    total: int
    by_status: dict[str, int]
    entries: list[Entry]


class Redriven(BaseModel):
    entry: Entry
    outcome: dict[str, Any]


class PayloadFix(BaseModel):
    payload: dict[str, Any] = Field(description="the event's new payload (replaces the old one)")


def _problem(exc: quarantine.QuarantineError) -> ApiError:
    return ApiError(exc.status, exc.message, exc.fix, exc.field)


def _url(request: Request) -> str:
    return str(request.app.state.database_url)


@router.get("")
def list_entries(request: Request, user: Operator,
                 kind: Literal["event", "ticket_start", "push"] | None = None,
                 status: Literal["open", "redriven", "dropped", "all"] = "open",
                 limit: Annotated[int, Query(ge=1, le=500)] = 100,
                 offset: Annotated[int, Query(ge=0)] = 0) -> EntryPage:
    """Quarantined work, newest first (open entries unless ``status`` says otherwise)."""
    with session_factory(_url(request))() as db:
        page = quarantine.listing(db, kind, None if status == "all" else status, limit, offset)
        return EntryPage(total=page.total, by_status=page.by_status,
                         entries=[Entry(**quarantine.describe(e)) for e in page.entries])


@router.put("/{entry_id}/payload")
def fix_payload(request: Request, entry_id: int, body: PayloadFix, user: Operator) -> Entry:
    """Replace the payload of an open event or push entry (and of the stored event), before sending it again."""
    settings = request.app.state.settings
    try:
        ingest.EventIn.model_validate({"id": "check", "type": "custom.check", "customer": {"external_id": "x"},
                                       "payload": body.payload})
    except ValidationError as exc:
        problems = validation_problems(list(exc.errors()), "payload.")
        raise ApiError(422, problems[0]["message"], problems[0]["fix"], problems[0]["field"]) from None
    import json

    size = len(json.dumps(body.payload, ensure_ascii=False, default=str).encode())
    if size > settings.max_event_bytes:
        raise ApiError(413, Msg("the payload is %(size)s bytes; the limit is %(max_event_bytes)s", size=size,
                                max_event_bytes=settings.max_event_bytes),
                       Msg("keep it small"), "payload")
    try:
        with transaction(_url(request)) as db:
            return Entry(**quarantine.describe(quarantine.fix_payload(db, entry_id, body.payload, user.username)))
    except quarantine.QuarantineError as exc:
        raise _problem(exc) from None


@router.post("/{entry_id}/drop")
def drop(request: Request, entry_id: int, user: Operator) -> Entry:
    """Give up on an open entry: it leaves the open list and stays on record as ``dropped``."""
    try:
        with transaction(_url(request)) as db:
            return Entry(**quarantine.describe(quarantine.drop(db, entry_id, user.username)))
    except quarantine.QuarantineError as exc:
        raise _problem(exc) from None


@router.post("/{entry_id}/redrive")
async def redrive(request: Request, entry_id: int, user: Operator) -> Redriven:
    """Send an open entry again: route the event, start the ticket's workflow, or store the push's event.
    Success closes the entry (``redriven``); a failure keeps it open with the new error (409)."""
    url = _url(request)
    app = request.app

    async def event(entry: QuarantineEntry) -> dict[str, Any]:
        pipeline = getattr(app.state, "pipeline", None)
        if pipeline is None or pipeline.router is None or not pipeline.running:
            raise quarantine.QuarantineError(503, "Temporal is not reachable from this process right now",
                                             "try again in a moment")
        row_id, payload = await run_in_threadpool(ingest.requeue, url, entry.ref)
        routed = (await pipeline.route_stored([(row_id, payload)]))[0]
        if routed.routing != "done":
            raise quarantine.AttemptFailed(routed.error or f"routing is {routed.routing}")
        return {"started": routed.started, "signalled": routed.signalled}

    async def ticket(entry: QuarantineEntry) -> dict[str, Any]:
        from engine.tickets_workflow import start_ticket

        router_ = getattr(app.state, "router", None)
        if router_ is None:
            raise quarantine.QuarantineError(503, "Temporal is not reachable from this process right now",
                                             "try again in a moment")
        wid = await start_ticket(router_.client, url, router_.task_queue, int(entry.payload["ticket_id"]))
        if wid is None:
            raise RuntimeError("the ticket's flow is not an active, published ticket flow")
        return {"started": [wid]}

    async def push(entry: QuarantineEntry) -> dict[str, Any]:
        try:
            event_in = ingest.EventIn.model_validate(entry.payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise quarantine.QuarantineError(422, f"still not a valid event: {'.'.join(str(p) for p in first['loc'])}"
                                             f": {first['msg']}", "fix the payload with PUT …/payload",
                                             "payload") from None
        result = (await deliver_many(request, [event_in]))[0]
        return result.model_dump()

    try:
        entry, outcome = await quarantine.redrive(url, entry_id, user.username,
                                                  {"event": event, "ticket_start": ticket, "push": push})
    except quarantine.QuarantineError as exc:
        raise _problem(exc) from None
    return Redriven(entry=Entry(**quarantine.describe(entry)), outcome=outcome)
