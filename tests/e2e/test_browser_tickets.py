"""The refund ticket story in real Chromium on the real stack (Temporal dev server, worker, web):

a shop's signed refund push (the generic webhook connector carrying a canonical ``refund.requested``)
for a VIP customer, ¥6,880 → one ticket, routed by the 退款工单 template to the big-refund queue and
assigned to the least-loaded agent, who finds it in her console → nobody answers, the first-response
SLA breaches and the ticket is escalated (supervisor notified, priority raised) — visible on the
ticket → three people approve the three review levels in the console → the flow tells the customer
→ the agent resolves it, with the satisfaction survey link. The customer is known by a phone number, so the
replies go out by SMS (the customer's own channel), through the shop's SMS gateway — a real HTTP server on
loopback here, which checks what arrived. Saves docs/screenshots/tickets.png,
ticket.png, ticket-timeline.png and tickets-supervisor.png (1280×800).

The template's SLA targets are hours of business time; this test publishes a copy whose first
response target is 12 seconds on a 24/7 calendar (Temporal timers cannot be skipped on the dev
server), and points the shipped ``refund`` ticket type at it. Everything else is the template.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from activities.tickets import service
from connectors.canonical import CanonicalRefund, refund_event
from connectors.webhook.signing import sign_payload
from engine.db import models
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from tests.e2e import browser as kit
from tests.e2e.stack import E2EStack
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e]  # e2e: it starts the stack as subprocesses
FLOWS = Path(__file__).resolve().parents[2] / "flows"
ALWAYS = {"timezone": "Asia/Shanghai", "working_days": [1, 2, 3, 4, 5, 6, 7],
          "working_hours": [{"start": "00:00", "end": "24:00"}]}
SECRET = "e2e-shop-webhook-secret-0123456789"
PEOPLE = (("amy", "agent", "Amy 坐席"), ("ben", "agent", "Ben 坐席"), ("lead", "ops", "刘组长"),
          ("head", "ops", "何主管"), ("fin", "finance", "范财务"))


def fast_refund_flow() -> dict[str, Any]:
    """The shipped 退款工单 with a 12-second first-response target on a 24/7 calendar."""
    document = json.loads((FLOWS / "refund-ticket.json").read_text(encoding="utf-8"))
    document["id"], document["name"] = "refund-ticket-e2e", "退款工单（测试：SLA 12 秒）"
    node = next(n for n in document["nodes"] if n["id"] == "sla")
    node["config"] = {"targets": {p: {"first_response": "PT12S", "resolution": "PT1H"}
                                  for p in ("P1", "P2", "P3", "P4")},
                      "warn_before": "PT4S", "escalation": ["notify_supervisor", "raise_priority"],
                      "calendar": ALWAYS}
    return document


class SmsGateway(BaseHTTPRequestHandler):
    """The shop's SMS gateway: records each message and answers success."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        type(self).received.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))))
        body = b'{"code": 0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def sms_gateway() -> Iterator[str]:
    SmsGateway.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SmsGateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/send"
    finally:
        server.shutdown()
        server.server_close()


def setup(stack: E2EStack, gateway: str) -> dict[str, int]:
    """Queues, agents (ben is busy with an older ticket), approvers, the fast flow, the shop's webhook and SMS
    gateway."""
    for name, role, display in PEOPLE:
        kit.add_user(stack.database_url, name, role, display_name=display)
    with session_factory(stack.database_url)() as db:
        ids = {u.username: u.id for u in db.scalars(select(models.User))}
    for key, name in (("refund", "退款组"), ("refund-vip", "大额退款组")):
        stack.api("PUT", f"/api/agent-groups/{key}", json={
            "key": key, "name": name, "strategy": "least_loaded", "supervisor_id": ids["lead"], "calendar": ALWAYS,
            "capacity": 5, "notify_channel": "dry-run"})
    for name in ("amy", "ben"):
        stack.api("PUT", f"/api/agents/{ids[name]}", json={"groups": ["refund-vip"], "skills": ["大额退款"],
                                                           "availability": "online"})
    with transaction(stack.database_url) as db:
        older, _ = service.create_ticket(db, type_key="refund", subject="旧的退款工单", group="refund-vip",
                                         now=utcnow())
        older.assignee_id, older.workflow_id = ids["ben"], ""
    stack.api("POST", "/api/flows", expect=201, json=fast_refund_flow())
    stack.api("POST", "/api/flows/refund-ticket-e2e/publish", expect=201)
    stack.api("PUT", "/api/ticket-types/refund", json={
        "key": "refund", "name": "退款工单 Refund", "flow_id": "refund-ticket-e2e", "default_group": "refund",
        "default_priority": "P3", "auto_events": ["refund.requested"]})
    stack.api("PUT", "/api/connectors/shop", expect=(200, 201),
              json={"kind": "webhook", "name": "自营商城", "settings": {}, "secrets": {"secret": SECRET}})
    stack.api("PUT", "/api/connectors/shop-sms", expect=(200, 201),
              json={"kind": "sms", "name": "商城短信", "settings": {"url": gateway, "verify_tls": False},
                    "secrets": {"api_key": "sms-key-0123456789"}})
    return ids


