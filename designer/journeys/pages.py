"""The journey pages: journey instances with counts per status (filter by flow and status), one
journey with the messages it sent, and cancelling a running one.

Thin routes: the cancel signal is :func:`engine.journeys.request_cancel`; who may cancel is who may edit
the flow's kind (:mod:`designer.permissions`). Drawn with the page kit, text in
:mod:`designer.journeys.text`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from designer import i18n, reading
from designer.auth import safe_next
from designer.context import engine_router
from designer.i18n import text_for
from designer.journeys import text as _text  # noqa: F401  (the area's strings join the catalogue)
from designer.pages import (
    DbUrl,
    PageProblem,
    Pager,
    PageRoute,
    clip,
    forbidden_kind,
    page_number,
    page_user,
    render,
    see_other,
    with_query,
)
from designer.permissions import CUSTOMER_READERS, FLOW_READERS, may_edit_kind
from engine import auth
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory
from engine.journeys import ACTIVE, kind_of, request_cancel
from engine.pii import mask_text

JOURNEY_STATUSES = ("running", "waiting", "completed", "converted", "exited", "failed", "cancelled")

router = APIRouter(route_class=PageRoute, include_in_schema=False)
FlowReader = Annotated[User, Depends(page_user(*FLOW_READERS))]


# --- journeys --------------------------------------------------------------------------------------


@router.get("/journeys", response_class=HTMLResponse)
def journeys_page(request: Request, user: FlowReader, db_url: DbUrl, flow: str = "", status: str = "",
                  page: str = "") -> HTMLResponse:
    """Journey instances: counts per status, filter by flow and status, cancel a running one."""
    flow, status = clip(flow, 80), status if status in JOURNEY_STATUSES else ""
    with session_factory(db_url)() as db:
        counts_q = select(models.Journey.status, func.count()).group_by(models.Journey.status)
        query = select(models.Journey)
        if flow:
            counts_q = counts_q.where(models.Journey.flow_id == flow)
            query = query.where(models.Journey.flow_id == flow)
        counts = {str(s): int(n) for s, n in db.execute(counts_q).all()}
        if status:
            query = query.where(models.Journey.status == status)
        total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
        pager = Pager(request, page_number(page), total)
        journeys = list(db.scalars(query.order_by(models.Journey.started_at.desc(), models.Journey.workflow_id)
                                   .offset(pager.offset).limit(pager.per)))
        flows = {f.id: f for f in db.scalars(select(models.FlowRecord).order_by(models.FlowRecord.name))}
        wanted = {j.customer_id for j in journeys if j.customer_id}
        names = {str(i): str(n) for i, n in db.execute(select(models.Customer.id, models.Customer.name)
                                                       .where(models.Customer.id.in_(wanted))).all() if n}
    rows = [{"journey": j, "flow": flows.get(j.flow_id), "customer": names.get(j.customer_id or ""),
             "may_cancel": j.status in ACTIVE and may_edit_kind(user, flows[j.flow_id].kind if j.flow_id in flows
                                                                  else "journey")} for j in journeys]
    return render(request, user, "journeys/journeys.html", rows=rows, pager=pager, counts=counts,
                   statuses=JOURNEY_STATUSES, flow=flow, status=status, flows=list(flows.values()),
                   engine_down=engine_router(request) is None,
                   may_see_customers=auth.has_role(user, *CUSTOMER_READERS))


@router.post("/journeys/cancel", response_class=HTMLResponse)
async def cancel_journey(request: Request, user: FlowReader, db_url: DbUrl,
                         journey_id: Annotated[str, Form(max_length=200)] = "",
                         back: Annotated[str, Form(max_length=2000)] = "/journeys") -> Response:
    """Signal ``cancel`` to a running journey's workflow (needs the right to edit its flow's kind)."""
    back = safe_next(back)

    def _check() -> None:
        with session_factory(db_url)() as db:
            journey = db.get(models.Journey, journey_id)
            if journey is None:
                raise PageProblem(404, user, "pg.notfound", "err.journey_unknown", back=back, id=journey_id)
            kind = kind_of(db, journey)
            if not may_edit_kind(user, kind):
                raise forbidden_kind(user, kind, back=back)
            if journey.status not in ACTIVE:
                raise PageProblem(409, user, "pg.conflict", "err.not_active", back=back, id=journey_id,
                                  state=journey.status)

    await run_in_threadpool(_check)
    router_ = engine_router(request)
    if router_ is None:
        raise PageProblem(503, user, "pg.unavailable", "err.temporal_down", "err.temporal_down.fix", back=back)
    try:
        await request_cancel(router_.client, journey_id, user, db_url)
    except Exception as exc:
        raise PageProblem(502, user, "pg.unavailable", "err.signal_failed", "err.signal_failed.fix", back=back,
                          id=journey_id, error=type(exc).__name__) from None
    return see_other(with_query(back, notice="cancel_sent", id=journey_id))


@router.get("/journeys/{journey_id:path}", response_class=HTMLResponse)
def journey_page(request: Request, journey_id: str, user: FlowReader, db_url: DbUrl) -> HTMLResponse:
    """One journey: its flow and version, customer, status, current node and the messages it sent."""
    _lang, t = text_for(request)
    with session_factory(db_url)() as db:
        journey = db.get(models.Journey, journey_id)
        if journey is None:
            raise PageProblem(404, user, "pg.notfound", "err.journey_unknown", back="/journeys", id=journey_id)
        flow = db.get(models.FlowRecord, journey.flow_id)
        messages = reading.messages_for(db, reading.reader_of(db, user), db.scalars(
            select(models.Message).where(models.Message.workflow_id == journey_id).order_by(models.Message.id)),
            lambda m: message_row(t, m))
    return render(request, user, "journeys/journey.html", journey=journey, flow=flow,
                   messages=messages,
                   may_cancel=journey.status in ACTIVE and may_edit_kind(user, flow.kind if flow else "journey"),
                   engine_down=engine_router(request) is None,
                   may_see_customers=auth.has_role(user, *CUSTOMER_READERS))


def message_row(t: i18n.Text, m: models.Message) -> dict[str, Any]:
    """A message as the journey and customer pages list it: status in the user's language, content masked."""
    key = f"ms.{m.status}"
    return {"at": m.created_at, "channel": m.channel, "status": m.status,
            "status_label": t.get(key, m.status), "skipped": not m.status.startswith("sent"),
            "content": mask_text(m.content), "flow": m.flow_id, "node": m.node_id, "journey": m.workflow_id}
