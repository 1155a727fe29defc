"""The dashboards (看板) in real Chromium, one live server for the module: each role lands on its board, the
numbers on the page are the API's numbers (and the ones worked out here by hand), the time-range picker
changes them, the page refreshes itself when new data comes in, charts are drawn (ECharts, served by us),
and a role without a board gets the friendly 403. Screenshots: docs/screenshots/dashboard-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect

from activities.settlement.runs import decide, pay_run
from designer.dashboards import pages as dashboard_pages
from engine import auth
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import transaction
from engine.events import EventIn, store
from tests.dbtemplate import migrated_sqlite
from tests.e2e import browser as kit
from tideflow.demo import seed

pytestmark = pytest.mark.browser
USERS = (("mia", "marketer"), ("olive", "ops"), ("fay", "finance"), ("ada", "agent"), ("root", "admin"))


def _data(url: str) -> None:
    """Made here, so that every number is known: contacts from two channels (one 20 days ago), messages,
    conversions with orders, tickets with SLAs, and the demo's statements with one paid."""
    now = utcnow()
    ids = []
    for i, (source, days_ago) in enumerate((("wecom", 1), ("wecom", 2), ("youzan", 3), ("youzan", 20))):
        _, payload, _ = store(EventIn.model_validate({"id": f"c{i}", "type": "customer.interacted", "source": source,
                                                      "customer": {"phone": f"1390000000{i}"}}), url)
        ids.append(str(payload["customer_id"]))
        with transaction(url) as db:
            db.get(models.Customer, ids[-1]).created_at = now - timedelta(days=days_ago)  # type: ignore[union-attr]
    with transaction(url) as db:
        for i, (status, days_ago) in enumerate((("sent", 1), ("sent", 2), ("sent", 12), ("skipped: capped", 2),
                                                ("skipped: no consent", 3))):
            db.add(models.Message(idempotency_key=f"dash{i}", customer_id=ids[0], channel="wecom", content="hi",
                                  status=status, created_at=now - timedelta(days=days_ago)))
        db.add(models.Journey(workflow_id="dash-j1", flow_id="welcome-new-contact", version=1, customer_id=ids[1],
                              status="converted", started_at=now - timedelta(days=4),
                              ended_at=now - timedelta(days=2), updated_at=now))
        db.add(models.Order(channel="youzan", shop="S1", order_id="dash-o1", source="youzan", customer_id=ids[1],
                            status="paid", amount_fen=128800, paid_at=now - timedelta(days=2, minutes=1)))
        policy = {"policy": {"targets": {"P3": {"resolution": "PT4H"}}}}
        for i, (status, fired) in enumerate((("open", []), ("open", ["resolution:breach"]), ("pending", []),
                                             ("resolved", []))):
            db.add(models.Ticket(type_key="refund", subject=f"退款 {i}", status=status, group_key="default",
                                 sla={**policy, "fired": fired}, created_at=now - timedelta(days=1)))
        approved = db.query(models.Statement).filter(models.Statement.status == "approved").first()
        assert approved is not None  # the demo's older month is approved: pay it
        run = db.get(models.SettlementRun, approved.run_id)
        assert run is not None
        pay_run(db, run)
        pending = db.query(models.Statement).filter(models.Statement.status == "pending").first()
        assert pending is not None
        decide(db, pending.id, "approved", "", "fay")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kit.LiveServer]:
    # cheap_passwords' hasher, set by hand: a module-scoped fixture cannot ask for that function-scoped fixture
    hasher, refresh = auth._hasher, dashboard_pages.REFRESH_SECONDS
    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    dashboard_pages.REFRESH_SECONDS = 1  # the page polls every second here (15 s in use)
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('dash')) / 'tideflow.db'}"
    migrated_sqlite(url)
    for username, role in USERS:
        kit.add_user(url, username, role)
    seed(url)
    _data(url)
    try:
        with kit.LiveServer(url) as live:
            yield live
    finally:
        auth._hasher, dashboard_pages.REFRESH_SECONDS = hasher, refresh


def _api(page: Page, base: str, board: str) -> dict[str, Any]:
    """The API's figures for the range the page shows, asked with the page's own session."""
    start = page.locator("#db-from").input_value()
    end = page.locator("#db-to").input_value()
    r = page.request.get(f"{base}/api/dashboards/{board}?from={start}&to={end}")
    assert r.ok, r.text()
    return dict(r.json())


def _fresh(page: Page) -> Page:
    """A page in a new browser context (own cookies); the old context is closed."""
    browser = page.context.browser
    assert browser is not None
    page.context.close()
    return kit.new_page(browser)


def _tile(page: Page, name: str) -> str:
    return page.locator(f"#tile-{name} [data-value]").inner_text()


