"""On the real stack (Temporal dev server, worker and web as processes), in real Chromium: a poison event — a
payload 600 levels deep, already stored (imported before the entrance's depth limit existed) — fails routing
in the web process's re-router until it is quarantined, while an ordinary event behind it starts its journey.
An admin sees it from the overview, opens it in the quarantine (its error in words), sends it again unchanged
and is told it failed again and why, fixes its payload as JSON, sends it again and sees the journey it
started — whose welcome message went out. Saves docs/screenshots/quarantine.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from engine import events as ingest
from engine.events import EventIn
from tests.designer.events_kit import nested
from tests.e2e import browser as kit
from tests.e2e.stack import E2EStack
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e]  # e2e: it starts the stack as subprocesses

HELLO = {
    "schema": "tideflow/flow@1", "id": "hello-contact", "name": "新客问候", "kind": "journey",
    "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": "wecom.contact_added"}},
              {"id": "hello", "type": "action.send_message",
               "config": {"template": "你好 {{ customer.name }}", "channel": "dry-run"}}],
    "edges": [{"from": "start", "to": "hello"}],
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EStack]:
    with E2EStack(tmp_path_factory.mktemp("quarantine")) as running:
        # the re-router looks often and takes events at once, so the poison event is quarantined in seconds
        running.env.update({"TIDEFLOW_REROUTE_AFTER_SECONDS": "0", "TIDEFLOW_REROUTE_EVERY_SECONDS": "0.5"})
        running.start_pieces()
        yield running


def test_an_admin_fixes_a_poison_event_and_sends_it_again(stack: E2EStack, page: Page) -> None:
    stack.api("POST", "/api/flows", expect=201, json=HELLO)
    stack.api("POST", "/api/flows/hello-contact/publish", expect=201)
    poison = EventIn.model_validate({"id": "poison-1", "type": "wecom.contact_added", "source": "import",
                                     "customer": {"external_id": "poison-customer"},
                                     "profile": {"name": "王毒丸"}, "payload": nested(600)})
    customer = ingest.store_many([poison], stack.database_url)[0].payload["customer_id"]
    ok = stack.api("POST", "/api/events", expect=202, json={
        "id": "fine-1", "type": "wecom.contact_added", "source": "import", "customer": {"external_id": "fine"},
        "profile": {"name": "李雷"}})
    assert ok["started"] == [f"journey/hello-contact/{ok['customer_id']}"]  # the others flow meanwhile
    wait_until(lambda: stack.api("GET", "/api/quarantine")["total"] == 1, 90, "the poison event's quarantine")

    kit.add_user(stack.database_url, "olga", "admin", display_name="运维 Olga")
    kit.login(page, stack.base_url, "olga")
    page.locator("#home-quarantine a").click()  # the overview says work waits in the quarantine
    row = page.locator("#quarantine tbody tr[data-entry]")
    expect(row).to_have_count(1)
    expect(row.locator("[data-error]")).to_contain_text("数据嵌套层级过深")
    expect(row.locator("[data-error]")).to_contain_text("RecursionError")
    expect(page.locator("#qt-status-counts [data-status=open] b")).to_have_text("1")
    row.get_by_role("link", name="import:poison-1").click()

    # sent again as it is, it fails again: the page says so, with the server's reason, and keeps it open
    page.locator("#qt-redrive").click()
    expect(page.locator("#qt-failed")).to_contain_text("RecursionError")
    expect(page.locator("#qt-status")).to_have_attribute("data-status", "open")
    expect(page.locator("#qt-attempts")).to_have_text("4 次")

    # a payload that is not an object is refused at the field; then the real fix
    page.locator("#qt-payload").fill('["不是对象"]')
    page.get_by_role("button", name="保存数据").click()
    expect(page.locator("#qt-payload-problem")).to_contain_text("JSON 对象")
    expect(page.locator("#qt-payload")).to_have_attribute("aria-invalid", "true")
    page.locator("#qt-payload").fill('{"note": "已展平", "source": "import"}')
    page.get_by_role("button", name="保存数据").click()
    expect(page.locator(".notice")).to_contain_text("数据已保存")
    expect(page.locator("#qt-whole")).to_contain_text("已展平")

    page.locator("#qt-redrive").click()
    journey = f"journey/hello-contact/{customer}"
    expect(page.locator("#qt-outcome")).to_contain_text("启动了 1 个旅程")
    expect(page.locator("#qt-started")).to_contain_text(journey)
    expect(page.locator("#qt-status")).to_have_attribute("data-status", "redriven")
    kit.screenshot(page, "quarantine")

    page.locator("#qt-started a").click()
    expect(page.locator("#messages")).to_contain_text("你好 王毒丸", timeout=60_000)
    assert stack.api("GET", "/api/quarantine")["total"] == 0
    actions = {e["action"] for e in stack.api("GET", "/api/audit", params={"action": "quarantine."})}
    assert {"quarantine.redrive_failed", "quarantine.fixed", "quarantine.redriven"} <= actions
