"""WeChat Official Account inbound: URL check, plain and safe-mode pushes → Tideflow events.

The safe-mode test runs the Official Account sample's own values (token ``spamtest``, AppID
``wx2c2769f8efd9abc2``; see wecom_vectors.py); the other pushes are built in the documented
format (接收事件推送 / 接收普通消息) and signed like WeChat signs them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import InboundRequest
from connectors.errors import ConnectorProtocolError, SignatureVerificationError
from connectors.wechat_oa import compute_url_signature
from connectors.wechat_oa.connector import WeChatOAConnector, WeChatOASecrets, WeChatOASettings, events_from_push
from engine.events import EventIn
from tests.connectors.fake_wecom import (
    OA_APPID,
    OA_KEY,
    OA_SECRET,
    OA_TOKEN,
    FakeWeChatOA,
    cdata,
    fake_oa,
    oa_event_xml,
    oa_plain_push,
    oa_safe_push,
    oa_text_xml,
)
from tests.connectors.wecom_vectors import OA_ENCRYPT, OA_NONCE, OA_SIG, OA_TS

__all__ = ["fake_oa"]

OPENID = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"


def settings(**overrides: Any) -> WeChatOASettings:
    return WeChatOASettings.model_validate({"app_id": OA_APPID, "lookup_followers": False, **overrides})


def secrets(safe: bool = False) -> WeChatOASecrets:
    return WeChatOASecrets.model_validate({"token": OA_TOKEN, "encoding_aes_key": OA_KEY if safe else "",
                                           "app_secret": OA_SECRET})


def request(method: str, query: dict[str, str], body: bytes = b"") -> InboundRequest:
    return InboundRequest(method, "/hooks/oa", query, {}, body)


def inbound(req: InboundRequest, *, safe: bool = False, **setting: Any) -> Any:
    return WeChatOAConnector().inbound(req, settings(**setting), secrets(safe))


def test_url_check_echoes_echostr() -> None:
    query = {"signature": compute_url_signature(OA_TOKEN, OA_TS, OA_NONCE), "timestamp": OA_TS, "nonce": OA_NONCE,
             "echostr": "5838479218127813673"}
    reply = inbound(request("GET", query))
    assert reply.body == b"5838479218127813673" and reply.events == []
    with pytest.raises(SignatureVerificationError):
        inbound(request("GET", {**query, "signature": "0" * 40}))


def test_the_official_safe_mode_sample_is_a_text_message() -> None:
    body = f"<xml><ToUserName>{cdata('gh_10f6c3c3ac5a')}</ToUserName><Encrypt>{cdata(OA_ENCRYPT)}</Encrypt></xml>"
    query = {"signature": compute_url_signature(OA_TOKEN, OA_TS, OA_NONCE), "timestamp": OA_TS, "nonce": OA_NONCE,
             "openid": OPENID, "encrypt_type": "aes", "msg_signature": OA_SIG}
    reply = inbound(request("POST", query, body.encode()), safe=True)
    assert reply.body == b"success"
    [event] = reply.events
    assert event == {"id": "msg:6054768590064713728", "type": "wechat.message_received",
                     "customer": {"wechat_openid": OPENID},
                     "occurred_at": datetime.fromtimestamp(1409735668, UTC).isoformat(),
                     "payload": {"msg_type": "text", "msg_id": "6054768590064713728", "content": "abcdteT"}}
    EventIn.model_validate({"source": "wechat-oa", **event})


@pytest.mark.parametrize("mode", ["plain", "safe"])
def test_subscribe_unsubscribe_click_view_and_template_reports(mode: str) -> None:
    def push(xml: str) -> list[dict[str, Any]]:
        signed = oa_safe_push(xml) if mode == "safe" else oa_plain_push(xml)
        return list(inbound(request("POST", signed.query, signed.body), safe=mode == "safe").events)

    [sub] = push(oa_event_xml(OPENID, "subscribe", event_key="qrscene_store-42",
                              extra=f"<Ticket>{cdata('TICKET')}</Ticket>"))
    assert sub["type"] == "wechat.subscribed" and sub["customer"] == {"wechat_openid": OPENID}
    assert sub["payload"] == {"event_key": "qrscene_store-42", "scene": "store-42", "ticket": "TICKET"}
    [unsub] = push(oa_event_xml(OPENID, "unsubscribe", event_key=""))
    assert unsub["type"] == "wechat.unsubscribed" and unsub["payload"] == {}
    [click] = push(oa_event_xml(OPENID, "CLICK", event_key="MENU_COUPON"))
    assert click["type"] == "wechat.menu_clicked" and click["payload"] == {"menu_type": "click", "key": "MENU_COUPON"}
    [view] = push(oa_event_xml(OPENID, "VIEW", event_key="https://shop.example.com/", extra="<MenuId>7</MenuId>"))
    assert view["payload"] == {"menu_type": "view", "url": "https://shop.example.com/", "menu_id": "7"}
    [report] = push(oa_event_xml(OPENID, "TEMPLATESENDJOBFINISH",
                                 extra="<MsgID>200163836</MsgID><Status><![CDATA[failed:user block]]></Status>"))
    assert report["type"] == "wechat.template_delivered" and report["id"] == "template:200163836"
    assert report["payload"] == {"msg_id": "200163836", "status": "failed:user block", "delivered": False}
    [text] = push(oa_text_xml(OPENID, "我想退货", "1234567890123456"))
    assert text["id"] == "msg:1234567890123456" and text["payload"]["content"] == "我想退货"
    for event in (sub, unsub, click, view, report, text):
        EventIn.model_validate({"source": "wechat-oa", **event})


def test_event_ids_follow_fromusername_and_createtime() -> None:
    first = events_from_push(oa_event_xml(OPENID, "subscribe", create_time=1700000000))[0]["id"]
    assert events_from_push(oa_event_xml(OPENID, "subscribe", create_time=1700000000))[0]["id"] == first
    assert events_from_push(oa_event_xml(OPENID, "subscribe", create_time=1700000001))[0]["id"] != first
    assert events_from_push(oa_event_xml("oOther", "subscribe", create_time=1700000000))[0]["id"] != first
    assert events_from_push(oa_event_xml(OPENID, "CLICK", event_key="A", create_time=1))[0]["id"] != \
        events_from_push(oa_event_xml(OPENID, "CLICK", event_key="B", create_time=1))[0]["id"]


@pytest.mark.parametrize("xml", [
    oa_event_xml(OPENID, "LOCATION"),
    "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>miniprogrampage</MsgType></xml>",
])
def test_pushes_without_a_tideflow_event_are_acknowledged(xml: str) -> None:
    signed = oa_plain_push(xml)
    reply = inbound(request("POST", signed.query, signed.body))
    assert reply.events == [] and reply.body == b"success"


def test_a_wrong_signature_is_refused() -> None:
    signed = oa_plain_push(oa_event_xml(OPENID, "subscribe"), token="someone-else")
    with pytest.raises(SignatureVerificationError):
        inbound(request("POST", signed.query, signed.body))
    safe = oa_safe_push(oa_event_xml(OPENID, "subscribe"))
    with pytest.raises(SignatureVerificationError):
        inbound(request("POST", {**safe.query, "msg_signature": "0" * 40}, safe.body), safe=True)


def test_a_plain_push_outside_the_time_window_is_refused_as_a_possible_replay() -> None:
    stale = oa_plain_push(oa_event_xml(OPENID, "subscribe"), timestamp=int(time.time()) - 3600)
    with pytest.raises(SignatureVerificationError, match="replay"):
        inbound(request("POST", stale.query, stale.body))
    assert inbound(request("POST", stale.query, stale.body), max_clock_skew_seconds=0).events


def test_modes_must_match_the_configuration() -> None:
    plain = oa_plain_push(oa_event_xml(OPENID, "subscribe"))
    with pytest.raises(SignatureVerificationError, match="safe mode"):
        inbound(request("POST", plain.query, plain.body), safe=True)
    safe = oa_safe_push(oa_event_xml(OPENID, "subscribe"))
    with pytest.raises(ConnectorProtocolError, match="EncodingAESKey"):
        inbound(request("POST", safe.query, safe.body), safe=False)


@pytest.mark.parametrize(("body", "match"), [
    (b"garbage", "well-formed"),
    (b"<xml><ToUserName>gh</ToUserName><MsgType>event</MsgType></xml>", "FromUserName"),
])
def test_an_unparsable_push_is_a_protocol_error(body: bytes, match: str) -> None:
    signed = oa_plain_push("")
    with pytest.raises(ConnectorProtocolError, match=match):
        inbound(request("POST", signed.query, body))


def test_settings_and_secrets_validation() -> None:
    with pytest.raises(ValueError, match="EncodingAESKey"):
        WeChatOASecrets.model_validate({"token": "t", "encoding_aes_key": "short", "app_secret": "s"})
    with pytest.raises(ValueError):
        WeChatOASecrets.model_validate({"token": "", "app_secret": "s"})
    assert WeChatOASecrets.model_validate({"token": "t", "app_secret": "s"}).encoding_aes_key.get_secret_value() == ""


def test_subscribers_are_looked_up_for_their_unionid(fake_oa: FakeWeChatOA) -> None:
    fake_oa.follow(OPENID, unionid="oUnion-7")
    signed = oa_plain_push(oa_event_xml(OPENID, "subscribe"))
    [event] = inbound(request("POST", signed.query, signed.body), api_base=fake_oa.url, lookup_followers=True).events
    assert event["customer"] == {"wechat_openid": OPENID, "wechat_unionid": "oUnion-7"}
    fake_oa.fail_next("user/info", 48001)
    signed = oa_plain_push(oa_event_xml("oSomeoneElse", "subscribe"))
    [event] = inbound(request("POST", signed.query, signed.body), api_base=fake_oa.url, lookup_followers=True).events
    assert event["customer"] == {"wechat_openid": "oSomeoneElse"}
    assert fake_oa.problems == []
