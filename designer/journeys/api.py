"""Journeys in the JSON API: list them (with counts per status) and cancel a running one.

Who may cancel is who may edit the flow's kind (:mod:`designer.permissions`); the cancel itself is
:func:`engine.journeys.request_cancel`, as on the journey pages.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, select

from designer.auth import get_db_url, require
from designer.context import engine_router
from designer.errors import ApiError
from designer.permissions import FLOW_READERS, check_may_edit
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory
from engine.journeys import ACTIVE, kind_of, request_cancel

api = APIRouter(prefix="/api")
Reader = Annotated[User, Depends(require(*FLOW_READERS))]


@api.get("/journeys", tags=["journeys"])
def list_journeys(request: Request, user: Reader, flow: str | None = None, status: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    with session_factory(get_db_url(request))() as db:
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
                              "ended_at": j.ended_at.isoformat() if j.ended_at else None,
                              "error": j.error} for j in rows]}


@api.post("/journeys/{journey_id:path}/cancel", tags=["journeys"])
async def cancel_journey(request: Request, journey_id: str, user: Reader) -> dict[str, Any]:
    def _journey() -> models.Journey:
        with session_factory(get_db_url(request))() as db:
            j = db.get(models.Journey, journey_id)
            if j is None:
                raise ApiError(404, f"journey '{journey_id}' does not exist", "list journeys first", "id")
            check_may_edit(user, kind_of(db, j))
            return j

    journey = await run_in_threadpool(_journey)
    router = engine_router(request)
    if router is None:
        raise ApiError(503, "the workflow engine is not reachable right now", "retry in a few seconds")
    if journey.status not in ACTIVE:
        raise ApiError(409, f"journey is already {journey.status}", "nothing to cancel", "id")
    await request_cancel(router.client, journey_id, user, get_db_url(request))
    return {"id": journey_id, "status": "cancelling"}
