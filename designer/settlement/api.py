"""Settlement for finance: the JSON API under ``/api/settlement`` (the pages under ``/settlement`` are
:mod:`designer.settlement.pages` and call the same functions).

* the dashboard: statements waiting for a decision, totals by period and party type, what changed
  against the previous period, recent runs, and "settle a period" for each published settlement flow;
* a statement: its lines (each traceable to its orders and the plan version), approve / reject with a
  reason, a correction (a new, linked adjustment statement), CSV download and a print view;
* ``POST /api/settlement/runs`` settles a period: it starts the flow's run on Temporal (which waits for
  the decisions and pays out), or — with no Temporal connected — settles in-process and submits the
  statements; ``POST /api/settlement/runs/{id}/payout`` then pays the approved ones (idempotent).

Every route needs the finance role (admins pass too). Amounts are yuan strings with 2 decimals.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.settlement.errors import SettlementError
from activities.settlement.money import parse_yuan
from activities.settlement.periods import Period
from activities.settlement.runs import (
    StatementStateError,
    adjust,
    check_settleable,
    decide,
    pay_run,
    settle,
    submit_run,
)
from activities.settlement.settlement_plan import load_settlement_plan
from activities.settlement.statements import (
    dashboard,
    lines_by_statement,
    run_view,
    statement_view,
    statements_csv,
    yuan,
)
from designer.auth import get_db_url, require
from designer.context import engine_router
from designer.display import label
from designer.errors import ApiError
from designer.i18n import _
from engine import auth
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory, transaction
from engine.text import Msg, message_of

FINANCE = ("finance",)
api = APIRouter(prefix="/api/settlement", tags=["settlement"])
Finance = Annotated[User, Depends(require(*FINANCE))]
DbUrl = Annotated[str, Depends(get_db_url)]
RunId = Annotated[int, Path(ge=1, le=2_147_483_647, description="a settlement run's id")]
StatementId = Annotated[int, Path(ge=1, le=2_147_483_647, description="a statement's id")]
MAX_FEN = 10**15  # ¥10 trillion: far above any statement, far below the 64-bit columns


# --- shared -------------------------------------------------------------------------------------------------
def _statement(db: Session, statement_id: int) -> tuple[models.Statement, models.SettlementRun]:
    statement = db.get(models.Statement, statement_id)
    run = db.get(models.SettlementRun, statement.run_id) if statement is not None else None
    if statement is None or run is None:
        raise ApiError(404, Msg("statement %(statement_id)s does not exist", statement_id=statement_id),
                       Msg("pick a statement from the dashboard"),
                       field="statement_id")
    return statement, run


def published_settlement_flows(db: Session) -> list[tuple[models.FlowRecord, models.FlowVersion]]:
    rows = db.execute(select(models.FlowRecord, models.FlowVersion)
                      .join(models.FlowVersion, (models.FlowVersion.flow_id == models.FlowRecord.id)
                            & (models.FlowVersion.version == models.FlowRecord.current_version))
                      .where(models.FlowRecord.kind == "settlement", models.FlowRecord.status == "active")
                      .order_by(models.FlowRecord.id)).all()
    return [(flow, version) for flow, version in rows]


def _collect_plan(compiled: dict[str, Any]) -> dict[str, Any] | None:
    for node in compiled.get("nodes", {}).values():
        if node.get("type") == "settlement.collect":
            plan = node.get("config", {}).get("plan")
            return plan if isinstance(plan, dict) else None
    return None


class RunIn(BaseModel):
    """Settle one period of a published settlement flow."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    flow_id: str = Field(min_length=1, max_length=80, examples=["store-monthly-settlement"])
    start: date = Field(alias="from", examples=["2026-10-01"], description="first day of the period (YYYY-MM-DD)")
    end: date = Field(alias="to", examples=["2026-10-31"], description="last day of the period (YYYY-MM-DD)")

    @model_validator(mode="after")
    def _sane_period(self) -> RunIn:
        if not date(2000, 1, 1) <= self.start <= date(2199, 12, 31) or not date(2000, 1, 1) <= self.end <= date(
                2199, 12, 31):
            raise ValueError("the period must lie between 2000-01-01 and 2199-12-31")
        if (self.end - self.start).days > 366:
            raise ValueError("a period is at most a year (366 days); settle longer spans period by period")
        return self


def _audit_run(db_url: str, actor: str, workflow_id: str, body: RunIn) -> None:
    with transaction(db_url) as db:
        auth.audit(db, actor, "settlement.run_started", workflow_id,
                   {"flow_id": body.flow_id, "from": body.start.isoformat(), "to": body.end.isoformat()},
                   after={"status": "running"})


