"""Inbound webhooks from outside platforms: ``/hooks/<connector id>``.

Public (the platform cannot log in) but signed: the connector verifies the platform's signature
before anything is stored (401 otherwise). Events are stored once — a redelivery is a duplicate —
before the platform gets its answer, so an acknowledged delivery is never lost; routing to
journeys follows, and a failure there leaves the events for the re-router. A push's events are stored in
one transaction; one that maps to an invalid event goes to the quarantine (the others are stored), except
for connectors whose sender shapes the events itself (the generic webhook: 400, nothing stored). When
the backlog is over its bound, the platform gets the answer that makes it deliver again later
(``Connector.busy_reply``) and nothing is stored.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from connectors.base import InboundReply, InboundRequest
from connectors.errors import ConnectorProtocolError, SignatureVerificationError
from designer import limits
from designer.auth import public
from designer.errors import ApiError
from designer.events.api import admit, deliver_many, precheck
from engine import bounded_json, connector_ops
from engine import connectors as configured
from engine.db.session import session_factory, transaction
from engine.events import EventIn
from engine.notices import NoticeContext, dispatch
from engine.pipeline import Overloaded
from engine.settings import Settings
from engine.text import Msg, message_of
from engine.validate import pydantic_message

log = logging.getLogger(__name__)
router = APIRouter()


def _answer(reply: InboundReply) -> Response:
    return Response(content=reply.body, status_code=reply.status, media_type=reply.content_type,
                    headers=reply.headers or None)


def _quarantine_invalid(database_url: str, connector_id: str, invalid: list[tuple[dict[str, Any], Msg]]) -> None:
    from engine import quarantine

    with transaction(database_url) as db:
        for raw, error in invalid:
            ref = f"{connector_id}:{str(raw.get('id') or '?')[:150]}"
            quarantine.put(db, "push", ref, error, {"source": connector_id, **raw})


def _bounded(body: bytes, settings: Settings) -> None:
    """A body that looks like JSON is parsed within the JSON limits before the connector reads it (its own
    parser would recurse on a 100,000-deep array); XML and form bodies are the connector's to parse."""
    if body.lstrip()[:1] in (b"{", b"["):
        try:
            bounded_json.parse(body, bounded_json.Limits.from_settings(settings.max_hook_bytes,
                                                                       "TIDEFLOW_MAX_HOOK_BYTES"))
        except bounded_json.InputRejected as exc:
            if not exc.syntax:  # a body that is not JSON at all is the connector's to describe
                raise limits.rejected(exc) from None


@router.api_route("/hooks/{connector_id}", methods=["GET", "POST"], dependencies=[Depends(public)],
                  include_in_schema=False)
async def inbound(request: Request, connector_id: str) -> Response:
    settings: Settings = request.app.state.settings
    body = await request.body()  # bounded while read (TIDEFLOW_MAX_HOOK_BYTES, designer/limits.py)
    if len(body) > settings.max_hook_bytes:
        raise ApiError(413, Msg("the delivery is %(size)s bytes; the limit is %(limit)s", size=len(body),
                                limit=settings.max_hook_bytes),
                       Msg("ask the operator to raise TIDEFLOW_MAX_HOOK_BYTES"), "body")
    _bounded(body, settings)

    def _load() -> Any:
        with session_factory(request.app.state.database_url)() as db:
            return configured.load(db, connector_id)

    loaded = await run_in_threadpool(_load)
    if loaded is None:
        raise ApiError(404, Msg("no enabled connector '%(connector_id)s'", connector_id=connector_id),
                       Msg("check the URL configured on the platform"),
                       "connector_id")
    try:  # under overload, refuse before the work of verifying and decoding; taking nothing yet
        precheck(request)
    except Overloaded as exc:
        return _answer(loaded.connector.busy_reply(exc.retry_after))
    incoming = InboundRequest(method=request.method, path=request.url.path, query=dict(request.query_params),
                              headers={k.lower(): v for k, v in request.headers.items()}, body=body)
    try:
        reply: InboundReply = await run_in_threadpool(loaded.connector.inbound, incoming, loaded.settings,
                                                      loaded.secrets)
    except SignatureVerificationError as exc:
        log.warning("rejected a delivery to %s (%s): %s", connector_id, loaded.kind, exc)
        raise ApiError(401, Msg("signature check failed: %(exc)s", exc=message_of(exc)),
                       Msg("check the token/secret configured for this connector on both sides"), "signature") from None
    except (ConnectorProtocolError, ValueError) as exc:
        raise ApiError(400, Msg("the delivery does not parse: %(exc)s", exc=message_of(exc)),
                       Msg("send the platform's documented format"),
                       "body") from None
    try:  # only a verified delivery takes from the admission budget: unsigned requests cannot spend it
        admit(request, 1)
    except Overloaded as exc:
        return _answer(loaded.connector.busy_reply(exc.retry_after))
    if reply.unmapped:  # kept raw, visible and counted: an acknowledged message is never dropped in silence
        await run_in_threadpool(connector_ops.store_unmapped, request.app.state.database_url, connector_id,
                                reply.unmapped)
    event_limits = bounded_json.Limits.from_settings(settings.max_hook_bytes, "TIDEFLOW_MAX_HOOK_BYTES")
    events: list[EventIn] = []
    invalid: list[tuple[dict[str, Any], Msg]] = []
    for raw in reply.events:
        try:  # what a connector made of the delivery is held to the same limits as an API event
            bounded_json.check_value(raw, event_limits)
        except bounded_json.InputRejected as exc:
            raise limits.rejected(exc) from None
        try:
            events.append(EventIn.model_validate({"source": connector_id, **raw}))
        except ValidationError as exc:
            first = exc.errors()[0]
            if loaded.connector.sender_shapes_events:
                raise ApiError(400, Msg("the delivery maps to an invalid event: %(msg)s", msg=first['msg']),
                               Msg("send a valid event (see docs/webhooks.md)"), "body") from None
            invalid.append((raw, Msg("%(field)s: %(reason)s", field=".".join(str(p) for p in first["loc"]),
                                     reason=pydantic_message(first))))
    if invalid:  # verified, but the connector mapped it to something that is not an event: kept, not lost
        log.warning("%d event(s) of a delivery to %s are invalid; quarantined", len(invalid), connector_id)
        await run_in_threadpool(_quarantine_invalid, request.app.state.database_url, connector_id, invalid)
    if events:
        await deliver_many(request, events)
    if reply.notices:  # platform news that is not a customer event: a member left, a group changed, new chats
        router_ = request.app.state.router
        await dispatch(NoticeContext(connector_id, loaded.kind, request.app.state.database_url,
                                     router_.client if router_ is not None else None,
                                     router_.task_queue if router_ is not None else "tideflow"), reply.notices)
    return _answer(reply)
