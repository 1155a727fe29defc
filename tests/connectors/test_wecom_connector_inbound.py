"""WeCom inbound: URL verification and encrypted 客户联系 callbacks → Tideflow events.

The callbacks are real-format pushes (the event XML of the 客户联系 docs, encrypted with WeComCrypto
under the official sample's token / EncodingAESKey / CorpID); the URL check and the text-message
POST also run on the official sample's own values.
"""

from __future__ import annotations

import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import InboundRequest
from connectors.errors import ConnectorProtocolError, SignatureVerificationError
from connectors.wecom.connector import WeComConnector, WeComSecrets, WeComSettings
from connectors.wecom.events import events_from_callback
from engine.events import EventIn
from tests.connectors.fake_wecom import (
    WECOM_CORP_ID,
    WECOM_KEY,
    WECOM_SECRET,
    WECOM_TOKEN,
    FakeWeCom,
    Reply,
    contact_event_xml,
    fake_wecom,
    wecom_callback,
    wecom_url_check,
)
from tests.connectors.wecom_vectors import (
    QY_CORP_ID,
    QY_KEY,
    QY_TOKEN,
    QY_VERIFY_QUERY,
    WECOM_POST_BODY,
    WECOM_POST_NONCE,
    WECOM_POST_SIG,
    WECOM_POST_TS,
    WECOM_VERIFY,
)

__all__ = ["fake_wecom"]

EXTERNAL = "woAJ2GCAAAXtWyujaWJHDDGi0mACH71w"


def settings(**overrides: Any) -> WeComSettings:
    return WeComSettings.model_validate({"corp_id": WECOM_CORP_ID, "lookup_contacts": False, **overrides})


def secrets(**overrides: str) -> WeComSecrets:
    return WeComSecrets.model_validate({"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET,
                                        **overrides})


def get(query: dict[str, str]) -> InboundRequest:
    return InboundRequest("GET", "/hooks/wecom", query, {}, b"")


def post(query: dict[str, str], body: bytes) -> InboundRequest:
    return InboundRequest("POST", "/hooks/wecom", query, {"content-type": "text/xml"}, body)


def inbound(request: InboundRequest, **setting: Any) -> Any:
    return WeComConnector().inbound(request, settings(**setting), secrets())


# --- URL verification ------------------------------------------------------------------------------

#: the official samples were signed years ago: their tests switch the replay window off
SAMPLE_CLOCK = {"max_clock_skew_seconds": 0}


def test_url_verification_with_the_official_sample_values() -> None:
    reply = inbound(get(dict(WECOM_VERIFY)), **SAMPLE_CLOCK)
    assert reply.events == [] and reply.status == 200
    assert reply.body == b"1288432023552776189" and reply.content_type.startswith("text/plain")


def test_url_verification_of_the_older_sample_from_its_raw_query_string() -> None:
    query = dict(urllib.parse.parse_qsl(QY_VERIFY_QUERY))
    s = WeComSettings(corp_id=QY_CORP_ID, lookup_contacts=False, **SAMPLE_CLOCK)
    c = WeComSecrets.model_validate({"token": QY_TOKEN, "encoding_aes_key": QY_KEY, "secret": "x"})
    assert WeComConnector().inbound(get(query), s, c).body == b"1616140317555161061"


def test_url_verification_survives_a_plus_decoded_into_a_space() -> None:
    query, echo = wecom_url_check("7654321")
    while "+" not in query["echostr"]:  # random prefix: find a ciphertext with a '+'
        query, echo = wecom_url_check("7654321")
    query["echostr"] = query["echostr"].replace("+", " ")
    assert inbound(get(query)).body == echo.encode()


def test_url_verification_with_a_wrong_signature_is_refused() -> None:
    query = {**WECOM_VERIFY, "msg_signature": "0" * 40}
    with pytest.raises(SignatureVerificationError):
        inbound(get(query))


@pytest.mark.parametrize("missing", ["msg_signature", "timestamp", "nonce"])
def test_a_request_without_the_signature_parameters_is_a_protocol_error(missing: str) -> None:
    query = {k: v for k, v in WECOM_VERIFY.items() if k != missing}
    with pytest.raises(ConnectorProtocolError, match=missing) as caught:
        inbound(get(query))
    assert not isinstance(caught.value, SignatureVerificationError)


# --- callbacks -------------------------------------------------------------------------------------

def test_add_external_contact_becomes_contact_added_with_the_welcome_code() -> None:
    xml = contact_event_xml("add_external_contact", EXTERNAL, "zhangsan", create_time=1403610513,
                            state="teststate", welcome_code="WELCOMECODE")
    push = wecom_callback(xml)
    reply = inbound(post(push.query, push.body))
    assert reply.body == b"success" and reply.status == 200
    [event] = reply.events
    assert event["type"] == "wecom.contact_added"
    assert event["customer"] == {"wecom_external_userid": EXTERNAL}
    assert event["payload"] == {"change_type": "add_external_contact", "user_id": "zhangsan", "state": "teststate",
                                "welcome_code": "WELCOMECODE"}
    assert event["occurred_at"] == datetime.fromtimestamp(1403610513, UTC).isoformat()
    assert event["profile"] == {"attributes": {"wecom_follow_user": "zhangsan", "wecom_add_state": "teststate"}}
    assert event["id"].startswith("add_external_contact:") and len(event["id"]) <= 120
    EventIn.model_validate({"source": "wecom-main", **event})  # what /hooks stores


