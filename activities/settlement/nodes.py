"""The settlement node types: ``settlement.collect`` → ``compute`` → ``split`` → ``approve`` → ``payout``.

Each is a thin shell around one step of :mod:`activities.settlement.runs`; the run lives in the
database (found again by its unique plan key, version and period), and its id travels in the journey's
variables (``settlement_run_id``). Every step only acts on a run in the status before it, so a retried
activity or a re-run of the period changes nothing. A settlement flow runs as one journey without a
customer, started by its ``trigger.schedule`` (or by "settle a period" on the finance dashboard).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activities.settlement.errors import SettlementError
from activities.settlement.money import format_yuan
from activities.settlement.periods import Period, local_today, period_containing, period_to_settle
from activities.settlement.runs import (
    collect_run,
    compute_run,
    open_run,
    pay_run,
    pending_count,
    run_payouts,
    split_run,
    submit_run,
)
from activities.settlement.settlement_plan import SettlementPlan
from engine.actions import ActionContext, ActionFailed
from engine.db import models
from engine.nodes.base import ActionResult, Duration, NodeConfig, NodeType
from engine.outbound import OutboundGuard, OutboundRefused, guarded_client
from engine.text import Msg, message_of

RUN_VARIABLE = "settlement_run_id"
PERIOD_VARIABLE = "settlement_period"
KINDS = ("settlement",)


def _run(ctx: ActionContext) -> models.SettlementRun:
    run_id = ctx.variables.get(RUN_VARIABLE)
    if run_id is None:
        raise ActionFailed(Msg("node '%(node)s' needs a settlement run: put settlement.collect before it",
                               node=ctx.node_id))
    run = ctx.db.get(models.SettlementRun, int(run_id))
    if run is None:
        raise ActionFailed(Msg("settlement run %(run)s does not exist", run=run_id))
    return run


def _simulated(ctx: ActionContext) -> ActionResult | None:
    if ctx.simulate:
        return ActionResult(detail={"simulated": True, "note": "previews do not settle"})
    return None


def _advance(ctx: ActionContext, node: str,
             step: Callable[[Session, models.SettlementRun], models.SettlementRun]) -> models.SettlementRun:
    """Move this flow's run on by one step; a settlement error fails the node, named ``node``."""
    try:
        return step(ctx.db, _run(ctx))
    except (SettlementError, ValueError) as exc:
        raise ActionFailed(Msg("%(node_type)s: %(detail)s", node_type=node, detail=message_of(exc))) from None


def choose_period(db: Any, plan: SettlementPlan, today: date) -> Period:
    """The period a run on ``today`` settles: the last complete period of the plan's cycle — or, when
    earlier periods were never settled (a schedule fire skipped while a run awaited approval), the
    earliest of those, so periods are delayed, never skipped."""
    target = period_to_settle(plan.cycle, today)
    latest = db.scalar(select(func.max(models.SettlementRun.period_to))
                       .where(models.SettlementRun.plan_key == plan.key))
    if latest is None or date.fromisoformat(latest) >= target.end:
        return target
    candidate = period_containing(plan.cycle, date.fromisoformat(latest) + timedelta(days=1))
    if candidate.start > date.fromisoformat(latest) and candidate.end <= target.end:
        return candidate
    return target


class CollectConfig(NodeConfig):
    plan: SettlementPlan = Field(description="The settlement plan: parties, cycle, rate plan (docs/settlement.md)")