def push_refund(stack: E2EStack) -> None:
    """The shop POSTs a signed canonical refund.requested to /hooks/shop."""
    refund = CanonicalRefund(refund_id="RF-8801", order_id="SO-20261123-77", shop="flagship", channel="api",
                             status="requested", amount_fen=688000, reason="收到的咖啡机外壳破损，申请全额退款")
    event = refund_event(refund, {"phone": "13800138000"}, datetime.now(UTC))
    event["profile"] = {"name": "陈静", "attributes": {"vip_level": 3}}
    body = json.dumps(event, ensure_ascii=False).encode()
    answer = httpx.post(f"{stack.base_url}/hooks/shop", content=body, timeout=60, headers={
        "Content-Type": "application/json", "X-Tideflow-Signature": sign_payload(SECRET, body, int(time.time()))})
    assert answer.status_code == 200, answer.text


def ticket_of_refund(stack: E2EStack) -> dict[str, Any] | None:
    found = stack.api("GET", "/api/tickets?type=refund")["tickets"]
    return next((t for t in found if t.get("refund_id") == "RF-8801"), None)


def detail(stack: E2EStack, ticket_id: int) -> dict[str, Any]:
    return dict(stack.api("GET", f"/api/tickets/{ticket_id}"))


def kinds(stack: E2EStack, ticket_id: int) -> list[str]:
    return [e["kind"] for e in detail(stack, ticket_id)["events"]]


def approve(chromium: Browser, base: str, username: str, ticket_id: int, step: int) -> None:
    """``username`` logs in (their own browser context), finds the review in their console, approves it."""
    page = kit.new_page(chromium)
    try:
        _approve(page, base, username, ticket_id, step)
    finally:
        page.context.close()


def _approve(page: Page, base: str, username: str, ticket_id: int, step: int) -> None:
    kit.login(page, base, username, next_path="/tickets")
    expect(page.locator(f'tr[data-review="{ticket_id}"]')).to_be_visible()
    page.goto(f"{base}/tickets/{ticket_id}")
    level = page.locator(f'li[data-step="{step}"]')
    expect(level).to_have_attribute("data-status", "waiting")
    level.get_by_role("button", name="通过").click()
    expect(page.locator(f'li[data-step="{step}"]')).to_have_attribute("data-status", "approved")
    if step == 3:
        expect(page.locator("#review-outcome")).to_contain_text("复核通过")