def test_the_event_id_is_stable_across_redeliveries_and_distinct_per_change() -> None:
    def event_id(change: str, external: str = EXTERNAL, user: str = "zhangsan", ts: int = 1403610513) -> str:
        return str(events_from_callback(contact_event_xml(change, external, user, create_time=ts,
                                                          welcome_code="W"))[0]["id"])

    first = event_id("add_external_contact")
    push_a, push_b = (wecom_callback(contact_event_xml("add_external_contact", EXTERNAL, create_time=1403610513,
                                                       welcome_code="W"), nonce=n) for n in ("1", "2"))
    again = [inbound(post(p.query, p.body)).events[0]["id"] for p in (push_a, push_b)]
    assert again == [first, first]  # WeCom's retries (new nonce, new ciphertext) dedupe to one event
    others = {event_id("add_external_contact", user="lisi"), event_id("add_external_contact", ts=1403610514),
              event_id("add_external_contact", external="wmOther"), event_id("del_follow_user")}
    assert first not in others and len(others) == 4


@pytest.mark.parametrize(("change", "event_type"), [
    ("edit_external_contact", "wecom.contact_edited"),
    ("del_external_contact", "wecom.contact_deleted"),
    ("del_follow_user", "wecom.contact_deleted"),
    ("add_half_external_contact", "wecom.contact_added"),
])
def test_other_contact_changes(change: str, event_type: str) -> None:
    push = wecom_callback(contact_event_xml(change, EXTERNAL, "lisi", welcome_code="W2" if "add" in change else ""))
    [event] = inbound(post(push.query, push.body)).events
    assert event["type"] == event_type and event["customer"] == {"wecom_external_userid": EXTERNAL}
    assert event["payload"]["change_type"] == change and event["payload"]["user_id"] == "lisi"
    assert ("welcome_code" in event["payload"]) == (change == "add_half_external_contact")


def test_a_contact_removed_by_a_transfer_says_so() -> None:
    xml = contact_event_xml("del_external_contact", EXTERNAL, extra="<Source><![CDATA[DELETE_BY_TRANSFER]]></Source>")
    [event] = events_from_callback(xml)
    assert event["payload"]["source"] == "DELETE_BY_TRANSFER"


def test_the_official_sample_post_is_a_staff_message_and_no_customer_event() -> None:
    """The sample's text message comes from a member (ChenJiaShun), not a customer: acknowledged, no event."""
    reply = inbound(post({"msg_signature": WECOM_POST_SIG, "timestamp": WECOM_POST_TS, "nonce": WECOM_POST_NONCE},
                         WECOM_POST_BODY.encode()), **SAMPLE_CLOCK)
    assert reply.body == b"success" and reply.events == []


def test_a_text_message_from_an_external_contact_is_message_received() -> None:
    xml = ("<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName><FromUserName><![CDATA[wmCustomer01]]>"
           "</FromUserName><CreateTime>1476422779</CreateTime><MsgType><![CDATA[text]]></MsgType>"
           "<Content><![CDATA[还有货吗]]></Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>")
    push = wecom_callback(xml)
    [event] = inbound(post(push.query, push.body)).events
    assert event["type"] == "wecom.message_received" and event["id"] == "msg:1456453720"
    assert event["customer"] == {"wecom_external_userid": "wmCustomer01"}
    assert event["payload"]["content"] == "还有货吗" and event["payload"]["msg_type"] == "text"


def test_transfer_fail_is_a_customer_event_with_its_reason() -> None:
    push = wecom_callback(contact_event_xml("transfer_fail", EXTERNAL, "lisi",
                                            extra="<FailReason><![CDATA[customer_refused]]></FailReason>"))
    [event] = inbound(post(push.query, push.body)).events
    assert event["type"] == "wecom.transfer_failed" and event["customer"] == {"wecom_external_userid": EXTERNAL}
    assert event["payload"]["fail_reason"] == "customer_refused" and event["payload"]["user_id"] == "lisi"


@pytest.mark.parametrize("xml", [
    "<xml><ToUserName>ww1</ToUserName><FromUserName>sys</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>event</MsgType><Event>change_external_tag</Event><ChangeType>create</ChangeType></xml>",
    "<xml><ToUserName>ww1</ToUserName><FromUserName>zhangsan</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>event</MsgType><Event>enter_agent</Event></xml>",
    "<xml><ToUserName>ww1</ToUserName><FromUserName>wmX</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>image</MsgType><PicUrl>http://x</PicUrl></xml>",
])
def test_pushes_without_a_tideflow_event_are_acknowledged(xml: str) -> None:
    push = wecom_callback(xml)
    reply = inbound(post(push.query, push.body))
    assert reply.events == [] and reply.body == b"success"


