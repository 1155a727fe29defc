"""The growth and loyalty areas over HTTP: channel codes made from the page and the API against the
loopback WeCom, QR downloads read back by zxing-cpp, campaigns with the review queue, roles, and the points
API shops call (balance by identity, idempotent redemption) and the customer page's points section."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select

from activities.growth import campaigns
from engine import events as ingest
from engine.customers import resolve
from engine.db import models
from engine.db.growth_models import GrowthChannel
from engine.db.session import session_factory, transaction
from tests.activities.growth.growth_kit import connect_wecom, deliver, make_campaign
from tests.connectors.fake_wecom import FakeWeCom, fake_wecom
from tests.designer.pages_kit import Browser, add_users, audit_entries, build_app

__all__ = ["fake_wecom"]


@pytest.fixture
def app(db_url: str, fake_wecom: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> Any:
    connect_wecom(db_url, fake_wecom, monkeypatch)
    add_users(db_url)
    return build_app(db_url)


def test_a_marketer_makes_a_channel_code_from_the_page(app: Any, db_url: str, fake_wecom: FakeWeCom) -> None:
    mia = Browser(app, "marketer")
    page = mia.get("/growth/channels")
    assert page.status_code == 200 and "渠道活码" in page.text and 'id="welcome-flow-warning"' in page.text
    made = mia.post_form("/growth/channels", {"name": "门店A 收银台", "key": "store-a", "staff": "zhangsan，lisi",
                                              "tags": "门店A", "welcome": "欢迎 {{ customer.name }}",
                                              "remark": "门店A"})
    assert made.status_code == 303 and made.headers["location"].startswith("/growth/channels/store-a")
    detail = mia.get(made.headers["location"])
    assert "已创建渠道活码" in detail.text and 'id="qr"' in detail.text
    way = next(iter(fake_wecom.contact_ways.values()))
    assert way["user"] == ["zhangsan", "lisi"] and way["state"] in detail.text
    png = mia.get("/api/growth/channels/store-a/qr.png")
    with Image.open(io.BytesIO(png.content)) as image:
        assert [r.text for r in zxingcpp.read_barcodes(image.convert("RGB"))] == [way["qr_code"]]
    assert mia.get("/api/growth/channels/store-a/qr.svg").headers["content-type"].startswith("image/svg+xml")
    assert mia.get("/api/growth/channels/store-a/poster.png").status_code == 200
    # an add through it shows on the page with the welcome's outcome
    fake_wecom.console_welcome.add("zhangsan")
    deliver(db_url, fake_wecom.scan_and_add(way["config_id"], "wmPAGE1")[0])
    again = mia.get("/growth/channels/store-a")
    assert "未发送：没有 WelcomeCode" in again.text and "管理后台配置了欢迎语" in again.text
    en = mia.get("/growth/channels/store-a?lang=en")
    assert "Not sent: no WelcomeCode" in en.text
    bad = mia.post_form("/growth/channels", {"name": "x", "key": "store-b", "staff": "a", "remark": "备" * 31})
    assert bad.status_code == 303 and "error=" in bad.headers["location"]
    # the field and why, in the page's language (English since ?lang=en above)
    assert "remark: should have at most 30 characters" in mia.get(bad.headers["location"]).text
    off = mia.post_form("/growth/channels/store-a/status", {"status": "disabled"})
    assert off.status_code == 303 and fake_wecom.contact_ways == {}
    assert audit_entries(db_url, "growth.channel_disabled")[0].actor == "marketer"


def test_the_channel_api_and_its_roles(app: Any, fake_wecom: FakeWeCom) -> None:
    mia, amy = Browser(app, "marketer"), Browser(app, "agent")
    assert amy.get("/growth/channels").status_code == 403
    assert amy.client.get("/api/growth/channels").status_code == 403
    headers = {"X-CSRF-Token": mia.csrf}
    body = {"key": "live", "name": "直播间", "staff": ["wangwu"], "daily_cap": 50}
    made = mia.client.post("/api/growth/channels", json=body, headers=headers)
    assert made.status_code == 201 and made.json()["state"].startswith("tfc")
    dup = mia.client.post("/api/growth/channels", json=body, headers=headers)
    assert dup.status_code == 409 and dup.json()["detail"]["field"] == "key"
    bad = mia.client.post("/api/growth/channels", json={**body, "key": "Bad Key"}, headers=headers)
    assert bad.status_code == 422
    got = mia.client.get("/api/growth/channels/live").json()
    assert got["stats"]["adds"] == 0 and got["welcome_flow_active"] is False
    changed = mia.client.put("/api/growth/channels/live", json={**body, "staff": ["zhaoliu"]}, headers=headers)
    assert changed.status_code == 200 and fake_wecom.contact_ways[got["config_id"]]["user"] == ["zhaoliu"]
    assert mia.client.delete("/api/growth/channels/live", headers=headers).status_code == 204
    assert mia.client.get("/api/growth/channels/live").status_code == 404


def test_a_campaign_time_that_is_not_one_is_refused_in_the_readers_language(app: Any) -> None:
    """The campaign form's refusal of a time it cannot read comes back on the page in the POST's language, the
    field's name kept as it is."""
    form = {"name": "老带新", "campaign_id": "bad-time", "goal": "3", "starts_at": "next monday",
            "ends_at": "2026-12-20T10:00", "staff": "zhangsan", "min_duration": "", "review_at": "50"}
    said = {}
    for lang in ("zh-CN", "en"):
        made = Browser(app, "marketer", lang).post_form("/growth/campaigns", form)
        assert made.status_code == 303, made.text
        said[lang] = Browser(app, "marketer", lang).get(made.headers["location"]).text
    assert "starts_at：请填写时间，例如 2026-12-01T00:00" in said["zh-CN"]
    assert "starts_at: write a time such as 2026-12-01T00:00" in said["en"]