def test_a_refund_push_is_routed_escalated_reviewed_and_resolved_in_the_console(tmp_path: Path, chromium: Browser,
                                                                              page: Page) -> None:
    with E2EStack(tmp_path / "stack") as stack, sms_gateway() as gateway:
        stack.start_pieces()  # Temporal, worker and web as separate processes, started in parallel
        ids = setup(stack, gateway)
        base = stack.base_url
        push_refund(stack)

        # routed by amount to the big-refund queue, assigned to the least-loaded agent (amy, not busy ben)
        made = wait_until(lambda: (found := ticket_of_refund(stack)) and found["assignee_id"] and found,
                          90, "the refund ticket to be routed and assigned")
        tid = int(made["id"])
        assert (made["group"], made["assignee_id"], made["amount_fen"]) == ("refund-vip", ids["amy"], 688000), \
            (ids, detail(stack, tid)["events"])
        kit.login(page, base, "amy", next_path="/tickets")
        row = page.locator(f"#tk-row-{tid}")
        expect(row).to_contain_text("我")
        expect(row).to_contain_text("大额退款组")
        kit.screenshot(page, "tickets")

        # nobody answered within the SLA: breach → escalation (supervisor notified, priority raised)
        wait_until(lambda: "escalated" in kinds(stack, tid), 60, "the SLA escalation")
        row.get_by_role("link", name=f"#{tid}").click()
        timeline = page.locator("#timeline")
        expect(timeline.locator('li[data-kind="sla_breach"]')).to_contain_text("SLA 已超时：首次响应")
        expect(timeline.locator('li[data-kind="escalated"]')).to_contain_text("通知组长")
        expect(timeline.locator('li[data-kind="notified"]', has_text="刘组长")).to_have_count(1)
        expect(timeline.locator('li[data-kind="sla_warning"]')).to_have_count(1)
        expect(page.locator("#tk-facts")).to_contain_text("P1")
        expect(page.locator("#tk-customer")).to_contain_text("陈静")
        expect(page.locator("#tk-customer")).to_contain_text("138****8000")
        expect(page.locator("#tk-order")).to_contain_text("¥6,880.00")
        expect(page.locator('li[data-step="1"]')).to_have_attribute("data-status", "waiting")

        # the supervisor's view: the breach on the big-refund queue, Amy's load against her capacity
        lead = kit.new_page(chromium)
        try:
            kit.login(lead, base, "lead", next_path="/tickets/supervisor")
            expect(lead.locator('#queues tr[data-queue="refund-vip"] .sla-breached')).to_have_text("1")
            expect(lead.locator(f'#risk tr[data-ticket="{tid}"]')).to_contain_text("首次响应 · 已超时")
            expect(lead.locator(f'#agents tr[data-agent="{ids["amy"]}"]')).to_contain_text("1 / 5")
            kit.screenshot(lead, "tickets-supervisor")
        finally:
            lead.context.close()

        # three-level review, decided by three people in their consoles
        approve(chromium, base, "lead", tid, 1)
        approve(chromium, base, "head", tid, 2)
        approve(chromium, base, "fin", tid, 3)

        # the flow tells the customer; the agent resolves the ticket with the survey link
        wait_until(lambda: "reply" in kinds(stack, tid), 60, "the flow's approval reply")
        page.goto(f"{base}/tickets/{tid}")
        expect(timeline.locator('li[data-kind="reply"]').first).to_contain_text("审核通过")
        expect(timeline.locator('li[data-kind="review_approve"]')).to_have_count(3)
        page.locator("#reply-body").fill("陈女士您好，退款已原路退回，预计 1–3 个工作日到账。")
        page.locator("#reply-form").get_by_role("button", name="发送回复").click()
        expect(page.locator(".notice")).to_contain_text("已回复客户")
        kit.screenshot(page, "ticket")
        page.locator("#timeline-title").evaluate("e => e.scrollIntoView()")
        kit.screenshot(page, "ticket-timeline")
        page.locator("#tk-resolve-reason").fill("三级复核通过，已退款")
        page.locator("#resolve-form").get_by_role("button", name="解决工单").click()
        expect(page.locator("#tk-facts")).to_contain_text("已解决")
        final = detail(stack, tid)
        assert final["status"] == "resolved" and final["review"]["outcome"] == "approved"
        assert any("/csat/" in e["body"] for e in final["events"] if e["kind"] == "reply")
        # every reply went to the customer's phone by SMS, and says so
        assert final["channel"] == "sms"
        assert all(e["data"]["delivery"] == "sent" for e in final["events"] if e["kind"] == "reply")
        texts = [m["content"] for m in SmsGateway.received]
        assert {m["phone"] for m in SmsGateway.received} == {"+8613800138000"}
        assert any("审核通过" in text for text in texts) and any("原路退回" in text for text in texts)
        assert any("/csat/" in text for text in texts)