def test_a_forged_or_tampered_callback_is_a_signature_error() -> None:
    push = wecom_callback(contact_event_xml("add_external_contact", EXTERNAL, welcome_code="W"))
    with pytest.raises(SignatureVerificationError):
        inbound(post({**push.query, "msg_signature": "f" * 40}, push.body))
    with pytest.raises(SignatureVerificationError):
        inbound(post({**push.query, "timestamp": str(int(push.query["timestamp"]) + 1)}, push.body))
    other_token = wecom_callback(contact_event_xml("add_external_contact", EXTERNAL), token="another-token")
    with pytest.raises(SignatureVerificationError):
        inbound(post(other_token.query, other_token.body))


def test_a_callback_for_another_corp_is_refused_as_a_protocol_error() -> None:
    push = wecom_callback(contact_event_xml("add_external_contact", EXTERNAL), corp_id="wwSomeOtherCorp")
    with pytest.raises(ConnectorProtocolError, match="receive id") as caught:
        inbound(post(push.query, push.body))
    assert not isinstance(caught.value, SignatureVerificationError)


@pytest.mark.parametrize(("plaintext", "match"), [
    ("not xml at all", "well-formed"),
    ('<!DOCTYPE x [<!ENTITY a "b">]><xml><MsgType>event</MsgType></xml>', "DOCTYPE"),
    (contact_event_xml("add_external_contact", "").replace("<CreateTime>", "<X>").replace("</CreateTime>", "</X>"),
     "ExternalUserID"),
])
def test_a_decrypted_body_that_does_not_parse_is_a_protocol_error(plaintext: str, match: str) -> None:
    push = wecom_callback(plaintext)
    with pytest.raises(ConnectorProtocolError, match=match):
        inbound(post(push.query, push.body))


def test_a_plaintext_body_is_refused() -> None:
    with pytest.raises(ConnectorProtocolError, match="Encrypt"):
        inbound(post({"msg_signature": "a" * 40, "timestamp": "1", "nonce": "1"},
                     contact_event_xml("add_external_contact", EXTERNAL).encode()))


def test_settings_and_secrets_validation() -> None:
    with pytest.raises(ValueError, match="EncodingAESKey"):
        secrets(encoding_aes_key="too-short")
    with pytest.raises(ValueError, match="api_base"):
        settings(api_base="ftp://example")
    with pytest.raises(ValueError, match="corp_id"):
        settings(corp_id="")
    assert "hJqcu3uJ" not in repr(secrets()) and "hJqcu3uJ" not in str(secrets().model_dump())


def test_new_contacts_are_looked_up_for_name_and_unionid(fake_wecom: FakeWeCom) -> None:
    code = fake_wecom.add_contact(EXTERNAL, "zhangsan", name="李四", unionid="oUnion-42")
    push = wecom_callback(contact_event_xml("add_external_contact", EXTERNAL, welcome_code=code))
    [event] = inbound(post(push.query, push.body), api_base=fake_wecom.url, lookup_contacts=True).events
    assert event["customer"] == {"wecom_external_userid": EXTERNAL, "wechat_unionid": "oUnion-42"}
    assert event["profile"]["name"] == "李四"
    assert event["payload"]["welcome_code"] == code
    assert fake_wecom.problems == []


def test_a_failing_lookup_never_costs_the_event(fake_wecom: FakeWeCom) -> None:
    fake_wecom.fail_next("externalcontact/get", -1)
    push = wecom_callback(contact_event_xml("add_external_contact", "wmUnknown", welcome_code="W"))
    [event] = inbound(post(push.query, push.body), api_base=fake_wecom.url, lookup_contacts=True).events
    assert event["customer"] == {"wecom_external_userid": "wmUnknown"} and "name" not in event.get("profile", {})
    push = wecom_callback(contact_event_xml("add_external_contact", "wmUnknown2", welcome_code="W"))
    assert inbound(post(push.query, push.body), api_base="http://127.0.0.1:9", lookup_contacts=True).events


def test_a_slow_lookup_is_cut_short(fake_wecom: FakeWeCom) -> None:
    fake_wecom.fail_next("gettoken", Reply({"errcode": 0, "access_token": fake_wecom.new_token(), "expires_in": 7200},
                                           delay=3.0))
    push = wecom_callback(contact_event_xml("add_external_contact", EXTERNAL, welcome_code="W"))
    started = time.monotonic()
    [event] = inbound(post(push.query, push.body), api_base=fake_wecom.url, lookup_contacts=True).events
    assert time.monotonic() - started < 2.8  # the 2 s lookup budget covers the token fetch as well
    assert event["customer"] == {"wecom_external_userid": EXTERNAL}