def test_campaign_pages_and_the_audited_review_queue(app: Any, db_url: str) -> None:
    mia, olly = Browser(app, "marketer"), Browser(app, "ops")
    start = datetime.now(UTC).astimezone().strftime("%Y-%m-%dT%H:%M")
    end = (datetime.now(UTC) + timedelta(days=7)).astimezone().strftime("%Y-%m-%dT%H:%M")
    made = mia.post_form("/growth/campaigns", {"name": "老带新", "campaign_id": "spring", "goal": "3",
                                               "starts_at": start, "ends_at": end, "staff": "zhangsan",
                                               "min_duration": "", "review_at": "50"})
    assert made.status_code == 303 and made.headers["location"] == "/growth/campaigns/spring"
    page = mia.get("/growth/campaigns/spring")
    assert "漏斗" in page.text and "排行榜" in page.text and "没有待审核的邀请" in page.text
    # a risky invite (a blocklisted invitee) waits in the queue
    with transaction(db_url) as db:
        inviter = resolve(db, {"external_id": "inviter"}, "邀请人")
        invitee = resolve(db, {"external_id": "farm"}, "羊毛")
        campaign = campaigns.get_campaign(db, "spring")
        participant, _ = campaigns.join(db, campaign, inviter, datetime.now(UTC))
        db.add(campaigns.GrowthBlock(kind="customer", value=invitee, reason="test"))
        db.flush()
        invite = campaigns.register_invite(db, campaign, participant, invitee_id=invitee, user_id="zhangsan",
                                           event_key="t:1", event_id=None, added_at=datetime.now(UTC))
        assert invite is not None and invite.status == "review"
        invite_id = invite.id
    queue = olly.get("/growth/review")
    assert f'id="invite-{invite_id}"' in queue.text and "黑名单" in queue.text
    no_reason = olly.post_form(f"/growth/review/{invite_id}", {"decision": "reject", "reason": " "})
    assert "error=" in no_reason.headers["location"]
    done = olly.post_form(f"/growth/review/{invite_id}", {"decision": "reject", "reason": "黑名单", "back":
                                                          "/growth/campaigns/spring"})
    assert done.headers["location"].startswith("/growth/campaigns/spring?decided=")
    trail = audit_entries(db_url, "referral.invite_rejected")
    assert trail[0].actor == "ops" and trail[0].detail["reason"] == "黑名单"
    assert Browser(app, "agent").get("/growth/review").status_code == 403


