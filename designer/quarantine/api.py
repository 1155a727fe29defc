"""The quarantine API: what kept failing (events, ticket starts, connector pushes), for an operator to see,
fix and send again. Thin routes over :mod:`engine.quarantine`; admins only (entries hold event payloads).

:func:`redrive_entry` (how each kind is done again from the web app) is shared with the page
(:mod:`designer.quarantine.pages`), so the page and the API send an entry again the same way."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError

from designer import reading
from designer.auth import require
from designer.errors import ApiError
from designer.events.api import _pipeline, deliver_many
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
    pii_masked: bool = Field(default=False, description="the payload is shown masked (engine/read_policy.py)")


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


def _describe(db: Any, entry: QuarantineEntry, user: User) -> Entry:
    return Entry(**quarantine.describe(entry, reading.reader_of(db, user)))


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
                         entries=[_describe(db, e, user) for e in page.entries])


@router.put("/{entry_id}/payload")
def fix_payload(request: Request, entry_id: int, body: PayloadFix, user: Operator) -> Entry:
    """Replace the payload of an open event or push entry (and of the stored event), before sending it again."""
    try:
        with transaction(_url(request)) as db:
            return _describe(db, quarantine.fix_payload(db, entry_id, body.payload, user.username), user)
    except quarantine.QuarantineError as exc:
        raise _problem(exc) from None


@router.post("/{entry_id}/drop")
def drop(request: Request, entry_id: int, user: Operator) -> Entry:
    """Give up on an open entry: it leaves the open list and stays on record as ``dropped``."""
    try:
        with transaction(_url(request)) as db:
            return _describe(db, quarantine.drop(db, entry_id, user.username), user)
    except quarantine.QuarantineError as exc:
        raise _problem(exc) from None


@router.post("/{entry_id}/redrive")
async def redrive(request: Request, entry_id: int, user: Operator) -> Redriven:
    """Send an open entry again: route the event, start the ticket's workflow, or store the push's event.
    Success closes the entry (``redriven``); a failure keeps it open with the new error (409)."""
    try:
        entry, outcome = await redrive_entry(request, entry_id, user)
    except quarantine.QuarantineError as exc:
        raise _problem(exc) from None
    def shown() -> Redriven:
        with session_factory(_url(request))() as db:
            return Redriven(entry=_describe(db, entry, user), outcome=outcome)

    return await run_in_threadpool(shown)


async def redrive_entry(request: Request, entry_id: int, user: User) -> tuple[QuarantineEntry, dict[str, Any]]:
    """Send an open entry again from this web process (:func:`engine.quarantine.redrive` with this app's
    router and pipeline): the entry and the outcome (``started`` journeys, ``signalled`` ones), or a
    :class:`~engine.quarantine.QuarantineError` saying why not (409 when the work failed again)."""
    url = _url(request)
    app = request.app

    async def event(entry: QuarantineEntry) -> dict[str, Any]:
        pipeline = _pipeline(request)  # made on first use, as /api/events does
        if pipeline is None or pipeline.router is None or not pipeline.running:
            raise quarantine.QuarantineError(503, Msg("Temporal is not reachable from this process right now"),
                                             Msg("try again in a moment"))
        row_id, payload = await run_in_threadpool(ingest.requeue, url, entry.ref, pipeline.holder)
        routed = (await pipeline.route_stored([(row_id, payload)]))[0]
        if routed.routing != "done":
            raise quarantine.AttemptFailed(routed.error or Msg("routing is %(state)s", state=routed.routing))
        return {"started": routed.started, "signalled": routed.signalled}

    async def ticket(entry: QuarantineEntry) -> dict[str, Any]:
        from engine.tickets_workflow import start_ticket

        router_ = getattr(app.state, "router", None)
        if router_ is None:
            raise quarantine.QuarantineError(503, Msg("Temporal is not reachable from this process right now"),
                                             Msg("try again in a moment"))
        wid = await start_ticket(router_.client, url, router_.task_queue, int(entry.payload["ticket_id"]))
        if wid is None:
            raise RuntimeError("the ticket's flow is not an active, published ticket flow")
        return {"started": [wid]}

    async def push(entry: QuarantineEntry) -> dict[str, Any]:
        try:
            event_in = ingest.EventIn.model_validate(entry.payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise quarantine.QuarantineError(
                422, Msg("still not a valid event: %(field)s: %(reason)s",
                         field=".".join(str(p) for p in first["loc"]), reason=first["msg"]),
                Msg("fix the event (its payload with PUT …/payload), or drop it"), "payload") from None
        result = (await deliver_many(request, [event_in]))[0]
        return result.model_dump()

    return await quarantine.redrive(url, entry_id, user.username,
                                    {"event": event, "ticket_start": ticket, "push": push})
