"""The cancel button of a redemption on the customer page, in real Chromium: staff redeem, confirm the cancel,
and htmx swaps in the points section the server answers with (what was given back), with no script error or
CSP violation; a second cancel of the same redemption is no longer offered."""

from __future__ import annotations

import pytest
from playwright.sync_api import Dialog, Page, expect

from activities.loyalty.program import ProgramConfig, save
from engine import events as ingest
from engine.customers import resolve
from engine.db.session import transaction
from tests.e2e import browser as kit

pytestmark = pytest.mark.browser


def test_staff_cancel_a_redemption_from_the_ledger_line(live_server: kit.LiveServer, page: Page) -> None:
    url = live_server.database_url
    with transaction(url) as db:
        save(db, ProgramConfig(enabled=True), "admin")
        cid = resolve(db, {"phone": "13800138123"}, "积分会员")
    ingest.store(ingest.EventIn.model_validate({"id": "paid-1", "type": "order.paid", "customer": {"customer_id": cid},
                                                "payload": {"order_id": "LC-1", "amount_fen": 50_000}}), url)
    kit.add_user(url, "mia", "marketer")
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    kit.login(page, live_server.url, "mia", next_path=f"/customers/{cid}")
    page.goto(f"{live_server.url}/customers/{cid}")
    form = page.locator("#redeem")
    form.locator("#redeem-points").fill("120")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(page.locator("#points-balance")).to_have_text("380")
    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.locator("#points-ledger tr[data-kind=burn] button").click()
    expect(page.locator("#cancel-result")).to_contain_text("已撤销兑换：退回 120 积分")
    expect(page.locator("#points-balance")).to_have_text("500")
    assert asked and "120" in asked[0]
    burn = page.locator("#points-ledger tr[data-kind=burn]")
    expect(burn).to_contain_text("已撤销")
    expect(burn.locator("button")).to_have_count(0)
    expect(page.locator("#points-ledger tr[data-kind=cancel]")).to_contain_text("+120")
    assert page.locator("section#loyalty").count() == 1  # swapped in place, not nested
    assert not problems, problems

