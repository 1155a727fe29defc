"""The shipped settlement templates end to end on Temporal's time-skipping server: two periods, finance
approving (and rejecting) statements while the run waits, payouts, a late refund clawed back in the second
period, and a re-run of a settled period that changes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.db import models
from engine.db.session import session_factory, transaction
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.settings import get_settings
from engine.worker import build_worker
from tests.activities.settlement.settlement_kit import order, refund
from tests.engine.flowkit import publish
from tests.waiting import until

FLOWS = Path(__file__).resolve().parents[3] / "flows"
OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}
NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}


def _stores(db: Session) -> dict[str, Any]:
    first = order(db, "m1", 1000000, "2026-10-03 10:00", store="S001")               # direct 5 %
    order(db, "m2", 333333, "2026-10-15 10:00", store="S004")                        # franchise 3 %
    order(db, "m3", 200000, "2026-11-04 10:00", store="S001")
    return {"late": first, "late_fen": 400000, "periods": (OCTOBER, NOVEMBER), "reject": "S004",
            "clawed": "S001", "clawback_fen": 20000}


def _agents(db: Session) -> dict[str, Any]:
    first = order(db, "a1", 80000000, "2026-10-05 10:00", agent="A01")
    order(db, "a2", 40000000, "2026-10-20 10:00", agent="A01")                        # ¥1.2M → 5 %
    order(db, "a3", 60000000, "2026-10-21 10:00", agent="A02")                        # ¥600k → 3 %
    order(db, "a4", 1000000, "2026-11-02 10:00", agent="A02")
    return {"late": first, "late_fen": 30000000, "periods": (OCTOBER, NOVEMBER), "reject": "A02",
            "clawed": "A01", "clawback_fen": 3300000}


def _anchors(db: Session) -> dict[str, Any]:
    first = order(db, "l1", 1234567, "2026-10-05 20:00", anchor="zhubo-1", agency="mcn-1")
    order(db, "l2", 500000, "2026-10-05 21:00", anchor="zhubo-2", agency="mcn-1")
    order(db, "l3", 100000, "2026-10-06 20:00", anchor="zhubo-1", agency="mcn-1")
    day1, day2 = {"from": "2026-10-05", "to": "2026-10-05"}, {"from": "2026-10-06", "to": "2026-10-06"}
    # the anchor keeps 50 % of the 20 % pool: refunding ¥2,000 of l1 takes back ¥200 from the anchor
    return {"late": first, "late_fen": 200000, "periods": (day1, day2), "reject": "zhubo-2",
            "clawed": "zhubo-1", "clawback_fen": 20000, "late_at": "2026-10-06 09:00"}


SCENARIOS: dict[str, Callable[[Session], dict[str, Any]]] = {
    "store-monthly-settlement": _stores, "agent-tier-rebate": _agents, "anchor-three-way-split": _anchors}


def _template(flow_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FLOWS / f"{flow_id}.json").read_text(encoding="utf-8"))
    return data


async def _run_period(env: Any, queue: str, compiled: dict[str, Any], db_url: str, period: dict[str, str],
                      decide: Callable[[Session, models.Statement], None]) -> dict[str, Any]:
    handle = await env.client.start_workflow(
        JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=None, variables={"settlement_period": period}),
        id=f"run/{compiled['flow_id']}/{period['from']}/{uuid.uuid4().hex[:6]}", task_queue=queue)

    def asking() -> models.SettlementRun | None:  # the run submits its statements, then waits for finance
        with session_factory(db_url)() as db:
            run = db.scalar(select(models.SettlementRun).where(models.SettlementRun.period_from == period["from"]))
            return run if run is not None and run.status in ("pending_approval", "decided", "paid") else None

    run = await until(asking, f"the run for {period} to ask for approval", timeout=20)
    from activities.settlement.runs import decide as decide_statement

    with transaction(db_url) as db:
        for statement in db.scalars(select(models.Statement).where(models.Statement.run_id == run.id,
                                                                   models.Statement.status == "pending")):
            decide(db, statement)
            assert statement.status in ("pending", "approved", "rejected")
        pending = db.scalars(select(models.Statement).where(models.Statement.run_id == run.id,
                                                            models.Statement.status == "pending")).all()
        for statement in pending:
            decide_statement(db, statement.id, "approved", "", "finance")
    result: dict[str, Any] = await handle.result()
    assert result["status"] == "completed", result
    return result


@pytest.mark.parametrize("flow_id", sorted(SCENARIOS))
async def test_template_settles_two_periods_with_approval_and_a_late_refund(
        flow_id: str, time_env: Any, db_url: str) -> None:
    from activities.settlement.runs import decide as decide_statement

    compiled = publish(db_url, _template(flow_id))
    with transaction(db_url) as db:
        scenario = SCENARIOS[flow_id](db)
    first, second = scenario["periods"]

    def reject_one(db: Session, statement: models.Statement) -> None:
        if statement.party == scenario["reject"]:
            decide_statement(db, statement.id, "rejected", "销售数据待核对 / sales to be checked", "finance")

    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, queue, db_url):
        await _run_period(time_env, queue, compiled, db_url, first, reject_one)
        with transaction(db_url) as db:
            late = db.merge(scenario["late"])
            refund(db, late, scenario["late_fen"], scenario.get("late_at", "2026-11-03 09:00"))
        await _run_period(time_env, queue, compiled, db_url, second, lambda db, s: None)
        with session_factory(db_url)() as db:
            before = [(s.id, s.party, s.total_fen, s.status) for s in db.scalars(select(models.Statement))]
            payouts_before = db.scalar(select(func.count()).select_from(models.Payout))
        # a re-run of the first period returns the settled run: no new statement, no second payout
        await _run_period(time_env, queue, compiled, db_url, first, lambda db, s: None)

    with session_factory(db_url)() as db:
        runs = db.scalars(select(models.SettlementRun).order_by(models.SettlementRun.id)).all()
        assert [(r.period_from, r.status) for r in runs] == [(first["from"], "paid"), (second["from"], "paid")]
        statements = db.scalars(select(models.Statement)).all()
        assert [(s.id, s.party, s.total_fen, s.status) for s in statements] == before
        assert db.scalar(select(func.count()).select_from(models.Payout)) == payouts_before
        rejected = [s for s in statements if s.run_id == runs[0].id and s.party == scenario["reject"]]
        assert rejected[0].status == "rejected" and "待核对" in rejected[0].reason
        paid = {p.statement_id: p for p in db.scalars(select(models.Payout))}
        assert rejected[0].id not in paid
        for statement in statements:
            lines = db.scalars(select(models.StatementLine).where(models.StatementLine.statement_id == statement.id))
            assert sum(line.amount_fen for line in lines) == statement.total_fen
            if statement.status == "paid":
                assert paid[statement.id].amount_fen == statement.total_fen
        clawed = next(s for s in statements if s.run_id == runs[1].id and s.party == scenario["clawed"])
        assert clawed.clawback_fen == scenario["clawback_fen"]
    files = sorted(get_settings().data_dir.joinpath("payouts").glob("*.csv"))
    assert len(files) == 2 and all("statement/" in f.read_text(encoding="utf-8") for f in files)
