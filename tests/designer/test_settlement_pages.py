"""Finance's settlement pages and API: the dashboard, settling a period, approving and rejecting with a
reason, corrections, CSV and the print view, payouts — and who may see them."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from designer.settlement import api as settlement_api
from designer.settlement import pages as settlement_pages
from engine.db import models
from engine.db.session import session_factory, transaction
from tests.activities.settlement.settlement_kit import order
from tests.designer.pages_kit import Browser, add_users, audit_entries, build_app
from tests.e2e.browser import include_once
from tests.engine.flowkit import publish
from tests.waiting import until

TEMPLATE = Path(__file__).resolve().parents[2] / "flows" / "store-monthly-settlement.json"


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> Any:
    import json

    add_users(db_url)
    publish(db_url, json.loads(TEMPLATE.read_text(encoding="utf-8")))
    with transaction(db_url) as db:
        order(db, "o1", 1000000, "2026-10-03 10:00", store="S001")   # direct 5 %
        order(db, "o2", 333333, "2026-10-15 10:00", store="S004")    # franchise 3 %
        order(db, "o3", 200000, "2026-09-15 10:00", store="S001")
    application = build_app(db_url)
    include_once(application, settlement_api.api)
    include_once(application, settlement_pages.router)
    return application


def _statements(db_url: str) -> dict[str, models.Statement]:
    with session_factory(db_url)() as db:
        return {s.party: s for s in db.scalars(select(models.Statement).where(models.Statement.seq == 0))}


def test_finance_settles_approves_and_pays_from_the_dashboard(app: Any, db_url: str) -> None:
    finance = Browser(app, "finance")
    page = finance.get("/settlement")
    assert page.status_code == 200 and "结算一个周期" in page.text and "store-monthly-settlement" in page.text
    r = finance.post_form("/settlement/run", {"flow_id": "store-monthly-settlement", "start": "2026-10-01",
                                              "end": "2026-10-31"})
    assert r.status_code == 303 and "done=run" in r.headers["location"]
    statements = _statements(db_url)
    assert {p: (s.total_fen, s.status) for p, s in statements.items()} == {"S001": (50000, "pending"),
                                                                          "S004": (10000, "pending")}
    board = finance.get("/settlement").text
    assert "¥500.00" in board and "¥100.00" in board and "共 2 张，合计 ¥600.00" in board
    # settling the same period again changes nothing
    finance.post_form("/settlement/run", {"flow_id": "store-monthly-settlement", "start": "2026-10-01",
                                          "end": "2026-10-31"})
    assert {p: s.id for p, s in _statements(db_url).items()} == {p: s.id for p, s in statements.items()}

    s001, s004 = statements["S001"].id, statements["S004"].id
    detail = finance.get(f"/settlement/statements/{s001}")
    assert detail.status_code == 200 and "销售额 ¥10,000.00 × 5%" in detail.text and "<code>o1</code>" in detail.text
    assert "5% of sales ¥10,000.00" in finance.get(f"/settlement/statements/{s001}?lang=en").text  # as it was written
    finance.get("/settlement?lang=zh-CN")
    r = finance.post_form(f"/settlement/statements/{s004}/decision", {"decision": "rejected", "reason": ""})
    assert r.status_code == 303 and "error=" in r.headers["location"]
    assert "reason" in finance.get(r.headers["location"]).text
    finance.post_form(f"/settlement/statements/{s004}/decision", {"decision": "rejected", "reason": "加盟费未结清"})
    finance.post_form(f"/settlement/statements/{s001}/decision", {"decision": "approved", "back": "/settlement"})
    after = _statements(db_url)
    assert (after["S001"].status, after["S004"].status) == ("approved", "rejected")
    assert after["S004"].reason == "加盟费未结清"
    assert "没有待审批的结算单" in finance.get("/settlement").text

    run_id = after["S001"].run_id
    for _ in range(2):  # paying twice pays once
        assert finance.post_form(f"/settlement/runs/{run_id}/payout").status_code == 303
    with session_factory(db_url)() as db:
        assert [(p.party, p.amount_fen) for p in db.scalars(select(models.Payout))] == [("S001", 50000)]
    assert _statements(db_url)["S001"].status == "paid"

    text = finance.get(f"/settlement/runs/{run_id}.csv").text.lstrip("\ufeff")  # for finance: their language
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {(r["结算方"], r["类型"], r["金额（元）"], r["状态"]) for r in rows} >= {
        ("S001", "flat", "500.00", "已付款"), ("S001", "合计", "500.00", "已付款")}
    text = finance.get(f"/api/settlement/statements.csv?run_id={run_id}").text.lstrip("\ufeff")  # for programs
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {(r["party"], r["kind"], r["amount"], r["status"]) for r in rows} >= {("S001", "flat", "500.00", "paid"),
                                                                                 ("S001", "total", "500.00", "paid")}
    one = finance.get(f"/settlement/statements/{s001}.csv")  # was a 422: the page route took "5.csv" for an id
    assert one.status_code == 200 and one.headers["content-type"].startswith("text/csv")
    assert f'filename="statement-{s001}.csv"' in one.headers["content-disposition"]
    assert {r["结算方"] for r in csv.DictReader(io.StringIO(one.text.lstrip("\ufeff")))} == {"S001"}
    printed = finance.get(f"/settlement/statements/{s001}/print")
    assert printed.status_code == 200 and "<nav" not in printed.text and "¥500.00" in printed.text

    r = finance.post_form(f"/settlement/statements/{s001}/adjust", {"amount": "-1.50", "reason": "多计一单运费"})
    assert r.status_code == 303
    correction = finance.get(r.headers["location"]).text
    assert "-¥1.50" in correction and f"#{s001}" in correction

    # every decision by a person is in the audit log, before → after
    rejected = audit_entries(db_url, "statement.rejected", f"statement:{s004}")[-1]
    assert (rejected.actor, rejected.before, rejected.after) == ("finance", {"status": "pending", "total": "100.00"},
                                                                 {"status": "rejected", "total": "100.00"})
    assert rejected.detail["reason"] == "加盟费未结清"
    assert audit_entries(db_url, "statement.approved", f"statement:{s001}")[-1].after == {"status": "approved",
                                                                                          "total": "500.00"}
    paid = audit_entries(db_url, "settlement.paid_out", f"run:{run_id}")
    assert paid[0].before == {"status": "decided"} and paid[0].after == {"status": "paid"}
    assert paid[0].detail["payouts"] == [{"statement_id": s001, "party": "S001", "amount": "500.00"}]
    assert paid[1].detail["payouts"] == []  # paying again paid nothing
    corrected = audit_entries(db_url, "statement.corrected", f"statement:{s001}")[-1]
    assert corrected.after is not None and corrected.after["amount"] == "-1.50"
    assert audit_entries(db_url, "settlement.run_started")


def test_api_names_the_field_and_the_fix(app: Any, db_url: str) -> None:
    finance = Browser(app, "finance")
    headers = {"X-CSRF-Token": finance.csrf}
    r = finance.client.post("/api/settlement/runs", json={"flow_id": "nope", "from": "2026-10-01", "to": "2026-10-31"},
                            headers=headers)
    assert r.status_code == 404 and r.json()["detail"]["field"] == "flow_id"
    r = finance.client.post("/api/settlement/runs", json={"flow_id": "store-monthly-settlement", "from": "2026-10-31",
                                                          "to": "2026-10-01"}, headers=headers)
    assert r.status_code == 422 and "swap" in r.json()["detail"]["fix"]
    r = finance.client.post("/api/settlement/runs", json={"flow_id": "store-monthly-settlement", "from": "2026-01-01",
                                                          "to": "2027-12-31"}, headers=headers)
    assert r.status_code == 422 and "at most a year" in r.json()["detail"]["message"]
    r = finance.client.post("/api/settlement/runs", json={"flow_id": "store-monthly-settlement", "from": "9999-12-01",
                                                          "to": "9999-12-31"}, headers=headers)
    assert r.status_code == 422 and "2199-12-31" in r.json()["detail"]["message"]
    r = finance.client.post("/api/settlement/runs", json={"flow_id": "store-monthly-settlement", "from": "2026-10-01",
                                                          "to": "2026-10-15"}, headers=headers)  # half a month
    assert r.status_code == 422 and r.json()["detail"]["field"] == "from" and \
        "2026-10-01..2026-10-31" in r.json()["detail"]["message"]
    r = finance.post_form("/settlement/run", {"flow_id": "store-monthly-settlement", "start": "2026-13-01",
                                              "end": "2026-10-31"})
    assert r.status_code == 303 and "YYYY-MM-DD" in finance.get(r.headers["location"]).text
    assert finance.get("/api/settlement/statements/99999999999").status_code == 422
    r = finance.client.post("/api/settlement/runs", json={"flow_id": "store-monthly-settlement", "from": "2026-10-01",
                                                          "to": "2026-10-31"}, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "pending_approval"
    statement = _statements(db_url)["S001"].id
    r = finance.client.post(f"/api/settlement/statements/{statement}/decision", json={"decision": "rejected"},
                            headers=headers)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "reason"
    r = finance.client.post(f"/api/settlement/statements/{statement}/decision", json={"decision": "approved"},
                            headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "approved"
    r = finance.client.post(f"/api/settlement/statements/{statement}/decision", json={"decision": "approved"},
                            headers=headers)
    assert r.status_code == 409
    r = finance.client.post(f"/api/settlement/statements/{statement}/adjustments",
                            json={"amount": "1.234", "reason": "x"}, headers=headers)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "amount"
    view = finance.get(f"/api/settlement/statements/{statement}").json()
    assert view["total"] == "500.00" and view["lines"][0]["refs"]["plan_version"] == view["plan_version"]
    board = finance.get("/api/settlement/dashboard").json()
    assert board["pending_count"] == 1 and board["periods"]["store-monthly"][0]["total"] == "600.00"


def test_only_finance_and_admin_see_settlement(app: Any) -> None:
    for role in ("marketer", "ops", "agent", "developer"):
        other = Browser(app, role)
        assert other.get("/settlement").status_code == 403
        assert other.get("/api/settlement/dashboard").status_code == 403
    assert Browser(app, "admin").get("/settlement").status_code == 200


async def test_settle_a_period_from_the_api_runs_the_flow_on_temporal(app: Any, db_url: str, time_env: Any) -> None:
    """With Temporal connected, "settle a period" starts the flow's run, which waits for the decisions
    and pays out — the same run a schedule starts."""
    import uuid

    import httpx

    from engine import auth
    from engine.router import Router
    from engine.worker import build_worker

    with transaction(db_url) as db:
        user = auth.find_user(db, "finance")
        assert user is not None
        token = auth.create_token(db, user, "test")
    queue = f"q-{uuid.uuid4().hex[:8]}"
    app.state.router = Router(time_env.client, db_url, queue)
    transport = httpx.ASGITransport(app=app)
    async with build_worker(time_env.client, queue, db_url), httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"Authorization": f"Bearer {token}"}) as client:
        r = await client.post("/api/settlement/runs", json={"flow_id": "store-monthly-settlement",
                                                            "from": "2026-10-01", "to": "2026-10-31"})
        assert r.status_code == 200 and r.json()["started"] is True, r.text
        workflow_id = r.json()["workflow_id"]

        async def asking() -> list[dict[str, Any]] | None:
            pending = (await client.get("/api/settlement/dashboard")).json()["pending"]
            return pending if len(pending) == 2 else None

        pending = await until(asking, "the run to ask for approval of its two statements", timeout=20)
        for statement in pending:
            r = await client.post(f"/api/settlement/statements/{statement['id']}/decision",
                                  json={"decision": "approved"})
            assert r.status_code == 200, r.text
        from datetime import timedelta

        await time_env.sleep(timedelta(hours=1, minutes=1))  # the approval node's next check (poll PT1H)

        def payouts() -> list[tuple[str, int]]:
            with session_factory(db_url)() as db:
                return sorted((p.party, p.amount_fen) for p in db.scalars(select(models.Payout)))

        assert await until(payouts, "the approved run's payouts", timeout=20) == [("S001", 50000), ("S004", 10000)]

        async def completed() -> bool:
            description = await time_env.client.get_workflow_handle(workflow_id).describe()
            return description.status is not None and description.status.name == "COMPLETED"

        await until(completed, "the settlement run's workflow to complete", timeout=5)
