"""Inputs that fit how people think, in real Chromium, on one live server with the demo data (module scope):
a finance clerk edits a rate plan as a form — tiers as a table, the boundary rule, a rate — and previews it on
sample orders; an admin sets the frequency cap and the default quiet hours and the send nodes say so; ops
prefill an SLA calendar from the State Council's schedule and override two days; a marketer picks event
types from the catalogue — a plugin's type, a type seen in the events table — or types a new one.
Screenshots: docs/screenshots/rate-plan.png, messaging-rules.png, sla-calendar.png, event-picker.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Page, expect

from engine import auth
from engine.events import EventIn, store
from tests.dbtemplate import migrated_sqlite
from tests.e2e import browser as kit
from tideflow.demo import seed

pytestmark = pytest.mark.browser
USERS = (("fay", "finance"), ("root", "admin"), ("olive", "ops"), ("mia", "marketer"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kit.LiveServer]:
    """One designer for the module: migrated, seeded with the demo data, four users."""
    # cheap_passwords' hasher, set by hand: a module-scoped fixture cannot ask for that function-scoped fixture
    hasher = auth._hasher
    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('inputs')) / 'tideflow.db'}"
    migrated_sqlite(url)
    for username, role in USERS:
        kit.add_user(url, username, role)
    seed(url)
    for i in range(2):  # a type nobody declared, already seen in the events table
        store(EventIn.model_validate({"id": f"live-{i}", "type": "custom.viewed_live", "source": "live-room",
                                      "customer": {"phone": "13800000001"}}), url)
    try:
        with kit.LiveServer(url) as live:
            yield live
    finally:
        auth._hasher = hasher


def _config(page: Page, node_id: str) -> dict[str, Any]:
    nodes = page.evaluate("() => window.tideflowEditor.document.nodes")
    return dict(next(n for n in nodes if n["id"] == node_id)["config"])


def test_finance_edits_a_rate_plan_as_a_form_and_previews_it_on_sample_orders(server: kit.LiveServer,
                                                                             page: Page) -> None:
    kit.login(page, server.url, "fay", next_path="/flows/agent-tier-rebate/edit")
    page.locator('.drawflow-node[data-tf="collect"]').click()
    form = page.locator('form.tf-form[data-node="collect"]')
    editor = form.locator("[data-rate-plan]")
    expect(editor.locator('select[data-p="type"]')).to_have_value("tiered")
    tiers = editor.locator("table.tf-rp-tiers tbody tr")
    expect(tiers).to_have_count(2)
    expect(editor.locator('input[data-p="tiers.0.from"]')).to_have_value("500,000")  # yuan, not fen
    expect(editor.locator('input[data-p="tiers.1.rate"]')).to_have_value("5")

    # the boundary rule, a rate, a new tier; a mistake is said where it is made
    editor.locator('select[data-p="boundary"]').select_option("above")
    rate = editor.locator('input[data-p="tiers.1.rate"]')
    rate.fill("6")
    rate.press("Tab")
    editor.locator('[data-act="add-tier"]').click()
    expect(tiers).to_have_count(3)
    start = editor.locator('input[data-p="tiers.2.from"]')
    start.fill("400,000")
    start.press("Tab")
    expect(editor.locator("[data-rp-problems]")).to_contain_text("第 3 档的起点必须高于上一档")
    expect(form.locator(".tf-form-status")).to_contain_text("有字段需要修改")  # the server refused it too, in Chinese
    expect(form.locator(".tf-field-error:not(:empty)").first).to_contain_text("阶梯须按「from」升序")
    start.fill("2,000,000")
    start.press("Tab")
    editor.locator('input[data-p="tiers.2.rate"]').fill("8")
    editor.locator('input[data-p="tiers.2.rate"]').press("Tab")
    expect(editor.locator("[data-rp-problems]")).to_be_empty()
    # each change is sent 250 ms after it is made: "已应用" may still be the answer to the start of the third
    # tier (three tiers already, its rate not yet 8), so wait for the server's answer to the last edit
    page.wait_for_function("() => { const plan = window.tideflowEditor.document.nodes.find(n => n.id === 'collect')"
                           ".config.plan.rate_plan; return plan.tiers.length === 3 && plan.tiers[2].rate === '8'"
                           " && plan.tiers[2].from === 200000000; }")
    expect(form.locator(".tf-form-status")).to_have_text("已应用")
    rate_plan = _config(page, "collect")["plan"]["rate_plan"]
    assert rate_plan["boundary"] == "above"
    assert rate_plan["tiers"] == [{"from": 50000000, "rate": "3"}, {"from": 100000000, "rate": "6"},
                                  {"from": 200000000, "rate": "8"}]  # fen and decimal strings in the JSON

    # preview on a fresh sample for the plan as it is now: sales on and between the tiers. ¥500,000 exactly
    # reaches no tier ("above"); ¥1,500,000 is in the second tier (6 %), ¥2,400,000 in the third (8 %)
    preview = form.locator(".tf-rp-preview")
    shown = preview.locator("textarea[name=_orders]").element_handle()  # the sample made for the two-tier plan
    preview.locator("button", has_text="按当前方案重新生成").click()
    page.wait_for_function("orders => !orders.isConnected", arg=shown)  # htmx swapped in the new sample:
    expect(preview.locator("textarea[name=_orders]")).to_contain_text("SAMPLE-001")  # (the old one had it too)
    preview.locator("button", has_text="预览结算").click()
    result = preview.locator(".tf-rp-result")
    expect(result.locator('tr[data-party="agent-1"]')).to_contain_text("¥0.00")
    expect(result.locator('tr[data-party="agent-3"]')).to_contain_text("¥90,000.00")
    expect(result.locator('tr[data-party="agent-4"]')).to_contain_text("¥192,000.00")
    expect(result).to_contain_text("这是预览")
    result.scroll_into_view_if_needed()
    kit.screenshot(page, "rate-plan")

    # the cycle is a choice, and a split is a table of parties whose shares must total 100 %
    expect(form.locator('select[name="plan.cycle"] option')).to_have_count(5)
    editor.locator('select[data-p="type"]').select_option("split")
    parties = editor.locator("table.tf-rp-parties tbody tr")
    expect(parties).to_have_count(3)
    expect(editor.locator("[data-split-total]")).to_have_text("100%")
    share = editor.locator('input[data-p="parties.2.percent"]')
    share.fill("10")
    share.press("Tab")
    expect(editor.locator("[data-split-total]")).to_have_text("90%")
    expect(editor.locator("[data-rp-problems]")).to_contain_text("分账比例合计 90%")
    expect(form.locator(".tf-field-error:not(:empty)").first).to_contain_text("split")  # the server agrees


def test_an_admin_sets_the_cap_and_quiet_hours_and_send_nodes_show_them(server: kit.LiveServer, page: Page) -> None:
    kit.login(page, server.url, "root", next_path="/settings/messaging")
    expect(page.locator("#pol-env")).to_be_visible()  # not saved here yet: the environment's 3 / 7 days
    page.locator("#pol-cap-count").fill("2")
    page.locator('[name="cap_window.amount"]').fill("1")
    page.locator('[name="cap_window.unit"]').select_option("days")
    page.locator("#pol-quiet-on").check()
    page.locator("#pol-quiet-start").fill("22:00")
    page.locator("#pol-quiet-end").fill("08:00")
    page.locator("#pol-save").click()
    expect(page.locator(".notice")).to_contain_text("发送规则已保存")
    flows = page.locator("#pol-flows")
    expect(flows.locator('tr[data-flow="win-back-reset"]')).to_contain_text("默认（22:00–08:00）")  # sets none
    expect(flows.locator('tr[data-flow="welcome-new-contact"]')).to_contain_text("21:00–09:00")  # its own
    kit.screenshot(page, "messaging-rules")
    # a bad value: said next to the form, nothing saved
    page.locator("#pol-cap-count").fill("0")
    page.locator("#pol-save").click()
    expect(page.locator("#pol-errors")).to_contain_text("cap_count")
    page.goto(server.url + "/audit")  # who changed the rules, and from what to what
    expect(page.locator("main")).to_contain_text("settings.send_policy")
    kit.screenshot(page, "audit")

    page.goto(server.url + "/flows/welcome-new-contact/edit")
    coupon = page.locator('.drawflow-node[data-tf="coupon"]')
    expect(coupon.locator(".tf-node-rules")).to_have_text("频控 2/1 天 · 免打扰 21:00–09:00")
    expect(page.locator('.drawflow-node[data-tf="hello"] .tf-node-rules')).to_have_text("事务消息")
    coupon.click()
    rules = page.locator('form.tf-form[data-node="coupon"] .tf-send-rules')
    expect(rules).to_contain_text("每位客户 1 天内最多 2 条营销消息")
    expect(rules).to_contain_text("免打扰：21:00–09:00（本流程设置")
    # without quiet hours of its own the flow gets the default, on the canvas at once
    page.locator("#tf-settings").click()
    settings = page.locator('form.tf-form[data-kind="settings"]')
    settings.locator('[name="settings.quiet_hours.start"]').fill("")
    settings.locator('[name="settings.quiet_hours.end"]').fill("")
    settings.locator("button[type=submit]").click()
    expect(coupon.locator(".tf-node-rules")).to_have_text("频控 2/1 天 · 免打扰 22:00–08:00")


def test_ops_prefill_an_sla_calendar_and_override_two_days(server: kit.LiveServer, page: Page) -> None:
    kit.login(page, server.url, "olive", next_path="/tickets/calendars")
    row = page.locator('#calendars tr[data-group="default"]')
    row.locator("a").click()
    year = page.locator("#year-2026")
    year.locator("button", has_text="按国务院通知填入 2026 年").click()
    expect(page.locator(".notice")).to_contain_text("19 个工作日放假，6 个调休上班日")
    expect(year.locator('.cal-days-holiday tr[data-day="2026-02-16"]')).to_contain_text("春节")
    expect(year.locator('.cal-days-workday tr[data-day="2026-02-14"]')).to_contain_text("周六")
    year.locator('.cal-days-holiday tr[data-day="2026-10-07"] input[type=checkbox]').uncheck()
    page.locator("#cal-add-holiday").fill("2026-12-24")
    page.locator("#cal-save").click()
    expect(page.locator(".notice")).to_contain_text("日历已保存")
    expect(year.locator(".cal-diff")).to_contain_text("照常上班（通知放假）：2026-10-07")
    expect(year.locator(".cal-diff")).to_contain_text("额外放假：2026-12-24")
    expect(year.locator('.cal-days-holiday tr[data-day="2026-12-24"]')).to_contain_text("自行添加")
    kit.screenshot(page, "sla-calendar")


def test_a_marketer_picks_event_types_from_the_catalogue_or_types_a_new_one(server: kit.LiveServer,
                                                                           page: Page) -> None:
    kit.login(page, server.url, "mia", next_path="/flows/welcome-new-contact/edit")
    page.locator('.drawflow-node[data-tf="start"]').click()
    form = page.locator('form.tf-form[data-node="start"]')
    picker = form.locator('[name="event"]')
    picker.click()
    listbox = page.locator(f'#{picker.get_attribute("aria-controls")}')
    expect(listbox).to_be_visible()  # opened on a chosen type: the whole catalogue
    picker.fill("")
    picker.press_sequentially("lottery")
    option = listbox.locator('[role="option"]').first
    expect(option).to_contain_text("领取奖品")  # an installed plugin's type …
    expect(listbox.locator('[role="group"]').first).to_have_attribute("aria-label", "插件：tideflow-plugin-lottery")
    picker.fill("")
    picker.press_sequentially("viewed_live")
    expect(listbox.locator('[data-value="custom.viewed_live"]')).to_contain_text("最近收到 2 次")  # … one seen
    kit.screenshot(page, "event-picker")
    picker.press("Enter")
    expect(picker).to_have_value("custom.viewed_live")
    # free entry: a type nobody has sent yet
    picker.fill("")
    picker.press_sequentially("custom.brand_new_thing")
    expect(listbox).to_contain_text("没有匹配的类型")
    picker.press("Enter")
    expect(picker).to_have_value("custom.brand_new_thing")
    form.locator("button[type=submit]").click()
    expect(form.locator(".tf-form-status")).to_have_text("已应用")
    assert _config(page, "start")["event"] == "custom.brand_new_thing"
