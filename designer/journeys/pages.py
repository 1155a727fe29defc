"""The journey pages: journey instances with counts per status (filter by flow and status), the failed
journeys with why each failed (``/journeys/failures``: the node, the error in words, the attempts; filter by
flow, node, words, customer and day), one journey with the messages it sent (a failed one with its reason, a
running one with the trouble it is in right now), and Retry and Cancel.

Thin routes: the cancel signal is :func:`engine.journeys.request_cancel`, retrying and giving up are
:mod:`engine.journey_failures`; who may do them is who may edit the flow's kind (:mod:`designer.permissions`).
Drawn with the page kit, text in :mod:`designer.journeys.text`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from designer import display, reading
from designer.auth import safe_next
from designer.context import engine_router
from designer.i18n import N_, _, current_language
from designer.journeys import labels as _labels  # noqa: F401  (why a journey failed, in words)
from designer.journeys.api import FailureFilter, failed_page, keep_reasons
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
from engine import auth, journey_failures
from engine.db import models
from engine.db.failure_models import JourneyFailure
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
        names = reading.names_for(db, reading.reader_of(db, user), {
            str(i): str(n) for i, n in db.execute(select(models.Customer.id, models.Customer.name)
                                                  .where(models.Customer.id.in_(wanted))).all() if n})
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

    journey = await run_in_threadpool(_changeable, user, db_url, journey_id, back, (*ACTIVE, "failed"))
    router_ = engine_router(request)
    if journey.status == "failed":  # given up: it stays on record as cancelled, with its reason
        await _failure_action(user, back, journey_failures.give_up(
            router_.client if router_ else None, db_url, journey_id, user))
        return see_other(with_query(back, notice="cancelled", id=journey_id))
    if router_ is None:
        raise PageProblem(503, user, _("Not possible right now"),
                          _("The workflow engine (Temporal) is not connected, so the journey cannot be cancelled "
                            "right now."),
                          _("Make sure Temporal and the worker are running (e.g. make run), then try again."),
                          back=back)
        # retrying an outside system, or stuck: it would not reach its next step to hear the signal
        await _failure_action(user, back, journey_failures.give_up(router_.client, db_url, journey_id, user))
        return see_other(with_query(back, notice="cancelled", id=journey_id))
    try:
        await request_cancel(router_.client, journey_id, user, db_url)
    except Exception as exc:
        raise PageProblem(502, user, _("Not possible right now"),
                          _("The cancel signal did not reach journey %(id)s (%(error)s).")
                          % {"id": journey_id, "error": type(exc).__name__},
                          _("The workflow may have ended already; reload the page to see its status, or try again "
                            "later."), back=back) from None
    return see_other(with_query(back, notice="cancel_sent", id=journey_id))


async def _in_trouble(client: Any, journey_id: str) -> bool:
    """Whether a running journey keeps failing now (a describe that fails counts as no: the signal goes out)."""
    try:
        return await journey_failures.read_trouble(client, journey_id) is not None
    except Exception:
        return False


def _changeable(user: User, db_url: str, journey_id: str, back: str, states: tuple[str, ...]) -> models.Journey:
    """The journey, if it exists, the user may change its flow's kind, and it is in one of ``states``."""
    with session_factory(db_url)() as db:
        journey = db.get(models.Journey, journey_id)
        if journey is None:
            raise PageProblem(404, user, _("Not found"), _("There is no journey “%(id)s”.") % {"id": journey_id},
                              back=back)
        kind = kind_of(db, journey)
        if not may_edit_kind(user, kind):
            raise forbidden_kind(user, kind, back=back)
        if journey.status not in states:
            values = {"id": journey_id, "state": display.label(journey.status, "journey_status")}
            message = (_("Journey %(id)s is already %(state)s; there is nothing to cancel.")
                       if "failed" in states and len(states) > 1
                       else _("Journey %(id)s is %(state)s, not failed: there is nothing to retry."))
            raise PageProblem(409, user, _("Cannot do that"), message % values, back=back)
        db.expunge(journey)
        return journey


