"""The script library's screens (forms, review, rules, staff links) and the sidebar's sign-in refusals, over
HTTP with real sessions: what each role sees, problems shown next to their field, nothing half-saved."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from designer.app import create_app
from engine import auth, connectors
from engine.customers import resolve
from engine.db.session import transaction
from engine.db.sidebar_models import Script, SuggestionRule
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN
from tests.connectors.fake_wecom_jsapi import SIDEBAR_AGENT_ID

PASSWORD = "a-long-password-1"
pytestmark = pytest.mark.usefixtures("cheap_passwords")


@pytest.fixture
def app_url(db_url: str) -> Iterator[str]:
    with transaction(db_url) as db:
        for name, role in (("mk", "marketer"), ("ops", "ops"), ("ops2", "ops"), ("ann", "agent"), ("root", "admin")):
            auth.create_user(db, name, PASSWORD, role)
    yield db_url


def _session(db_url: str, name: str) -> tuple[TestClient, str]:
    client = TestClient(create_app(db_url, connect=False), follow_redirects=False)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    assert client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token.group(1),
                                       "next": "/library"}).status_code == 303
    csrf = client.get("/api/me").json()["csrf_token"]
    return client, csrf


def test_a_compliance_script_is_written_reviewed_by_another_ops_and_published(app_url: str) -> None:
    mk, mk_csrf = _session(app_url, "mk")
    form = {"csrf_token": mk_csrf, "kind": "text", "title": "收益率风险提示", "text": "{{ customer.name ",
            "keywords": "收益率，理财", "requires_approval": "on"}
    bad = mk.post("/library/new", data=form)
    assert bad.status_code == 422 and 'id="err-text"' in bad.text and "syntax error" in bad.text
    with transaction(app_url) as db:
        assert db.query(Script).count() == 0  # nothing half-saved
    made = mk.post("/library/new", data={**form, "text": "{{ customer.name }}您好，历史收益不代表未来。"})
    assert made.status_code == 303
    location = made.headers["location"]
    page = mk.get(location)
    assert "待审核" in page.text and 'id="review"' in page.text
    ops, ops_csrf = _session(app_url, "ops")
    listing = ops.get("/library")
    assert 'id="review-queue"' in listing.text and "收益率风险提示" in listing.text
    approved = ops.post(f"{location}/review", data={"csrf_token": ops_csrf, "version": "1", "decision": "approve",
                                                    "note": "合规已审"})
    assert approved.status_code == 303
    with transaction(app_url) as db:
        script = db.query(Script).one()
        assert script.status == "approved" and script.published["version"] == 1
        assert script.keywords == ["收益率", "理财"]
    mk.post(location, data={**form, "text": "新版本", "version": "1"})
    own = mk.post(f"{location}/review", data={"csrf_token": mk_csrf, "version": "2", "decision": "approve"})
    assert own.status_code == 403
    agent, _ = _session(app_url, "ann")
    assert agent.get("/library").status_code == 403


def test_rules_and_staff_links_on_their_screens(app_url: str) -> None:
    mk, csrf = _session(app_url, "mk")
    mk.post("/library/new", data={"csrf_token": csrf, "kind": "text", "title": "问候", "text": "您好"})
    refused = mk.post("/library/rules/new", data={"csrf_token": csrf, "name": "空规则", "script_ids": "1"})
    assert refused.status_code == 422 and "say when" in refused.text
    saved = mk.post("/library/rules/new", data={"csrf_token": csrf, "name": "VIP", "situations": "tier: VIP",
                                                "script_ids": "1", "priority": "5"})
    assert saved.status_code == 303 and "VIP" in mk.get("/library").text
    with transaction(app_url) as db:
        rule_id = db.query(SuggestionRule).one().id
    form = mk.get(f"/library/rules/{rule_id}").text
    assert "tier: VIP" in form and 'value="1" checked' in form
    bad = mk.post(f"/library/rules/{rule_id}", data={"csrf_token": csrf, "name": "VIP", "situations": "mood: sad",
                                                     "script_ids": "1"})
    assert bad.status_code == 422 and "situations" in bad.text
    edited = mk.post(f"/library/rules/{rule_id}", data={"csrf_token": csrf, "name": "VIP 客户", "keywords": "会员",
                                                        "script_ids": "1", "enabled": "off"})
    assert edited.status_code == 303
    with transaction(app_url) as db:
        rule = db.query(SuggestionRule).one()
        assert (rule.name, rule.keywords, rule.situations, rule.enabled) == ("VIP 客户", ["会员"], [], False)
    assert mk.get("/library/staff").status_code == 403
    root, _ = _session(app_url, "root")
    assert "企业微信连接器" in root.get("/library/staff").text or "AgentId" in root.get("/library/staff").text


def test_the_sidebar_refuses_with_a_reason(app_url: str) -> None:
    client = TestClient(create_app(app_url, connect=False), follow_redirects=False)
    unconfigured = client.get("/sidebar")
    assert unconfigured.status_code == 503 and "AgentId" in unconfigured.text
    forged = client.get("/sidebar/oauth?code=abc&state=xyz")
    assert forged.status_code == 403 and 'id="sb-why"' in forged.text


def test_the_sidebar_body_escapes_what_customers_and_authors_wrote(app_url: str) -> None:
    with transaction(app_url) as db:
        resolve(db, {"wecom_external_userid": "wmXss0001"}, '<img src=x onerror="alert(1)">')
    mk, csrf = _session(app_url, "mk")
    mk.post("/library/new", data={"csrf_token": csrf, "kind": "text", "title": "<script>alert(2)</script>",
                                  "text": "{{ customer.name }}"})
    ops, ops_csrf = _session(app_url, "ops")  # (ops read customers' names in clear: a marketer's view is masked)
    body = ops.post("/sidebar/view", json={"external_userid": "wmXss0001"}, headers={"X-CSRF-Token": ops_csrf})
    assert body.status_code == 200
    assert "<script>alert(2)" not in body.text and "&lt;script&gt;alert(2)" in body.text
    assert "<img src=x" not in body.text and "&lt;img src=x" in body.text
    masked = mk.post("/sidebar/view", json={"external_userid": "wmXss0001"}, headers={"X-CSRF-Token": csrf})
    assert masked.status_code == 200 and "img src" not in masked.text and "onerror" not in masked.text
    assert mk.post("/sidebar/view", json={"external_userid": "wmXss0001"}).status_code == 403  # no CSRF token


def test_linking_staff_without_a_sidebar_app_is_a_409_and_a_bad_userid_a_422(app_url: str) -> None:
    """No WeCom connector has an AgentId: linking or unlinking a member conflicts with that configuration (409,
    saying what to set), whatever the form says; a UserID WeCom cannot have is the form's fault (422)."""
    root, csrf = _session(app_url, "root")
    linked = root.post("/library/staff", data={"csrf_token": csrf, "userid": "zhangsan", "username": "ann"})
    assert linked.status_code == 409 and "AgentId" in linked.text and "agent_id" in linked.text
    unlinked = root.post("/library/staff/zhangsan/delete", data={"csrf_token": csrf})
    assert unlinked.status_code == 409 and "AgentId" in unlinked.text
    with transaction(app_url) as db:  # the sidebar's app is set up: what is left is the form
        connectors.save(db, "wecom-main", "wecom", "企业微信", {
            "corp_id": WECOM_CORP_ID, "agent_id": SIDEBAR_AGENT_ID, "api_base": "http://127.0.0.1:9"},
            {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
    bad = root.post("/library/staff", data={"csrf_token": csrf, "userid": "zhang san", "username": "ann"})
    assert bad.status_code == 422 and "UserID" in bad.text
    nobody = root.post("/library/staff", data={"csrf_token": csrf, "userid": "zhangsan", "username": "nobody"})
    assert nobody.status_code == 422 and "nobody" in nobody.text
    assert root.post("/library/staff", data={"csrf_token": csrf, "userid": "zhangsan",
                                             "username": "ann"}).status_code == 303
