"""The designer web app: JSON API under /api and server-rendered pages, one FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from designer import audit, auth, errors, home, limits, ops, pages, temporal_ui
from designer.calendars import pages as calendars_pages
from designer.connectors import api as connectors_api
from designer.connectors import ops_api as connectors_ops_api
from designer.connectors import pages as connectors_pages
from designer.coupons import api as coupons_api
from designer.customers import api as customers_api
from designer.customers import pages as customers_pages
from designer.dashboards import api as dashboards_api
from designer.dashboards import pages as dashboards_pages
from designer.decisions import api as decisions_api
from designer.decisions import pages as decisions_pages
from designer.events import api as events_api
from designer.events import hooks
from designer.flows import api as flows_api
from designer.flows import editor
from designer.flows import pages as flows_pages
from designer.growth import api as growth_api
from designer.growth import pages as growth_pages
from designer.i18n import LanguageMiddleware
from designer.journeys import api as journeys_api
from designer.journeys import pages as journeys_pages
from designer.loyalty import api as loyalty_api
from designer.loyalty import pages as loyalty_pages
from designer.people import api as people_api
from designer.people import pages as people_pages
from designer.policies import pages as policies_pages
from designer.quarantine import api as quarantine_api
from designer.quarantine import pages as quarantine_pages
from designer.settlement import api as settlement_api
from designer.settlement import pages as settlement_pages
from designer.settlement import plan_preview
from designer.sidebar import api as sidebar_api
from designer.sidebar import library_pages as sidebar_library
from designer.sidebar import pages as sidebar_pages
from designer.tickets import api as tickets_api
from designer.tickets import csat as tickets_csat
from designer.tickets import pages as tickets_pages
from designer.tickets import setup_api as tickets_setup_api
from designer.tickets import setup_pages as tickets_setup_pages
from designer.workforce import api as workforce_api
from designer.workforce import pages as workforce_pages
from engine import logs, payload_codec, tracing
from engine.db.models import User
from engine.pipeline import RoutingPipeline, reroute_forever
from engine.router import Router
from engine.settings import Settings, get_settings
from engine.tickets_workflow import start_pending as start_pending_tickets

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tideflow API</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css"></head>
<body data-openapi="/openapi.json"><div id="swagger-ui"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs/swagger-init.js"></script></body></html>"""

async def _connect(settings: Settings) -> Client | None:
    try:
        return await payload_codec.connect(settings)  # payloads encrypted at rest, as the worker's
    except Exception as exc:
        log.warning("Temporal at %s not reachable yet (%s); events are stored and routed later",
                    settings.temporal_address, type(exc).__name__)
        return None