async def start_period(request: Request, db_url: str, body: RunIn, actor: str) -> dict[str, Any]:
    """Start the flow's run for the period on Temporal, or settle in-process when no engine is connected."""
    if body.end < body.start:
        raise ApiError(422, Msg("the period ends on %(end)s before it starts on %(start)s", end=body.end,
                                start=body.start),
                       Msg("swap 'from' and 'to'"), field="to")
    with session_factory(db_url)() as db:
        found = next(((f, v) for f, v in published_settlement_flows(db) if f.id == body.flow_id), None)
    if found is None:
        raise ApiError(404, Msg("no published settlement flow '%(flow_id)s'", flow_id=body.flow_id),
                       Msg("publish the flow first, or pick one from the dashboard"), field="flow_id")
    compiled = dict(found[1].compiled)
    plan_data = _collect_plan(compiled)
    if plan_data is None:
        raise ApiError(422, Msg("flow '%(flow_id)s' has no settlement.collect node", flow_id=body.flow_id),
                       Msg("add settlement.collect with the plan and publish again"), field="flow_id")
    period = {"from": body.start.isoformat(), "to": body.end.isoformat()}
    try:  # before a workflow starts: a period off the plan's cycle, or over a settled one, is the caller's to fix
        with session_factory(db_url)() as db:
            check_settleable(db, load_settlement_plan(plan_data), Period(body.start, body.end))
    except SettlementError as exc:
        raise ApiError(422, message_of(exc),
                       Msg("pick the dates of one period of the plan's cycle that is not settled yet"),
                       field="from") from None
    router = engine_router(request)
    if router is not None:
        from temporalio.common import WorkflowIDReusePolicy

        from engine.runtime import JOURNEY_WORKFLOW, JourneyInput

        workflow_id = f"settle/{body.flow_id}/v{compiled['version']}/{period['from']}..{period['to']}"
        try:
            await router.client.start_workflow(
                JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=None,
                                               variables={"settlement_period": period}),
                id=workflow_id, task_queue=router.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        except Exception as exc:  # already running: the same period is being settled
            return {"workflow_id": workflow_id, "started": False, "note": type(exc).__name__}
        _audit_run(db_url, actor, workflow_id, body)
        return {"workflow_id": workflow_id, "started": True}
    try:
        with transaction(db_url) as db:
            run = settle(db, load_settlement_plan(plan_data), Period(body.start, body.end),
                         flow_id=body.flow_id, created_by=actor)
            submit_run(db, run)
            auth.audit(db, actor, "settlement.run_started", f"run:{run.id}",
                       {"flow_id": body.flow_id, "from": body.start.isoformat(), "to": body.end.isoformat()},
                       after={"status": run.status})
            return {"run_id": run.id, "status": run.status, "started": False}
    except SettlementError as exc:
        raise ApiError(422, message_of(exc), Msg("check the plan in the flow's settlement.collect node"),
                       field="plan") from None


# --- JSON API ----------------------------------------------------------------------------------------------
@api.get("/dashboard")
def api_dashboard(user: Finance, db_url: DbUrl) -> dict[str, Any]:
    with session_factory(db_url)() as db:
        return dashboard(db)


@api.post("/runs")
async def api_start_run(request: Request, body: RunIn, user: Finance, db_url: DbUrl) -> dict[str, Any]:
    return await start_period(request, db_url, body, user.username)


@api.get("/runs/{run_id}")
def api_run(run_id: RunId, user: Finance, db_url: DbUrl) -> dict[str, Any]:
    with session_factory(db_url)() as db:
        run = db.get(models.SettlementRun, run_id)
        if run is None:
            raise ApiError(404, Msg("settlement run %(run_id)s does not exist", run_id=run_id),
                           Msg("pick a run from the dashboard"),
                           field="run_id")
        return run_view(db, run)


@api.post("/runs/{run_id}/payout")
def api_payout(run_id: RunId, user: Finance, db_url: DbUrl) -> dict[str, Any]:
    with transaction(db_url) as db:
        run = db.get(models.SettlementRun, run_id)
        if run is None:
            raise ApiError(404, Msg("settlement run %(run_id)s does not exist", run_id=run_id),
                           Msg("pick a run from the dashboard"),
                           field="run_id")
        before = run.status
        made = pay_run(db, run, method="api", target=user.username)
        auth.audit(db, user, "settlement.paid_out", f"run:{run.id}",
                   {"payouts": [{"statement_id": p.statement_id, "party": p.party, "amount": yuan(p.amount_fen)}
                                for p in made]},
                   before={"status": before}, after={"status": run.status})
        return {"run_id": run.id, "status": run.status,
                "payouts": [{"statement_id": p.statement_id, "party": p.party, "amount": yuan(p.amount_fen),
                             "idempotency_key": p.idempotency_key} for p in made]}


@api.get("/statements/{statement_id}")
def api_statement(statement_id: StatementId, user: Finance, db_url: DbUrl) -> dict[str, Any]:
    with session_factory(db_url)() as db:
        statement, run = _statement(db, statement_id)
        return statement_view(statement, run, lines_by_statement(db, [statement.id])[statement.id])


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approved", "rejected"]
    reason: str = Field(default="", max_length=2000, description="why; required to reject")


