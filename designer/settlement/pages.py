"""Settlement pages for finance: the dashboard (statements waiting for a decision, totals by period and
party type, changes against the previous period, recent runs, "settle a period"), a statement (lines
traced to their orders, approve / reject, a correction, CSV, a print view).

Thin routes over the same functions as the JSON API (:mod:`designer.settlement.api`, which calls
:mod:`activities.settlement`); drawn with the page kit. Errors travel to the page they redirect to already in the
reader's language.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from activities.settlement.line_text import described
from activities.settlement.runs import StatementStateError
from activities.settlement.statements import dashboard, line_orders, lines_by_statement, statement_view, yuan
from designer.auth import get_db_url
from designer.errors import ApiError
from designer.i18n import _, error_text, translate
from designer.pages import PageProblem, PageRoute, page_user, render, see_other
from designer.settlement.api import (
    FINANCE,
    RunId,
    RunIn,
    StatementId,
    adjust_statement,
    api_payout,
    csv_download,
    decide_statement,
    parse_amount,
    published_settlement_flows,
    start_period,
)
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.validate import pydantic_message

router = APIRouter(route_class=PageRoute, include_in_schema=False)
FinancePage = Annotated[User, Depends(page_user(*FINANCE))]
DbUrl = Annotated[str, Depends(get_db_url)]


@router.get("/settlement", response_class=HTMLResponse)
def dashboard_page(request: Request, user: FinancePage, db_url: DbUrl) -> HTMLResponse:
    with session_factory(db_url)() as db:
        board = dashboard(db)
        flows = [(f.id, f.name, v.version) for f, v in published_settlement_flows(db)]
    error = request.query_params.get("error", "")[:300]
    return render(request, user, "settlement/dashboard.html", board=board, flows=flows, error=error,
                   notice=_done(request.query_params.get("done", ""), request.query_params.get("id", "")[:80]))


def _done(what: str, id: str) -> str | None:
    """The notice after an action (``?done=run&id=7``): never free text from the URL."""
    if what == "run":
        return _("Settlement run %(id)s started.") % {"id": id}
    if what == "workflow":
        return _("The settlement workflow %(id)s is running.") % {"id": id}
    if what == "payout":
        return _("Payout of run %(id)s instructed.") % {"id": id}
    return None


@router.post("/settlement/run")
async def run_page(request: Request, user: FinancePage, db_url: DbUrl,
                   flow_id: Annotated[str, Form(max_length=80)], start: Annotated[str, Form(max_length=10)],
                   end: Annotated[str, Form(max_length=10)]) -> RedirectResponse:
    try:
        body = RunIn.model_validate({"flow_id": flow_id, "from": start, "to": end})
        result = await start_period(request, db_url, body, user.username)
    except ApiError as exc:
        return see_other(f"/settlement?error={quote(error_text(exc))}")
    except ValidationError as exc:
        first = exc.errors()[0]
        message = translate(pydantic_message(first))
        if first.get("type", "").startswith("date"):
            message = _("Dates are written YYYY-MM-DD, e.g. 2026-11-01.")
        return see_other(f"/settlement?error={quote(message)}")
    if "run_id" in result:
        return see_other(f"/settlement?done=run&id={result['run_id']}")
    return see_other(f"/settlement?done=workflow&id={quote(str(result.get('workflow_id')))}")


def _statement_page_data(db_url: str, user: User, statement_id: int) -> dict[str, Any]:
    with session_factory(db_url)() as db:
        statement = db.get(models.Statement, statement_id)
        run = db.get(models.SettlementRun, statement.run_id) if statement is not None else None
        if statement is None or run is None:
            raise PageProblem(404, user, _("Not found"), _("There is no statement #%(id)s.") % {"id": statement_id},
                              back="/settlement")
        lines = lines_by_statement(db, [statement.id])[statement.id]
        view = statement_view(statement, run, lines)
        for line in view["lines"]:
            line["shown"] = translate(described(line))  # how it came about, in the reader's language
        traced = {line.position: [(o.order_id, o.channel, yuan(o.amount_fen), o.paid_at)
                                  for o in line_orders(db, line, limit=50)] for line in lines}
    return {"s": view, "traced": traced}


# the downloads come before /settlement/statements/{statement_id}: "5.csv" is not a statement id (it was a 422)
@router.get("/settlement/statements/{statement_id}.csv")
def statement_csv_page(statement_id: StatementId, user: FinancePage, db_url: DbUrl) -> Response:
    """The statement's lines as CSV (UTF-8 with a BOM, so Excel opens the Chinese right)."""
    return csv_download(db_url, None, statement_id, for_people=True)


@router.get("/settlement/runs/{run_id}.csv")
def run_csv_page(run_id: RunId, user: FinancePage, db_url: DbUrl) -> Response:
    return csv_download(db_url, run_id, None, for_people=True)


@router.get("/settlement/statements/{statement_id}", response_class=HTMLResponse)
def statement_page(request: Request, statement_id: StatementId, user: FinancePage, db_url: DbUrl) -> HTMLResponse:
    data = _statement_page_data(db_url, user, statement_id)
    return render(request, user, "settlement/statement.html", error=request.query_params.get("error", "")[:300],
                   **data)


@router.get("/settlement/statements/{statement_id}/print", response_class=HTMLResponse)
def print_page(request: Request, statement_id: StatementId, user: FinancePage, db_url: DbUrl) -> HTMLResponse:
    data = _statement_page_data(db_url, user, statement_id)
    return render(request, user, "settlement/print.html", **data)


@router.post("/settlement/statements/{statement_id}/decision")
def decide_page(statement_id: StatementId, user: FinancePage, db_url: DbUrl,
                decision: Annotated[str, Form(max_length=20)],
                reason: Annotated[str, Form(max_length=2000)] = "",
                back: Annotated[str, Form(max_length=200)] = "") -> RedirectResponse:
    target = back if back.startswith("/settlement") else f"/settlement/statements/{statement_id}"
    try:
        decide_statement(db_url, statement_id, decision, reason, user.username)
    except ApiError as exc:
        separator = "&" if "?" in target else "?"
        return see_other(f"{target}{separator}error={quote(error_text(exc))}")
    return see_other(target)


@router.post("/settlement/statements/{statement_id}/adjust")
def adjust_page(statement_id: StatementId, user: FinancePage, db_url: DbUrl,
                amount: Annotated[str, Form(max_length=30)],
                reason: Annotated[str, Form(max_length=2000)] = "") -> RedirectResponse:
    try:
        fen = parse_amount(amount)
        with transaction(db_url) as db:
            made = adjust_statement(db, statement_id, fen, reason, user.username)
            new_id = made.id
    except (ApiError, StatementStateError) as exc:
        return see_other(f"/settlement/statements/{statement_id}?error={quote(error_text(exc))}")
    return see_other(f"/settlement/statements/{new_id}")


@router.post("/settlement/runs/{run_id}/payout")
def payout_page(run_id: RunId, user: FinancePage, db_url: DbUrl) -> RedirectResponse:
    api_payout(run_id, user, db_url)
    return see_other(f"/settlement?done=payout&id={run_id}")
