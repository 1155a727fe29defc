"""Operations endpoints: liveness, readiness and Prometheus metrics.

- ``GET /healthz`` — the process answers (public; no dependencies checked).
- ``GET /readyz`` — the database answers ``SELECT 1`` and Temporal answers a health check; 200
  ``{"status": "ready"}`` or 503 ``{"status": "not ready", "failed": ["temporal"]}`` (public; only the
  names of failed components, never an error text, address or credential).
- ``GET /api/health`` and ``GET /api/ready`` — the same under ``/api`` (public): ``{"status": "ok"}``, and
  ``{"status": "ready", "temporal": true|false}`` once the database answers.
- ``GET /metrics`` — Prometheus text format. Guarded: ``Authorization: Bearer <TIDEFLOW_METRICS_TOKEN>``
  (a scrape-only secret that needs no database lookup), or an admin's API token / session.

The counters live in this process (each web process is scraped on its own); the message, journey and
event-backlog gauges are read from the database at scrape time, so they are the same on every process.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from designer.auth import AUTH_MARKER, SESSION_COOKIE, current_user, get_db_url, public
from designer.context import engine_router
from designer.errors import detail
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory
from engine.text import Msg

log = logging.getLogger(__name__)
router = APIRouter(tags=["ops"])

#: routes whose 4xx answers count as rejected events (the whole request is refused, nothing is stored)
INGESTION_ROUTES = frozenset({"/api/events", "/hooks/{connector_id}"})
REJECTED = frozenset({400, 401, 413, 422})

HTTP_REQUESTS = Counter("tideflow_http_requests_total", "HTTP requests by route template, method and status",
                        ["route", "method", "status"])
HTTP_SECONDS = Histogram("tideflow_http_request_duration_seconds", "HTTP request duration by route template",
                         ["route", "method"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
EVENTS = Counter("tideflow_events_total", "Events by outcome: accepted (stored), duplicate (seen before), "
                 "rejected (request refused: invalid, too large, bad signature), unavailable (database down: 503)",
                 ["outcome"])
INGEST_SECONDS = Histogram("tideflow_event_ingest_seconds", "Time to store and route one event",
                           buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
HOOK_DELIVERIES = Counter("tideflow_hook_deliveries_total", "Deliveries to /hooks/<connector> by connector id "
                          "and HTTP status (unknown connector ids are counted as 'unknown')",
                          ["connector", "status"])
for _outcome in ("accepted", "duplicate", "rejected", "unavailable"):
    EVENTS.labels(_outcome)


def record_event(outcome: str, seconds: float | None = None) -> None:
    """Count one ingested event (``accepted`` or ``duplicate``) and how long storing and routing took."""
    EVENTS.labels(outcome).inc()
    if seconds is not None:
        INGEST_SECONDS.observe(seconds)


# -- the HTTP middleware --------------------------------------------------------------------------------------
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestMetrics:
    """Pure ASGI middleware: counts every HTTP request by its route *template* (``/api/flows/{flow_id}``,
    never the raw path, so label values stay few) and status, and times it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            template = str(getattr(route, "path", "") or "unmatched")
            method = str(scope.get("method", "?"))
            HTTP_REQUESTS.labels(template, method, str(status)).inc()
            HTTP_SECONDS.labels(template, method).observe(time.perf_counter() - started)
            if template in INGESTION_ROUTES and method == "POST":
                if status in REJECTED:
                    EVENTS.labels("rejected").inc()
                elif status == 503:
                    EVENTS.labels("unavailable").inc()
            if template == "/hooks/{connector_id}":
                connector = "unknown" if status == 404 else str(scope.get("path_params", {}).get("connector_id"))
                HOOK_DELIVERIES.labels(connector, str(status)).inc()


def install(app: FastAPI) -> None:
    """Count and time every request, and serve the ops routes."""
    app.add_middleware(RequestMetrics)
    app.include_router(router)