def test_points_api_and_the_customer_page(app: Any, db_url: str) -> None:
    mia, dev = Browser(app, "marketer"), Browser(app, "developer")
    headers = {"X-CSRF-Token": mia.csrf}
    program = mia.client.get("/api/loyalty/program").json()
    assert program["enabled"] is False
    saved = mia.client.put("/api/loyalty/program", json={**program, "enabled": True}, headers=headers)
    assert saved.status_code == 200
    with transaction(db_url) as db:
        cid = resolve(db, {"phone": "13800138000"}, "张三")
    ingest.store(ingest.EventIn.model_validate({"id": "o1", "type": "order.paid", "customer": {"customer_id": cid},
                                                "payload": {"order_id": "o1", "amount_fen": 50_000}}), db_url)
    found = dev.client.get("/api/loyalty/balance", params={"phone": "+8613800138000"})
    assert found.status_code == 200 and found.json()["balance"] == 500
    assert dev.client.get("/api/loyalty/balance", params={"phone": "13900000000"}).status_code == 404
    dheaders = {"X-CSRF-Token": dev.csrf}
    first = dev.client.post(f"/api/loyalty/members/{cid}/redeem", json={"points": 200, "request_id": "mp-1"},
                            headers=dheaders)
    again = dev.client.post(f"/api/loyalty/members/{cid}/redeem", json={"points": 200, "request_id": "mp-1"},
                            headers=dheaders)
    assert first.json()["balance"] == 300 and again.json() == {**first.json(), "repeated": True}
    short = dev.client.post(f"/api/loyalty/members/{cid}/redeem", json={"points": 999, "request_id": "mp-2"},
                            headers=dheaders)
    assert short.status_code == 409 and short.json()["detail"]["available"] == 300
    # journeys hear of the redemption once: not again for the retry, not for the refused one
    [told] = redeemed_events(db_url)
    assert told.customer_id == cid and told.external_id == "redeemed:redeem:developer:mp-1"
    assert told.payload == {"points": 200, "balance": 300, "reason": "redeem", "request_id": "mp-1",
                            "source": "redeem:developer:mp-1"}
    assert Browser(app, "agent").client.post(f"/api/loyalty/members/{cid}/redeem", json={
        "points": 1, "request_id": "x"}).status_code == 403
    page = mia.get(f"/customers/{cid}")
    assert 'id="points-balance">300<' in page.text and "积分流水" in page.text
    form = mia.post_form(f"/customers/{cid}/loyalty/redeem", {"points": "100", "request_id": "abcdef123456",
                                                              "reason": "保温杯"})
    assert form.status_code == 303 and "redeemed=100" in form.headers["location"]
    mia.post_form(f"/customers/{cid}/loyalty/redeem", {"points": "100", "request_id": "abcdef123456"})
    assert 'id="points-balance">200<' in mia.get(f"/customers/{cid}").text  # the double submit redeemed once
    by_page = redeemed_events(db_url)[1:]  # the staff's redemption on the customer page tells journeys once too
    assert [(e.payload["points"], e.payload["balance"], e.payload["reason"], e.payload["request_id"])
            for e in by_page] == [(100, 200, "保温杯", "abcdef123456")]


def redeemed_events(db_url: str) -> list[models.EventRecord]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.EventRecord).where(
            models.EventRecord.type == "loyalty.points_redeemed").order_by(models.EventRecord.id)))


def test_growth_pages_name_unknown_things(app: Any) -> None:
    mia = Browser(app, "marketer")
    assert mia.get("/growth/channels/nope").status_code == 404
    assert mia.get("/growth/campaigns/nope").status_code == 404
    with session_factory_for(app) as db:
        assert db.scalar(select(GrowthChannel.id)) is None


def session_factory_for(app: Any) -> Any:
    return session_factory(app.state.database_url)()


def test_make_campaign_kit_is_usable(db_url: str) -> None:
    make_campaign(db_url, "kit")
    with session_factory(db_url)() as db:
        assert campaigns.get_campaign(db, "kit").goal == 3
