"""Contact ways (「联系我」) and OA parametric QR codes against the loopback fakes, with WeCom's rules on
both sides: the client refuses what WeCom would, and the fake refuses what slips past the client."""

from __future__ import annotations

import pytest

from connectors.wechat_oa.client import WeChatOAClient, WeChatOARejected
from connectors.wechat_oa.connector import events_from_push
from connectors.wechat_oa.qrcode import create_qrcode
from connectors.wecom.api_errors import WeComRejected
from connectors.wecom.client import WeComClient
from connectors.wecom.contact_way import (
    add_contact_way,
    del_contact_way,
    get_contact_way,
    update_contact_way,
)
from connectors.wecom.events import events_from_callback
from tests.connectors.fake_wecom import (
    OA_APPID,
    OA_SECRET,
    WECOM_CORP_ID,
    WECOM_SECRET,
    FakeWeChatOA,
    FakeWeCom,
    fake_oa,
    fake_wecom,
)

__all__ = ["fake_oa", "fake_wecom"]


@pytest.fixture
def client(fake_wecom: FakeWeCom) -> WeComClient:
    return WeComClient(WECOM_CORP_ID, WECOM_SECRET, api_base=fake_wecom.url, rate_per_second=200)


def test_a_contact_way_lives_its_life(fake_wecom: FakeWeCom, client: WeComClient) -> None:
    way = add_contact_way(client, user=["zhangsan", "lisi"], state="tfc1", remark="门店A")
    assert way.config_id and way.qr_code.startswith("https://")
    got = get_contact_way(client, way.config_id)
    assert (got.type, got.scene, got.state, got.user, got.skip_verify) == (2, 2, "tfc1", ["zhangsan", "lisi"], True)
    update_contact_way(client, way.config_id, user=["wangwu"], skip_verify=False)
    got = get_contact_way(client, way.config_id)
    assert got.user == ["wangwu"] and got.skip_verify is False and got.state == "tfc1"
    del_contact_way(client, way.config_id)
    with pytest.raises(WeComRejected) as refused:
        get_contact_way(client, way.config_id)
    assert refused.value.errcode == 41044
    assert fake_wecom.problems == []


def test_a_scan_and_add_carries_state_and_a_welcome_code_unless_the_console_has_a_welcome(
        fake_wecom: FakeWeCom, client: WeComClient) -> None:
    way = add_contact_way(client, user=["zhangsan", "lisi"], state="tfc7")
    xml, member, code = fake_wecom.scan_and_add(way.config_id, "wmAAA", name="小王")
    event = events_from_callback(xml)[0]
    assert member == "zhangsan" and code
    assert event["payload"] == {"change_type": "add_external_contact", "user_id": "zhangsan", "state": "tfc7",
                                "welcome_code": code}
    fake_wecom.console_welcome.add("lisi")
    xml, member, code = fake_wecom.scan_and_add(way.config_id, "wmBBB")
    assert member == "lisi" and code == "" and events_from_callback(xml)[0]["payload"]["welcome_code"] == ""
    fake_wecom.chatted.add(("wmCCC", "zhangsan"))
    assert fake_wecom.scan_and_add(way.config_id, "wmCCC")[2] == ""


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"user": ["a"], "state": "s" * 31}, "state is 31 characters"),
    ({"user": ["a"], "remark": "备" * 31}, "remark is 31 characters"),
    ({"user": [f"u{i}" for i in range(101)]}, "at most 100"),
    ({"user": ["a"], "party": [7], "department_sizes": {7: 100}}, "101 members"),
    ({"user": ["a", "b"], "type": 1}, "exactly one user"),
    ({"user": ["a", "b"], "type": 2, "is_temp": True}, "temporary contact way is single-person"),
    ({"user": ["a"], "type": 1, "is_temp": True, "expires_in": 15 * 86400}, "at most 14 days"),
])
def test_the_client_refuses_what_wecom_would(client: WeComClient, fake_wecom: FakeWeCom, kwargs: dict,
                                             message: str) -> None:
    with pytest.raises(ValueError, match=message):
        add_contact_way(client, **kwargs)
    assert fake_wecom.calls("add_contact_way") == []