async def _connect_for_worker(settings: Settings, timeout: float = 60) -> Client:
    """The embedded worker cannot start later the way routing can: wait for Temporal (``tideflow up`` starts
    it just before), then give up loudly, as a worker process does."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await asyncio.sleep(0.5)
        found = await _connect(settings)
        if found is not None:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"Temporal at {settings.temporal_address} not reachable within {timeout:.0f} s; the "
                               "worker in the web process needs it")


def _pipeline(app: FastAPI, router: Router | None) -> RoutingPipeline:
    settings: Settings = app.state.settings
    return RoutingPipeline(app.state.database_url, router, lanes=settings.routing_lanes,
                           capacity=settings.routing_capacity, latency_bound=settings.latency_bound_seconds)


async def _reroute_forever(app: FastAPI) -> None:
    """Route events that were stored but not routed (Temporal was down, or a process died), and start the
    workflows of tickets that have none yet; a poison event or ticket is quarantined, never in the way."""
    settings: Settings = app.state.settings
    pipeline: RoutingPipeline = app.state.pipeline

    async def reconnect() -> Router | None:
        client = await _connect(settings)
        app.state.router = Router(client, app.state.database_url, settings.task_queue) if client else None
        return app.state.router

    async def tickets(router: Router) -> None:
        await start_pending_tickets(router.client, app.state.database_url, router.task_queue)

    await reroute_forever(pipeline, settings.reroute_every_seconds, settings.reroute_after_seconds, reconnect,
                          [tickets])


#: runs a worker on a connected client while its block lasts (tideflow.stack.worker_running)
EmbeddedWorker = Callable[[Client], contextlib.AbstractAsyncContextManager[None]]


def create_app(database_url: str | None = None, client: Client | None = None, connect: bool = True,
               worker: EmbeddedWorker | None = None) -> FastAPI:
    """The app. ``client`` injects a Temporal client (tests); else it connects at startup. ``worker`` runs a
    worker in this process on the same client: journeys are then started eagerly (their first workflow task
    comes back with the start's answer, not through the task queue)."""
    settings = get_settings()
    logs.install()  # no secrets or unmasked personal data in any log record
    tracing.configure("tideflow-web")  # only when TIDEFLOW_OTEL_ENDPOINT is set

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        temporal = client or (await _connect(settings) if connect else None)
        if worker is not None and temporal is None and connect:
            temporal = await _connect_for_worker(settings)
        async with contextlib.AsyncExitStack() as embedded:
            if worker is not None and temporal is not None:
                await embedded.enter_async_context(worker(temporal))
            app.state.router = Router(temporal, app.state.database_url, settings.task_queue,
                                      eager=worker is not None) if temporal else None
            app.state.pipeline = _pipeline(app, app.state.router)
            app.state.pipeline.start()
            # follow-up events (points earned, tier changed, referral progress) committed by this process's
            # requests are routed as soon as they commit, not by the re-router seconds later
            app.state.pipeline.routes_follow_ups()
            task = asyncio.create_task(_reroute_forever(app)) if connect or client else None
            # failed journeys: their reasons are read from Temporal and kept, within seconds of the failure
            reasons = asyncio.create_task(journeys_api.keep_reasons_forever(app)) if connect or client else None
            yield
            for running in (task, reasons):
                if running is not None:
                    running.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await running
            await app.state.pipeline.stop()

    # the API reference is for logged-in users too: /docs and /openapi.json are added below, guarded
    app = FastAPI(title="Tideflow", version="0.1.0", lifespan=lifespan,
                  description="SCRM automation engine: flows, events, journeys.",
                  openapi_url=None, docs_url=None, redoc_url=None)
    app.state.database_url = database_url or settings.resolved_database_url()
    app.state.settings = settings
    app.state.router = None
    app.add_middleware(limits.BodyLimit, settings=settings)  # bodies bounded while read (inside the headers)
    app.state.pipeline = None
    errors.install(app)
    auth.install(app)
    pages.install(app)
    app.add_middleware(LanguageMiddleware)  # every request speaks its caller's language (designer/i18n.py)
    ops.install(app)
    app.add_middleware(tracing.TraceRequests)  # outermost: the span covers the whole request
    app.include_router(auth.router)
    app.include_router(home.router)
    # each area: its JSON API and its pages (the calendars before the tickets' /tickets/{id})
    for area in (calendars_pages.router, events_api.api, hooks.router, flows_api.api, flows_pages.router, editor.router,
                 customers_api.router, customers_pages.router, journeys_api.api, journeys_pages.router,
                 coupons_api.router, tickets_api.router, tickets_setup_api.router, tickets_setup_pages.router,
                 tickets_pages.router,
                 tickets_csat.router,
                 settlement_api.api, settlement_pages.router, connectors_api.router, connectors_ops_api.router,
                 connectors_pages.router,
                 decisions_api.router, decisions_pages.router, workforce_api.router, workforce_pages.router,
                 audit.api, audit.router,
                 sidebar_api.router, sidebar_pages.router, sidebar_library.router,
                 growth_api.router, growth_pages.router, loyalty_api.router, loyalty_pages.router,
                 people_api.router, people_pages.router, temporal_ui.router, quarantine_api.router,
                 quarantine_pages.router,
                 calendars_pages.api,
                 policies_pages.router, policies_pages.api,
                 plan_preview.router,
                 dashboards_api.api, dashboards_pages.router):
        app.include_router(area)
    if (HERE / "static").is_dir():
        app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_schema(user: Annotated[User, Depends(auth.current_user)]) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def api_docs(user: Annotated[User, Depends(auth.current_user)]) -> HTMLResponse:
        # Swagger UI served from the package (static/vendor/swagger-ui), never a CDN, and started from a
        # file, not an inline script: the page works offline and under the Content-Security-Policy
        return HTMLResponse(DOCS_PAGE)

    return app
