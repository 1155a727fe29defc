"""Settlement for finance: the JSON API under ``/api/settlement`` and the pages under ``/settlement``.

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

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
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
    line_orders,
    lines_by_statement,
    run_view,
    statement_view,
    statements_csv,
    yuan,
)
from designer import i18n
from designer.auth import get_db_url, require
from designer.errors import ApiError
from designer.pages import PageProblem, PageRoute, _render, page_user
from engine.db import models
from engine.db.models import User
from engine.db.session import session_factory, transaction

FINANCE = ("finance",)
api = APIRouter(prefix="/api/settlement", tags=["settlement"])
pages = APIRouter(route_class=PageRoute, include_in_schema=False)
Finance = Annotated[User, Depends(require(*FINANCE))]
FinancePage = Annotated[User, Depends(page_user(*FINANCE))]
DbUrl = Annotated[str, Depends(get_db_url)]
RunId = Annotated[int, Path(ge=1, le=2_147_483_647, description="a settlement run's id")]
StatementId = Annotated[int, Path(ge=1, le=2_147_483_647, description="a statement's id")]
MAX_FEN = 10**15  # ¥10 trillion: far above any statement, far below the 64-bit columns

i18n.add({
    "zh-CN": {
        "st.title": "结算", "st.pending": "待审批结算单", "st.pending.none": "没有待审批的结算单。",
        "st.pending.sum": "共 {n} 张，合计 ¥{total}", "st.periods": "各期合计（按结算方类型）",
        "st.changes": "与上期相比", "st.runs": "最近的结算批次", "st.run_period": "结算一个周期",
        "st.run_period.help": "选择已发布的结算流程和日期范围；同一方案版本同一周期只结算一次，"
                              "重复运行返回已有结算单。",
        "st.flow": "结算流程", "st.from": "开始日期", "st.to": "结束日期", "st.run": "开始结算",
        "st.no_flows": "还没有已发布的结算流程（可从模板「月度门店结算」等创建）。",
        "st.party": "结算方", "st.party_type": "类型", "st.period": "周期", "st.sales": "销售额",
        "st.orders": "订单数", "st.commission": "佣金", "st.clawback": "追回", "st.total": "应付",
        "st.status": "状态", "st.plan": "方案", "st.version": "方案版本", "st.approve": "通过",
        "st.reject": "驳回", "st.reason": "原因（驳回必填）", "st.lines": "明细", "st.rule": "规则",
        "st.description": "说明", "st.exact": "精确值（分）", "st.amount": "金额", "st.csv": "下载 CSV",
        "st.print": "打印视图", "st.adjust": "更正（生成关联的调整单）", "st.adjust.amount": "调整金额（元，可为负）",
        "st.adjust.submit": "生成调整单", "st.adjusts": "调整自结算单 #{id}", "st.decided": "{who} 于 {at} {what}",
        "st.orders_of_line": "本行订单", "st.delta": "变化", "st.new": "新增", "st.gone": "减少",
        "st.pay": "生成付款指令", "st.statements": "结算单", "st.count": "张数",
        "ss.draft": "草稿", "ss.pending": "待审批", "ss.approved": "已通过", "ss.rejected": "已驳回",
        "ss.paid": "已付款", "st.notfound": "找不到结算单 #{id}。",
    },
    "en": {
        "st.title": "Settlement", "st.pending": "Statements waiting for approval",
        "st.pending.none": "No statement is waiting for approval.", "st.pending.sum": "{n} statements, ¥{total} in all",
        "st.periods": "Totals per period (by party type)", "st.changes": "Against the previous period",
        "st.runs": "Recent runs", "st.run_period": "Settle a period",
        "st.run_period.help": "Pick a published settlement flow and the dates; a period is settled once per plan "
                              "version, and running it again returns the same statements.",
        "st.flow": "Settlement flow", "st.from": "From", "st.to": "To", "st.run": "Settle",
        "st.no_flows": "No settlement flow is published yet (create one from a template such as 月度门店结算).",
        "st.party": "Party", "st.party_type": "Type", "st.period": "Period", "st.sales": "Sales",
        "st.orders": "Orders", "st.commission": "Commission", "st.clawback": "Clawback", "st.total": "Payable",
        "st.status": "Status", "st.plan": "Plan", "st.version": "Plan version", "st.approve": "Approve",
        "st.reject": "Reject", "st.reason": "Reason (required to reject)", "st.lines": "Lines", "st.rule": "Rule",
        "st.description": "Description", "st.exact": "Exact (fen)", "st.amount": "Amount", "st.csv": "Download CSV",
        "st.print": "Print view", "st.adjust": "Correct (a linked adjustment statement)",
        "st.adjust.amount": "Adjustment (yuan, may be negative)", "st.adjust.submit": "Create adjustment",
        "st.adjusts": "Adjusts statement #{id}", "st.decided": "{what} by {who} at {at}",
        "st.orders_of_line": "Orders of this line", "st.delta": "Change", "st.new": "New", "st.gone": "Gone",
        "st.pay": "Pay out approved", "st.statements": "Statements", "st.count": "Count",
        "ss.draft": "draft", "ss.pending": "pending", "ss.approved": "approved", "ss.rejected": "rejected",
        "ss.paid": "paid", "st.notfound": "There is no statement #{id}.",
    },
})


# --- shared -------------------------------------------------------------------------------------------------
def _statement(db: Session, statement_id: int) -> tuple[models.Statement, models.SettlementRun]:
    statement = db.get(models.Statement, statement_id)
    run = db.get(models.SettlementRun, statement.run_id) if statement is not None else None
    if statement is None or run is None:
        raise ApiError(404, f"statement {statement_id} does not exist", "pick a statement from the dashboard",
                       field="statement_id")
    return statement, run


def _settlement_flows(db: Session) -> list[tuple[models.FlowRecord, models.FlowVersion]]:
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


async def start_period(request: Request, db_url: str, body: RunIn, actor: str) -> dict[str, Any]:
    """Start the flow's run for the period on Temporal, or settle in-process when no engine is connected."""
    if body.end < body.start:
        raise ApiError(422, f"the period ends on {body.end} before it starts on {body.start}",
                       "swap 'from' and 'to'", field="to")
    with session_factory(db_url)() as db:
        found = next(((f, v) for f, v in _settlement_flows(db) if f.id == body.flow_id), None)
    if found is None:
        raise ApiError(404, f"no published settlement flow '{body.flow_id}'",
                       "publish the flow first, or pick one from the dashboard", field="flow_id")
    compiled = dict(found[1].compiled)
    plan_data = _collect_plan(compiled)
    if plan_data is None:
        raise ApiError(422, f"flow '{body.flow_id}' has no settlement.collect node",
                       "add settlement.collect with the plan and publish again", field="flow_id")
    period = {"from": body.start.isoformat(), "to": body.end.isoformat()}
    try:  # before a workflow starts: a period off the plan's cycle, or over a settled one, is the caller's to fix
        with session_factory(db_url)() as db:
            check_settleable(db, load_settlement_plan(plan_data), Period(body.start, body.end))
    except SettlementError as exc:
        raise ApiError(422, str(exc), "pick the dates of one period of the plan's cycle that is not settled yet",
                       field="from") from None
    router = getattr(request.app.state, "router", None)
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
        return {"workflow_id": workflow_id, "started": True}
    try:
        with transaction(db_url) as db:
            run = settle(db, load_settlement_plan(plan_data), Period(body.start, body.end),
                         flow_id=body.flow_id, created_by=actor)
            submit_run(db, run)
            return {"run_id": run.id, "status": run.status, "started": False}
    except SettlementError as exc:
        raise ApiError(422, str(exc), "check the plan in the flow's settlement.collect node", field="plan") from None


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
            raise ApiError(404, f"settlement run {run_id} does not exist", "pick a run from the dashboard",
                           field="run_id")
        return run_view(db, run)