#: what a page says when a retry or give-up cannot be done (engine.journey_failures.JourneyActionError.code)
ACTION_ERRORS: dict[str, tuple[str, str]] = {
    "unknown": (N_("There is no such journey."), N_("Reload the list of failed journeys.")),
    "not_failed": (N_("This journey is no longer failed."), N_("Reload the page to see its status.")),
    "history_gone": (N_("The workflow engine no longer keeps this journey's history, so its failed step cannot run "
                        "again."), N_("Cancel the journey, or let the customer enter the flow again.")),
    "no_step": (N_("The failed step cannot be found in the journey's history."),
                N_("Cancel the journey, or let the customer enter the flow again.")),
    "engine_down": (N_("The workflow engine (Temporal) is not connected."), N_("Try again in a minute.")),
    "running_normally": (N_("This journey runs normally; nothing is failing."),
                         N_("Use Cancel journey on the journey list: it ends at its next step.")),
    "not_cancellable": (N_("This journey has ended; there is nothing to cancel."),
                        N_("Reload the page to see its status.")),
    "refused": (N_("This cannot be done."), N_("Reload the page and try again.")),
}


async def _failure_action(user: User, back: str, action: Any) -> Any:
    try:
        return await action
    except journey_failures.JourneyActionError as exc:
        message, fix = ACTION_ERRORS.get(exc.code, ACTION_ERRORS["refused"])
        raise PageProblem(exc.status, user, _("Cannot do that"), _(message), _(fix), back=back) from None


@router.post("/journeys/retry", response_class=HTMLResponse)
async def retry_journey(request: Request, user: FlowReader, db_url: DbUrl,
                        journey_id: Annotated[str, Form(max_length=200)] = "",
                        back: Annotated[str, Form(max_length=2000)] = "/journeys/failures") -> Response:
    """Run a failed journey's failing step again (the same idempotency key: nothing done before is redone)."""
    back = safe_next(back)
    await run_in_threadpool(_changeable, user, db_url, journey_id, back, ("failed",))
    router_ = engine_router(request)
    if router_ is None:
        raise PageProblem(503, user, _("Not possible right now"),
                          _("The workflow engine (Temporal) is not connected, so the journey cannot be cancelled "
                            "right now."),
                          _("Make sure Temporal and the worker are running (e.g. make run), then try again."),
                          back=back)
    await _failure_action(user, back, journey_failures.retry(router_.client, db_url, journey_id, user))
    return see_other(with_query(back, notice="retried", id=journey_id))


def node_names(db: Session, flow_id: str, version: int | None) -> dict[str, str]:
    """The node ids of a flow version with the names people gave them (else the id)."""
    if version is None:
        return {}
    found = db.get(models.FlowVersion, (flow_id, version))
    nodes = (found.document or {}).get("nodes") if found else None
    return {str(n.get("id")): str(n.get("name") or n.get("id")) for n in nodes or [] if isinstance(n, dict)}


