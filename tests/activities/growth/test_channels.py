"""Channel codes end to end against the loopback WeCom: created, edited, rotated, disabled and deleted on
WeCom; an add through a code attributes the customer (first and last touch), tags them and marks the event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from activities.growth import channels, states
from activities.growth.channels import ChannelError, ChannelSpec
from engine.customers import tags_of
from engine.db import models
from engine.db.growth_models import ChannelAdd, GrowthChannel
from engine.db.session import session_factory
from tests.activities.growth.growth_kit import connect_wecom, customer_of, deliver
from tests.connectors.fake_wecom import FakeWeCom, fake_wecom

__all__ = ["fake_wecom"]


def spec(key: str = "store-a", **over: object) -> ChannelSpec:
    base: dict[str, object] = {"key": key, "name": "门店A 收银台", "staff": ["zhangsan", "lisi"], "tags": ["门店A"],
                               "welcome": {"text": "欢迎光临门店A，{{ customer.name }}"}, "remark": "门店A"}
    base.update(over)
    return ChannelSpec.model_validate(base)


def test_a_code_is_made_on_wecom_and_an_add_attributes_the_customer(db_url: str, fake_wecom: FakeWeCom,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    connect_wecom(db_url, fake_wecom, monkeypatch)
    now = datetime.now(UTC)
    store = channels.create_channel(db_url, spec(), "marketer", now)
    live = channels.create_channel(db_url, spec("live-room", name="直播间", staff=["wangwu"], tags=["直播"]),
                                   "marketer", now)
    way = fake_wecom.contact_ways[str(store.config_id)]
    assert way["state"] == store.state == states.channel_state(store.id)
    assert way["user"] == ["zhangsan", "lisi"] and way["remark"] == "门店A" and store.qr_url == way["qr_code"]

    xml, member, code = fake_wecom.scan_and_add(str(store.config_id), "wmCUST1", name="小王")
    (status, event), = deliver(db_url, xml)
    assert status == "accepted" and code
    assert event["payload"]["channel"] == "store-a" and event["payload"]["channel_name"] == "门店A 收银台"
    cid = customer_of(db_url, "wecom_external_userid", "wmCUST1")
    assert deliver(db_url, xml)[0][0] == "duplicate"  # WeCom's retry of the same push adds nothing

    later = fake_wecom.scan_and_add(str(live.config_id), "wmCUST1")[0]
    deliver(db_url, later)
    with session_factory(db_url)() as db:
        customer = db.get(models.Customer, cid)
        assert customer is not None
        attrs = customer.attributes
        assert (attrs["first_touch_channel"], attrs["last_touch_channel"]) == ("store-a", "live-room")
        assert set(tags_of(db, cid)) >= {"门店A", "直播"}
        adds = list(db.scalars(select(ChannelAdd).order_by(ChannelAdd.id)))
        assert [(a.channel_id, a.user_id, a.welcome_status) for a in adds] == [
            (store.id, member, "pending"), (live.id, "wangwu", "pending")]
    assert fake_wecom.problems == []


def test_edit_disable_enable_and_delete_go_back_to_wecom(db_url: str, fake_wecom: FakeWeCom,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    connect_wecom(db_url, fake_wecom, monkeypatch)
    now = datetime.now(UTC)
    created = channels.create_channel(db_url, spec(), "marketer", now)
    channels.update_channel(db_url, "store-a", spec(staff=["wangwu"]), "marketer", now)
    assert fake_wecom.contact_ways[str(created.config_id)]["user"] == ["wangwu"]
    disabled = channels.set_status(db_url, "store-a", "disabled", "marketer", now)
    assert disabled.status == "disabled" and str(created.config_id) not in fake_wecom.contact_ways
    enabled = channels.set_status(db_url, "store-a", "active", "marketer", now)
    assert enabled.config_id in fake_wecom.contact_ways and enabled.state == created.state
    channels.set_status(db_url, "store-a", "deleted", "marketer", now)
    assert fake_wecom.contact_ways == {}
    with session_factory(db_url)() as db:
        actions = [a.action for a in db.scalars(select(models.AuditEntry).order_by(models.AuditEntry.id))]
    assert actions[-4:] == ["growth.channel_updated", "growth.channel_disabled", "growth.channel_active",
                            "growth.channel_deleted"]


def test_daily_caps_hand_the_code_to_the_next_member(db_url: str, fake_wecom: FakeWeCom,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    connect_wecom(db_url, fake_wecom, monkeypatch)
    now = datetime.now(UTC)
    created = channels.create_channel(db_url, spec(staff=["a", "b"], daily_cap=1), "marketer", now)
    config_id = str(created.config_id)
    deliver(db_url, fake_wecom.scan_and_add(config_id, "wmX1")[0])  # a takes one add: capped for today
    assert channels.sync_staff(db_url, "store-a", now) == ["b"]
    assert fake_wecom.contact_ways[config_id]["user"] == ["b"]
    assert channels.sync_staff(db_url, "store-a", now) is None  # nothing to change: no call
    tomorrow = now + timedelta(days=1)
    assert channels.sync_staff(db_url, "store-a", tomorrow) == ["a", "b"]


def test_wecom_limits_are_refused_before_and_by_wecom(db_url: str, fake_wecom: FakeWeCom,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    connect_wecom(db_url, fake_wecom, monkeypatch)
    now = datetime.now(UTC)
    with pytest.raises(ValueError, match="30"):
        spec(remark="备注" * 16)
    with pytest.raises(ValueError, match="at most 100"):
        spec(staff=[f"u{i}" for i in range(101)])
    fake_wecom.departments[3] = [f"d{i}" for i in range(100)]
    with pytest.raises(ChannelError, match="WeCom refused") as refused:
        channels.create_channel(db_url, spec(departments=[3]), "marketer", now)
    assert "100" in str(refused.value)
    with session_factory(db_url)() as db:  # nothing half-made is left
        assert db.scalar(select(GrowthChannel.id)) is None
    monkeypatch.setattr(channels.wecom_ways, "MAX_CONTACT_WAYS", 1)
    channels.create_channel(db_url, spec(), "marketer", now)
    with pytest.raises(ChannelError, match="limit") as full:
        channels.create_channel(db_url, spec("store-b"), "marketer", now)
    assert full.value.status == 409


def test_channel_stats_count_adds_friends_after_7_days_first_orders_and_gmv(db_url: str, fake_wecom: FakeWeCom,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import events as ingest

    connect_wecom(db_url, fake_wecom, monkeypatch)
    now = datetime.now(UTC)
    created = channels.create_channel(db_url, spec(), "marketer", now)
    old = int((now - timedelta(days=10)).timestamp())
    for i in range(3):
        deliver(db_url, fake_wecom.scan_and_add(str(created.config_id), f"wmS{i}", create_time=old + i)[0])
    member = fake_wecom.contacts["wmS0"]["follow_users"][0]
    deliver(db_url, fake_wecom.customer_deletes("wmS0", member, create_time=old + 3600))  # left within 7 days
    cid = customer_of(db_url, "wecom_external_userid", "wmS1")
    for n, amount in enumerate((12_000, 3_000)):
        ingest.store(ingest.EventIn.model_validate({"id": f"o{n}", "type": "order.paid",
                                                    "customer": {"customer_id": cid},
                                                    "payload": {"order_id": f"o{n}", "amount_fen": amount}}), db_url)
    with session_factory(db_url)() as db:
        row = db.scalar(select(GrowthChannel).where(GrowthChannel.key == "store-a"))
        assert row is not None
        got = channels.stats(db, row, now)
    assert (got["adds"], got["matured_7d"], got["still_friends_7d"], got["first_orders"], got["gmv_fen"]) == (
        3, 3, 2, 1, 15_000)
    assert got["scans"] is None  # WeCom does not report scans of contact ways



def test_oa_parametric_codes_count_scans_and_attribute_followers(db_url: str, fake_wecom: FakeWeCom,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.wechat_oa.connector import events_from_push
    from engine import connectors as configured
    from engine import events as ingest
    from engine.db.session import transaction
    from tests.connectors.fake_wecom import OA_APPID, OA_KEY, OA_SECRET, OA_TOKEN, FakeWeChatOA, serve

    connect_wecom(db_url, fake_wecom, monkeypatch)
    for oa in serve(FakeWeChatOA()):
        with transaction(db_url) as db:
            configured.save(db, "oa-main", "wechat_oa", "公众号", {"app_id": OA_APPID, "api_base": oa.url},
                            {"token": OA_TOKEN, "encoding_aes_key": OA_KEY, "app_secret": OA_SECRET})
        made = channels.create_channel(db_url, spec("oa-poster", platform="wechat_oa", connector_id="oa-main",
                                                    staff=[], name="公众号海报"), "marketer", datetime.now(UTC))
        assert made.qr_url and made.qr_url.startswith("http://weixin.qq.com/q/") and made.contact_type == 0
        ticket = str(made.config_id)
        pushes = [oa.scan(ticket, "oNEW", following=False), oa.scan(ticket, "oOLD", following=True)]
        for n, xml in enumerate(pushes):
            for event in events_from_push(xml):
                event["id"] += f"-{n}"
                ingest.store(ingest.EventIn.model_validate({**event, "source": "oa-main"}), db_url)
        with session_factory(db_url)() as db:
            row = db.scalar(select(GrowthChannel).where(GrowthChannel.key == "oa-poster"))
            assert row is not None and row.scans == 2
            got = channels.stats(db, row, datetime.now(UTC))
            follower = db.get(models.Customer, customer_of(db_url, "wechat_openid", "oNEW"))
            assert follower is not None and follower.attributes["first_touch_channel"] == "oa-poster"
            assert set(tags_of(db, follower.id)) == {"门店A"}
        assert (got["scans"], got["adds"]) == (2, 1)  # the follower who only scanned is a scan, not an add
        assert oa.problems == []