@api.post("/runs/{run_id}/payout")
def api_payout(run_id: RunId, user: Finance, db_url: DbUrl) -> dict[str, Any]:
    with transaction(db_url) as db:
        run = db.get(models.SettlementRun, run_id)
        if run is None:
            raise ApiError(404, f"settlement run {run_id} does not exist", "pick a run from the dashboard",
                           field="run_id")
        made = pay_run(db, run, method="api", target=user.username)
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


def _decide(db_url: str, statement_id: int, decision: str, reason: str, actor: str) -> dict[str, Any]:
    try:
        with transaction(db_url) as db:
            _statement(db, statement_id)
            statement = decide(db, statement_id, decision, reason, actor)
            run = db.get(models.SettlementRun, statement.run_id)
            assert run is not None
            return statement_view(statement, run)
    except StatementStateError as exc:
        field = "reason" if "reason" in str(exc) else "decision"
        raise ApiError(422 if field == "reason" else 409, str(exc),
                       "write why in 'reason'" if field == "reason" else "reload the statement", field=field) \
            from None


@api.post("/statements/{statement_id}/decision")
def api_decide(statement_id: StatementId, body: DecisionIn, user: Finance, db_url: DbUrl) -> dict[str, Any]:
    return _decide(db_url, statement_id, body.decision, body.reason, user.username)


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: str | int = Field(examples=["-12.50", -1250],
                              description='yuan as a decimal string ("-12.50") or integer fen (-1250)')
    reason: str = Field(min_length=1, max_length=2000)


