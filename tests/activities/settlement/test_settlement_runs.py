"""Settlement runs on SQLite and PostgreSQL: SQL collection, statements, exactly once, clawbacks,
corrections, approval and payout."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from activities.settlement.compute import clawback, commission
from activities.settlement.nodes import choose_period
from activities.settlement.periods import Period
from activities.settlement.runs import (
    StatementStateError,
    adjust,
    decide,
    pay_run,
    settle,
    submit_run,
)
from activities.settlement.settlement_plan import load_settlement_plan
from activities.settlement.statements import dashboard, line_orders, run_view, statements_csv
from engine.db import models
from engine.db.session import session_factory, transaction
from tests.activities.settlement.settlement_kit import AGENT_PLAN, SPLIT_PLAN, STORE_PLAN, order, refund

OCTOBER = Period(date(2026, 10, 1), date(2026, 10, 31))
NOVEMBER = Period(date(2026, 11, 1), date(2026, 11, 30))


def _count(db: Any, model: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_store_plan_settles_direct_and_franchise_once(any_db_url: str) -> None:
    plan = load_settlement_plan(STORE_PLAN)
    with transaction(any_db_url) as db:
        order(db, "o1", 1234567, "2026-10-03 10:00", shop="S001")
        order(db, "o2", 10000, "2026-10-31 23:59", shop="S001", status="completed")
        order(db, "o3", 99999, "2026-10-01 00:00", shop="S002")
        order(db, "o4", 50000, "2026-11-01 00:00", shop="S002")          # next period
        order(db, "o5", 70000, "2026-10-09 12:00", shop="S002", status="cancelled")
        order(db, "o6", 30000, "2026-10-09 12:00", shop="S003")          # not in the directory: default type
        partly = order(db, "o7", 20000, "2026-10-10 12:00", shop="S001")
        refund(db, partly, 5000, "2026-10-20 12:00")                     # refunded within the period
        run = settle(db, plan, OCTOBER, created_by="test")
        first = run_view(db, run)
    by_party = {s["party"]: s for s in first["statements"]}
    assert by_party["S001"]["sales"] == "12595.67"                       # 12345.67 + 100 + 200 - 50
    assert by_party["S001"]["total"] == "629.78"                         # 5 % of 12,595.67 = 629.7835
    assert by_party["S001"]["order_count"] == 3
    assert by_party["S002"]["total"] == "30.00" and by_party["S002"]["party_type"] == "franchise"
    assert by_party["S003"]["total"] == "9.00"
    for statement in first["statements"]:
        assert sum(line["amount_fen"] for line in statement["lines"]) == int(statement["total"].replace(".", ""))
    with transaction(any_db_url) as db:
        again = settle(db, plan, OCTOBER, created_by="someone else")
        assert run_view(db, again) == first
        assert _count(db, models.SettlementRun) == 1
        assert _count(db, models.Statement) == 3


def test_lines_trace_back_to_their_orders(any_db_url: str) -> None:
    plan = load_settlement_plan(STORE_PLAN)
    with transaction(any_db_url) as db:
        order(db, "a", 100, "2026-10-03 10:00", shop="S001")
        order(db, "b", 200, "2026-10-04 10:00", shop="S001")
        order(db, "c", 300, "2026-10-04 10:00", shop="S002")
        order(db, "d", 400, "2026-09-30 23:59", shop="S001")
        run = settle(db, plan, OCTOBER)
        statement = db.scalar(select(models.Statement).where(models.Statement.party == "S001"))
        assert statement is not None
        line = db.scalar(select(models.StatementLine).where(models.StatementLine.statement_id == statement.id))
        assert line is not None and line.refs["plan_version"] == run.plan_version
        assert [o.order_id for o in line_orders(db, line)] == ["a", "b"]
        text = statements_csv(db, [(statement, run)])
    assert text.splitlines()[0].startswith("statement_id,plan,plan_version")
    assert "total" in text.splitlines()[-1] and text.splitlines()[-1].endswith(",0.15")


def test_a_late_refund_claws_back_in_the_next_period(any_db_url: str) -> None:
    plan = load_settlement_plan(AGENT_PLAN)
    with transaction(any_db_url) as db:
        big = order(db, "o1", 80000000, "2026-10-05 10:00", agent="A01")
        order(db, "o2", 40000000, "2026-10-20 10:00", agent="A01")       # Oct: ¥1.2M → 5 % retroactive
        order(db, "o3", 60000000, "2026-10-21 10:00", agent="A02")
        order(db, "o4", 10000000, "2026-11-02 10:00", agent="A01")       # Nov: ¥100k, below the tiers
        order(db, "o5", 5000, "2026-10-21 10:00")                        # no agent: unattributed
        october = run_view(db, settle(db, plan, OCTOBER))
        refund(db, big, 30000000, "2026-11-03 09:00")                    # ¥300k of October refunded in Nov
        november = run_view(db, settle(db, plan, NOVEMBER))
    assert october["unattributed_orders"] == 1
    oct_a01 = next(s for s in october["statements"] if s["party"] == "A01")
    assert oct_a01["total"] == "60000.00"
    nov_a01 = next(s for s in november["statements"] if s["party"] == "A01")
    expected = clawback(plan.rate_plan, 120000000, 30000000).clawback_fen
    assert expected == 3300000                                           # 5 % of 1.2M → 3 % of 900k
    assert nov_a01["clawback"] == "33000.00"
    assert nov_a01["total"] == "-33000.00"                               # Nov sales earn nothing
    claw_line = next(line for line in nov_a01["lines"] if line["kind"] == "clawback")
    assert claw_line["refs"]["clawback_of_run"] == october["run_id"]
    # the clawback restores exactly what October would have earned without the refunded orders
    restored = int(oct_a01["total"].replace(".", "")) + claw_line["amount_fen"]
    assert restored == commission(plan.rate_plan, 90000000).total_fen
    assert all(s["party"] != "A02" or s["clawback"] == "0.00" for s in november["statements"])


def test_three_way_split_statements_add_up(any_db_url: str) -> None:
    plan = load_settlement_plan(SPLIT_PLAN)
    day = Period(date(2026, 10, 5), date(2026, 10, 5))
    with transaction(any_db_url) as db:
        order(db, "l1", 1234567, "2026-10-05 20:00", anchor="zhubo-1", agency="mcn-1")
        order(db, "l2", 333, "2026-10-05 21:00", anchor="zhubo-2", agency="mcn-1")
        order(db, "l3", 1000, "2026-10-05 21:00", anchor="zhubo-3")          # no agency: unattributed
        view = run_view(db, settle(db, plan, day))
    parties = {s["party"]: s for s in view["statements"]}
    assert set(parties) == {"zhubo-1", "zhubo-2", "mcn-1", "platform"}
    pools = [commission(plan.rate_plan, amount).total_fen for amount in (1234567, 333)]
    total = sum(int(s["total"].replace(".", "")) for s in view["statements"])
    assert total == sum(pools)
    assert parties["zhubo-1"]["total"] == "1234.56"                       # docs example: 50 % of ¥2,469.13
    assert parties["mcn-1"]["total"] == "740.94"                          # 740.74 + 30 % of a 67-fen pool
    assert view["unattributed_orders"] == 1


def test_a_new_plan_version_for_a_settled_period_is_a_linked_adjustment(any_db_url: str) -> None:
    plan = load_settlement_plan(STORE_PLAN)
    changed = load_settlement_plan({**STORE_PLAN, "rate_plan": {"type": "flat", "rates": {"direct": "6",
                                                                                           "franchise": "3"}}})
    assert changed.version != plan.version
    with transaction(any_db_url) as db:
        order(db, "o1", 100000, "2026-10-03 10:00", shop="S001")
        first = run_view(db, settle(db, plan, OCTOBER))
        second = run_view(db, settle(db, changed, OCTOBER))
    assert first["run_id"] != second["run_id"]
    before, after = first["statements"][0], second["statements"][0]
    assert after["adjusts_statement_id"] == before["id"]
    assert after["commission"] == "60.00" and after["total"] == "10.00"   # only the difference is paid
    assert [line["kind"] for line in after["lines"]] == ["flat", "adjustment"]


def test_approval_and_payout_happen_once(any_db_url: str) -> None:
    plan = load_settlement_plan(STORE_PLAN)
    with transaction(any_db_url) as db:
        order(db, "o1", 100000, "2026-10-03 10:00", shop="S001")
        order(db, "o2", 100000, "2026-10-03 10:00", shop="S002")
        run = submit_run(db, settle(db, plan, OCTOBER))
        ids = {s.party: s.id for s in db.scalars(select(models.Statement))}
        run_id = run.id
    with pytest.raises(StatementStateError, match="reason"), transaction(any_db_url) as db:
        decide(db, ids["S002"], "rejected", " ", "finance")
    with transaction(any_db_url) as db:
        decide(db, ids["S001"], "approved", "", "finance")
        decide(db, ids["S002"], "rejected", "门店数据待核对", "finance")
    with pytest.raises(StatementStateError, match="not pending"), transaction(any_db_url) as db:
        decide(db, ids["S001"], "rejected", "changed my mind", "finance")
    for _ in range(2):
        with transaction(any_db_url) as db:
            run = db.get(models.SettlementRun, run_id)
            assert run is not None
            pay_run(db, run)
    with session_factory(any_db_url)() as db:
        payouts = db.scalars(select(models.Payout)).all()
        assert [(p.party, p.amount_fen) for p in payouts] == [("S001", 5000)]
        run = db.get(models.SettlementRun, run_id)
        assert run is not None and run.status == "paid"
        board = dashboard(db)
        assert board["pending_count"] == 0
    with transaction(any_db_url) as db:
        correction = adjust(db, ids["S001"], -100, "多算了一元", "finance")
        assert correction.adjusts_statement_id == ids["S001"] and correction.status == "pending"
        assert db.get(models.SettlementRun, run_id).status == "pending_approval"  # type: ignore[union-attr]


def test_catch_up_settles_the_earliest_unsettled_period(db_url: str) -> None:
    plan = load_settlement_plan({**STORE_PLAN, "cycle": "daily"})
    with transaction(db_url) as db:
        assert choose_period(db, plan, date(2026, 10, 10)) == Period(date(2026, 10, 9), date(2026, 10, 9))
        settle(db, plan, Period(date(2026, 10, 9), date(2026, 10, 9)))
        # the schedule fires on the 13th, but the 10th–12th were never settled: settle the 10th first
        assert choose_period(db, plan, date(2026, 10, 13)) == Period(date(2026, 10, 10), date(2026, 10, 10))
        assert choose_period(db, plan, date(2026, 10, 10)) == Period(date(2026, 10, 9), date(2026, 10, 9))


def test_split_parties_are_typed_by_their_role(db_url: str) -> None:
    plan = load_settlement_plan(SPLIT_PLAN)
    with transaction(db_url) as db:
        order(db, "l1", 100000, "2026-10-05 20:00", anchor="zhubo-1", agency="mcn-1")
        view = run_view(db, settle(db, plan, Period(date(2026, 10, 5), date(2026, 10, 5))))
    assert {(s["party"], s["party_type"]) for s in view["statements"]} == {
        ("zhubo-1", "anchor"), ("mcn-1", "agency"), ("platform", "platform")}
