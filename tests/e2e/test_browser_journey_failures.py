"""On the real stack (Temporal dev server, worker and web as processes), in real Chromium:

- two journeys fail at a message whose template divides by the customer's bag count (0): the marketer finds them
  on the failed-journeys list (the node, the error in words, the attempts), filters them, fixes one customer's data
  and presses Retry — the journey runs on from the failed step and sends the message once; the other is given up
  and stays on record as cancelled, with its reason;
- a resolved ticket is reopened on its page: its workflow starts again with its SLA, which breaches when the time
  left (the resolved time not counted) is up — visible on the ticket.

One stack for the module. Saves docs/screenshots/journey-failures.png and journey-failure.png."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import browser as kit
from tests.e2e.stack import E2EStack
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e]  # e2e: it starts the stack as subprocesses

SPLIT = {
    "schema": "tideflow/flow@1", "id": "split-bill", "name": "分袋提醒", "kind": "journey",
    "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": "custom.bill"}},
              {"id": "hello", "name": "每袋价格", "type": "action.send_message",
               "config": {"template": "每袋 {{ 100 // customer.bags }} 元", "channel": "dry-run"}},
              {"id": "done", "type": "logic.exit", "config": {}}],
    "edges": [{"from": "start", "to": "hello"}, {"from": "hello", "to": "done"}],
}
ALWAYS = {"timezone": "Asia/Shanghai", "working_days": [1, 2, 3, 4, 5, 6, 7],
          "working_hours": [{"start": "00:00", "end": "24:00"}]}
SLA_FLOW = {
    "schema": "tideflow/flow@1", "id": "quick-sla", "name": "快速 SLA", "kind": "ticket",
    "nodes": [{"id": "start", "type": "trigger.ticket", "config": {}},
              {"id": "sla", "type": "ticket.sla", "config": {
                  "targets": {p: {"resolution": "PT15S"} for p in ("P1", "P2", "P3", "P4")}, "warn_before": None,
                  "escalation": ["raise_priority"], "calendar": ALWAYS}}],
    "edges": [{"from": "start", "to": "sla"}],
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EStack]:
    with E2EStack(tmp_path_factory.mktemp("failures")) as running:
        running.start_pieces()
        yield running


def _journey(stack: E2EStack, customer_external: str) -> dict[str, Any] | None:
    found = stack.api("GET", "/api/journeys", params={"flow": "split-bill", "limit": 50})["journeys"]
    return next((j for j in found if j["customer_id"] == _customer(stack, customer_external)), None)


def _customer(stack: E2EStack, external_id: str) -> str:
    answer = stack.api("GET", "/api/customers", params={"q": external_id})
    rows = answer["customers"] if isinstance(answer, dict) else answer
    return str(rows[0]["id"]) if rows else ""


def test_a_failed_journey_says_why_and_is_retried_or_given_up(stack: E2EStack, page: Page) -> None:
    stack.api("POST", "/api/flows", expect=201, json=SPLIT)
    stack.api("POST", "/api/flows/split-bill/publish", expect=201)
    for who, name in (("bag-1", "李雷"), ("bag-2", "韩梅梅")):
        stack.api("POST", "/api/events", expect=202, json={
            "id": f"bill-{who}", "type": "custom.bill", "source": "pos", "customer": {"external_id": who},
            "profile": {"name": name, "attributes": {"bags": 0}}})
    for who in ("bag-1", "bag-2"):
        wait_until(lambda w=who: (j := _journey(stack, w)) and j["status"] == "failed", 90, f"{who}'s failure")
    kit.add_user(stack.database_url, "mia", "marketer", display_name="运营 Mia")

    kit.login(page, stack.base_url, "mia", next_path="/journeys?flow=split-bill")
    page.locator("#see-failures").click()
    rows = page.locator("#failures tbody tr[data-journey]")
    expect(rows).to_have_count(2, timeout=30_000)
    for index in range(2):
        row = rows.nth(index)
        expect(row.locator("[data-node]")).to_contain_text("每袋价格")
        expect(row.locator("[data-error]")).to_contain_text("division or modulo by zero")
        expect(row.locator("[data-error]")).to_contain_text("动作失败")
        expect(row.locator("[data-attempts]")).to_have_text("1 次")
    kit.screenshot(page, "journey-failures")
    page.get_by_label("客户 ID").fill(_customer(stack, "bag-1"))
    page.get_by_role("button", name="筛选").click()
    expect(rows).to_have_count(1)

    # the data is fixed (the customer has 4 bags), the journey retried from its failed step
    cid = _customer(stack, "bag-1")
    stack.api("POST", f"/api/customers/{cid}/profile", json={"set": {"bags": 4}})
    first = _journey(stack, "bag-1")
    assert first is not None
    rows.first.get_by_role("button", name=f"重试 {first['id']}").click()
    expect(page.locator(".notice")).to_contain_text("重新执行")
    wait_until(lambda: (j := _journey(stack, "bag-1")) and j["status"] == "exited", 60, "the retried journey")
    page.goto(f"{stack.base_url}/journeys/{first['id']}")
    expect(page.locator("#messages")).to_contain_text("每袋 25 元")
    expect(page.locator("#failure")).to_have_count(0)  # no longer failed

    # the other is given up from its own page: cancelled, its reason kept
    second = _journey(stack, "bag-2")
    assert second is not None
    page.goto(f"{stack.base_url}/journeys/{second['id']}")
    expect(page.locator("#failure-node")).to_contain_text("每袋价格")
    expect(page.locator("#failure-error")).to_contain_text("division or modulo by zero")
    expect(page.locator("#failure-attempts")).to_have_text("1 次")
    kit.screenshot(page, "journey-failure")
    page.locator("#failure").get_by_role("button", name="放弃").click()
    expect(page.locator(".notice")).to_contain_text("已取消")
    expect(page.locator("#failure-error")).to_contain_text("division or modulo by zero")
    assert stack.api("GET", f"/api/journeys/{second['id']}")["status"] == "cancelled"
    entries = stack.api("GET", "/api/audit", params={"action": "journey."})
    assert {(e["action"], e["actor"]) for e in entries} >= {("journey.retried", "mia"), ("journey.cancelled", "mia")}


def test_reopening_a_resolved_ticket_brings_back_its_workflow_and_sla(stack: E2EStack, page: Page) -> None:
    kit.add_user(stack.database_url, "amy", "agent", display_name="Amy 坐席")
    me = stack.api("GET", "/api/users")
    amy = next(u for u in me if u["username"] == "amy")
    stack.api("PUT", "/api/agent-groups/quick", json={"key": "quick", "name": "快速组", "strategy": "least_loaded",
                                                      "calendar": ALWAYS, "capacity": 5, "notify_channel": "dry-run"})
    stack.api("PUT", f"/api/agents/{amy['id']}", json={"groups": ["quick"], "availability": "online"})
    stack.api("POST", "/api/flows", expect=201, json=SLA_FLOW)
    stack.api("POST", "/api/flows/quick-sla/publish", expect=201)
    stack.api("POST", "/api/ticket-types", expect=201, json={"key": "quick", "name": "快速工单", "flow_id": "quick-sla",
                                                              "default_group": "quick"})
    ticket = stack.api("POST", "/api/tickets", expect=201, json={"type": "quick", "subject": "打印机卡纸",
                                                                 "channel": "dry-run"})
    tid = int(ticket["id"])
    kinds = lambda: [e["kind"] for e in stack.api("GET", f"/api/tickets/{tid}")["events"]]  # noqa: E731
    wait_until(lambda: "sla_started" in kinds(), 60, "the SLA to start")
    stack.api("POST", f"/api/tickets/{tid}/resolve", json={"reason": "换了新硒鼓"})  # within seconds: no breach
    def ended() -> bool:
        answer = stack.http.get(f"/api/journeys/ticket/{tid}")  # its row comes with its last checkpoint
        return answer.status_code == 200 and answer.json()["status"] == "completed"

    wait_until(ended, 60, "the ticket's workflow to end with the resolution")

    # the customer says it still jams: the agent reopens it on the ticket page
    kit.login(page, stack.base_url, "amy", next_path=f"/tickets/{tid}")
    expect(page.locator("#tk-facts")).to_contain_text("已解决")
    page.get_by_label("说明（可选）").fill("客户说还是卡纸")
    page.locator("#reopen-form").get_by_role("button", name="重新打开工单").click()
    expect(page.locator("#tk-facts")).to_contain_text("待处理")
    expect(page.locator("#tk-facts [data-sla]")).to_have_attribute("data-sla", "ok")  # its clock runs again
    # the remaining seconds of its 15 s target run out: the restarted workflow fires the breach
    wait_until(lambda: "sla_breach" in kinds(), 60, "the SLA breach after reopening")
    page.reload()
    expect(page.locator('#timeline li[data-kind="sla_breach"]')).to_contain_text("SLA 已超时")
    expect(page.locator('#timeline li[data-kind="status"]').last).to_contain_text("已解决 → 待处理")
    assert stack.api("GET", f"/api/tickets/{tid}")["priority"] == "P2"  # the escalation ran