def _amount_fen(value: str | int) -> int:
    try:
        fen = value if isinstance(value, int) else parse_yuan(value, what="amount")
    except SettlementError as exc:
        raise ApiError(422, str(exc), 'write yuan with at most 2 decimals, e.g. "-12.50"', field="amount") from None
    if abs(fen) > MAX_FEN:
        raise ApiError(422, f"amount {value} is out of range", "an adjustment is at most ¥10,000,000,000,000.00",
                       field="amount")
    return fen


@api.post("/statements/{statement_id}/adjustments", status_code=201)
def api_adjust(statement_id: StatementId, body: AdjustmentIn, user: Finance, db_url: DbUrl) -> dict[str, Any]:
    amount = _amount_fen(body.amount)
    try:
        with transaction(db_url) as db:
            _statement(db, statement_id)
            statement = adjust(db, statement_id, amount, body.reason, user.username)
            run = db.get(models.SettlementRun, statement.run_id)
            assert run is not None
            return statement_view(statement, run, lines_by_statement(db, [statement.id])[statement.id])
    except StatementStateError as exc:
        raise ApiError(422, str(exc), "fill in 'reason'", field="reason") from None


def _csv(db_url: str, run_id: int | None, statement_id: int | None) -> Response:
    with session_factory(db_url)() as db:
        query = select(models.Statement, models.SettlementRun).join(models.SettlementRun)
        if run_id is not None:
            query = query.where(models.Statement.run_id == run_id)
        if statement_id is not None:
            query = query.where(models.Statement.id == statement_id)
        rows = [(s, r) for s, r in db.execute(query.order_by(models.Statement.party, models.Statement.seq)).all()]
        if not rows:
            raise ApiError(404, "no statements match", "pass run_id or statement_id of an existing statement",
                           field="run_id" if run_id is not None else "statement_id")
        text = statements_csv(db, rows)
    name = f"statements-run{run_id}.csv" if run_id is not None else f"statement-{statement_id}.csv"
    return PlainTextResponse("\ufeff" + text, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@api.get("/statements.csv")
def api_csv(user: Finance, db_url: DbUrl,
            run_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
            statement_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None) -> Response:
    if run_id is None and statement_id is None:
        raise ApiError(422, "say which statements", "pass ?run_id=… or ?statement_id=…", field="run_id")
    return _csv(db_url, run_id, statement_id)


# --- pages ---------------------------------------------------------------------------------------------------
def _see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


@pages.get("/settlement", response_class=HTMLResponse)
def dashboard_page(request: Request, user: FinancePage, db_url: DbUrl) -> HTMLResponse:
    with session_factory(db_url)() as db:
        board = dashboard(db)
        flows = [(f.id, f.name, v.version) for f, v in _settlement_flows(db)]
    error = request.query_params.get("error", "")[:300]
    return _render(request, user, "settlement_dashboard.html", board=board, flows=flows, error=error,
                   notice=request.query_params.get("done", "")[:200] or None)


@pages.post("/settlement/run")
async def run_page(request: Request, user: FinancePage, db_url: DbUrl,
                   flow_id: Annotated[str, Form(max_length=80)], start: Annotated[str, Form(max_length=10)],
                   end: Annotated[str, Form(max_length=10)]) -> RedirectResponse:
    from urllib.parse import quote

    try:
        body = RunIn.model_validate({"flow_id": flow_id, "from": start, "to": end})
        result = await start_period(request, db_url, body, user.username)
    except ApiError as exc:
        return _see_other(f"/settlement?error={quote(str(exc))}")
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first.get("msg", "")).removeprefix("Value error, ")
        if first.get("type", "").startswith("date"):
            message = "dates must be YYYY-MM-DD / 日期格式为 YYYY-MM-DD"
        return _see_other(f"/settlement?error={quote(message)}")
    done = f"run {result['run_id']}" if "run_id" in result else str(result.get("workflow_id"))
    return _see_other(f"/settlement?done={quote(done)}")


