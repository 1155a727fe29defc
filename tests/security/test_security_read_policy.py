"""The read policy (engine/read_policy.py), role by role: message content, customers' personal data and
the audit log (issue 18, item 4). The route walk that applies it to every API answer and page is in
test_security_read_routes.py."""

from __future__ import annotations

from typing import Any

import pytest

from engine import auth
from engine.customers import mask_identity
from engine.read_policy import (
    Access,
    MessageFacts,
    Reader,
    audit_view,
    customer_view,
    mask_name,
    may_read_audit,
    message_access,
    message_view,
    sees_pii,
)

AGENT = Reader("agent", user_id=7, groups=frozenset({"refunds"}))
READERS = {"admin": Reader("admin"), "auditor": Reader("auditor"), "ops": Reader("ops"), "agent": AGENT,
           "marketer": Reader("marketer"), "finance": Reader("finance"), "developer": Reader("developer")}

JOURNEY_MESSAGE = MessageFacts(direction="out")
OWN_REPLY = MessageFacts(direction="out", ticket_group="refunds")
ASSIGNED_REPLY = MessageFacts(direction="out", ticket_group="vip", ticket_assignee=7)
OTHER_REPLY = MessageFacts(direction="out", ticket_group="vip", ticket_assignee=9)
INBOUND_OWN_CUSTOMER = MessageFacts(direction="in", customer_groups=frozenset({"refunds"}))
INBOUND_OTHER_CUSTOMER = MessageFacts(direction="in", customer_groups=frozenset({"vip"}))

C, M, N = Access.CLEAR, Access.METADATA, Access.NONE
# role: (journey message, own group's reply, assigned reply, other group's reply, inbound (own), inbound (other))
EXPECTED = {
    "admin": (C, C, C, C, C, C),
    "ops": (C, C, C, C, C, C),
    "agent": (M, C, C, N, C, M),
    "marketer": (C, M, M, M, C, C),
    "auditor": (M, M, M, M, M, M),
    "finance": (M, M, M, M, M, M),
    "developer": (M, M, M, M, M, M),
}


@pytest.mark.parametrize("role", list(EXPECTED))
def test_message_content_by_role(role: str) -> None:
    facts = (JOURNEY_MESSAGE, OWN_REPLY, ASSIGNED_REPLY, OTHER_REPLY, INBOUND_OWN_CUSTOMER, INBOUND_OTHER_CUSTOMER)
    assert tuple(message_access(READERS[role], f) for f in facts) == EXPECTED[role]


def test_every_role_has_a_decision() -> None:
    assert set(auth.ROLES) == set(EXPECTED)


def test_a_hidden_message_keeps_its_metadata_only() -> None:
    row = {"id": 1, "channel": "wecom", "status": "sent", "content": "您的退款 ¥99 已到账"}
    assert message_view(READERS["finance"], row, JOURNEY_MESSAGE) == {
        "id": 1, "channel": "wecom", "status": "sent", "content": None, "content_hidden": True}
    assert message_view(AGENT, row, OTHER_REPLY) is None
    assert message_view(READERS["ops"], row, OTHER_REPLY) == row


def test_only_admins_and_auditors_read_the_audit_log() -> None:
    assert {r for r, reader in READERS.items() if may_read_audit(reader)} == {"admin", "auditor"}


CUSTOMER: dict[str, Any] = {
    "id": "c_1", "name": "李雷", "timezone": "Asia/Shanghai", "tags": ["VIP"],
    "identities": [{"kind": "phone", "value": "13800138000"}, {"kind": "email", "value": "li.lei@example.org"},
                   {"kind": "wecom_external_userid", "value": "wmAbCdEfGhIjKlMn"},
                   {"kind": "customer_id", "value": "c_1"}],
    "attributes": {"phone": "13800138000", "mobile_backup": "+86 139-0013-9000",
                   "备注": "请致电 13700137000 或发邮件 a.b@qq.com", "city": "杭州", "vip_level": 3,
                   "bank_card": "6222 0212 3456 7890 128", "real_name": "韩梅梅",
                   "contacts": [{"name": "王五", "tel": "13600136000"}], "address": "西湖区文三路 100 号"},
}
CLEAR_TEXTS = ["13800138000", "li.lei@example.org", "wmAbCdEfGhIjKlMn", "13700137000", "a.b@qq.com", "139-0013-9000",
               "6222 0212 3456 7890 128", "韩梅梅", "王五", "13600136000", "文三路", "李雷"]


@pytest.mark.parametrize("role", ["marketer", "finance", "developer", "auditor"])
def test_personal_data_is_masked_wherever_it_appears(role: str) -> None:
    seen = customer_view(READERS[role], CUSTOMER)
    text = repr(seen)
    assert [t for t in CLEAR_TEXTS if t in text] == []
    assert seen["name"] == "李*" and seen["pii_masked"] is True
    assert seen["attributes"]["phone"] == "138****8000" and seen["attributes"]["city"] == "杭州"
    assert seen["attributes"]["vip_level"] == 3 and seen["tags"] == ["VIP"] and seen["id"] == "c_1"
    assert "138****8000" in seen["identities"][0]["value"] and seen["identities"][3]["value"] == "c_1"
    assert seen["attributes"]["备注"] == "请致电 137****7000 或发邮件 a***@qq.com"


@pytest.mark.parametrize("role", ["admin", "ops"])
def test_admins_and_ops_see_personal_data(role: str) -> None:
    assert customer_view(READERS[role], CUSTOMER) == CUSTOMER


def test_an_agent_sees_personal_data_only_of_customers_of_their_groups() -> None:
    assert customer_view(AGENT, CUSTOMER, customer_groups={"refunds", "vip"}) == CUSTOMER
    assert customer_view(AGENT, CUSTOMER, customer_groups={"vip"})["attributes"]["phone"] == "138****8000"
    assert sees_pii(AGENT, ()) is False


def test_identity_and_name_masks() -> None:
    assert mask_identity("phone", "+86 138 0013 8000") == "138****8000"
    assert mask_identity("email", "li.lei@example.org") == "l***@example.org"
    assert mask_identity("wechat_openid", "oAbCdEfGhIjKlMnOp") == "oAbC****MnOp"
    assert mask_name("Li Lei") == "L*****" and mask_name("李") == "李*"


def test_auditors_read_audit_rows_with_personal_data_masked() -> None:
    row = {"id": 4, "at": "2026-12-01T10:00:00", "actor": "alice", "action": "customer.updated",
           "target": "customer:c_1", "details": {"phone": "13800138000", "note": "换号 13900139000"}}
    assert audit_view(READERS["admin"], row) == row
    seen = audit_view(READERS["auditor"], row)
    assert seen["details"] == {"phone": "138****8000", "note": "换号 139****9000"} and seen["actor"] == "alice"
