"""Properties of whole runs on a real database (hypothesis): statements add up, splits sum to their pools,
and a later period's clawback restores exactly what the earlier period would have earned."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from activities.settlement.compute import commission
from activities.settlement.periods import Period
from activities.settlement.runs import settle
from activities.settlement.settlement_plan import load_settlement_plan
from activities.settlement.statements import run_view
from engine.db import models
from engine.db.models import Base
from tests.activities.settlement.settlement_kit import AGENT_PLAN, SPLIT_PLAN, order, refund

RUNS = settings(max_examples=12, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
OCTOBER = Period(date(2026, 10, 1), date(2026, 10, 31))
NOVEMBER = Period(date(2026, 11, 1), date(2026, 11, 30))


@contextmanager
def database() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    try:
        with Session(engine) as db, db.begin():
            yield db
    finally:
        engine.dispose()


def _fen(text: str) -> int:
    return int(text.replace(".", ""))


orders_st = st.lists(st.tuples(st.sampled_from(["A1", "A2", "A3"]), st.integers(0, 60_000_000),
                               st.integers(1, 28), st.integers(0, 100)), min_size=1, max_size=12)
modes = st.sampled_from(["graduated", "retroactive"])


@RUNS
@given(orders=orders_st, mode=modes)
def test_a_late_clawback_restores_the_earlier_total(orders: list[tuple[str, int, int, int]], mode: str) -> None:
    plan = load_settlement_plan({**AGENT_PLAN, "rate_plan": {**AGENT_PLAN["rate_plan"], "mode": mode}})
    with database() as db:
        made: list[tuple[Any, int]] = []
        for n, (agent, amount, day, refund_percent) in enumerate(orders):
            made.append((order(db, f"o{n}", amount, f"2026-10-{day:02d} 12:00", agent=agent),
                         amount * refund_percent // 100))
        october = run_view(db, settle(db, plan, OCTOBER))
        for n, (row, refunded) in enumerate(made):
            if refunded:
                refund(db, row, refunded, f"2026-11-{n % 28 + 1:02d} 09:00")
        november = run_view(db, settle(db, plan, NOVEMBER))
        for view in (october, november):
            for statement in view["statements"]:
                assert sum(line["amount_fen"] for line in statement["lines"]) == _fen(statement["total"])
        for agent in {agent for agent, *_ in orders}:
            remaining = sum(amount - refunded for (row, refunded), (who, amount, *_) in zip(made, orders, strict=True)
                            if who == agent)
            earned = next(_fen(s["total"]) for s in october["statements"] if s["party"] == agent)
            later = next((s for s in november["statements"] if s["party"] == agent), None)
            clawed = _fen(later["clawback"]) if later else 0
            assert earned - clawed == commission(plan.rate_plan, remaining).total_fen


@RUNS
@given(amounts=st.lists(st.tuples(st.sampled_from(["z1", "z2"]), st.sampled_from(["m1", "m2"]),
                                  st.integers(0, 10_000_000)), min_size=1, max_size=10),
       percents=st.sampled_from([("50", "30", "20"), ("33.33", "33.33", "33.34"), ("99.99", "0.005", "0.005")]))
def test_split_statements_sum_to_the_pools(amounts: list[tuple[str, str, int]], percents: tuple[str, ...]) -> None:
    rate_plan = {**SPLIT_PLAN["rate_plan"], "parties": [{"party": p, "percent": v} for p, v in
                                                        zip(("anchor", "agency", "platform"), percents, strict=True)]}
    plan = load_settlement_plan({**SPLIT_PLAN, "rate_plan": rate_plan})
    day = Period(date(2026, 10, 5), date(2026, 10, 5))
    with database() as db:
        for n, (anchor, agency, amount) in enumerate(amounts):
            order(db, f"l{n}", amount, "2026-10-05 20:00", anchor=anchor, agency=agency)
        view = run_view(db, settle(db, plan, day))
        groups: dict[tuple[str, str], int] = {}
        for anchor, agency, amount in amounts:
            groups[(anchor, agency)] = groups.get((anchor, agency), 0) + amount
        pools = sum(commission(plan.rate_plan, sales).total_fen for sales in groups.values())
        assert sum(_fen(s["total"]) for s in view["statements"]) == pools
        assert db.scalar(select(models.SettlementRun.status)) == "split"
