"""Settlement inputs, from docs/settlement.md's worked examples computed by hand: periods that fit the plan's
cycle, an order settled at most once per plan, the orders file checked whole (``tideflow settle``), a
guarantee owed without orders, the tier boundary rule, GMV once in a split run, dry runs that claw back
earlier periods' refunds, the channel list."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from activities.settlement.command import settle_command
from activities.settlement.compute import commission
from activities.settlement.errors import RatePlanError, SettlementInputError
from activities.settlement.orders_csv import OrdersFileError, load_orders_csv, read_orders_csv
from activities.settlement.periods import Period
from activities.settlement.plans import load_rate_plan
from activities.settlement.runs import PeriodOverlapError, settle
from activities.settlement.settlement_plan import load_settlement_plan
from engine.db import models
from engine.db.session import transaction
from tests.activities.settlement.settlement_kit import order
from tideflow.cli import main

AGENT_TIERS = [{"from": 50000000, "rate": "3"}, {"from": 100000000, "rate": "5"}]
GUARANTEE = {"key": "agent-guarantee", "name": "代理保底加超额奖励", "cycle": "monthly", "party": "attribution.agent",
             "default_party_type": "agent", "party_types": {"A01": "agent", "A02": "agent"},
             "rate_plan": {"type": "guaranteed", "guarantee_fen": 5000000, "threshold_fen": 30000000,
                           "tiers": [{"from": 0, "rate": "2"}, {"from": 20000000, "rate": "4"}]}}
SPLIT = {"key": "anchor-three-way-split", "cycle": "daily", "party": "attribution.anchor",
         "split_parties": {"anchor": "attribution.anchor", "agency": "attribution.agency", "platform": "platform"},
         "rate_plan": {"type": "split", "of": {"type": "flat", "name": "佣金池", "default_rate": "20"},
                       "parties": [{"party": "anchor", "percent": "50"}, {"party": "agency", "percent": "30"},
                                   {"party": "platform", "percent": "20"}]}}
RETRO = {"key": "agent-tier-rebate", "cycle": "monthly", "party": "attribution.agent",
         "rate_plan": {"type": "tiered", "mode": "retroactive", "tiers": AGENT_TIERS}}


def write(tmp_path: Path, name: str, content: Any) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


# --- periods and overlaps --------------------------------------------------------------------------------

@pytest.mark.parametrize(("cycle", "start", "end", "fits"), [
    ("monthly", "2026-10-01", "2026-10-31", None),
    ("monthly", "2026-10-01", "2026-10-15", "2026-10-01..2026-10-31"),
    ("weekly", "2026-11-02", "2026-11-08", None),  # Monday to Sunday
    ("weekly", "2026-11-03", "2026-11-09", "2026-11-02..2026-11-08"),
    ("semi_monthly", "2026-02-16", "2026-02-28", None),
    ("semi_monthly", "2026-02-10", "2026-02-24", "2026-02-01..2026-02-15"),
    ("daily", "2026-11-05", "2026-11-05", None),
    ("daily", "2026-11-05", "2026-11-06", "2026-11-05..2026-11-05"),
])
def test_a_period_must_fit_the_plans_cycle(db_url: str, cycle: str, start: str, end: str, fits: str | None) -> None:
    plan = load_settlement_plan({**RETRO, "cycle": cycle})
    with transaction(db_url) as db:
        if fits is None:
            assert settle(db, plan, Period(date.fromisoformat(start), date.fromisoformat(end))).status == "split"
        else:
            with pytest.raises(SettlementInputError, match=f"does not fit the plan's {cycle} cycle.*is {fits}"):
                settle(db, plan, Period(date.fromisoformat(start), date.fromisoformat(end)))


def test_an_order_is_settled_at_most_once_per_plan(db_url: str) -> None:
    monthly = load_settlement_plan(RETRO)
    weekly = load_settlement_plan({**RETRO, "cycle": "weekly"})  # a new version of the same plan key
    october = Period(date(2026, 10, 1), date(2026, 10, 31))
    with transaction(db_url) as db:
        order(db, "o1", 60000000, "2026-10-28 10:00", agent="A07")
        first = settle(db, monthly, october)
        statements = [s.id for s in db.scalars(select(models.Statement).where(models.Statement.run_id == first.id))]
        assert settle(db, monthly, october).id == first.id  # the same period again: the same run
        with pytest.raises(PeriodOverlapError, match=rf"overlaps 2026-10-01..2026-10-31.*run {first.id} "
                                                     rf"\(statement {statements[0]}\)"):
            settle(db, weekly, Period(date(2026, 10, 26), date(2026, 11, 1)))
        assert settle(db, weekly, Period(date(2026, 11, 2), date(2026, 11, 8))).status == "split"
        assert db.scalar(select(func.count()).select_from(models.Statement)) == len(statements)  # 11-02 week: none


# --- the orders file ------------------------------------------------------------------------------------

def test_the_whole_file_is_checked_and_every_problem_named_with_its_line() -> None:
    plan = load_settlement_plan({**RETRO, "party_types": {}})
    text = ("order_id,party,amount,paid_at\n"
            "o1,A07,100.00,2026-10-03\n"
            "o2,A07,50.00,\n"  # line 3: no paid_at
            "o1,A07,10.00,2026-10-04\n"  # line 4: o1 again
            "o4,,10.00,2026-10-04\n"  # line 5: no party
            "o5,A07,1.234,2026-10-05\n")  # line 6: three decimals
    checked = read_orders_csv(text, plan)
    assert [line for line, _ in checked.problems] == [3, 4, 5, 6]
    assert "paid_at is empty" in checked.problems[0][1] and "also on line 2" in checked.problems[1][1]
    assert [o["order_id"] for o in checked.orders] == ["o1"]
    with pytest.raises(OrdersFileError, match="4 problems, nothing settled") as caught:
        load_orders_csv(None, text, plan)  # type: ignore[arg-type]  # refused before the database is touched
    assert caught.value.problems == checked.problems


@pytest.mark.parametrize(("header", "problem"), [
    ("order_id,party,amount", "no paid_at column"),
    ("order_id,amount,paid_at", "no column saying who that is"),
    ("order_id,party,paid_at", "add an amount_fen"),
    ("order_id,party,amount,paid_at,colour", "column 'colour' is unknown"),
])
def test_required_columns(header: str, problem: str) -> None:
    with pytest.raises(OrdersFileError, match=problem):
        read_orders_csv(header + "\no1,A07,1.00,2026-10-03\n", load_settlement_plan(RETRO))


def test_the_cli_refuses_a_bad_file_with_every_line_and_skip_invalid_settles_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = write(tmp_path, "plan.json", RETRO)
    orders = write(tmp_path, "orders.csv", "order_id,party,amount,paid_at\n"
                                           "o1,A07,600000.00,2026-10-03\no2,A07,5.00,\no2,A07,5.00,2026-10-09\n")
    assert main(["settle", "--plan", plan, "--orders", orders, "--from", "2026-10-01", "--to", "2026-10-31"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "line 3: paid_at is empty" in err and "line 4: order o2" in err
    assert main(["settle", "--plan", plan, "--orders", orders, "--from", "2026-10-01", "--to", "2026-10-31",
                 "--skip-invalid"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert [s["total"] for s in result["statements"]] == ["18000.00"]  # 3 % of ¥600,000 (o1 only)
    assert [s["line"] for s in result["skipped"]] == [3, 4] and "skipped line 3" in err  # o2 twice: ambiguous
    csv_without_paid_at = write(tmp_path, "no_paid.csv", "order_id,party,amount\no1,A07,1.00\n")
    assert main(["settle", "--plan", plan, "--orders", csv_without_paid_at, "--from", "2026-10-01",
                 "--to", "2026-10-31"]) == 1
    assert "no paid_at column" in capsys.readouterr().err


# --- what is owed --------------------------------------------------------------------------------------

def test_a_guaranteed_party_without_orders_gets_a_statement_for_its_guarantee(tmp_path: Path) -> None:
    orders = write(tmp_path, "orders.csv", "order_id,party,amount,paid_at\no1,A01,400000.00,2026-10-10\n")
    result = settle_command(write(tmp_path, "plan.json", GUARANTEE), "2026-10-01", "2026-10-31", orders_path=orders)
    by_party = {s["party"]: s for s in result["statements"]}
    assert by_party["A01"]["total"] == "52000.00"  # docs: ¥400,000 → ¥50,000 + 2 % of ¥100,000
    assert (by_party["A02"]["total"], by_party["A02"]["sales"], by_party["A02"]["order_count"]) == (
        "50000.00", "0.00", 0)
    assert [(line["kind"], line["amount_fen"]) for line in by_party["A02"]["lines"]] == [
        ("guarantee", 5000000), ("tier", 0)]


@pytest.mark.parametrize(("sales_fen", "at_least", "above"), [
    (50000000, 1500000, 0),  # ¥500,000.00 exactly: 3 % of it (至少), nothing (超过)
    (100000000, 5000000, 3000000),  # ¥1,000,000.00 exactly: 5 % (docs' table) or 3 %
    (100000001, 5000000, 5000000),  # a fen above: the same either way (5 % of ¥1,000,000.01 rounds to ¥50,000.00)
])
def test_the_tier_boundary_rule(sales_fen: int, at_least: int, above: int) -> None:
    plan = {"type": "tiered", "mode": "retroactive", "tiers": AGENT_TIERS}
    assert commission(load_rate_plan(plan), sales_fen).total_fen == at_least
    assert commission(load_rate_plan({**plan, "boundary": "at_least"}), sales_fen).total_fen == at_least
    assert commission(load_rate_plan({**plan, "boundary": "above"}), sales_fen).total_fen == above
    graduated = {**plan, "mode": "graduated"}  # a band's share at its own boundary is zero: no difference
    assert commission(load_rate_plan(graduated), sales_fen).total_fen == \
        commission(load_rate_plan({**graduated, "boundary": "above"}), sales_fen).total_fen
    with pytest.raises(RatePlanError, match="boundary"):
        load_rate_plan({**plan, "boundary": "over"})


def test_a_split_run_reports_gmv_once_with_the_shares_beside_it(tmp_path: Path) -> None:
    orders = write(tmp_path, "orders.csv", "order_id,attribution.anchor,attribution.agency,amount,paid_at\n"
                                           "o1,zhubo-3,mcn-1,12345.67,2026-11-05T20:00:00+08:00\n")
    result = settle_command(write(tmp_path, "plan.json", SPLIT), "2026-11-05", "2026-11-05", orders_path=orders)
    totals = result["totals"]
    assert totals["sales"] == "12345.67"  # once, not three times
    assert totals["shares"] == {"zhubo-3": "1234.56", "mcn-1": "740.74", "platform": "493.83"}  # docs' example
    assert totals["commission"] == "2469.13"


def test_a_dry_run_claws_back_refunds_of_earlier_periods(tmp_path: Path) -> None:
    """docs: a ¥300,000 refund against a ¥1,200,000 retroactive period claws back ¥33,000 (5 % of ¥1.2M =
    ¥60,000 falls to 3 % of ¥900,000 = ¥27,000)."""
    orders = write(tmp_path, "orders.csv", "order_id,party,amount,paid_at,refund,refunded_at\n"
                                           "o1,A07,900000.00,2026-10-10,,\n"
                                           "o2,A07,300000.00,2026-10-20,300000.00,2026-11-05\n"
                                           "o3,A07,100.00,2026-11-06,,\n")
    result = settle_command(write(tmp_path, "plan.json", RETRO), "2026-11-01", "2026-11-30", orders_path=orders)
    assert result["dry_run"]["earlier_periods"] == ["2026-10-01..2026-10-31"]
    [statement] = result["statements"]
    assert (statement["clawback"], statement["commission"], statement["total"]) == ("33000.00", "0.00", "-33000.00")
    [line] = [line for line in statement["lines"] if line["kind"] == "clawback"]
    assert line["amount_fen"] == -3300000  # the sign convention: a clawback line is negative


def test_the_channel_list_is_validated() -> None:
    assert load_settlement_plan({**RETRO, "channels": ["csv", "tmall"]}).channels == ["csv", "tmall"]
    with pytest.raises(RatePlanError, match=r"channel 'weixin' is unknown.*csv"):
        load_settlement_plan({**RETRO, "channels": ["weixin"]})
    with pytest.raises(RatePlanError, match="counts no order"):
        load_settlement_plan({**RETRO, "channels": []})
