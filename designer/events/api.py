"""Events in through the JSON API: ``POST /api/events`` (one event or a batch) and the event-type
catalogue. :func:`deliver_many` stores a request's events once (dedupe on source + id, one transaction) and routes them
through the app's routing pipeline (:mod:`engine.pipeline`); the signed inbound webhooks
(:mod:`designer.events.hooks`) deliver through it too. :func:`admit` answers 429 before anything is stored
when the backlog would break the latency bound.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy import select

from designer.auth import get_db_url, require
from designer.context import engine_router
from designer.errors import ApiError, localized, validation_problems
from designer.events import catalogue
from designer.limits import json_body
from designer.ops import record_event
from designer.permissions import EVENT_SENDERS, EVERY_ROLE
from engine import events as ingest
from engine.db.models import User
from engine.pipeline import Overloaded, RoutingPipeline, store_and_route
from engine.text import Msg

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
    routing: str = Field(description="done; pending when it could not be routed now (stored: the re-router "
                         "retries it); quarantined when routing kept failing (see GET /api/quarantine)")


def _parse_events(data: Any, limit_batch: int) -> tuple[list[ingest.EventIn], bool]:
    batch = isinstance(data, list)
    items = data if batch else [data]
    if not items:
        raise ApiError(422, Msg("the batch is empty"), Msg("send at least one event"), "body")
    if len(items) > limit_batch:
        raise ApiError(413, Msg("%(n)s events in one batch; the limit is %(limit)s", n=len(items), limit=limit_batch),
                       Msg("split the batch"), "body")
    parsed, problems = [], []
    for i, item in enumerate(items):
        try:
            parsed.append(_events.validate_python(item))
        except ValidationError as exc:
            problems += validation_problems(list(exc.errors()), f"{i}." if batch else "")
    if problems:
        raise ApiError.invalid(problems)
    return parsed, batch


def _pipeline(request: Request) -> RoutingPipeline | None:
    """The app's routing pipeline, following the app's router (set at startup, or later by a reconnect);
    made on first use when the app runs without its lifespan (tests drive it through ASGI directly)."""
    state = request.app.state
    pipeline: RoutingPipeline | None = getattr(state, "pipeline", None)
    router = engine_router(request)
    if pipeline is None and router is not None:
        settings = state.settings
        pipeline = state.pipeline = RoutingPipeline(
            get_db_url(request), router, lanes=settings.routing_lanes, capacity=settings.routing_capacity,
            latency_bound=settings.latency_bound_seconds)
        pipeline.start()
    if pipeline is not None and router is not None and pipeline.router is not router:
        pipeline.router = router
    return pipeline


def admit(request: Request, count: int) -> None:
    """Refuse (raises :class:`~engine.pipeline.Overloaded`) before anything is stored when the backlog would
    push event-to-action latency past the bound."""
    pipeline = _pipeline(request)
    if pipeline is not None:
        pipeline.admit(count)


def precheck(request: Request) -> None:
    """:func:`admit` for one event, taking nothing: a 429 before the request's events are validated."""
    pipeline = _pipeline(request)
    if pipeline is not None:
        pipeline.precheck()


def overloaded(exc: Overloaded) -> JSONResponse:
    body = {"message": Msg("busy: %(why)s; nothing was stored", why=exc.why),
            "fix": Msg("send it again after %(seconds)s s (Retry-After)", seconds=exc.retry_after), "field": None}
    return JSONResponse({"detail": localized(body)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})


async def deliver_many(request: Request, events: list[ingest.EventIn]) -> list[EventResult]:
    """Store a request's events and route them (:func:`engine.pipeline.store_and_route`); answer what each
    started. Events that could not be routed now stay ``received`` for the re-router (``routing: pending``)."""
    started = time.perf_counter()
    results = []
    for event, (stored, routed) in zip(events, await store_and_route(_pipeline(request), events,
                                                                     get_db_url(request)), strict=True):
        result = EventResult(id=event.id, status=stored.status, customer_id=stored.payload["customer_id"],
                             routing="pending" if stored.needs_routing else "done")
        if routed is not None:
            result.started, result.signalled, result.routing = routed.started, routed.signalled, routed.routing
        results.append(result)
    seconds = time.perf_counter() - started
    for result in results:
        record_event(result.status, seconds)
    return results


async def deliver(request: Request, event: ingest.EventIn) -> EventResult:
    """Store one event, then route it (see :func:`deliver_many`)."""
    return (await deliver_many(request, [event]))[0]


@api.post("/events", status_code=202, tags=["events"], response_model=EventResult | list[EventResult],
          responses={429: {"description": "busy: nothing was stored; send again after Retry-After seconds"}},
          openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
              "oneOf": [{"$ref": "#/components/schemas/EventIn"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/EventIn"}}]}}}}})
async def post_events(request: Request, user: Annotated[User, Depends(require(*EVENT_SENDERS))]
                      ) -> EventResult | list[EventResult] | JSONResponse:
    """Ingest one event (object) or a batch (array). Each is stored once (dedupe on source + id)."""
    settings = request.app.state.settings
    try:  # busy: answered before the events are validated (nothing is stored either way)
        precheck(request)
    except Overloaded as exc:
        return overloaded(exc)
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
                raise ApiError(413,
                               Msg("event '%(id)s': %(field)s is %(size)s bytes; the limit is %(max_event_bytes)s",
                                   id=event.id, field=field, size=size, max_event_bytes=settings.max_event_bytes),
                               Msg("keep it small; store large data elsewhere and send a reference"), field)
    await _known_customers(request, events, batch)
    try:
        admit(request, len(events))
    except Overloaded as exc:
        return overloaded(exc)
    results = await deliver_many(request, events)
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
        raise ApiError(422, Msg("customer '%(customer)s' does not exist", customer=unknown[0]),
                       Msg("send the customer's identities (phone, wecom_external_userid …) instead, or an id from "
                           "GET /api/customers"),
                       f"{index}.customer.customer_id" if batch else "customer.customer_id", unknown=unknown)