def _yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}¥{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def test_the_marketer_board_shows_the_apis_numbers_for_the_chosen_range_and_refreshes(
        server: kit.LiveServer, page: Page) -> None:
    kit.login(page, server.url, "mia", next_path="/dashboard")
    expect(page).to_have_url(re.compile(r"/dashboard/marketer$"))
    api = _api(page, server.url, "marketer")
    contacts, sent = api["new_contacts"], api["messages"]
    # by hand: 4 contacts in the last 30 days (2 WeCom, 2 Youzan) plus the demo's 20, who have no events
    assert contacts["by_channel"] == {"unknown": 20, "wecom": 2, "youzan": 2}
    assert (sent["sent"], sent["skipped"], sent["skipped_by_reason"]) == (3, 2, {"capped": 1, "no consent": 1})
    assert api["conversions"]["by_flow"] == {"welcome-new-contact": {"conversions": 1, "gmv_fen": 128800}}
    assert _tile(page, "new_contacts") == f"{contacts['total']:,}" == "24"
    assert _tile(page, "sent") == "3" and _tile(page, "skipped") == "2"
    assert _tile(page, "conversions") == "1" and _tile(page, "gmv") == _yuan(128800)
    assert _tile(page, "active_journeys") == f"{api['active_journeys']['total']:,}"
    rows = page.locator("#table-channels tbody tr")
    assert {rows.nth(i).get_attribute("data-key"): rows.nth(i).locator("td.num").inner_text()
            for i in range(rows.count())} == {k: f"{v:,}" for k, v in contacts["by_channel"].items()}
    expect(page.locator('#table-skips tr[data-key="capped"] td.num')).to_have_text("1")
    page.wait_for_function("() => window.tideflowDashboard && window.tideflowDashboard.charts === 3")
    expect(page.locator("#chart-channels svg")).to_have_count(1)  # drawn by ECharts (/static/vendor)
    kit.screenshot(page, "dashboard-marketer")

    # the time-range picker: the last 7 days drop the contact of 20 days ago and the message of 12 days ago
    page.locator("#db-preset").select_option("7")
    expect(page).to_have_url(re.compile(r"preset=7"))
    expect(page.locator("#db-preset")).to_have_value("7")
    week = _api(page, server.url, "marketer")
    assert week["range"]["from"] == (datetime.fromisoformat(week["range"]["to"]) - timedelta(days=6)).date().isoformat()
    assert week["new_contacts"]["by_channel"]["youzan"] == 1 and week["messages"]["sent"] == 2
    expect(page.locator("#tile-sent [data-value]")).to_have_text("2")
    expect(page.locator("#tile-new_contacts [data-value]")).to_have_text(f"{week['new_contacts']['total']:,}")

    # live: a message sent now shows up without a reload
    with transaction(server.database_url) as db:
        db.add(models.Message(idempotency_key="dash-live", customer_id="x", channel="wecom", content="hi",
                              status="sent", created_at=utcnow()))
    expect(page.locator("#tile-sent [data-value]")).to_have_text("3", timeout=10_000)
    assert _api(page, server.url, "marketer")["messages"]["sent"] == 3


def test_the_ops_and_finance_boards_and_who_may_see_them(server: kit.LiveServer, page: Page) -> None:
    kit.login(page, server.url, "olive", next_path="/dashboard")
    expect(page).to_have_url(re.compile(r"/dashboard/ops$"))
    api = _api(page, server.url, "ops")
    assert api["sla"] == {"with_sla": 4, "met": 3, "breached": 1, "attainment": 75.0}
    assert api["backlog"]["by_group"]["default"]["open"] == 2 and api["backlog"]["by_group"]["default"]["pending"] == 1
    assert _tile(page, "sla") == "75.0%" and _tile(page, "tickets_created") == f"{api['volume']['created']:,}"
    assert _tile(page, "backlog") == f"{api['backlog']['total']:,}"
    expect(page.locator('#table-backlog tr[data-key="default"]')).to_contain_text("2")
    page.wait_for_function("() => window.tideflowDashboard && window.tideflowDashboard.charts === 3")
    kit.screenshot(page, "dashboard-ops")
    assert page.request.get(f"{server.url}/api/dashboards/finance").status == 403  # not ops' board

    page = _fresh(page)  # finance, in a browser context of its own
    kit.login(page, server.url, "fay", next_path="/dashboard")
    expect(page).to_have_url(re.compile(r"/dashboard/finance$"))
    page.locator("#db-preset").select_option("90")  # the page reloads with the new range
    expect(page).to_have_url(re.compile(r"preset=90"))
    expect(page.locator("#db-preset")).to_have_value("90")
    api = _api(page, server.url, "finance")
    totals = api["totals"]
    assert totals["paid_fen"] > 0 and totals["pending_fen"] > 0 and totals["settled_fen"] >= totals["paid_fen"]
    assert _tile(page, "settled") == _yuan(totals["settled_fen"])
    assert _tile(page, "pending") == _yuan(totals["pending_fen"]) and _tile(page, "paid") == _yuan(totals["paid_fen"])
    for period, values in api["by_period"].items():
        row = page.locator(f'#table-periods tr[data-key="{period}"] td.num')
        expect(row).to_have_text([_yuan(values["settled_fen"]), _yuan(values["pending_fen"]),
                                  _yuan(values["paid_fen"])])
    kit.screenshot(page, "dashboard-finance")
    page.goto(f"{server.url}/settlement")  # where the pending amounts are decided
    expect(page.locator("h1")).to_be_visible()
    kit.screenshot(page, "settlement")

    page = _fresh(page)
    kit.login(page, server.url, "ada")
    response = page.goto(f"{server.url}/dashboard")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_contain_text("没有权限")
    assert page.request.get(f"{server.url}/api/dashboards/marketer").status == 403
    bad = page.request.get(f"{server.url}/api/dashboards/marketer?from=2026-13-01")
    assert bad.status in (403, 422)
    page.context.close()
