"""The sidebar's JSON API over HTTP: signatures only for our own pages, the chat's customer and scripts, a use
and its report, the library and its review — and what each role must not do or read; attacks are refused
with a 4xx naming the field."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from activities.sidebar.staff import SIDEBAR_ROLES
from connectors.wecom.jsapi import reset_shared_apps
from designer.permissions import CUSTOMER_READERS
from engine.customers import resolve
from engine.db import models
from engine.db.session import transaction
from engine.db.workforce_models import ArchivedMessage, WeComStaff
from tests.connectors.fake_wecom import WECOM_CORP_ID, FakeWeCom
from tests.connectors.fake_wecom_jsapi import SIDEBAR_AGENT_ID
from tests.designer.sidebar_kit import Api, api, fake

__all__ = ["api", "fake"]

pytestmark = pytest.mark.usefixtures("cheap_passwords")

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def test_the_sidebar_roles_are_the_web_apps_customer_readers() -> None:
    assert SIDEBAR_ROLES == CUSTOMER_READERS


def test_signatures_are_for_our_own_pages_and_verify_at_wecom(api: Api, fake: FakeWeCom) -> None:
    page = "http://testserver/sidebar"
    got = api.call("ann", "POST", "/api/sidebar/signatures", {"url": page + "#x"})
    assert got["corp_id"] == WECOM_CORP_ID and got["agent_id"] == SIDEBAR_AGENT_ID
    for kind, key in (("corp", "config"), ("agent", "agent_config")):
        sig = got[key]
        assert fake.verify_signature(kind, page, sig["timestamp"], sig["nonceStr"], sig["signature"]) == ""
    other = api.call("ann", "POST", "/api/sidebar/signatures", {"url": "https://evil.example.com/x"}, 422)
    assert other["detail"]["field"] == "url"
    api.call("fay", "POST", "/api/sidebar/signatures", {"url": page}, 403)
    huge = api.call("ann", "POST", "/api/sidebar/signatures", {"url": page + "?" + "a" * 5000}, 422)
    assert huge["detail"]["field"] == "url"
    fake.ticket_limits["corp"] = 0
    reset_shared_apps()
    busy = api.client.post("/api/sidebar/signatures", json={"url": page},
                           headers={"Authorization": f"Bearer {api.tokens['ann']}"})
    assert busy.status_code == 503 and "WeCom" in busy.json()["detail"]["message"]


def test_the_library_is_managed_reviewed_and_used_by_the_right_roles(api: Api) -> None:
    spec = {"title": "收益率风险提示", "text": "{{ customer.name }}您好，历史收益不代表未来。",
            "requires_approval": True, "keywords": ["收益率"]}
    for who in ("ann", "fay", "dev"):
        api.call(who, "POST", "/api/sidebar/library", spec, 403)
    made = api.call("ops", "POST", "/api/sidebar/library", spec, 201)
    assert made["status"] == "pending" and made["published_version"] is None
    bad = api.call("mk", "POST", "/api/sidebar/library", {"title": "x", "text": "{{ customer.__class__ }}"}, 422)
    assert bad["detail"]["field"] == "text"
    own = api.call("ops", "POST", f"/api/sidebar/library/{made['id']}/review", {"version": 1, "approve": True}, 403)
    assert "four-eyes" in own["detail"]["message"]
    api.call("mk", "POST", f"/api/sidebar/library/{made['id']}/review", {"version": 1, "approve": True}, 403)
    context = api.call("ann", "POST", "/api/sidebar/context", {"external_userid": "wmKnown01"})
    # ann works no ticket of this customer yet: the read policy masks them (engine/read_policy.py)
    assert context["scripts"] == [] and context["customer"]["name"] == "王**" and context["customer"]["pii_masked"]
    api.call("ops2", "POST", f"/api/sidebar/library/{made['id']}/review", {"version": 1, "approve": True})
    context = api.call("ann", "POST", "/api/sidebar/context", {"external_userid": "wmKnown01", "q": "收益"})
    assert [s["title"] for s in context["scripts"]] == ["收益率风险提示"]
    assert context["scripts"][0]["preview"] == "王**您好，历史收益不代表未来。"
    assert context["actions"]["tag"] and not context["actions"]["enroll"] and context["actions"]["coupon"]
    refused = api.call("ann", "POST", f"/api/sidebar/scripts/{made['id']}/use",
                       {"customer_id": context["customer"]["id"]}, 403)["detail"]
    assert "personal data" in refused["message"] and refused["field"] == "script_id"
    with transaction(api.db_url) as db:  # ann joins the group that works the customer's ticket
        ann = db.scalar(select(models.User).where(models.User.username == "ann"))
        db.add(models.AgentGroup(key="wealth", name="理财"))
        db.add(models.TicketType(key="consult", name="咨询", fields=[]))
        db.flush()
        db.add(models.Agent(user_id=ann.id, groups=["wealth"], skills=[], contact={}))  # type: ignore[union-attr]
        db.add(models.Ticket(type_key="consult", subject="开户", customer_id=context["customer"]["id"],
                             group_key="wealth"))
    context = api.call("ann", "POST", "/api/sidebar/context", {"external_userid": "wmKnown01", "q": "收益"})
    assert context["customer"]["name"] == "王小明" and not context["customer"]["pii_masked"]
    used = api.call("ann", "POST", f"/api/sidebar/scripts/{made['id']}/use",
                    {"customer_id": context["customer"]["id"]})
    assert used["message"]["text"]["content"] == "王小明您好，历史收益不代表未来。"
    api.call("mk", "POST", f"/api/sidebar/uses/{used['use_id']}", {"status": "sent"}, 404)  # not theirs
    api.call("ann", "POST", f"/api/sidebar/uses/{used['use_id']}", {"status": "delivered"}, 422)
    api.call("ann", "POST", f"/api/sidebar/uses/{used['use_id']}", {"status": "sent"})
    uses = api.call("ops", "GET", f"/api/sidebar/library/{made['id']}/uses")
    assert [(u["user"], u["status"]) for u in uses] == [("ann", "sent")]
    api.call("ann", "GET", f"/api/sidebar/library/{made['id']}/uses", status=403)
    api.call("fay", "POST", "/api/sidebar/context", {"external_userid": "wmKnown01"}, status=403)
    group = api.call("ann", "POST", "/api/sidebar/context", {"chat_id": "wrGroupChat01", "q": "收益"})
    assert group["customer"] is None and group["suggested"] == [] and group["chat_id"] == "wrGroupChat01"
    assert group["scripts"][0]["preview"] == "您好，历史收益不代表未来。"  # no customer: the variable is empty
    in_group = api.call("ann", "POST", f"/api/sidebar/scripts/{made['id']}/use", {"chat_id": "wrGroupChat01"})
    assert in_group["message"]["text"]["content"] == "您好，历史收益不代表未来。"


def test_malformed_and_hostile_requests_get_a_4xx_naming_the_field(api: Api) -> None:
    both = api.call("ann", "POST", "/api/sidebar/context", {"external_userid": "a", "chat_id": "b"}, 422)
    assert "exactly one" in both["detail"]["message"]
    long_id = api.call("ann", "POST", "/api/sidebar/context", {"external_userid": "w" * 65}, 422)
    assert long_id["detail"]["field"] == "external_userid"
    api.call("ann", "POST", "/api/sidebar/scripts/999/use", {}, 404)
    assert api.call("ann", "POST", "/api/sidebar/scripts/1/use", {"customer_id": "nobody"}, 422)["detail"][
        "field"] == "customer_id"
    r = api.client.post("/api/sidebar/images", files={"file": ("x.gif", b"GIF89a....", "image/gif")},
                        headers={"Authorization": f"Bearer {api.tokens['mk']}"})
    assert r.status_code == 415 and r.json()["detail"]["field"] == "file"
    r = api.client.post("/api/sidebar/images", files={"file": ("p.png", PNG, "image/png")},
                        headers={"Authorization": f"Bearer {api.tokens['mk']}"})
    assert r.status_code == 201
    image = api.client.get(f"/api/sidebar/images/{r.json()['id']}",
                           headers={"Authorization": f"Bearer {api.tokens['ann']}"})
    assert image.content == PNG and image.headers["content-type"] == "image/png"
    rule = api.call("mk", "POST", "/api/sidebar/rules", {"name": "x", "script_ids": [1]}, 422)
    assert "say when" in rule["detail"]["message"]


def test_staff_links_are_for_admins(api: Api) -> None:
    api.call("ops", "POST", "/api/sidebar/staff", {"userid": "zhangsan", "username": "ann"}, 403)
    api.call("root", "POST", "/api/sidebar/staff", {"userid": "zhangsan", "username": "ann"}, 201)
    assert api.call("root", "GET", "/api/sidebar/staff")[0]["username"] == "ann"
    api.call("root", "POST", "/api/sidebar/staff", {"userid": "lisi", "username": "ghost"}, 422)
    api.call("root", "DELETE", "/api/sidebar/staff/zhangsan")
    api.call("root", "DELETE", "/api/sidebar/staff/zhangsan", status=404)


def test_tags_and_coupons_by_hand_follow_the_web_apps_rules(api: Api) -> None:
    with transaction(api.db_url) as db:
        cid = resolve(db, {"wecom_external_userid": "wmKnown01"})
        db.add(models.CouponCampaign(id="vip-50", name="VIP", value_fen=5000, status="active", per_customer_limit=1))
    tagged = api.call("ann", "POST", f"/api/customers/{cid}/tags", {"add": ["理财意向"]})
    assert tagged["tags"] == ["理财意向"] and tagged["added"] == ["理财意向"]
    api.call("fay", "POST", f"/api/customers/{cid}/tags", {"add": ["x"]}, 403)
    assert api.call("ann", "POST", f"/api/customers/{cid}/tags", {"add": [" "]}, 422)["detail"]["field"]
    first = api.call("ann", "POST", "/api/coupon-campaigns/vip-50/issue", {"customer_id": cid,
                                                                           "request_id": "tap-00000001"})
    again = api.call("ann", "POST", "/api/coupon-campaigns/vip-50/issue", {"customer_id": cid,
                                                                           "request_id": "tap-00000001"})
    assert first["status"] == "issued" and again["code"] == first["code"] and again["repeated"]
    limit = api.call("ann", "POST", "/api/coupon-campaigns/vip-50/issue", {"customer_id": cid,
                                                                           "request_id": "tap-00000002"})
    assert limit["status"] == "out_of_stock" and limit["reason"] == "per_customer_limit"
    api.call("fay", "POST", "/api/coupon-campaigns/vip-50/issue", {"customer_id": cid, "request_id": "t-00000003"},
             403)


def test_the_archive_is_shown_to_compliance_officers_only(api: Api) -> None:
    with transaction(api.db_url) as db:
        cid = resolve(db, {"wecom_external_userid": "wmKnown01"})
        db.add(WeComStaff(connector_id="wecom-main", userid="ann.wecom", user_id=db.query(models.User)
                          .filter_by(username="ann").one().id))
        db.add(ArchivedMessage(connector_id="wecom-main", msgid="a1", seq=1, sender="wmKnown01", tolist=["ann.wecom"],
                               msgtype="text", direction="customer", staff_userid="ann.wecom", customer_id=cid,
                               text="我想退款"))
    ann = api.call("ann", "POST", "/api/sidebar/context", {"external_userid": "wmKnown01"})
    assert ann["latest_message"] == "我想退款" and "archive" not in ann["customer"]
    ops = api.call("ops", "POST", "/api/sidebar/context", {"external_userid": "wmKnown01"})
    assert [m["text"] for m in ops["customer"]["archive"]] == ["我想退款"]
    mk = api.call("mk", "POST", "/api/sidebar/context", {"external_userid": "wmKnown01"})
    assert mk["latest_message"] == "" and "archive" not in mk["customer"]  # not linked: not their chat
