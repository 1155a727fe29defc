"""The webhook connector on its own: inbound verification and parsing, and the outbound channel
against a loopback receiver that checks the signature like a real one would."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.base import InboundRequest, OutboundMessage
from connectors.errors import ConnectorProtocolError, SignatureVerificationError
from connectors.webhook.connector import (
    WebhookConnector,
    WebhookDeliveryError,
    WebhookSecrets,
    WebhookSettings,
    parse_events,
)
from connectors.webhook.signing import (
    MalformedSignatureHeader,
    TimestampOutsideTolerance,
    WebhookSignatureMismatch,
    sign_payload,
    verify_signature,
)
from tests.connectors.fake_sms_gateway import Loopback
from tests.connectors.loopback import Reply

SECRET = "whsec-0123456789abcdef"
OLD_SECRET = "whsec-old-fedcba9876543210"
NOW = 1_790_000_000


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WebhookConnector, "clock", staticmethod(lambda: float(NOW)))


@pytest.fixture
def receiver() -> Iterator[Loopback]:
    with Loopback() as server:
        server.default = Reply(200, {"id": "crm-msg-7"})
        yield server


def event(event_id: str = "ord-1001-paid", **extra: Any) -> dict[str, Any]:
    return {"id": event_id, "type": "order.paid", "customer": {"phone": "13800138000"},
            "profile": {"name": "张三"}, "payload": {"order_id": "1001", "amount": 9900}, **extra}


def request(body: Any, secret: str = SECRET, at: int = NOW, method: str = "POST",
            header: str | None = None) -> InboundRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    headers = {"content-type": "application/json",
               "x-tideflow-signature": header if header is not None else sign_payload(secret, raw, at)}
    return InboundRequest(method=method, path="/hooks/crm", query={}, headers=headers, body=raw)


def settings(**overrides: Any) -> WebhookSettings:
    return WebhookSettings.model_validate(overrides)


def secrets(previous: str = "") -> WebhookSecrets:
    return WebhookSecrets.model_validate({"secret": SECRET, "previous_secret": previous})


def test_one_signed_event_becomes_one_event_and_a_json_answer() -> None:
    reply = WebhookConnector().inbound(request(event()), settings(), secrets())
    assert reply.events == [event()]
    assert reply.status == 200 and json.loads(reply.body) == {"received": 1}
    assert reply.content_type == "application/json"


def test_a_list_is_a_batch_and_source_is_always_the_connector() -> None:
    body = [event("a", source="api"), event("b", type="custom.viewed_product")]
    reply = WebhookConnector().inbound(request(body), settings(), secrets())
    assert [e["id"] for e in reply.events] == ["a", "b"]
    assert all("source" not in e for e in reply.events)  # hooks sets the connector id
    assert reply.events[1]["type"] == "custom.viewed_product"


@pytest.mark.parametrize(("make", "error"), [
    (lambda: request(event(), secret="someone-elses-secret"), WebhookSignatureMismatch),
    (lambda: request(event(), header=""), MalformedSignatureHeader),
    (lambda: request(event(), header="t=abc,v1=00"), MalformedSignatureHeader),
    (lambda: request(event(), at=NOW - 301), TimestampOutsideTolerance),
    (lambda: request(event(), at=NOW + 301), TimestampOutsideTolerance),
])
def test_bad_missing_or_stale_signatures_are_refused(make: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as refused:
        WebhookConnector().inbound(make(), settings(), secrets())
    assert isinstance(refused.value, SignatureVerificationError)
    assert SECRET not in str(refused.value)


def test_the_body_is_verified_as_sent_not_as_parsed() -> None:
    signed = request(event())
    tampered = InboundRequest(signed.method, signed.path, signed.query, signed.headers,
                              signed.body.replace(b"9900", b"1"))
    with pytest.raises(WebhookSignatureMismatch):
        WebhookConnector().inbound(tampered, settings(), secrets())


def test_the_tolerance_is_configurable() -> None:
    WebhookConnector().inbound(request(event(), at=NOW - 500), settings(tolerance_seconds=600), secrets())
    with pytest.raises(TimestampOutsideTolerance):
        WebhookConnector().inbound(request(event(), at=NOW - 500), settings(), secrets())


def test_the_previous_secret_still_verifies_during_a_rotation() -> None:
    old = request(event(), secret=OLD_SECRET)
    assert WebhookConnector().inbound(old, settings(), secrets(previous=OLD_SECRET)).events
    with pytest.raises(WebhookSignatureMismatch):
        WebhookConnector().inbound(old, settings(), secrets())


@pytest.mark.parametrize(("body", "problem"), [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[]", "empty list"),
    (b'"hello"', "not an object"),
    (json.dumps([event(), 7]).encode(), "event 1 is int"),
    (json.dumps({"type": "order.paid", "customer": {"phone": "1"}}).encode(), "'id' must be"),
    (json.dumps({"id": "x", "type": "order.paid", "customer": {}}).encode(), "'customer' must be"),
])
def test_a_signed_body_that_does_not_parse_names_the_problem(body: bytes, problem: str) -> None:
    with pytest.raises(ConnectorProtocolError, match=problem):
        WebhookConnector().inbound(request(body), settings(), secrets())


def test_only_post_carries_events() -> None:
    reply = WebhookConnector().inbound(request(b"", method="GET"), settings(), secrets())
    assert reply.status == 405 and reply.events == []


def test_parse_events_caps_the_batch() -> None:
    with pytest.raises(ConnectorProtocolError, match="at most 1000"):
        parse_events(json.dumps([event(str(i)) for i in range(1001)]).encode())


def message(**overrides: Any) -> OutboundMessage:
    base: dict[str, Any] = {
        "key": "journey/welcome/c_0001/hello/1", "channel": "webhook", "content": "你好 张三",
        "customer": {"id": "c_0001", "name": "张三", "orders_count": 0, "tags": ["VIP"]},
        "identities": {"phone": "+8613800138000", "email": "zhang@example.com"},
    }
    return OutboundMessage(**{**base, **overrides})


def test_outbound_posts_signed_json_with_the_idempotency_key(receiver: Loopback) -> None:
    got = WebhookConnector().deliver(message(), settings(url=receiver.url + "/tideflow/messages"), secrets())

    assert got == "crm-msg-7"
    [seen] = receiver.requests
    assert seen.method == "POST" and seen.path == "/tideflow/messages"
    assert seen.headers["idempotency-key"] == "journey/welcome/c_0001/hello/1"
    assert seen.headers["content-type"] == "application/json; charset=utf-8"
    verify_signature(SECRET, seen.body, seen.headers["x-tideflow-signature"], NOW)  # raises if it does not verify
    assert seen.json() == {
        "key": "journey/welcome/c_0001/hello/1", "channel": "webhook", "content": "你好 张三",
        "customer": {"id": "c_0001", "name": "张三"},
        "identities": {"phone": "+8613800138000", "email": "zhang@example.com"}, "attachments": [],
    }


def test_outbound_without_an_id_in_the_answer_returns_the_key(receiver: Loopback) -> None:
    receiver.default = Reply(202, b"accepted", "text/plain")
    got = WebhookConnector().deliver(message(), settings(url=receiver.url), secrets())
    assert got == "journey/welcome/c_0001/hello/1"


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (500, True), (503, True), (408, True),
                                                   (400, False), (401, False), (404, False), (301, False)])
def test_outbound_errors_say_whether_to_retry(receiver: Loopback, status: int, retryable: bool) -> None:
    receiver.default = Reply(status, {"error": f"no, {SECRET}"}, headers={"Location": "https://x.example/"})
    with pytest.raises(WebhookDeliveryError, match=f"HTTP {status}") as failed:
        WebhookConnector().deliver(message(), settings(url=receiver.url), secrets())
    assert failed.value.retryable is retryable and failed.value.status == status
    assert SECRET not in str(failed.value)


def test_outbound_unreachable_or_slow_is_retryable(receiver: Loopback) -> None:
    dead = Loopback()
    dead.server.server_close()
    with pytest.raises(WebhookDeliveryError, match="ConnectError") as refused:
        WebhookConnector().deliver(message(), settings(url=dead.url), secrets())
    receiver.default = Reply(delay=1.0)
    with pytest.raises(WebhookDeliveryError, match="timed out") as slow:
        WebhookConnector().deliver(message(), settings(url=receiver.url, timeout_seconds=0.2), secrets())
    assert refused.value.retryable and slow.value.retryable


def test_outbound_needs_a_url() -> None:
    with pytest.raises(WebhookDeliveryError, match="no url") as missing:
        WebhookConnector().deliver(message(), settings(), secrets())
    assert missing.value.retryable is False


def test_settings_and_secrets_validate() -> None:
    with pytest.raises(ValidationError, match="http"):
        settings(url="ftp://x.example")
    with pytest.raises(ValidationError) as short:
        WebhookSecrets.model_validate({"secret": "short"})
    assert "input_value" not in str(short.value)  # secrets never echo their input
    assert WebhookSettings().tolerance_seconds == 300
    assert WebhookConnector.channels == ("webhook",) and WebhookConnector.kind == "webhook"


def test_the_real_clock_is_used_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()
    now = int(time.time())
    assert WebhookConnector().inbound(request(event(), at=now), settings(), secrets()).events