# -- gauges read from the database at scrape time -------------------------------------------------------------
class DatabaseGauges(Collector):
    """Messages by channel and status, journeys by status, and the routing backlog, straight from the tables."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def collect(self) -> Iterable[GaugeMetricFamily]:
        messages = GaugeMetricFamily("tideflow_messages", "Messages in the message log by channel and status",
                                     labels=["channel", "status"])
        journeys = GaugeMetricFamily("tideflow_journeys", "Journeys by status", labels=["status"])
        backlog = GaugeMetricFamily("tideflow_events_unrouted", "Events stored but not yet routed to journeys "
                                    "(Temporal was unreachable; the re-router retries every 5 s)")
        with session_factory(self.database_url)() as db:
            for channel, status, n in db.execute(select(models.Message.channel, models.Message.status, func.count())
                                                 .group_by(models.Message.channel, models.Message.status)):
                messages.add_metric([str(channel), str(status)], n)
            for status, n in db.execute(select(models.Journey.status, func.count()).group_by(models.Journey.status)):
                journeys.add_metric([str(status)], n)
            backlog.add_metric([], db.scalar(select(func.count()).select_from(models.EventRecord)
                                             .where(models.EventRecord.status == "received")) or 0)
        return [messages, journeys, backlog]


def exposition(database_url: str) -> bytes:
    """The whole scrape: this process's counters (and process/GC metrics) plus the database gauges."""
    db = CollectorRegistry()
    db.register(DatabaseGauges(database_url))
    return generate_latest(REGISTRY) + generate_latest(db)


# -- who may scrape -------------------------------------------------------------------------------------------
def _metrics_token_matches(request: Request) -> bool:
    expected = request.app.state.settings.metrics_token.get_secret_value()
    scheme, _, sent = request.headers.get("authorization", "").strip().partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(),
                                                                                 expected.encode())


async def metrics_reader(request: Request) -> None:
    """The metrics token (no database lookup), or an authenticated admin."""
    if _metrics_token_matches(request):
        return
    if "authorization" not in request.headers and SESSION_COOKIE not in request.cookies:
        # a scraper is not a browser: 401, not a redirect to the login page
        raise HTTPException(status_code=401, headers={"WWW-Authenticate": "Bearer"}, detail=detail(
            Msg("metrics need a bearer token"),
            Msg("send Authorization: Bearer <TIDEFLOW_METRICS_TOKEN> or an admin's API token")))
    user: User = await current_user(request, get_db_url(request))
    if user.role != "admin":
        raise HTTPException(status_code=403, detail=detail(
            Msg("metrics need the metrics token or an admin; you are %(role)s", role=user.role),
            Msg("scrape with Authorization: Bearer <TIDEFLOW_METRICS_TOKEN>, or an admin's API token")))


setattr(metrics_reader, AUTH_MARKER, True)  # the route-table test sees the route as guarded


# -- routes ---------------------------------------------------------------------------------------------------
@router.get("/healthz", dependencies=[Depends(public)])
def healthz() -> dict[str, str]:
    """Liveness: the process answers. Restart it when this fails."""
    return {"status": "ok"}


def _database_ok(database_url: str) -> bool:
    try:
        with session_factory(database_url)() as db:
            db.execute(select(1))
        return True
    except Exception as exc:
        log.warning("readiness: the database check failed (%s)", type(exc).__name__)
        return False


async def _temporal_ok(app: FastAPI, timeout: float = 3.0) -> bool:
    router_ = getattr(app.state, "router", None)
    if router_ is None:
        return False
    try:
        return bool(await asyncio.wait_for(router_.client.service_client.check_health(
            timeout=timedelta(seconds=timeout)), timeout + 1))
    except Exception as exc:
        log.warning("readiness: the Temporal check failed (%s)", type(exc).__name__)
        return False


@router.get("/api/health", dependencies=[Depends(public)])
def health() -> dict[str, str]:
    """Liveness under /api (what ``/healthz`` says)."""
    return {"status": "ok"}


@router.get("/api/ready", dependencies=[Depends(public)])
def ready(request: Request) -> dict[str, Any]:
    """The database answers (503 when it does not) and whether Temporal is connected."""
    with session_factory(get_db_url(request))() as db:
        db.execute(select(1))
    return {"status": "ready", "temporal": engine_router(request) is not None}


@router.get("/readyz", dependencies=[Depends(public)])
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the database and Temporal answer. Take the process out of the proxy's pool while 503."""
    database, temporal = await asyncio.gather(
        run_in_threadpool(_database_ok, str(request.app.state.database_url)), _temporal_ok(request.app))
    failed = [name for name, ok in (("database", database), ("temporal", temporal)) if not ok]
    if failed:
        return JSONResponse({"status": "not ready", "failed": failed}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", dependencies=[Depends(metrics_reader)], include_in_schema=False)
async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(exposition, str(request.app.state.database_url))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
