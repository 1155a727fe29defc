"""People and accountability in real Chromium:

- an admin invites a new agent on the users page, the agent opens the one-time link in their own browser, sets a
  password and logs in; the admin gives them a ticket group and another role, makes a read-only API token (shown
  once; it reads but cannot write), revokes it, and disables the user — whose open page is sent to the login;
- the audit log shows those changes before → after, filters them, and never shows a secret;
- ops set up a ticket group, an agent and a ticket type with a custom field on pages.

Saves docs/screenshots/users.png, audit.png and ticket-setup.png."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e import browser as kit

pytestmark = pytest.mark.browser


def test_an_admin_invites_manages_and_disables_a_user_and_the_audit_log_says_who_changed_what(
        live_server: kit.LiveServer, page: Page, chromium: Browser) -> None:
    base = live_server.url
    kit.add_user(live_server.database_url, "root", "admin", display_name="管理员")
    kit.login(page, base, "root", next_path="/settings/users")
    expect(page.locator("h1")).to_have_text("用户")

    # invite: no password — the page shows the one-time link
    form = page.locator("#us-add")
    form.get_by_label("用户名").fill("Wang.Fang")
    form.get_by_label("显示名称").fill("王芳")
    form.get_by_label("角色").select_option("agent")
    form.get_by_role("button", name="创建用户").click()
    link = page.locator("#us-link-url").input_value()
    assert re.fullmatch(rf"{re.escape(base)}/password/pl_[\w-]+", link), link
    expect(page.locator("#us-status")).to_have_attribute("data-status", "invited")
    user_page = base + str(page.locator("#us-profile").get_attribute("action"))

    # the invited agent sets a password through the link, in their own browser, and logs in
    agent = kit.new_page(chromium)
    try:
        agent.goto(link)
        expect(agent.locator("main")).to_contain_text("wang.fang")
        agent.get_by_label("新密码").fill("wang-fang-pass-1")
        agent.get_by_label("再输入一次").fill("wang-fang-pass-1")
        agent.get_by_role("button", name="设置密码").click()
        expect(agent.locator("#pw-done")).to_contain_text("密码已设置")
        agent.goto(link)  # once only
        expect(agent.locator("#pw-error")).to_contain_text("已过期")
        kit.login(agent, base, "wang.fang", "wang-fang-pass-1", next_path="/tickets")
        assert agent.url.endswith("/tickets")

        # the admin: a ticket group and the role ops; then a read-only token, shown once
        page.goto(user_page)
        expect(page.locator("#us-status")).to_have_attribute("data-status", "active")
        profile = page.locator("#us-profile")
        profile.get_by_label("角色").select_option("ops")
        profile.locator('#us-groups input[value="default"]').check()
        profile.get_by_role("button", name="保存").click()
        expect(page.locator(".notice")).to_contain_text("已保存")
        tokens = page.locator("#us-token-form")
        tokens.get_by_label("名称").fill("报表脚本")
        tokens.get_by_label("范围").select_option("read")
        tokens.get_by_role("button", name="创建令牌").click()
        secret = page.locator("#us-token-value").input_value()
        assert secret.startswith("tf_")
        row = page.locator("#tokens tbody tr", has_text="报表脚本")
        expect(row.locator("[data-scope]")).to_have_text("只读")
        expect(row.locator("[data-last-used]")).to_have_text("从未使用")
        bearer = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(f"{base}/api/me", headers=bearer).json()["role"] == "ops"
        refused = httpx.post(f"{base}/api/flows/validate", headers=bearer, json={})
        assert refused.status_code == 403 and "'read'" in refused.json()["detail"]["message"]
        page.goto(user_page)
        expect(page.locator("#us-token-value")).to_have_count(0)  # never shown again
        expect(row.locator("[data-last-used]")).not_to_have_text("从未使用")
        kit.screenshot(page, "users")
        row.get_by_role("button", name="吊销 报表脚本").click()
        expect(page.locator(".notice")).to_contain_text("令牌已吊销")
        assert httpx.get(f"{base}/api/me", headers=bearer).status_code == 401

        # disabled: the agent's open console goes to the login page at their next click
        page.locator('form[action$="/disable"]').get_by_role("button", name="停用用户").click()
        expect(page.locator("#us-status")).to_have_attribute("data-status", "disabled")
        agent.reload()
        expect(agent).to_have_url(re.compile(r"/login\?next="))
    finally:
        agent.context.close()

    # the audit log: who changed what, before → after; no secret anywhere on the page
    page.goto(f"{base}/audit?target=user:wang.fang")
    expect(page.locator("#audit tbody tr[data-action='user.role_changed'] [data-field='role']")).to_contain_text(
        '"agent" → "ops"')
    expect(page.locator("#audit tbody tr[data-action='agent.groups']")).to_contain_text('["default"]')
    expect(page.locator("#audit tbody tr[data-action='user.disabled']")).to_have_count(1)
    expect(page.locator("#audit tbody tr[data-action='user.password_set']")).to_have_count(1)
    page.get_by_label("操作", exact=True).fill("user.role")
    page.get_by_role("button", name="筛选").click()
    expect(page.locator("#audit tbody tr")).to_have_count(1)
    kit.screenshot(page, "audit")
    page.goto(f"{base}/audit")
    html = page.content()
    assert secret not in html and "wang-fang-pass-1" not in html and link.rsplit("/", 1)[1] not in html


def test_ops_set_up_a_ticket_group_an_agent_and_a_ticket_type_on_pages(live_server: kit.LiveServer,
                                                                       page: Page) -> None:
    base = live_server.url
    kit.add_user(live_server.database_url, "lead", "ops", display_name="刘组长")
    kit.add_user(live_server.database_url, "amy", "agent", display_name="Amy 坐席")
    kit.login(page, base, "lead", next_path="/tickets/setup/groups")

    page.get_by_role("link", name="添加工单组").click()
    form = page.locator("#ts-group-form")
    form.get_by_label("标识").fill("after sales")
    form.get_by_label("名称").fill("售后组")
    form.get_by_label("分配方式").select_option("least_loaded")
    form.get_by_label("组长（接收 SLA 超时提醒）").select_option(label="刘组长")
    form.get_by_label("每个坐席同时处理的工单数").fill("6")
    form.get_by_role("button", name="保存").click()
    expect(page.locator("#ts-error")).to_have_attribute("data-field", "key")  # said at its field
    expect(form.get_by_label("标识")).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_label("名称")).to_have_value("售后组")  # what was typed stays
    form.get_by_label("标识").fill("after-sales")
    form.get_by_label("组长（接收 SLA 超时提醒）").select_option(label="刘组长")
    form.get_by_role("button", name="保存").click()
    group = page.locator('#ts-groups tr[data-group="after-sales"]')
    expect(group).to_contain_text("负载最少优先")
    expect(group).to_contain_text("刘组长")

    page.get_by_role("link", name="坐席", exact=True).click()
    page.get_by_label("选择用户").select_option(label="Amy 坐席")
    page.get_by_role("button", name="添加坐席").click()
    form = page.locator("#ts-agent-form")
    form.get_by_label("售后组").check()
    form.get_by_label("技能").fill("空调, 冰箱")
    form.get_by_label("状态").select_option("online")
    form.get_by_role("button", name="保存").click()
    agent = page.locator("#ts-agents tbody tr", has_text="Amy 坐席")
    expect(agent).to_contain_text("售后组")
    expect(agent).to_contain_text("空调, 冰箱")
    expect(agent.locator("[data-availability]")).to_have_text("在线")

    page.get_by_role("link", name="工单类型", exact=True).click()
    page.get_by_role("link", name="添加工单类型").click()
    form = page.locator("#ts-type-form")
    form.get_by_label("标识", exact=True).fill("repair")
    form.get_by_label("名称", exact=True).fill("设备报修")
    form.get_by_label("默认工单组").select_option("after-sales")
    form.get_by_label("字段标识 1", exact=True).fill("model")
    form.get_by_label("显示名称 1", exact=True).fill("型号")
    form.get_by_label("必填 1", exact=True).check()
    form.get_by_role("button", name="保存").click()
    kind = page.locator('#ts-types tr[data-type="repair"]')
    expect(kind).to_contain_text("设备报修")
    expect(kind).to_contain_text("型号")
    expect(kind).to_contain_text("售后组")
    kit.screenshot(page, "ticket-setup")