@router.get("/journeys/failures", response_class=HTMLResponse)
async def failures_page(request: Request, user: FlowReader, db_url: DbUrl, flow: str = "", node: str = "",
                        q: str = "", customer: str = "", since: Annotated[str, Query(alias="from")] = "",
                        until: Annotated[str, Query(alias="to")] = "", page: str = "") -> HTMLResponse:
    """The failed journeys, newest failure first: node, error in words, attempts; Retry and Cancel."""
    filters = FailureFilter(flow, node, q, customer, since, until, current_language())
    kept = await keep_reasons(request)  # a journey that failed a moment ago shows its reason at once

    def work() -> dict[str, Any]:
        with session_factory(db_url)() as db:
            total = db.scalar(select(func.count()).select_from(filters.query(db).subquery())) or 0
            pager = Pager(request, page_number(page), total)
            _total, rows = failed_page(db, filters, pager.per, pager.offset)
            flows = {f.id: f for f in db.scalars(select(models.FlowRecord).order_by(models.FlowRecord.name))}
            names: dict[tuple[str, int], dict[str, str]] = {}
            for journey, _failure in rows:
                key = (journey.flow_id, journey.version)
                if key not in names:
                    names[key] = node_names(db, journey.flow_id, journey.version)
            wanted = {j.customer_id for j, _ in rows if j.customer_id}
            customers = reading.names_for(db, reading.reader_of(db, user), {
                str(i): str(n) for i, n in db.execute(select(models.Customer.id, models.Customer.name)
                                                      .where(models.Customer.id.in_(wanted))).all() if n})
        items = []
        for journey, failure in rows:
            node_id = failure.node_id if failure else journey.current_node
            kind = flows[journey.flow_id].kind if journey.flow_id in flows else "journey"
            items.append({"journey": journey, "failure": failure, "node": node_id,
                          "node_name": names[(journey.flow_id, journey.version)].get(node_id or "", node_id),
                          "flow": flows.get(journey.flow_id), "customer": customers.get(journey.customer_id or ""),
                          "may_change": may_edit_kind(user, kind)})
        return {"rows": items, "pager": pager, "total": total, "flows": list(flows.values())}

    context = await run_in_threadpool(work)
    error = (_("The date “%(value)s” is not valid: use YYYY-MM-DD.") % {"value": filters.bad}
             if filters.bad else None)
    return render(request, user, "journeys/failures.html", f=filters, error=error, kept=kept,
                  engine_down=engine_router(request) is None,
                  may_see_customers=auth.has_role(user, *CUSTOMER_READERS), **context)


@router.get("/journeys/{journey_id:path}", response_class=HTMLResponse)
async def journey_page(request: Request, journey_id: str, user: FlowReader, db_url: DbUrl) -> HTMLResponse:
    """One journey: its flow and version, customer, status, current node and the messages it sent."""

    def load() -> dict[str, Any]:
        with session_factory(db_url)() as db:
            journey = db.get(models.Journey, journey_id)
            if journey is None:
                raise PageProblem(404, user, _("Not found"), _("There is no journey “%(id)s”.") % {"id": journey_id},
                                  back="/journeys")
            flow = db.get(models.FlowRecord, journey.flow_id)
            messages = reading.messages_for(db, reading.reader_of(db, user), db.scalars(
                select(models.Message).where(models.Message.workflow_id == journey_id).order_by(models.Message.id)),
                message_row)
            return {"journey": journey, "flow": flow, "messages": messages,
                    "failure": db.get(JourneyFailure, journey_id),
                    "names": node_names(db, journey.flow_id, journey.version)}

    found = await run_in_threadpool(load)
    router_ = engine_router(request)
    if found["journey"].status == "failed" and found["failure"] is None and router_ is not None:
        await keep_reasons(request)
        found = await run_in_threadpool(load)
    journey, flow = found["journey"], found["flow"]
    trouble = None
    if journey.status in ACTIVE and router_ is not None:
        try:
            trouble = await journey_failures.read_trouble(router_.client, journey_id)
        except Exception:  # the engine is busy or gone: the page shows the journey without it
            trouble = None
    may_change = may_edit_kind(user, flow.kind if flow else "journey")
    return render(request, user, "journeys/journey.html", **found,
                  trouble=trouble, may_cancel=(journey.status in ACTIVE or journey.status == "failed") and may_change,
                  may_retry=journey.status == "failed" and may_change and found["failure"] is not None
                  and found["failure"].kind != "engine",
                  engine_down=router_ is None, may_see_customers=auth.has_role(user, *CUSTOMER_READERS))


def message_row(m: models.Message) -> dict[str, Any]:
    """A message as the journey and customer pages list it: status (labelled by the template), content masked."""
    return {"at": m.created_at, "channel": m.channel, "status": m.status, "skipped": not m.status.startswith("sent"),
            "content": mask_text(m.content), "flow": m.flow_id, "node": m.node_id, "journey": m.workflow_id}
