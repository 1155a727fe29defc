"""The rate-plan editor's preview: the settlement.collect form as it is now, settled over sample orders by the
real engine (a dry run, nothing kept). Worked examples computed by hand from docs/settlement.md's rules:
retroactive tiers 3 % from ¥500,000 and 5 % from ¥1,000,000 pay ¥15,000 / ¥22,500 / ¥60,000 on
¥500,000 / ¥750,000 / ¥1,200,000; with the boundary rule "above", exactly ¥500,000 reaches no tier."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from activities.settlement.samples import boundaries, preview_period, sample_orders, sample_sales
from activities.settlement.settlement_plan import load_settlement_plan
from designer.settlement.plan_preview import grouped
from engine.db import models
from engine.db.session import session_factory
from tests.designer.pages_kit import Browser, add_users, build_app

FLOWS = Path(__file__).resolve().parents[2] / "flows"


def _plan(flow: str) -> dict[str, Any]:
    document = json.loads((FLOWS / f"{flow}.json").read_text(encoding="utf-8"))
    return dict(next(n for n in document["nodes"] if n["type"] == "settlement.collect")["config"]["plan"])


def _form(plan: dict[str, Any], orders: str) -> dict[str, str]:
    """The property form as the browser posts it: the plan's fields, the rate plan as the editor's JSON."""
    fields = {"_type": "settlement.collect", "_prev": json.dumps({"plan": plan}), "_orders": orders,
              "plan.key": plan["key"], "plan.name": plan.get("name", ""), "plan.cycle": plan.get("cycle", "monthly"),
              "plan.timezone": plan.get("timezone", "Asia/Shanghai"), "plan.party": plan.get("party", "shop"),
              "plan.statuses": ", ".join(plan.get("statuses", ["paid", "shipped", "delivered", "completed",
                                                               "refunded"])),
              "plan.rate_plan": json.dumps(plan["rate_plan"])}
    if plan.get("default_party_type"):
        fields["plan.default_party_type"] = plan["default_party_type"]
    return fields


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> FastAPI:
    add_users(db_url)
    return build_app(db_url)


ORDERS = """order_id,party,channel,amount,paid_at
A1,agent-1,youzan,"500,000.00",2026-11-03T10:00:00+08:00
A2,agent-2,jd,750000,2026-11-10
A3,agent-3,youzan,1200000,2026-11-20
"""


def test_the_preview_settles_sample_orders_with_the_plan_as_the_form_has_it(app: FastAPI, db_url: str) -> None:
    finance = Browser(app, "finance")
    plan = _plan("agent-tier-rebate")
    r = finance.post_form("/settlement/plan/preview", _form(plan, ORDERS.replace('"500,000.00"', "500000")))
    assert r.status_code == 200
    assert "2026-11-01 – 2026-11-30" in r.text and "3 笔订单" in r.text
    for party, paid in (("agent-1", "15,000.00"), ("agent-2", "22,500.00"), ("agent-3", "60,000.00")):
        assert f'data-party="{party}"' in r.text and f"¥{paid}" in r.text, party
    assert "¥97,500.00" in r.text  # the total
    # the tier boundary rule, changed in the form: "above" — exactly ¥500,000 reaches no tier
    above = {**plan, "rate_plan": {**plan["rate_plan"], "boundary": "above"}}
    r = finance.post_form("/settlement/plan/preview", _form(above, ORDERS.replace('"500,000.00"', "500000")))
    row = r.text.split('data-party="agent-1"')[1].split("</tr>")[0]
    assert "¥0.00" in row and "¥60,000.00" in r.text
    with session_factory(db_url)() as db:  # a dry run: nothing kept
        assert db.scalar(select(func.count()).select_from(models.SettlementRun)) == 0


def test_what_is_wrong_is_said_not_settled(app: FastAPI) -> None:
    finance = Browser(app, "finance")
    plan = _plan("agent-tier-rebate")
    unordered = {**plan, "rate_plan": {**plan["rate_plan"], "tiers": [{"from": 100000000, "rate": "5"},
                                                                     {"from": 50000000, "rate": "3"}]}}
    r = finance.post_form("/settlement/plan/preview", _form(unordered, ORDERS))
    assert "无法预览" in r.text and "阶梯须按「from」升序" in r.text
    split = _plan("anchor-three-way-split")
    wrong = {**split, "rate_plan": {**split["rate_plan"], "parties": [{"party": "anchor", "percent": "50"},
                                                                     {"party": "agency", "percent": "30"},
                                                                     {"party": "platform", "percent": "10"}]}}
    form = _form(wrong, ORDERS)
    for key, value in split.get("split_parties", {}).items():
        index = list(split["split_parties"]).index(key)
        form[f"plan.split_parties.{index}.key"], form[f"plan.split_parties.{index}.value"] = key, value
    r = finance.post_form("/settlement/plan/preview", form)
    assert "比例合计为 90，不是 100" in r.text
    bad_csv = finance.post_form("/settlement/plan/preview",
                                _form(plan, "order_id,party,amount,paid_at\nX,a,ab,2026-11-01\n"))
    assert "第 2 行：" in bad_csv.text and "amount" in bad_csv.text  # the line and what is wrong with it
    huge = finance.post_form("/settlement/plan/preview", _form(plan, "x" * 300_000))
    assert "200 KB" in huge.text
    assert Browser(app, "agent").post_form("/settlement/plan/preview", _form(plan, ORDERS)).status_code == 403


def test_sample_orders_sit_on_and_around_every_tier_boundary() -> None:
    plan = load_settlement_plan(_plan("agent-tier-rebate"))
    assert boundaries(plan) == [50000000, 100000000] and sample_sales(plan) == [50000000, 75000000, 120000000]
    text = sample_orders(plan, date(2026, 12, 6))
    assert text.splitlines()[0] == "order_id,party,channel,amount,paid_at" and len(text.splitlines()) == 7
    assert preview_period(plan, text).label == "2026-11-01..2026-11-30"
    split = load_settlement_plan(_plan("anchor-three-way-split"))
    assert "attribution.agency" in sample_orders(split, date(2026, 12, 6)).splitlines()[0]
    assert grouped("1234567.50") == "1,234,567.50" and grouped("-1000.00") == "-1,000.00" and grouped("0.00") == "0.00"
