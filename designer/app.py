"""The designer web app: JSON API under /api and server-rendered pages, one FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select
from temporalio.client import Client

from designer import auth, errors, hooks, ops, pages
from designer.api import api
from designer.api_connector_ops import router as connector_ops_api
from designer.api_connectors import router as connectors_api
from designer.api_coupons import router as coupons_api
from designer.api_decisions import router as decisions_api
from designer.api_profile import router as profile_api
from designer.api_settlement import api as settlement_api
from designer.api_settlement import pages as settlement_pages
from designer.api_tickets import router as tickets_api
from designer.editor import router as editor_router
from designer.i18n import page_context
from designer.pages_tickets import router as tickets_pages
from engine import events as ingest
from engine import logs
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory
from engine.router import Router
from engine.settings import Settings, get_settings
from engine.tickets_workflow import start_pending as start_pending_tickets

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

async def _connect(settings: Settings) -> Client | None:
    try:
        return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    except Exception as exc:
        log.warning("Temporal at %s not reachable yet (%s); events are stored and routed later",
                    settings.temporal_address, type(exc).__name__)
        return None


async def _reroute_forever(app: FastAPI, every: float = 5.0) -> None:
    """Route events that were stored but not routed (Temporal was down, or a process died)."""
    settings: Settings = app.state.settings
    while True:
        await asyncio.sleep(every)
        try:
            if app.state.router is None:
                client = await _connect(settings)
                if client is None:
                    continue
                app.state.router = Router(client, app.state.database_url, settings.task_queue)
            router: Router = app.state.router
            for payload in await asyncio.to_thread(ingest.pending, app.state.database_url):
                await router.route(payload)
                await asyncio.to_thread(ingest.mark_routed, payload["id"], app.state.database_url)
            # tickets made by event hooks (refunds) or while Temporal was down: start their workflows
            await start_pending_tickets(router.client, app.state.database_url, router.task_queue)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("re-routing paused: %s", type(exc).__name__)


def create_app(database_url: str | None = None, client: Client | None = None, connect: bool = True) -> FastAPI:
    """The app. ``client`` injects a Temporal client (tests); else it connects at startup."""
    settings = get_settings()
    logs.install()  # no secrets or unmasked personal data in any log record

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        temporal = client or (await _connect(settings) if connect else None)
        app.state.router = Router(temporal, app.state.database_url, settings.task_queue) if temporal else None
        task = asyncio.create_task(_reroute_forever(app)) if connect or client else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # the API reference is for logged-in users too: /docs and /openapi.json are added below, guarded
    app = FastAPI(title="Tideflow", version="0.1.0", lifespan=lifespan,
                  description="SCRM automation engine: flows, events, journeys.",
                  openapi_url=None, docs_url=None, redoc_url=None)
    app.state.database_url = database_url or settings.resolved_database_url()
    app.state.settings = settings
    app.state.router = None
    errors.install(app)
    auth.install(app)
    ops.install(app)
    app.include_router(auth.router)
    app.include_router(api)
    app.include_router(pages.router)
    app.include_router(coupons_api)
    app.include_router(tickets_api)
    app.include_router(tickets_pages)
    app.include_router(profile_api)
    app.include_router(hooks.router)
    app.include_router(editor_router)
    app.include_router(connectors_api)
    app.include_router(connector_ops_api)
    app.include_router(decisions_api)
    app.include_router(settlement_api)
    app.include_router(settlement_pages)
    if (HERE / "static").is_dir():
        app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, user: Annotated[User, Depends(auth.require())]) -> HTMLResponse:
        with session_factory(app.state.database_url)() as db:
            flows = db.scalars(select(models.FlowRecord).order_by(models.FlowRecord.kind, models.FlowRecord.id)).all()
            counts: dict[tuple[str, str], int] = {
                (f, s): n for f, s, n in db.execute(select(models.Journey.flow_id, models.Journey.status, func.count())
                                                    .group_by(models.Journey.flow_id, models.Journey.status)).all()}
            messages = db.scalars(select(models.Message).order_by(models.Message.id.desc()).limit(20)).all()
        context = page_context(request, user, flows=flows, counts=counts, messages=messages)
        return templates.TemplateResponse(request, "home.html", context)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_schema(user: Annotated[User, Depends(auth.current_user)]) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def api_docs(user: Annotated[User, Depends(auth.current_user)]) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Tideflow API")

    return app
