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

from designer.auth import get_db_url, require
from designer.context import engine_router
from designer.errors import ApiError, validation_problems
from designer.events import catalogue
from designer.events import text as _text  # noqa: F401  (the picker's strings join the catalogue)
from designer.ops import record_event
from designer.permissions import EVENT_SENDERS, EVERY_ROLE
from engine import events as ingest
from engine.db.models import User

log = logging.getLogger(__name__)
api = APIRouter(prefix="/api")
_events = TypeAdapter(ingest.EventIn)
Anyone = Annotated[User, Depends(require(*EVERY_ROLE))]


@api.get("/event-types", tags=["events"])
def event_types(user: Anyone, db_url: Annotated[str, Depends(get_db_url)]) -> list[dict[str, Any]]:
    """The event-type catalogue: built-in types (with the connectors that send them), plugin types and
    the types already seen in the events table (``seen_count`` counts the newest 10,000 events)."""
    return [e.as_dict() for e in catalogue.entries(db_url)]


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
