"""The pages around the canvas in real Chromium: log in through the form, find and create flows,
look a customer up. Saves docs/screenshots/{flows,flow-new,journeys,customer}.png at 1280×800."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi import APIRouter
from playwright.sync_api import Page, expect

from designer import pages
from designer.flows import pages as flow_pages
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import transaction
from tests.e2e import browser as kit
from tideflow.demo import seed

pytestmark = pytest.mark.browser


@pytest.fixture
def live_routers() -> list[APIRouter]:
    return [flow_pages.router]


def _history(database_url: str) -> str:
    """Give the first demo customer (李雷) two journeys and three messages; return their id."""
    with transaction(database_url) as db:
        cid = kit.demo_customer(db)
        now = utcnow()
        db.add_all([
            kit.waiting_welcome(cid, now),
            models.Journey(workflow_id=f"journey/delivered-survey/{cid}/o-1001", flow_id="delivered-survey",
                           version=1, customer_id=cid, status="completed", current_node=None,
                           started_at=now - timedelta(days=9), ended_at=now - timedelta(days=6)),
            models.Message(idempotency_key=f"journey/welcome-new-contact/{cid}/hello/1", customer_id=cid,
                           channel="wecom", content="李雷你好，欢迎关注！回复 1 领取新人礼包。", status="sent",
                           flow_id="welcome-new-contact", node_id="hello",
                           workflow_id=f"journey/welcome-new-contact/{cid}", created_at=now - timedelta(days=2)),
            models.Message(idempotency_key=f"journey/delivered-survey/{cid}/survey/1", customer_id=cid,
                           channel="wecom", content="您的订单已签收，邀请您为本次购物打分。", status="sent",
                           flow_id="delivered-survey", node_id="survey",
                           workflow_id=f"journey/delivered-survey/{cid}/o-1001", created_at=now - timedelta(days=7)),
            models.Message(idempotency_key=f"journey/welcome-new-contact/{cid}/coupon_msg/1", customer_id=cid,
                           channel="wecom", content="新人专享券已到账，7 天内有效。", status="skipped: capped",
                           flow_id="welcome-new-contact", node_id="coupon_msg",
                           workflow_id=f"journey/welcome-new-contact/{cid}", created_at=now - timedelta(days=1)),
        ])
        return cid


def test_marketer_finds_flows_creates_one_from_a_template_and_looks_up_a_customer(
        live_server: kit.LiveServer, page: Page) -> None:
    seed(live_server.database_url)
    _history(live_server.database_url)
    kit.add_user(live_server.database_url, "mia", "marketer", display_name="Mia 运营")
    base = live_server.url

    kit.login(page, base, "mia", next_path="/flows")
    assert page.url == f"{base}/flows"
    expect(page.get_by_role("heading", name="流程", exact=True)).to_be_visible()
    expect(page.locator("tr[data-flow='welcome-new-contact']")).to_contain_text("新客欢迎旅程")
    expect(page.locator("tr[data-flow='welcome-new-contact']")).to_contain_text("运行中")
    kit.screenshot(page, "flows")

    # search: as you type with htmx (when vendored), and by submitting the form in any case
    search = page.get_by_label("搜索")
    total = page.locator("#flows tbody tr").count()
    assert total > 1
    if pages.HTMX.is_file():
        search.fill("生日")
        expect(page.locator("#flows tbody tr")).to_have_count(1)
        expect(page).to_have_url(re.compile(r"/flows\?q=%E7%94%9F%E6%97%A5"))
        search.fill("")
        expect(page.locator("#flows tbody tr")).to_have_count(total)
    search.fill("生日")
    search.press("Enter")
    # the URL of this search's answer, not any "/flows?q=…" (the emptied box's own answer left one too)
    expect(page).to_have_url(re.compile(r"/flows\?q=%E7%94%9F%E6%97%A5(&|$)"))
    expect(page.locator("#flows tbody tr")).to_have_count(1)
    expect(page.locator("#flows tbody")).to_contain_text("生日关怀")

    # create from a template, with an id of our own
    page.get_by_role("link", name="新建流程").click()
    page.wait_for_url("**/flows/new")
    card = page.locator("li[data-template='welcome-new-contact']")
    expect(card.get_by_label("ID")).to_have_value("welcome-new-contact-2")  # the template's own id is taken
    kit.screenshot(page, "flow-new")
    card.get_by_label("ID").fill("welcome-spring")
    card.get_by_label("名称").fill("春季新客欢迎")
    card.get_by_role("button", name="用此模板创建").click()
    page.wait_for_url("**/flows/welcome-spring/edit")  # the canvas editor takes over from here
    page.goto(f"{base}/flows?q=welcome-spring")
    row = page.locator("tr[data-flow='welcome-spring']")
    expect(row).to_contain_text("春季新客欢迎")
    expect(row).to_contain_text("草稿")

    # journeys: counts per status, the customer's waiting journey
    page.get_by_role("navigation", name="主菜单").get_by_role("link", name="旅程").click()
    expect(page.locator("#status-counts a[data-status='waiting'] b")).to_have_text("1")
    kit.screenshot(page, "journeys")

    # a customer by phone number: identities are masked, and to a marketer the name too (the read policy);
    # the journeys and messages are there
    page.get_by_role("navigation", name="主菜单").get_by_role("link", name="客户").click()
    page.get_by_label("搜索").fill("13800000001")
    page.get_by_label("搜索").press("Enter")
    # the server's answer to the search, before following its row: the unfiltered list links 李* too
    expect(page).to_have_url(re.compile(r"/customers\?q=13800000001$"))
    expect(page.locator("#customers tbody tr")).to_have_count(1)
    page.get_by_role("link", name="李*").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("李*")
    expect(page.locator("#identities")).to_contain_text("138****0001")
    expect(page.locator("#identities")).to_contain_text("d***@example.com")
    expect(page.locator("#journeys")).to_contain_text("新客欢迎旅程")
    expect(page.locator("#messages")).to_contain_text("已跳过：超出频次上限")  # the reason in words, never the raw code
    expect(page.locator('#messages [title="skipped: capped"]')).to_have_count(1)  # which the tooltip still names
    assert "13800000001" not in page.content()
    kit.screenshot(page, "customer")


def test_switching_to_english_sticks_and_the_keyboard_reaches_the_content(
        live_server: kit.LiveServer, page: Page) -> None:
    seed(live_server.database_url)
    kit.add_user(live_server.database_url, "ops1", "ops")
    kit.login(page, live_server.url, "ops1", next_path="/flows")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Flows", exact=True)).to_be_visible()
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Customers").click()
    expect(page.get_by_role("heading", name="Customers")).to_be_visible()  # the choice is remembered

    # the first Tab lands on the skip link, which moves focus to the main content
    page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()

    # ops may not create journey flows: no archive buttons, and only ticket templates offered
    page.goto(f"{live_server.url}/flows")
    expect(page.locator("tr[data-flow='welcome-new-contact'] button")).to_have_count(0)
    page.goto(f"{live_server.url}/flows/new")
    expect(page.locator("li[data-template='welcome-new-contact']")).to_have_count(0)
    expect(page.locator("li[data-template='refund-ticket']")).to_have_count(1)
