"""The XML / JSON envelopes around WXBizMsgCrypt ciphertext.

The callback body below is the official WeCom sample's (``callback/Sample.py`` of
github.com/sbzhu/weworkapi_python); the rest are round trips through our own builders.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from connectors.wecom import (
    BadEnvelope,
    CallbackEnvelope,
    WeComCrypto,
    build_reply_json,
    build_reply_xml,
    parse_callback_json,
    parse_callback_xml,
)

OFFICIAL_BODY = (
    "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n"
    "<Encrypt><![CDATA[Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAy]]></Encrypt>\n"
    "<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"
)


def test_parse_official_callback_body() -> None:
    envelope = parse_callback_xml(OFFICIAL_BODY)
    assert envelope == CallbackEnvelope(
        encrypt="Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAy", to_user_name="ww1436e0e65a779aee", agent_id="1000002"
    )
    assert parse_callback_xml(OFFICIAL_BODY.encode("utf-8")) == envelope


def test_parse_official_account_body_with_only_encrypt() -> None:
    envelope = parse_callback_xml("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt>abc=</Encrypt></xml>")
    assert envelope.encrypt == "abc="
    assert envelope.agent_id is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<xml><ToUserName>x</ToUserName></xml>", "no <Encrypt>"),
        ("<xml><Encrypt></Encrypt></xml>", "no <Encrypt>"),
        ("<root><Encrypt>abc</Encrypt></root>", "root is <root>"),
        ("<xml><Encrypt>abc</Encrypt>", "not well-formed"),
        ("", "not well-formed"),
    ],
)
def test_bad_xml_envelopes(body: str, message: str) -> None:
    with pytest.raises(BadEnvelope, match=message):
        parse_callback_xml(body)


def test_entity_expansion_is_refused_before_parsing() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>'
    )
    with pytest.raises(BadEnvelope, match="DOCTYPE"):
        parse_callback_xml(bomb)


def test_external_entity_is_refused() -> None:
    xxe = '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><Encrypt>&x;</Encrypt></xml>'
    with pytest.raises(BadEnvelope):
        parse_callback_xml(xxe)


def test_build_reply_xml_has_the_four_fields() -> None:
    text = build_reply_xml("ZW5j", "abc123", 1476422779, "1597212914")
    assert text == (
        "<xml><Encrypt><![CDATA[ZW5j]]></Encrypt><MsgSignature><![CDATA[abc123]]></MsgSignature>"
        "<TimeStamp>1476422779</TimeStamp><Nonce><![CDATA[1597212914]]></Nonce></xml>"
    )
    root = ET.fromstring(text)  # noqa: S314 - parsing our own output
    assert [child.tag for child in root] == ["Encrypt", "MsgSignature", "TimeStamp", "Nonce"]


def test_build_reply_xml_refuses_values_that_would_break_the_xml() -> None:
    with pytest.raises(ValueError, match="CDATA"):
        build_reply_xml("ZW5j", "abc", "1", "n]]><evil/>")
    with pytest.raises(ValueError, match="digits"):
        build_reply_xml("ZW5j", "abc", "1<x/>", "n")
    with pytest.raises(ValueError, match="digits"):
        build_reply_xml("ZW5j", "abc", "١٢٣", "n")  # Arabic-Indic digits are not unix seconds


def test_encrypt_reply_round_trip() -> None:
    crypto = WeComCrypto("hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", "ww1")
    reply = crypto.encrypt_reply("<xml><Content>你好</Content></xml>", "1476422779", "1597212914")
    root = ET.fromstring(reply)  # noqa: S314 - parsing our own output
    fields = {child.tag: child.text or "" for child in root}
    assert fields["TimeStamp"] == "1476422779"
    assert fields["Nonce"] == "1597212914"
    plaintext = crypto.decrypt(fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
    assert plaintext == "<xml><Content>你好</Content></xml>"
    # …and the reply is itself a valid callback envelope.
    assert crypto.decrypt_callback(fields["MsgSignature"], "1476422779", "1597212914", reply) == plaintext


def test_json_envelope_round_trip() -> None:
    crypto = WeComCrypto("token", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", "")
    encrypt, signature = crypto.encrypt('{"msgtype":"text","text":{"content":"hi"}}', 1700000000, "n1")
    body = build_reply_json(encrypt, signature, 1700000000, "n1")
    data = json.loads(body)
    assert data == {"encrypt": encrypt, "msgsignature": signature, "timestamp": "1700000000", "nonce": "n1"}
    envelope = parse_callback_json(body)
    assert crypto.decrypt(data["msgsignature"], data["timestamp"], data["nonce"], envelope.encrypt) == (
        '{"msgtype":"text","text":{"content":"hi"}}'
    )


def test_parse_json_callback_fields() -> None:
    envelope = parse_callback_json(b'{"tousername": "wx5823bf96d3bd56c7", "encrypt": "abc=", "agentid": 218}')
    assert envelope == CallbackEnvelope(encrypt="abc=", to_user_name="wx5823bf96d3bd56c7", agent_id="218")


@pytest.mark.parametrize(
    ("body", "message"),
    [("not json", "not JSON"), ("[1]", "not an object"), ('{"encrypt": 1}', 'no "encrypt"'), ("{}", "encrypt")],
)
def test_bad_json_envelopes(body: str, message: str) -> None:
    with pytest.raises(BadEnvelope, match=message):
        parse_callback_json(body)
