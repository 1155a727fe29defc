"""Events in through the JSON API: ``POST /api/events`` (one event or a batch) and the event-type
catalogue. :func:`deliver` stores an event once (dedupe on source + id) and routes it; the signed
inbound webhooks (:mod:`designer.events.hooks`) deliver through it too.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy import select

from designer.auth import get_db_url, require
from designer.context import engine_router
from designer.errors import ApiError, validation_problems
from designer.limits import json_body
from designer.ops import record_event
from designer.permissions import EVENT_SENDERS, EVERY_ROLE
from engine import events as ingest
from engine.db.models import User
from engine.event_types import EVENT_TYPES

log = logging.getLogger(__name__)
api = APIRouter(prefix="/api")
_events = TypeAdapter(ingest.EventIn)
Anyone = Annotated[User, Depends(require(*EVERY_ROLE))]


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


def _parse_events(data: Any, limit_batch: int) -> tuple[list[ingest.EventIn], bool]:
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
    url = get_db_url(request)
    started = time.perf_counter()
    status, payload, needs_routing = await run_in_threadpool(ingest.store, event, url)
    result = EventResult(id=event.id, status=status, customer_id=payload["customer_id"], routing="done")
    if not needs_routing:
        record_event(status, time.perf_counter() - started)
        return result
    router = engine_router(request)
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
    # bounded while read and parsed within the JSON limits (designer/limits.py, engine/bounded_json.py)
    data = await json_body(request, settings.max_batch_bytes, "TIDEFLOW_MAX_BATCH_BYTES")
    events, batch = _parse_events(data, settings.max_batch_events)
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
    await _known_customers(request, events, batch)
    results = [await deliver(request, e) for e in events]
    return results if batch else results[0]


async def _known_customers(request: Request, events: list[ingest.EventIn], batch: bool) -> None:
    """A ``customer_id`` identity must name a customer that exists: checked for the whole request before
    any event is stored, so a batch is refused whole rather than half stored."""
    wanted = {str(e.customer["customer_id"]) for e in events if "customer_id" in e.customer}
    if not wanted:
        return

    def missing() -> list[str]:
        from engine.db import models
        from engine.db.session import session_factory

        with session_factory(get_db_url(request))() as db:
            found = set(db.scalars(select(models.Customer.id).where(models.Customer.id.in_(wanted))))
        return sorted(wanted - found)

    unknown = await run_in_threadpool(missing)
    if unknown:
        index = next(i for i, e in enumerate(events) if str(e.customer.get("customer_id")) in unknown)
        raise ApiError(422, f"customer '{unknown[0]}' does not exist", "send the customer's identities (phone, "
                       "wecom_external_userid …) instead, or an id from GET /api/customers",
                       f"{index}.customer.customer_id" if batch else "customer.customer_id", unknown=unknown)
