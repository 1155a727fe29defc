"""The messaging rules: admins see and change the frequency cap and default quiet hours (page and JSON API,
audited before → after); nobody else may; bad values are a 422 naming the field; a send node's property
form says which rules apply to it, from the workspace policy, the flow's settings and the node's category."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI

from designer import i18n
from designer.policies.rules import rules
from engine.db.session import session_factory
from engine.policies import SendPolicy, current_policy, policy_view
from tests.dbtemplate import seeded_sqlite
from tests.designer.pages_kit import Browser, add_users, audit_entries, build_app


@pytest.fixture
def app(db_url: str, cheap_passwords: None) -> FastAPI:
    seeded_sqlite(db_url, add_users)
    return build_app(db_url)


def test_an_admin_changes_the_cap_and_quiet_hours_on_the_page(app: FastAPI, db_url: str) -> None:
    admin = Browser(app, "admin")
    page = admin.get("/settings/messaging")
    assert page.status_code == 200 and "TIDEFLOW_FREQUENCY_CAP" in page.text  # not saved here yet
    assert 'name="cap_window.amount" value="7"' in page.text and 'name="cap_count" value="3"' in page.text
    assert 'data-flow="welcome-new-contact"' in page.text  # each journey's own settings are listed
    r = admin.post_form("/settings/messaging", {"cap_on": "on", "cap_count": "2", "cap_window.amount": "1",
                                                "cap_window.unit": "days", "quiet_on": "on", "quiet_start": "22:00",
                                                "quiet_end": "08:30"})
    assert r.status_code == 303 and r.headers["location"] == "/settings/messaging?saved=1"
    with session_factory(db_url)() as db:
        assert policy_view(current_policy(db)) == {"cap": {"count": 2, "window": "P1D"},
                                                   "quiet_hours": {"start": "22:00", "end": "08:30"}, "saved": True}
    page = admin.get("/settings/messaging?saved=1")
    assert "发送规则已保存" in page.text and "默认（22:00–08:30）" in page.text
    entry = audit_entries(db_url, "settings.send_policy")[-1]
    assert entry.before["cap"] == {"count": 3, "window": "P7D"}
    assert entry.after["quiet_hours"] == {"start": "22:00", "end": "08:30"}
    # the cap off: saved as none; the API says the same
    admin.post_form("/settings/messaging", {"cap_count": "2", "cap_window.amount": "1", "cap_window.unit": "days"})
    assert admin.get("/api/send-policy").json() == {"cap": None, "quiet_hours": None, "saved": True}


def test_bad_values_are_refused_naming_the_field(app: FastAPI) -> None:
    admin = Browser(app, "admin")
    for form, field in (({"cap_count": "0"}, "cap_count"), ({"cap_window.amount": "zero"}, "cap_window"),
                        ({"quiet_on": "on", "quiet_start": "25:00"}, "quiet_start")):
        base = {"cap_on": "on", "cap_count": "3", "cap_window.amount": "7", "cap_window.unit": "days",
                "quiet_start": "21:00", "quiet_end": "09:00"}
        r = admin.post_form("/settings/messaging", {**base, **form})
        assert r.status_code == 422 and f"{field}:" in r.text, (form, r.text[:500])
    r = admin.client.put("/api/send-policy", json={"cap_count": 3, "cap_window": "P1M"},
                         headers={"X-CSRF-Token": admin.csrf})
    assert r.status_code == 422 and "months" in r.text


@pytest.mark.parametrize("role", ["marketer", "ops", "finance"])
def test_only_admins_change_the_rules(app: FastAPI, role: str) -> None:
    other = Browser(app, role)
    assert other.get("/settings/messaging").status_code == 403
    assert other.post_form("/settings/messaging", {"cap_count": "99"}).status_code == 403
    assert other.client.put("/api/send-policy", json={"cap_count": 99},
                            headers={"X-CSRF-Token": other.csrf}).status_code == 403


def test_a_send_node_says_which_rules_apply(app: FastAPI) -> None:
    from datetime import timedelta

    from engine.policies import FrequencyCap

    policy = SendPolicy(FrequencyCap(3, timedelta(days=7)), ("21:00", "09:00"), saved=True)
    with i18n.language("zh-CN"):
        texts = [r["text"] for r in rules(policy, {}, {"category": "promotional"})]
    assert texts[1] == "频次上限：每位客户 7 天内最多 3 条营销消息（所有流程合计），超出则跳过"
    assert texts[2].startswith("免打扰：21:00–09:00（默认规则")
    own = [r["kind"] for r in rules(policy, {"quiet_hours": {"start": "20:00", "end": "08:00"},
                                             "frequency_capped": False}, {})]
    assert own == ["consent", "cap-off", "quiet"]
    assert [r["kind"] for r in rules(policy, {}, {"category": "transactional"})] == ["consent", "exempt"]
    with i18n.language("en"):
        english = [r["text"] for r in rules(policy, {}, {"category": "promotional"})]
    assert english[1] == ("Frequency cap: at most 3 promotional messages per customer in 7 days (all flows); "
                          "more are skipped")
    marketer = Browser(app, "marketer")
    form = marketer.get("/flows/welcome-new-contact/nodes/hello/form", params={
        "type": "action.send_message", "config": json.dumps({"template": "hi"}),
        "settings": json.dumps({"quiet_hours": {"start": "21:00", "end": "08:00"}})})
    assert "免打扰：21:00–08:00（本流程设置" in form.text and "频次上限：每位客户 7 天内最多 3 条" in form.text
    assert "修改发送规则" not in form.text  # the link is for admins