class SettlementCollect(NodeType):
    type = "settlement.collect"
    category = "settlement"
    kinds = KINDS
    label = {"zh-CN": "汇总订单", "en": "Collect orders"}
    description = {"zh-CN": "按结算方案汇总本期订单（SQL 聚合），每个方案版本每期只结算一次",
                   "en": "Aggregates the period's orders per party in SQL; a period is settled once per plan version"}
    Config = CollectConfig
    timeout = timedelta(minutes=10)

    @classmethod
    def run(cls, ctx: ActionContext, config: CollectConfig) -> ActionResult:
        if (simulated := _simulated(ctx)) is not None:
            return simulated
        plan = config.plan
        chosen = ctx.variables.get(PERIOD_VARIABLE)
        try:
            if isinstance(chosen, dict) and chosen.get("from") and chosen.get("to"):
                period = Period(date.fromisoformat(chosen["from"]), date.fromisoformat(chosen["to"]))
            else:
                period = choose_period(ctx.db, plan, local_today(ctx.now, plan.timezone))
            run = open_run(ctx.db, plan, period, flow_id=ctx.flow_id, created_by=ctx.workflow_id)
            collect_run(ctx.db, run)
        except (SettlementError, ValueError) as exc:
            raise ActionFailed(Msg("%(node_type)s: %(detail)s", node_type=cls.type, detail=message_of(exc))) from None
        sales = sum(int(g.get("sales_fen", 0)) for g in run.groups if g.get("kind") == "sales")
        return ActionResult(variables={RUN_VARIABLE: run.id, PERIOD_VARIABLE: {"from": run.period_from,
                                                                              "to": run.period_to}},
                            detail={"run": run.id, "period": f"{run.period_from}..{run.period_to}",
                                    "plan_version": run.plan_version, "groups": len(run.groups),
                                    "sales": format_yuan(sales), "status": run.status})


class SettlementCompute(NodeType):
    type = "settlement.compute"
    category = "settlement"
    kinds = KINDS
    label = {"zh-CN": "计算佣金", "en": "Compute commission"}
    description = {"zh-CN": "按费率方案计算每个结算方的佣金与退款追回",
                   "en": "Commission per party, and clawbacks for late refunds"}
    timeout = timedelta(minutes=10)

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        if (simulated := _simulated(ctx)) is not None:
            return simulated
        run = _advance(ctx, cls.type, compute_run)
        return ActionResult(detail={"run": run.id, "status": run.status})


class SettlementSplit(NodeType):
    type = "settlement.split"
    category = "settlement"
    kinds = KINDS
    label = {"zh-CN": "分账出单", "en": "Split into statements"}
    description = {"zh-CN": "按分润比例分给各方（最大余数法，分不丢失），生成每方结算单",
                   "en": "Shares to each party (largest remainder, no fen lost) and one statement per party"}
    timeout = timedelta(minutes=10)

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        if (simulated := _simulated(ctx)) is not None:
            return simulated
        run = _advance(ctx, cls.type, split_run)
        count = ctx.db.scalar(select(func.count()).select_from(models.Statement)
                              .where(models.Statement.run_id == run.id))
        return ActionResult(detail={"run": run.id, "statements": int(count or 0)})


class ApproveConfig(NodeConfig):
    poll: Duration = Field(default="PT1H", description="How often the run checks finance's decisions, e.g. PT1H")


class SettlementApprove(NodeType):
    type = "settlement.approve"
    category = "settlement"
    kinds = KINDS
    label = {"zh-CN": "财务审批", "en": "Finance approval"}
    description = {"zh-CN": "提交结算单给财务审批，持久等待每张结算单通过或驳回（附原因）",
                   "en": "Submits the statements to finance and waits durably until each is approved or rejected"}
    Config = ApproveConfig

    @classmethod
    def run(cls, ctx: ActionContext, config: ApproveConfig) -> ActionResult:
        if (simulated := _simulated(ctx)) is not None:
            return simulated
        from engine.durations import parse_duration

        run = submit_run(ctx.db, _run(ctx))
        waiting = pending_count(ctx.db, run)
        if waiting:
            return ActionResult(defer_until=(ctx.now + parse_duration(config.poll)).isoformat(),
                                detail={"run": run.id, "pending": waiting})
        counts = dict(ctx.db.execute(select(models.Statement.status, func.count())
                                     .where(models.Statement.run_id == run.id)
                                     .group_by(models.Statement.status)).all())
        return ActionResult(variables={"settlement_approved": int(counts.get("approved", 0) + counts.get("paid", 0)),
                                       "settlement_rejected": int(counts.get("rejected", 0))},
                            detail={"run": run.id, **{k: int(v) for k, v in counts.items()}})


class PayoutConfig(NodeConfig):
    method: Literal["file", "webhook"] = Field(default="file", description="file: a payout CSV under the data "
                                               "directory; webhook: POST the instruction to webhook_url too")
    webhook_url: str | None = Field(default=None, description="For method webhook: where to POST the payouts")


