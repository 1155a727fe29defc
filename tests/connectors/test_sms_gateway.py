"""The sms connector against a loopback HTTP server playing an SMS gateway.

``Loopback`` (a scriptable HTTP server on 127.0.0.1 recording every request) is reused by the
webhook and end-to-end tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.base import OutboundMessage
from connectors.sms import MissingRecipient, SmsConnector, SmsDeliveryError, SmsSecrets, SmsSettings, render
from connectors.sms.gateway import lookup, matches, national
from tests.connectors.fake_sms_gateway import Loopback
from tests.connectors.loopback import Reply

API_KEY = "sk-test-0123456789"
KEY = "journey/birthday/c_0001/greet/1"


@pytest.fixture
def gateway() -> Iterator[Loopback]:
    with Loopback() as server:
        yield server


def settings(gateway: Loopback, **overrides: Any) -> SmsSettings:
    base: dict[str, Any] = {
        "url": gateway.url + "/v1/sms/send?channel=marketing",
        "body_template": json.dumps({"to": "{phone}", "text": "【潮汐】{content}", "outId": "{key}",
                                     "tags": ["journey", "{key}"], "sign": 1}),
        "auth_header": "X-Api-Key", "success_path": "code", "success_value": "OK",
        "message_id_path": "data.msgid", "headers": {"X-Tenant": "shop-01"},
    }
    return SmsSettings.model_validate({**base, **overrides})


def secrets() -> SmsSecrets:
    return SmsSecrets.model_validate({"api_key": API_KEY})


def text(content: str = '张三，生日快乐！"惊喜"\n回T退订', phone: str | None = "+8613800138000",
         key: str = KEY) -> OutboundMessage:
    return OutboundMessage(key=key, channel="sms", content=content, customer={"id": "c_0001", "name": "张三"},
                           identities={"phone": phone} if phone else {"email": "a@b.example"})


def test_a_text_is_posted_as_json_with_the_api_key_and_the_key(gateway: Loopback) -> None:
    provider_id = SmsConnector().deliver(text(), settings(gateway), secrets())

    assert provider_id == "m-1"
    [seen] = gateway.requests
    assert seen.method == "POST" and seen.path == "/v1/sms/send" and seen.query == {"channel": "marketing"}
    assert seen.headers["x-api-key"] == API_KEY and "authorization" not in seen.headers
    assert seen.headers["idempotency-key"] == KEY and seen.headers["x-tenant"] == "shop-01"
    assert seen.headers["content-type"] == "application/json; charset=utf-8"
    assert seen.json() == {"to": "+8613800138000", "text": '【潮汐】张三，生日快乐！"惊喜"\n回T退订', "outId": KEY,
                           "tags": ["journey", KEY], "sign": 1}


def test_bearer_scheme_national_numbers_and_put(gateway: Loopback) -> None:
    SmsConnector().deliver(text("hi"), settings(gateway, method="PUT", auth_header="Authorization",
                                                auth_scheme="Bearer", phone_format="national"), secrets())
    [seen] = gateway.requests
    assert seen.method == "PUT" and seen.headers["authorization"] == f"Bearer {API_KEY}"
    assert seen.json()["to"] == "13800138000"


def test_get_sends_the_template_fields_as_query_parameters(gateway: Loopback) -> None:
    gateway.default = Reply(body={"result": 0, "sid": 42})
    template = json.dumps({"mobile": "{phone}", "msg": "{content}", "ref": "{key}", "n": 1})
    provider_id = SmsConnector().deliver(
        text("验证 & 退订=T"), settings(gateway, method="GET", body_template=template, success_path="result",
                                       success_value="0", message_id_path="sid"), secrets())
    [seen] = gateway.requests
    assert seen.method == "GET" and seen.body == b""
    assert seen.query == {"channel": "marketing", "mobile": "+8613800138000", "msg": "验证 & 退订=T", "ref": KEY,
                          "n": "1"}
    assert provider_id == "42"


def test_without_checks_any_2xx_is_sent_and_the_key_is_the_id(gateway: Loopback) -> None:
    gateway.default = Reply(204, b"", "text/plain")
    got = SmsConnector().deliver(text(), settings(gateway, success_path="", success_value=None, message_id_path=""),
                                 SmsSecrets())
    assert got == KEY and "x-api-key" not in gateway.requests[0].headers


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_throttling_and_server_errors_are_retryable(gateway: Loopback, status: int) -> None:
    gateway.default = Reply(status, {"error": f"busy, key {API_KEY}, to +8613800138000"})
    with pytest.raises(SmsDeliveryError, match=f"HTTP {status}") as failed:
        SmsConnector().deliver(text(), settings(gateway), secrets())
    assert failed.value.retryable is True and failed.value.status == status
    message = str(failed.value)
    assert API_KEY not in message and "[redacted]" in message
    assert "13800138000" not in message and "138****8000" in message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_4xx_are_permanent(gateway: Loopback, status: int) -> None:
    gateway.default = Reply(status, {"error": "bad request"})
    with pytest.raises(SmsDeliveryError, match=f"HTTP {status}") as failed:
        SmsConnector().deliver(text(), settings(gateway), secrets())
    assert failed.value.retryable is False


def test_a_redirect_is_not_followed(gateway: Loopback) -> None:
    gateway.default = Reply(302, b"", "text/plain", {"Location": "http://elsewhere.example/"})
    with pytest.raises(SmsDeliveryError, match="HTTP 302") as failed:
        SmsConnector().deliver(text(), settings(gateway), secrets())
    assert failed.value.retryable is False and len(gateway.requests) == 1


def test_a_2xx_that_does_not_confirm_is_permanent(gateway: Loopback) -> None:
    gateway.default = Reply(200, {"code": "isv.MOBILE_NUMBER_ILLEGAL", "message": "号码格式错误"})
    with pytest.raises(SmsDeliveryError, match="did not confirm") as failed:
        SmsConnector().deliver(text(), settings(gateway), secrets())
    assert failed.value.retryable is False and "isv.MOBILE_NUMBER_ILLEGAL" in str(failed.value)
    gateway.default = Reply(200, b"<html>ok</html>", "text/html")
    with pytest.raises(SmsDeliveryError, match="not JSON") as html:
        SmsConnector().deliver(text(), settings(gateway), secrets())
    assert html.value.retryable is False


def test_truthy_success_and_a_missing_message_id_fall_back_to_the_key(gateway: Loopback) -> None:
    gateway.default = Reply(200, {"ok": True, "data": {}})
    got = SmsConnector().deliver(text(), settings(gateway, success_path="ok", success_value=None), secrets())
    assert got == KEY


def test_connection_refused_and_timeouts_are_retryable(gateway: Loopback) -> None:
    dead = Loopback()
    url = dead.url
    dead.server.server_close()
    with pytest.raises(SmsDeliveryError, match="ConnectError") as refused:
        SmsConnector().deliver(text(), settings(gateway, url=url + "/send"), secrets())
    assert refused.value.retryable is True
    gateway.default = Reply(delay=1.0)
    with pytest.raises(SmsDeliveryError, match="timed out") as slow:
        SmsConnector().deliver(text(), settings(gateway, timeout_seconds=0.2), secrets())
    assert slow.value.retryable is True


def test_no_phone_identity_is_a_permanent_value_error(gateway: Loopback) -> None:
    with pytest.raises(MissingRecipient, match="no phone identity") as missing:
        SmsConnector().deliver(text(phone=None), settings(gateway), secrets())
    assert isinstance(missing.value, ValueError) and missing.value.retryable is False
    assert gateway.requests == []


def test_settings_are_checked_when_saved() -> None:
    url = "https://sms.example.com/send"
    with pytest.raises(ValidationError, match="not JSON"):
        SmsSettings.model_validate({"url": url, "body_template": '{"to": {phone}}'})
    with pytest.raises(ValidationError, match=r"\{content\}"):
        SmsSettings.model_validate({"url": url, "body_template": '{"to": "{phone}"}'})
    with pytest.raises(ValidationError, match="flat JSON object"):
        SmsSettings.model_validate({"url": url, "method": "GET",
                                    "body_template": '{"to": "{phone}", "m": {"t": "{content}"}}'})
    with pytest.raises(ValidationError, match="http"):
        SmsSettings.model_validate({"url": "ftp://sms.example.com"})
    with pytest.raises(ValidationError, match="not allowed"):
        SmsSettings.model_validate({"url": url, "headers": {"Idempotency-Key": "x"}})
    with pytest.raises(ValidationError, match="success_path"):
        SmsSettings.model_validate({"url": url, "success_value": "OK"})
    with pytest.raises(ValidationError) as secret:
        SmsSecrets.model_validate({"api_key": 1234567})
    assert "1234567" not in str(secret.value)
    assert SmsSettings.model_validate({"url": url}).method == "POST"


def test_rendering_substitutes_once_inside_strings_only() -> None:
    template = {"to": "{phone}", "msg": "{content}", "n": 1, "{key}": ["{phone}", None]}
    assert render(template, {"phone": "+86", "content": "请回复{phone}或{key}", "key": "k"}) == {
        "to": "+86", "msg": "请回复{phone}或{key}", "n": 1, "k": ["+86", None]}


def test_lookup_matches_and_national() -> None:
    data = {"a": {"list": [{"id": "x"}, {"id": "y"}]}, "zero": 0, "flag": True}
    assert lookup(data, "a.list.1.id") == (True, "y") and lookup(data, "a.list.-1.id") == (True, "y")
    assert lookup(data, "a.list.2.id") == (False, None) and lookup(data, "missing") == (False, None)
    assert matches(0, "0") and matches(True, "true") and matches("OK", "OK") and not matches("ok", "OK")
    assert matches(1, None) and not matches(0, None)
    assert national("+8613800138000") == "13800138000" and national("+14155550100") == "+14155550100"