def _statement_page_data(db_url: str, user: User, statement_id: int) -> dict[str, Any]:
    with session_factory(db_url)() as db:
        statement = db.get(models.Statement, statement_id)
        run = db.get(models.SettlementRun, statement.run_id) if statement is not None else None
        if statement is None or run is None:
            raise PageProblem(404, user, "pg.notfound", "st.notfound", back="/settlement", id=str(statement_id))
        lines = lines_by_statement(db, [statement.id])[statement.id]
        view = statement_view(statement, run, lines)
        traced = {line.position: [(o.order_id, o.channel, yuan(o.amount_fen), o.paid_at)
                                  for o in line_orders(db, line, limit=50)] for line in lines}
    return {"s": view, "traced": traced}


@pages.get("/settlement/statements/{statement_id}", response_class=HTMLResponse)
def statement_page(request: Request, statement_id: StatementId, user: FinancePage, db_url: DbUrl) -> HTMLResponse:
    data = _statement_page_data(db_url, user, statement_id)
    return _render(request, user, "settlement_statement.html", error=request.query_params.get("error", "")[:300],
                   **data)


@pages.get("/settlement/statements/{statement_id}/print", response_class=HTMLResponse)
def print_page(request: Request, statement_id: StatementId, user: FinancePage, db_url: DbUrl) -> HTMLResponse:
    data = _statement_page_data(db_url, user, statement_id)
    return _render(request, user, "settlement_print.html", **data)


@pages.get("/settlement/statements/{statement_id}.csv")
def statement_csv_page(statement_id: StatementId, user: FinancePage, db_url: DbUrl) -> Response:
    return _csv(db_url, None, statement_id)


@pages.get("/settlement/runs/{run_id}.csv")
def run_csv_page(run_id: RunId, user: FinancePage, db_url: DbUrl) -> Response:
    return _csv(db_url, run_id, None)


@pages.post("/settlement/statements/{statement_id}/decision")
def decide_page(statement_id: StatementId, user: FinancePage, db_url: DbUrl,
                decision: Annotated[str, Form(max_length=20)],
                reason: Annotated[str, Form(max_length=2000)] = "",
                back: Annotated[str, Form(max_length=200)] = "") -> RedirectResponse:
    from urllib.parse import quote

    target = back if back.startswith("/settlement") else f"/settlement/statements/{statement_id}"
    try:
        _decide(db_url, statement_id, decision, reason, user.username)
    except ApiError as exc:
        separator = "&" if "?" in target else "?"
        return _see_other(f"{target}{separator}error={quote(str(exc))}")
    return _see_other(target)


@pages.post("/settlement/statements/{statement_id}/adjust")
def adjust_page(statement_id: StatementId, user: FinancePage, db_url: DbUrl,
                amount: Annotated[str, Form(max_length=30)],
                reason: Annotated[str, Form(max_length=2000)] = "") -> RedirectResponse:
    from urllib.parse import quote

    try:
        fen = _amount_fen(amount)
        with transaction(db_url) as db:
            made = adjust(db, statement_id, fen, reason, user.username)
            new_id = made.id
    except (ApiError, StatementStateError) as exc:
        return _see_other(f"/settlement/statements/{statement_id}?error={quote(str(exc))}")
    return _see_other(f"/settlement/statements/{new_id}")


@pages.post("/settlement/runs/{run_id}/payout")
def payout_page(run_id: RunId, user: FinancePage, db_url: DbUrl) -> RedirectResponse:
    api_payout(run_id, user, db_url)
    return _see_other(f"/settlement?done=payout+run+{run_id}")