def _check_payout_url(url: str) -> None:
    """Refuse (for good) a payout URL that is not http(s) or whose host is not a public address, unless the
    operator allows it (``TIDEFLOW_OUTBOUND_ALLOW``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ActionFailed(Msg("settlement.payout: webhook_url %(value)s is not an http(s) URL", value=repr(url[:80])))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        OutboundGuard.from_settings().check(parts.hostname, port)
    except (OutboundRefused, ValueError) as exc:
        raise ActionFailed(_payout_refused(exc)) from None


def _payout_refused(exc: Exception) -> Msg:
    """Why the payout webhook's address is refused: the guard's own sentence (``OutboundRefused``) or the URL
    parser's words."""
    return Msg("settlement.payout: webhook_url refused: %(detail)s", detail=message_of(exc))


def payout_csv(payouts: list[models.Payout]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["idempotency_key", "statement_id", "party", "amount", "status"])
    for payout in payouts:
        writer.writerow([payout.idempotency_key, payout.statement_id, payout.party, format_yuan(payout.amount_fen),
                         payout.status])
    return out.getvalue()


class SettlementPayout(NodeType):
    type = "settlement.payout"
    category = "settlement"
    kinds = KINDS
    label = {"zh-CN": "付款指令", "en": "Payout"}
    description = {"zh-CN": "为已审批的结算单生成付款文件 / Webhook 指令（幂等，不会重复付款）",
                   "en": "Payout file / webhook instruction for approved statements (idempotent: never paid twice)"}
    Config = PayoutConfig
    transactional = False
    ports = ("out", "failed")
    failure_port = "failed"

    @classmethod
    def run(cls, ctx: ActionContext, config: PayoutConfig) -> ActionResult:
        if (simulated := _simulated(ctx)) is not None:
            return simulated
        from engine.db.session import transaction
        from engine.settings import get_settings

        if config.method == "webhook" and not config.webhook_url:
            raise ActionFailed(Msg("settlement.payout: method webhook needs webhook_url"))
        if config.method == "webhook" and config.webhook_url:
            _check_payout_url(config.webhook_url)  # before the run is marked paid: a refused URL changes nothing
        with transaction(ctx.services.database_url) as db:
            run_id = int(ctx.variables.get(RUN_VARIABLE) or 0)
            run = db.get(models.SettlementRun, run_id)
            if run is None:
                raise ActionFailed(Msg("settlement run %(run)s does not exist; put settlement.collect first",
                                       run=run_id))
            pay_run(db, run, method=config.method, target=config.webhook_url or "")
            payouts = run_payouts(db, run)
            name = f"{run.plan_key}-{run.period_from}-{run.period_to}-run{run.id}.csv"
            instruction = {"run_id": run.id, "plan": run.plan_key, "period": {"from": run.period_from,
                                                                              "to": run.period_to},
                           "payouts": [{"idempotency_key": p.idempotency_key, "statement_id": p.statement_id,
                                        "party": p.party, "amount": format_yuan(p.amount_fen), "status": p.status}
                                       for p in payouts]}
        folder = get_settings().data_dir.joinpath("payouts")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder.joinpath(name)
        path.write_text(payout_csv(payouts), encoding="utf-8")  # the same content on every retry
        if config.method == "webhook" and config.webhook_url:
            # the flow chose the URL: the SSRF guard connects only to public (or allow-listed) addresses, again
            # at connection time (engine/outbound.py)
            try:
                with guarded_client(timeout=httpx.Timeout(20), follow_redirects=False) as client:
                    response = client.post(config.webhook_url, json=instruction,
                                           headers={"Idempotency-Key": f"settlement-run/{instruction['run_id']}"})
            except OutboundRefused as exc:
                raise ActionFailed(_payout_refused(exc)) from None
            if response.status_code >= 400:
                raise RuntimeError(Msg("payout webhook answered %(status)s", status=response.status_code))
        return ActionResult(detail={"run": instruction["run_id"], "payouts": len(payouts), "file": str(path)})


NODE_TYPES: list[type[NodeType]] = [SettlementCollect, SettlementCompute, SettlementSplit, SettlementApprove,
                                    SettlementPayout]
