"""WeChat Official Account outbound against a fake api.weixin.qq.com on 127.0.0.1: the stable token,
template and customer-service messages, errcode mapping, and deliver()."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.base import OutboundMessage
from connectors.wechat_oa.client import (
    WeChatOAClient,
    WeChatOARejected,
    WeChatOARetryable,
    client_msg_id,
    template_data,
)
from connectors.wechat_oa.connector import WeChatOAConnector, WeChatOASecrets, WeChatOASettings
from tests.connectors.fake_wecom import OA_APPID, OA_SECRET, OA_TOKEN, FakeWeChatOA, Reply, fake_oa

__all__ = ["fake_oa"]

OPENID = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"


@pytest.fixture
def client(fake_oa: FakeWeChatOA) -> WeChatOAClient:
    fake_oa.follow(OPENID)
    return WeChatOAClient(OA_APPID, OA_SECRET, api_base=fake_oa.url, rate_per_second=1000)


def test_the_stable_token_is_fetched_once(fake_oa: FakeWeChatOA, client: WeChatOAClient) -> None:
    for n in range(3):
        client.send_custom_text(OPENID, f"hi {n}")
    [fetch] = fake_oa.calls("stable_token")
    assert fetch.body == {"grant_type": "client_credential", "appid": OA_APPID, "secret": OA_SECRET,
                          "force_refresh": False}
    assert fake_oa.problems == []


def test_an_expired_token_is_refreshed_without_forcing(fake_oa: FakeWeChatOA, client: WeChatOAClient) -> None:
    client.send_custom_text(OPENID, "one")
    fake_oa.expire_tokens()
    client.send_custom_text(OPENID, "two")
    assert [c.body["force_refresh"] for c in fake_oa.calls("stable_token")] == [False, False]
    assert [c.answer["errcode"] for c in fake_oa.calls("message/custom/send")] == [0, 42001, 0]


def test_a_token_rejected_but_still_handed_out_is_force_refreshed(fake_oa: FakeWeChatOA,
                                                                   client: WeChatOAClient) -> None:
    client.send_custom_text(OPENID, "one")
    stale = fake_oa.current
    fake_oa.fail_next("message/custom/send", 40001)  # e.g. someone force-refreshed it elsewhere
    fake_oa.fail_next("stable_token", Reply({"access_token": stale, "expires_in": 7000}))
    client.send_custom_text(OPENID, "two")
    assert [c.body["force_refresh"] for c in fake_oa.calls("stable_token")] == [False, False, True]
    assert fake_oa.calls("message/custom/send")[-1].query["access_token"] != stale


def test_template_send_request_shape(fake_oa: FakeWeChatOA, client: WeChatOAClient) -> None:
    msgid = client.send_template(OPENID, "TEMPLATE-ORDER", {"thing1": "新品到货", "time2": {"value": "10:00",
                                                                                         "color": "#173177"}},
                                 url="https://shop.example.com/o/1", client_msg_id="abc123")
    [call] = fake_oa.calls("message/template/send")
    assert call.body == {"touser": OPENID, "template_id": "TEMPLATE-ORDER", "url": "https://shop.example.com/o/1",
                         "client_msg_id": "abc123", "data": {"thing1": {"value": "新品到货"},
                                                             "time2": {"value": "10:00", "color": "#173177"}}}
    assert msgid == str(call.answer["msgid"]) and fake_oa.problems == []
    with pytest.raises(ValueError, match="value"):
        template_data({"x": {"color": "red"}})


@pytest.mark.parametrize(("errcode", "retryable"), [(-1, True), (45009, True), (45011, True), (43004, False),
                                                     (40037, False), (45015, False), (48001, False)])
def test_errcodes(fake_oa: FakeWeChatOA, client: WeChatOAClient, errcode: int, retryable: bool) -> None:
    fake_oa.fail_next("message/template/send", errcode)
    with pytest.raises(WeChatOARetryable if retryable else WeChatOARejected) as caught:
        client.send_template(OPENID, "TEMPLATE-ORDER", {"thing1": "x"})
    assert caught.value.retryable is retryable and caught.value.errcode == errcode


def test_customer_service_messages_only_within_48_hours(fake_oa: FakeWeChatOA, client: WeChatOAClient) -> None:
    fake_oa.followers[OPENID]["last_interaction"] -= 49 * 3600
    with pytest.raises(WeChatOARejected, match="48") as caught:
        client.send_custom_text(OPENID, "hi")
    assert caught.value.errcode == 45015


def test_wrong_app_secret_is_rejected(fake_oa: FakeWeChatOA) -> None:
    with pytest.raises(WeChatOARejected, match="AppSecret") as caught:
        WeChatOAClient(OA_APPID, "typo-secret", api_base=fake_oa.url).send_custom_text(OPENID, "x")
    assert "typo-secret" not in str(caught.value)


# --- deliver() -------------------------------------------------------------------------------------------

def config(fake: FakeWeChatOA, **settings: Any) -> tuple[WeChatOASettings, WeChatOASecrets]:
    return (WeChatOASettings.model_validate({"app_id": OA_APPID, "api_base": fake.url, **settings}),
            WeChatOASecrets.model_validate({"token": OA_TOKEN, "app_secret": OA_SECRET}))


def message(key: str = "journey/f/c1/hello/1", content: str = "欢迎关注", *, options: dict[str, Any] | None = None,
            openid: str | None = OPENID) -> OutboundMessage:
    return OutboundMessage(key=key, channel="wechat_oa", content=content, customer={"id": "c1"},
                           identities={"wechat_openid": openid} if openid else {},
                           options={"channel": "wechat_oa", **(options or {})})


def test_deliver_without_a_template_sends_customer_service_text(fake_oa: FakeWeChatOA) -> None:
    fake_oa.follow(OPENID)
    s, c = config(fake_oa)
    provider_id = WeChatOAConnector().deliver(message(), s, c)
    assert provider_id.startswith("custom:")
    assert fake_oa.calls("message/custom/send")[0].body == {"touser": OPENID, "msgtype": "text",
                                                           "text": {"content": "欢迎关注"}}
    assert WeChatOAConnector().deliver(message(), s, c) == provider_id  # a retried activity: not sent twice
    assert len(fake_oa.delivered) == 1


def test_deliver_with_a_template_from_the_options(fake_oa: FakeWeChatOA) -> None:
    fake_oa.follow(OPENID)
    s, c = config(fake_oa)
    options = {"channel_options": {"template_id": "TEMPLATE-ORDER", "data": {"thing1": "订单已发货"},
                                   "content_key": "remark", "url": "https://shop.example.com"}}
    provider_id = WeChatOAConnector().deliver(message(content="点击查看物流", options=options), s, c)
    [call] = fake_oa.calls("message/template/send")
    assert call.body["data"] == {"thing1": {"value": "订单已发货"}, "remark": {"value": "点击查看物流"}}
    assert call.body["client_msg_id"] == client_msg_id("journey/f/c1/hello/1") and len(call.body["client_msg_id"]) == 32
    assert provider_id == f"template:{call.answer['msgid']}"


def test_deliver_with_the_default_template_and_platform_dedupe(fake_oa: FakeWeChatOA) -> None:
    fake_oa.follow(OPENID)
    s, c = config(fake_oa, default_template_id="TEMPLATE-ORDER", template_content_key="thing1")
    first = WeChatOAConnector().deliver(message(content="上新提醒"), s, c)
    from connectors.wechat_oa.client import reset_shared_clients

    reset_shared_clients()  # another worker process retries the same key: WeChat dedupes on client_msg_id
    assert WeChatOAConnector().deliver(message(content="上新提醒"), s, c) == first
    assert len(fake_oa.delivered) == 1 and fake_oa.delivered[0] == (OPENID, "template:TEMPLATE-ORDER",
                                                                    {"thing1": "上新提醒"})


def test_deliver_rejections(fake_oa: FakeWeChatOA) -> None:
    s, c = config(fake_oa)
    with pytest.raises(WeChatOARejected, match="openid"):
        WeChatOAConnector().deliver(message(openid=None), s, c)
    with pytest.raises(WeChatOARejected, match="data"):
        WeChatOAConnector().deliver(message(options={"channel_options": {"template_id": "TEMPLATE-ORDER"}}), s, c)
    with pytest.raises(WeChatOARejected, match="subscribe"):
        WeChatOAConnector().deliver(message(openid="oNotAFollower"), s, c)
