"""Connector operations (admin JSON API): sync status, resync, and the messages a connector could not map.

- ``GET /api/connectors/{id}/status`` — last sync attempt / success / error, each cursor (stream, position,
  how far behind now), events stored but not routed yet (and those whose routing failed), the last event,
  the count of unmapped messages.
- ``POST /api/connectors/{id}/resync`` ``{"since": "2026-11-20T00:00:00+08:00"}`` (optional) — a polled
  connector reads again from ``since`` (default: its backfill, at least one hour): re-read records are
  duplicates the event store drops. A pushed connector answers 409: the platform resends what was not
  acknowledged.
- ``GET /api/connectors/{id}/unmapped?limit=50&before_id=…`` — messages kept raw because they map to no
  event: the total, the count per kind (tag / topic / status) and the newest ones with their raw text.

The domain is engine/connector_ops.py; these routes are thin. The connectors page
(:mod:`designer.connectors.pages`) shows the same figures and resyncs through the same functions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from designer.auth import get_db_url, require
from designer.errors import ApiError
from engine import auth, connector_ops
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.text import Msg

router = APIRouter()
Admin = Annotated[User, Depends(require("admin"))]
DbUrl = Annotated[str, Depends(get_db_url)]


class ResyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: datetime | None = Field(default=None, description="read again from here (with a time zone); default: "
                                                             "the connector's backfill, at least one hour back")


def _missing(connector_id: str) -> ApiError:
    return ApiError(404, Msg("no connector '%(connector_id)s'", connector_id=connector_id),
                    Msg("GET /api/connectors lists the configured ones"), "id")


@router.get("/api/connectors/{connector_id}/status", tags=["connectors"])
async def connector_status(connector_id: str, user: Admin, db_url: DbUrl) -> dict[str, Any]:
    """Last sync, cursors and how far behind they are, the routing backlog, the last error."""
    def read() -> dict[str, Any]:
        with session_factory(db_url)() as db:
            status = connector_ops.sync_status(db, connector_id)
        if status is None:
            raise _missing(connector_id)
        return {**vars(status), "cursors": [vars(c) for c in status.cursors]}

    return await run_in_threadpool(read)


def resync_connector(db_url: str, user: User, connector_id: str, since: datetime | None) -> datetime:
    """Resync (see :func:`engine.connector_ops.resync`) and write it to the audit log; an ApiError naming
    the problem (404 no such connector, 409 a pushed one, 422 a bad ``since``)."""
    try:
        position = connector_ops.resync(db_url, connector_id, since)
    except connector_ops.ResyncError as exc:
        status = 404 if "no connector" in str(exc) else 409 if ("pushed" in str(exc) or "disabled" in str(exc)) \
            else 422
        raise ApiError(status, exc.message, Msg("give since with a time zone, in the past") if status == 422 else
                       Msg("check the connector id and kind"), "since" if status == 422 else "id") from None
    with transaction(db_url) as db:
        auth.audit(db, user, "connector.resync", connector_id, {"since": position.isoformat()})
    return position


@router.post("/api/connectors/{connector_id}/resync", tags=["connectors"], status_code=202)
async def connector_resync(connector_id: str, user: Admin, db_url: DbUrl,
                           body: ResyncIn | None = None) -> dict[str, Any]:
    """Put a polled connector's cursors back to ``since``; the next poll reads from there."""
    def run() -> dict[str, Any]:
        position = resync_connector(db_url, user, connector_id, body.since if body else None)
        return {"connector_id": connector_id, "since": position.isoformat()}

    return await run_in_threadpool(run)


@router.get("/api/connectors/{connector_id}/unmapped", tags=["connectors"])
async def connector_unmapped(connector_id: str, user: Admin, db_url: DbUrl,
                             limit: Annotated[int, Query(ge=1, le=200)] = 50,
                             before_id: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
    """Messages that map to no event, kept raw: total, per kind, the newest ``limit``."""
    def read() -> dict[str, Any]:
        with session_factory(db_url)() as db:
            if connector_ops.sync_status(db, connector_id) is None:
                raise _missing(connector_id)
            total, by_kind, rows = connector_ops.unmapped(db, connector_id, limit=limit, before_id=before_id)
        return {"connector_id": connector_id, "total": total, "by_kind": by_kind,
                "messages": [vars(r) for r in rows]}

    return await run_in_threadpool(read)
