"""The tickets API: custom field validation, the agent's actions, supervisor views, reviews,
sub-tasks — and isolation: an agent of one group cannot read another group's tickets by id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from activities.tickets import review, service
from designer.app import create_app
from engine import auth
from engine.db.models import utcnow
from engine.db.session import transaction
from tests.engine.flowkit import customer

pytestmark = pytest.mark.usefixtures("cheap_passwords")


class Staff:
    def __init__(self, client: TestClient, db_url: str) -> None:
        self.client, self.db_url = client, db_url
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, int] = {}

    def add(self, name: str, role: str) -> int:
        with transaction(self.db_url) as db:
            user = auth.create_user(db, name, "a-long-password-1", role)
            self.tokens[name], self.ids[name] = auth.create_token(db, user, "t"), user.id
        return self.ids[name]

    def call(self, who: str, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        r = self.client.request(method, path, json=body, headers={"Authorization": f"Bearer {self.tokens[who]}"})
        assert r.status_code == status, r.text
        return r.json()


@pytest.fixture
def staff(db_url: str) -> Iterator[Staff]:
    with TestClient(create_app(db_url, connect=False)) as client:
        s = Staff(client, db_url)
        for name, role in (("boss", "ops"), ("ann", "agent"), ("bob", "agent"), ("fay", "finance")):
            s.add(name, role)
        s.call("boss", "PUT", "/api/agent-groups/alpha", {"key": "alpha", "name": "A 组", "strategy": "least_loaded",
                                                           "supervisor_id": s.ids["boss"], "notify_channel": "dry-run"})
        s.call("boss", "PUT", "/api/agent-groups/beta", {"key": "beta", "name": "B 组"})
        s.call("boss", "PUT", f"/api/agents/{s.ids['ann']}", {"groups": ["alpha"], "skills": ["退款"], "capacity": 2,
                                                               "availability": "online"})
        s.call("boss", "PUT", f"/api/agents/{s.ids['bob']}", {"groups": ["beta"], "availability": "online"})
        s.call("boss", "POST", "/api/ticket-types", {
            "key": "complaint", "name": "投诉", "default_group": "alpha", "fields": [
                {"key": "category", "type": "choice", "required": True, "choices": ["物流", "质量"]},
                {"key": "amount_fen", "type": "number"}, {"key": "due", "type": "date"}]}, 201)
        yield s


def new_ticket(staff: Staff, who: str = "boss", **extra: Any) -> dict[str, Any]:
    body = {"type": "complaint", "subject": "快递破损", "fields": {"category": "物流"}, "channel": "dry-run", **extra}
    return dict(staff.call(who, "POST", "/api/tickets", body, 201))


def test_custom_fields_are_validated_naming_the_field(staff: Staff) -> None:
    missing = staff.call("ann", "POST", "/api/tickets", {"type": "complaint", "subject": "x"}, 422)["detail"]
    assert missing["field"] == "fields.category" and "required" in missing["message"]
    wrong = staff.call("ann", "POST", "/api/tickets", {"type": "complaint", "subject": "x",
                                                       "fields": {"category": "天气"}}, 422)["detail"]
    assert wrong["field"] == "fields.category" and "物流" in wrong["fix"]
    number = staff.call("ann", "POST", "/api/tickets", {"type": "complaint", "subject": "x",
                                                        "fields": {"category": "质量", "amount_fen": 1.5}}, 422)
    assert number["detail"]["field"] == "fields.amount_fen"
    unknown = staff.call("ann", "POST", "/api/tickets", {"type": "complaint", "subject": "x",
                                                         "fields": {"category": "质量", "colour": "red"}}, 422)
    assert unknown["detail"]["field"] == "fields.colour"
    made = new_ticket(staff, "ann", fields={"category": "质量", "amount_fen": "1200", "due": "2026-12-01"})
    assert made["fields"] == {"category": "质量", "amount_fen": 1200, "due": "2026-12-01"}
    assert (made["group"], made["status"], made["priority"]) == ("alpha", "open", "P3")
    bad = staff.call("ann", "PATCH", f"/api/tickets/{made['id']}/fields", {"fields": {"due": "明天"}}, 422)
    assert bad["detail"]["field"] == "fields.due"
    assert staff.call("boss", "DELETE", "/api/ticket-types/complaint", status=409)["detail"]["field"] == "key"
    staff.call("boss", "POST", "/api/ticket-types", {"key": "spare", "name": "备用"}, 201)
    assert staff.client.delete("/api/ticket-types/spare",
                               headers={"Authorization": f"Bearer {staff.tokens['boss']}"}).status_code == 204
    staff.call("ann", "DELETE", "/api/ticket-types/complaint", status=403)
    again = new_ticket(staff, "ann", external_id="crm-1")
    assert new_ticket(staff, "ann", external_id="crm-1")["id"] == again["id"]


def test_an_agent_cannot_reach_another_groups_ticket_by_id(staff: Staff) -> None:
    theirs = new_ticket(staff)
    for method, path, body in (("GET", "", None), ("POST", "/claim", None), ("POST", "/reply", {"body": "hi"}),
                               ("POST", "/notes", {"body": "n"}), ("POST", "/status", {"status": "pending"}),
                               ("GET", "/reviews", None), ("GET", "/subtasks", None)):
        answer = staff.call("bob", method, f"/api/tickets/{theirs['id']}{path}", body, 404)
        assert answer["detail"]["field"] == "id"
    assert staff.call("bob", "GET", "/api/tickets/999999", status=404)["detail"]["field"] == "id"
    assert staff.call("bob", "GET", "/api/tickets")["total"] == 0
    assert staff.call("ann", "GET", "/api/tickets")["total"] == 1
    staff.call("bob", "GET", "/api/tickets/summary", status=403)
    assert staff.client.get(f"/api/tickets/{theirs['id']}").status_code == 401


def test_agent_works_a_ticket(staff: Staff, db_url: str) -> None:
    cid = customer(db_url, "李四")
    made = new_ticket(staff, customer_id=cid)
    tid = made["id"]
    claimed = staff.call("ann", "POST", f"/api/tickets/{tid}/claim")
    assert claimed["assignee_id"] == staff.ids["ann"]
    sent = staff.call("ann", "POST", f"/api/tickets/{tid}/reply", {"body": "您好，已为您处理"})
    assert sent["delivery"] == "sent" and sent["first_response_at"] is not None
    staff.call("ann", "POST", f"/api/tickets/{tid}/notes", {"body": "内部：核实物流单号"})
    assert staff.call("ann", "POST", f"/api/tickets/{tid}/status", {"status": "pending"})["sla"]["paused"] is True
    staff.call("ann", "POST", f"/api/tickets/{tid}/customer-message", {"body": "还没好"})
    assert staff.call("ann", "POST", f"/api/tickets/{tid}/priority", {"priority": "P1"})["priority"] == "P1"
    bad = staff.call("ann", "POST", f"/api/tickets/{tid}/status", {"status": "done"}, 422)
    assert bad["detail"]["field"] == "status"
    mine = staff.call("ann", "GET", "/api/tickets?assignee=me&status=active")
    assert [t["id"] for t in mine["tickets"]] == [tid]
    detail = staff.call("ann", "GET", f"/api/tickets/{tid}")
    kinds = [(e["kind"], e["public"]) for e in detail["events"]]
    assert ("reply", True) in kinds and ("note", False) in kinds and ("customer_message", True) in kinds
    assert detail["status"] == "open"  # the customer's message reopened it
    # capacity 2: a third claim is refused
    second, third = new_ticket(staff), new_ticket(staff)
    staff.call("ann", "POST", f"/api/tickets/{second['id']}/claim")
    full = staff.call("ann", "POST", f"/api/tickets/{third['id']}/claim", status=409)
    assert full["detail"]["field"] == "capacity"
    # transfer to another group: ann no longer sees it, bob does
    staff.call("boss", "POST", f"/api/tickets/{tid}/transfer", {"group": "beta", "note": "归 B 组"})
    staff.call("ann", "GET", f"/api/tickets/{tid}", status=404)
    assert staff.call("bob", "GET", f"/api/tickets/{tid}")["assignee_id"] is None
    resolved = staff.call("ann", "POST", f"/api/tickets/{second['id']}/resolve", {"reason": "已补发"})
    assert resolved["status"] == "resolved"
    summary = staff.call("boss", "GET", "/api/tickets/summary")
    assert summary["queues"]["alpha"]["open"] == 1 and summary["queues"]["beta"]["open"] == 1
    staff.call("ann", "POST", f"/api/tickets/{third['id']}/claim")  # room again after resolving one
    assert {a["user_id"]: a["load"] for a in summary["agents"]}[staff.ids["ann"]] == 0
    assert staff.call("ann", "PUT", "/api/agents/me/availability", {"availability": "away"})["availability"] == "away"
    assert staff.call("ann", "GET", "/api/agents/me")["load"] == 1


def test_review_decisions_and_delegation_through_the_api(staff: Staff, db_url: str) -> None:
    tid = new_ticket(staff, amount_fen=800000)["id"]
    steps = [review.ReviewStep(name="组长", approver="supervisor"),
             review.ReviewStep(name="财务", approver="role:finance")]
    with transaction(db_url) as db:
        service.open_review(db, service.get_ticket(db, tid), "review", 1, steps, utcnow())
    path = f"/api/tickets/{tid}/reviews"
    assert staff.call("ann", "POST", f"{path}/1/decision", {"decision": "approve"}, 403)["detail"]["field"] == "step"
    staff.call("bob", "POST", f"{path}/1/decision", {"decision": "approve"}, 404)  # other group: not even seen
    no_reason = staff.call("boss", "POST", f"{path}/1/decision", {"decision": "reject"}, 409)
    assert "reason" in no_reason["detail"]["message"]
    staff.call("boss", "POST", f"{path}/1/delegate", {"to_user_id": staff.ids["ann"], "reason": "出差"})
    after = staff.call("ann", "POST", f"{path}/1/decision", {"decision": "approve"})
    assert [s["status"] for s in after["steps"]] == ["approved", "waiting"]
    done = staff.call("fay", "POST", f"{path}/2/decision", {"decision": "reject", "reason": "凭证不全"})
    assert done["outcome"] == "rejected" and done["steps"][1]["reason"] == "凭证不全"
    staff.call("fay", "POST", f"{path}/2/decision", {"decision": "approve"}, 409)


def test_subtasks_and_their_combined_progress(staff: Staff) -> None:
    tid = new_ticket(staff, subject="双十一活动")["id"]
    made = staff.call("ann", "POST", f"/api/tickets/{tid}/subtasks", {"tasks": [
        {"group": "alpha", "subject": "设计海报"}, {"group": "beta", "subject": "采购赠品"}]}, 201)
    assert made["total"] == 2 and made["done"] == 0
    child = next(s for s in made["subtasks"] if s["group"] == "beta")
    staff.call("bob", "POST", f"/api/tickets/{child['id']}/resolve", {})
    progress = staff.call("ann", "GET", f"/api/tickets/{tid}/subtasks")
    assert (progress["done"], progress["percent"]) == (1, 50)
    bad = staff.call("ann", "POST", f"/api/tickets/{tid}/subtasks", {"tasks": [{"group": "nope", "subject": "x"}]},
                     422)
    assert bad["detail"]["field"] == "tasks.group"