def decide_statement(db_url: str, statement_id: int, decision: str, reason: str, actor: str) -> dict[str, Any]:
    try:
        with transaction(db_url) as db:
            found, _ = _statement(db, statement_id)
            before = {"status": found.status, "total": yuan(found.total_fen)}
            statement = decide(db, statement_id, decision, reason, actor)
            run = db.get(models.SettlementRun, statement.run_id)
            assert run is not None
            auth.audit(db, actor, f"statement.{decision}", f"statement:{statement_id}",
                       {"party": statement.party, "run_id": run.id, "reason": reason[:500]}, before=before,
                       after={"status": statement.status, "total": yuan(statement.total_fen)})
            return statement_view(statement, run)
    except StatementStateError as exc:
        field = "reason" if "reason" in str(exc) else "decision"
        raise ApiError(422 if field == "reason" else 409, message_of(exc),
                       Msg("write why in 'reason'") if field == "reason" else Msg("reload the statement"),
                       field=field) \
            from None


@api.post("/statements/{statement_id}/decision")
def api_decide(statement_id: StatementId, body: DecisionIn, user: Finance, db_url: DbUrl) -> dict[str, Any]:
    return decide_statement(db_url, statement_id, body.decision, body.reason, user.username)


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: str | int = Field(examples=["-12.50", -1250],
                              description='yuan as a decimal string ("-12.50") or integer fen (-1250)')
    reason: str = Field(min_length=1, max_length=2000)


def parse_amount(value: str | int) -> int:
    try:
        fen = value if isinstance(value, int) else parse_yuan(value, what="amount")
    except SettlementError as exc:
        raise ApiError(422, message_of(exc), Msg("write yuan with at most 2 decimals, e.g. \"-12.50\""),
                       field="amount") from None
    if abs(fen) > MAX_FEN:
        raise ApiError(422, Msg("amount %(value)s is out of range", value=value),
                       Msg("an adjustment is at most ¥10,000,000,000,000.00"),
                       field="amount")
    return fen


@api.post("/statements/{statement_id}/adjustments", status_code=201)
def api_adjust(statement_id: StatementId, body: AdjustmentIn, user: Finance, db_url: DbUrl) -> dict[str, Any]:
    amount = parse_amount(body.amount)
    try:
        with transaction(db_url) as db:
            _statement(db, statement_id)
            statement = adjust_statement(db, statement_id, amount, body.reason, user.username)
            run = db.get(models.SettlementRun, statement.run_id)
            assert run is not None
            return statement_view(statement, run, lines_by_statement(db, [statement.id])[statement.id])
    except StatementStateError as exc:
        raise ApiError(422, message_of(exc), Msg("fill in 'reason'"), field="reason") from None


def adjust_statement(db: Session, statement_id: int, amount_fen: int, reason: str, actor: str) -> models.Statement:
    """A correction of a statement (the API and the page), audited: the new statement and its amount."""
    made = adjust(db, statement_id, amount_fen, reason, actor)
    auth.audit(db, actor, "statement.corrected", f"statement:{statement_id}",
               {"party": made.party, "reason": reason[:500]}, before={"correction": None},
               after={"correction": made.id, "amount": yuan(amount_fen), "status": made.status})
    return made


def csv_download(db_url: str, run_id: int | None, statement_id: int | None, for_people: bool = False) -> Response:
    """The statements' CSV. ``for_people`` (the page's download): column names and statuses in the reader's
    language; the API's CSV keeps the stable column names and raw statuses programs read."""
    with session_factory(db_url)() as db:
        query = select(models.Statement, models.SettlementRun).join(models.SettlementRun)
        if run_id is not None:
            query = query.where(models.Statement.run_id == run_id)
        if statement_id is not None:
            query = query.where(models.Statement.id == statement_id)
        rows = [(s, r) for s, r in db.execute(query.order_by(models.Statement.party, models.Statement.seq)).all()]
        if not rows:
            raise ApiError(404, Msg("no statements match"), Msg("pass run_id or statement_id of an existing statement"),
                           field="run_id" if run_id is not None else "statement_id")
        text = statements_csv(db, rows, **(_csv_words() if for_people else {}))
    name = f"statements-run{run_id}.csv" if run_id is not None else f"statement-{statement_id}.csv"
    return PlainTextResponse("\ufeff" + text, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _csv_words() -> dict[str, Any]:
    header = (_("Statement"), _("Plan"), _("Plan version"), _("Period from"), _("Period to"), _("Party"),
              _("Party type"), _("Status"), _("Line"), _("Kind"), _("Rule"), _("Description"), _("Exact amount (fen)"),
              _("Amount (yuan)"))
    return {"header": header, "status": lambda s: label(s, "statement_status"), "total": _("Total")}


@api.get("/statements.csv")
def api_csv(user: Finance, db_url: DbUrl,
            run_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
            statement_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None) -> Response:
    if run_id is None and statement_id is None:
        raise ApiError(422, Msg("say which statements"), Msg("pass ?run_id=… or ?statement_id=…"), field="run_id")
    return csv_download(db_url, run_id, statement_id)
