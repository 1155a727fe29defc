"""``tideflow settle``: the statements of a period as JSON, from a plan file and an orders CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tideflow.cli import main

PLAN = {"key": "store-monthly", "name": "月度门店结算", "party": "shop",
        "party_types": {"S001": "direct", "S002": "franchise"},
        "rate_plan": {"type": "flat", "rates": {"direct": "5", "franchise": "3"}}}
ORDERS = """order_id,party,amount,paid_at,status,refund,refunded_at
o1,S001,12345.67,2026-10-03,paid,,
o2,S001,100.00,2026-10-04T10:00:00+08:00,completed,50.00,2026-10-05
o3,S002,999.99,2026-10-31T23:59:59,paid,,
o4,S002,500,2026-11-01,paid,,
o5,S002,300,2026-10-02,cancelled,,
"""


def _files(tmp_path: Path, plan: dict[str, Any] = PLAN, orders: str = ORDERS) -> tuple[str, str]:
    plan_path, orders_path = tmp_path / "plan.json", tmp_path / "orders.csv"
    plan_path.write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
    orders_path.write_text(orders, encoding="utf-8")
    return str(plan_path), str(orders_path)


def test_settle_prints_statements_in_yuan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan, orders = _files(tmp_path)
    assert main(["settle", "--plan", plan, "--orders", orders, "--from", "2026-10-01", "--to", "2026-10-31"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plan"] == "store-monthly" and out["period"] == {"from": "2026-10-01", "to": "2026-10-31"}
    totals = {s["party"]: (s["sales"], s["total"], s["party_type"]) for s in out["statements"]}
    assert totals == {"S001": ("12395.67", "619.78", "direct"), "S002": ("999.99", "30.00", "franchise")}
    assert out["totals"]["total"] == "649.78"
    line = out["statements"][0]["lines"][0]
    assert line["exact_fen"] == "61978.35" and line["amount"] == "619.78"


def test_settle_is_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan, orders = _files(tmp_path)
    args = ["settle", "--plan", plan, "--orders", orders, "--from", "2026-10-01", "--to", "2026-10-31"]
    main(args)
    first = capsys.readouterr().out
    main(args)
    assert capsys.readouterr().out == first


@pytest.mark.parametrize(("orders", "message"), [
    ("order_id,party,amount,paid_at\no1,S001,1.234,2026-10-03\n",
     "line 2: the amount: amount '1.234' has 3 decimal places"),
    ("order_id,party,price,paid_at\no1,S001,1,2026-10-03\n", "column 'price' is unknown"),
    ("order_id,party,amount,paid_at\no1,S001,1,yesterday\n", "line 2: paid_at 'yesterday' is not a time"),
])
def test_bad_orders_are_named_with_their_line_and_nothing_is_settled(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], orders: str, message: str) -> None:
    plan, path = _files(tmp_path, orders=orders)
    assert main(["settle", "--plan", plan, "--orders", path, "--from", "2026-10-01", "--to", "2026-10-31"]) == 1
    captured = capsys.readouterr()
    assert message in captured.err and "nothing settled" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_bad_plan_and_dates_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan, orders = _files(tmp_path, plan={**PLAN, "rate_plan": {"type": "flat", "default_rate": 5.5}})
    assert main(["settle", "--plan", plan, "--orders", orders, "--from", "2026-10-01", "--to", "2026-10-31"]) == 1
    assert "floats are not exact" in capsys.readouterr().err
    plan, orders = _files(tmp_path)
    assert main(["settle", "--plan", plan, "--orders", orders, "--from", "2026-10-31", "--to", "2026-10-01"]) == 1
    assert "swap --from and --to" in capsys.readouterr().err
    assert main(["settle", "--plan", plan, "--orders", orders, "--from", "10/01", "--to", "2026-10-31"]) == 1
    assert "--from '10/01' is not a date" in capsys.readouterr().err


def test_settle_without_orders_uses_and_keeps_the_database(tmp_path: Path, db_url: str,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from engine.settings import get_settings

    monkeypatch.setenv("TIDEFLOW_DATABASE_URL", db_url)
    get_settings.cache_clear()
    plan, _ = _files(tmp_path)
    args = ["settle", "--plan", plan, "--from", "2026-10-01", "--to", "2026-10-31"]
    from engine.db.session import transaction
    from tests.activities.settlement.settlement_kit import order

    with transaction(db_url) as db:
        order(db, "o1", 10000, "2026-10-03 10:00", shop="S001")
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["status"] == "pending_approval"
    assert [(s["party"], s["total"], s["status"]) for s in first["statements"]] == [("S001", "5.00", "pending")]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == first