def test_the_fake_enforces_the_limits_too(fake_wecom: FakeWeCom, client: WeComClient) -> None:
    fake_wecom.departments[5] = [f"d{i}" for i in range(99)]
    # the client does not know department sizes here: WeCom (the fake) counts them and refuses
    with pytest.raises(WeComRejected) as refused:
        add_contact_way(client, user=["a", "b"], party=[5])
    assert refused.value.errcode == 40058 and "100" in refused.value.errmsg
    assert add_contact_way(client, user=["a"], party=[5]).config_id  # exactly 100
    fake_wecom.max_contact_ways = 2
    add_contact_way(client, user=["a"])
    with pytest.raises(WeComRejected, match="reach limit"):
        add_contact_way(client, user=["a"])
    # temporary ways: only for allowed industries, and one add each
    with pytest.raises(WeComRejected) as temp:
        add_contact_way(client, user=["a"], type=1, is_temp=True)
    assert temp.value.errcode == 41055
    fake_wecom.temp_allowed = True
    temp_way = add_contact_way(client, user=["a"], type=1, is_temp=True, expires_in=3600)
    fake_wecom.scan_and_add(temp_way.config_id, "wmT1")
    with pytest.raises(LookupError, match="one add"):
        fake_wecom.scan_and_add(temp_way.config_id, "wmT2")
    # a raw call past the client's checks: the fake refuses a 31-character state
    raw = client.call  # same machinery, no client-side check
    with pytest.raises(WeComRejected) as long_state:
        raw("POST", "/cgi-bin/externalcontact/add_contact_way", "add_contact_way",
            body={"type": 2, "scene": 2, "user": ["a"], "state": "x" * 31})
    assert long_state.value.errcode == 40058


def test_deletions_make_del_follow_user_and_del_external_contact(fake_wecom: FakeWeCom, client: WeComClient) -> None:
    way = add_contact_way(client, user=["zhangsan"], state="tfc9")
    fake_wecom.scan_and_add(way.config_id, "wmDEL")
    by_customer = events_from_callback(fake_wecom.customer_deletes("wmDEL", "zhangsan"))[0]
    by_staff = events_from_callback(fake_wecom.staff_deletes("wmDEL", "zhangsan"))[0]
    assert by_customer["type"] == by_staff["type"] == "wecom.contact_deleted"
    assert (by_customer["payload"]["change_type"], by_staff["payload"]["change_type"]) == (
        "del_follow_user", "del_external_contact")
    assert "zhangsan" not in fake_wecom.contacts["wmDEL"]["follow_users"]


def test_oa_parametric_codes_and_their_scan_and_subscribe_events(fake_oa: FakeWeChatOA) -> None:
    oa = WeChatOAClient(OA_APPID, OA_SECRET, api_base=fake_oa.url, rate_per_second=200)
    code = create_qrcode(oa, "tfc2s")
    assert code.url.startswith("http://weixin.qq.com/q/") and code.expire_seconds is None
    temp = create_qrcode(oa, "tfc2t", permanent=False, expire_seconds=3600)
    assert temp.expire_seconds == 3600
    with pytest.raises(ValueError, match="1 to 64"):
        create_qrcode(oa, "x" * 65)
    scanned = events_from_push(fake_oa.scan(code.ticket, "oFollower", following=True))[0]
    assert scanned["type"] == "wechat.qr_scanned" and scanned["payload"]["scene"] == "tfc2s"
    subscribed = events_from_push(fake_oa.scan(code.ticket, "oNew", following=False))[0]
    assert subscribed["type"] == "wechat.subscribed" and subscribed["payload"]["scene"] == "tfc2s"
    fake_oa.max_permanent = 1
    with pytest.raises(WeChatOARejected) as refused:
        create_qrcode(oa, "tfc2u")
    assert refused.value.errcode == 45027
    assert fake_oa.problems == []
