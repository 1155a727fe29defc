"""action.webhook called directly through engine.actions.perform: ledger, signature, errors, config."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from pydantic import ValidationError

from activities.webhook.call import CallWebhook, WebhookConfig, WebhookRetryable, lookup
from connectors.webhook.signing import verify_signature
from designer.i18n import translate
from engine.actions import ActionFailed, Services, failure_of, perform
from engine.db import models
from engine.db.session import session_factory
from engine.registry import default_registry
from engine.validate import validate
from tests.activities.webhook.webhook_kit import (
    SECRET,
    SECRET_ENV,
    Receiver,
    Reply,
    customer,
    receiver,
    request,
    secret,
)
from tests.engine.flowkit import flow
from wording.stored import read_stored

__all__ = ["receiver", "secret"]  # fixtures


def call(db_url: str, config: dict[str, Any], cid: str | None = None, **kw: Any) -> dict[str, Any]:
    return perform(CallWebhook, request(config, cid, **kw), Services(database_url=db_url))


# -- the ledger ------------------------------------------------------------------------------------

def test_a_recorded_success_is_not_sent_again(db_url: str, receiver: Receiver) -> None:
    receiver.default = Reply(200, {"n": 1})
    cid = customer(db_url)
    req = request({"url": receiver.url + "/once", "response_map": {"n": "n"}}, cid)
    services = Services(database_url=db_url)

    first = perform(CallWebhook, req, services)
    receiver.default = Reply(200, {"n": 2})
    second = perform(CallWebhook, req, services)  # a retry of the same node visit

    assert receiver.count == 1
    assert first == second and first["variables"] == {"n": 1}
    with session_factory(db_url)() as db:
        entry = db.get(models.LedgerEntry, req.key)
    assert entry is not None and entry.kind == "action.webhook" and entry.result == first


def test_a_failed_call_records_nothing_so_the_retry_calls_again(db_url: str, receiver: Receiver) -> None:
    receiver.reply(Reply(502, b"bad gateway", "text/plain"), Reply(200, {}))
    req = request({"url": receiver.url + "/hook"}, customer(db_url))
    services = Services(database_url=db_url)

    with pytest.raises(WebhookRetryable, match="HTTP 502"):
        perform(CallWebhook, req, services)
    assert perform(CallWebhook, req, services)["port"] == "out"
    assert receiver.count == 2
    assert {r.headers["idempotency-key"] for r in receiver.requests} == {req.key}


# -- signature and secrets ------------------------------------------------------------------------

def test_the_signature_covers_the_exact_body_sent(db_url: str, receiver: Receiver, secret: str) -> None:
    receiver.secret = secret
    cid = customer(db_url, "王五")
    result = call(db_url, {"url": receiver.url + "/h", "method": "PUT", "secret_env": SECRET_ENV,
                           "body": '{"who": {{ customer.name | tojson }}, "amount": {{ event.payload.amount }}}'},
                  cid)
    [seen] = receiver.requests
    assert result["port"] == "out" and seen.signature == "ok" and seen.method == "PUT"
    assert seen.json() == {"who": "王五", "amount": 9900}
    header = seen.headers["x-tideflow-signature"]
    assert header.startswith("t=") and ",v1=" in header
    verify_signature(secret, seen.body, header, int(time.time()))
    with pytest.raises(Exception, match="no v1 signature"):
        verify_signature(secret, seen.body + b" ", header, int(time.time()))


def test_without_secret_env_no_signature_is_sent(db_url: str, receiver: Receiver) -> None:
    call(db_url, {"url": receiver.url + "/h"}, customer(db_url))
    assert "x-tideflow-signature" not in receiver.requests[0].headers


def test_a_missing_secret_is_a_permanent_failure_naming_the_variable(
        db_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDEFLOW_WEBHOOK_NOPE", raising=False)
    with pytest.raises(ActionFailed, match="TIDEFLOW_WEBHOOK_NOPE"):
        call(db_url, {"url": receiver.url + "/h", "secret_env": "TIDEFLOW_WEBHOOK_NOPE"}, customer(db_url))
    assert receiver.count == 0


def test_the_secret_never_appears_in_errors_details_variables_or_logs(
        db_url: str, receiver: Receiver, secret: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cid = customer(db_url)
    config = {"url": receiver.url + "/h", "secret_env": SECRET_ENV, "response_map": {"echo": "echo"}}
    receiver.reply(Reply(200, {"echo": f"you sent {secret}"}))
    result = call(db_url, config, cid)
    receiver.reply(Reply(400, {"error": f"bad key {secret}"}))
    with pytest.raises(ActionFailed) as failed:
        call(db_url, config, cid)
    receiver.reply(Reply(503, f"down; key={secret}", "text/plain"))
    with pytest.raises(WebhookRetryable) as retried:
        call(db_url, config, cid)

    assert result["variables"] == {"echo": "you sent [redacted]"}
    # what crosses Temporal too: the message and the Msg carried in the details (engine.actions.failure_of)
    crossing = [failure_of(failed.value), failure_of(retried.value)]
    assert all(f.details for f in crossing)
    for text in (json.dumps(result), str(failed.value), str(retried.value), caplog.text,
                 *(f.message for f in crossing), *(f.details[0] for f in crossing)):
        assert SECRET not in text
    assert "[redacted]" in str(failed.value)


def test_a_failed_call_says_why_in_the_readers_language(db_url: str, receiver: Receiver) -> None:
    """A refusal and a retryable failure carry their Msg across Temporal: the journey's pages translate them."""
    cid = customer(db_url)
    receiver.reply(Reply(400, "no such member", "text/plain"))
    with pytest.raises(ActionFailed) as refused:
        call(db_url, {"url": receiver.url + "/h"}, cid)
    receiver.reply(Reply(503, "", "text/plain"))
    with pytest.raises(WebhookRetryable) as retried:
        call(db_url, {"url": receiver.url + "/h", "retry_on_status": ["5xx"]}, cid)
    where = f"POST {receiver.url}/h"
    said = [read_stored(failure_of(exc).details[0]) for exc in (refused.value, retried.value)]
    assert translate(said[0], "zh-CN") == f"Webhook 节点「hook」：{where} 返回 HTTP 400: 'no such member'"
    assert str(said[0]) == str(refused.value) == f"webhook node 'hook': {where} answered HTTP 400: 'no such member'"
    assert translate(said[1], "zh-CN") == f"WebhookRetryable：{where} 返回 HTTP 503（可重试）"
    assert str(said[1]) == f"WebhookRetryable: {where} answered HTTP 503 (retryable)"


# -- responses --------------------------------------------------------------------------------------

def test_a_non_json_response_is_refused_only_when_response_map_needs_it(db_url: str, receiver: Receiver) -> None:
    cid = customer(db_url)
    receiver.default = Reply(200, b"<html>ok</html>", "text/html; charset=utf-8")
    assert call(db_url, {"url": receiver.url + "/h"}, cid)["port"] == "out"
    with pytest.raises(ActionFailed, match="text/html"):
        call(db_url, {"url": receiver.url + "/h", "response_map": {"x": "x"}}, cid)


def test_a_problem_json_response_is_json(db_url: str, receiver: Receiver) -> None:
    receiver.default = Reply(201, {"id": "m-1"}, "application/vnd.api+json")
    result = call(db_url, {"url": receiver.url + "/h", "response_map": {"member": "id"}}, customer(db_url))
    assert result["variables"] == {"member": "m-1"}
    assert result["detail"]["status"] == 201 and result["detail"]["mapped"] == ["member"]


def test_huge_mapped_values_are_refused(db_url: str, receiver: Receiver) -> None:
    receiver.default = Reply(200, {"blob": "x" * 70_000, "small": 1})
    cid = customer(db_url)
    assert call(db_url, {"url": receiver.url + "/h", "response_map": {"small": "small"}}, cid)["variables"] == {
        "small": 1}
    with pytest.raises(ActionFailed, match="blob"):
        call(db_url, {"url": receiver.url + "/h", "response_map": {"blob": "blob"}}, cid)


@pytest.mark.parametrize(("status", "rules", "outcome"), [
    (429, None, WebhookRetryable),
    (500, None, WebhookRetryable),
    (599, None, WebhookRetryable),
    (400, None, ActionFailed),
    (401, None, ActionFailed),
    (409, [409, "5xx"], WebhookRetryable),
    (503, [429], ActionFailed),
    (302, None, ActionFailed),
])
def test_which_statuses_are_retried(db_url: str, receiver: Receiver, status: int, rules: list[Any] | None,
                                    outcome: type[Exception]) -> None:
    receiver.default = Reply(status, {}, headers={"Location": "https://elsewhere.example/x?token=abc"})
    config: dict[str, Any] = {"url": receiver.url + "/h"}
    if rules is not None:
        config["retry_on_status"] = rules
    with pytest.raises(outcome, match=f"HTTP {status}") as exc:
        call(db_url, config, customer(db_url))
    assert "token=abc" not in str(exc.value)


def test_a_connection_refused_is_retryable(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from engine.settings import get_settings

    monkeypatch.setenv("TIDEFLOW_OUTBOUND_ALLOW", "127.0.0.1/32")  # loopback stands in for an allowed host
    get_settings.cache_clear()

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(WebhookRetryable, match="ConnectError"):
        call(db_url, {"url": f"http://127.0.0.1:{port}/h", "timeout_seconds": 1}, customer(db_url))


def test_get_sends_no_body_and_url_templates_render(db_url: str, receiver: Receiver) -> None:
    cid = customer(db_url)
    call(db_url, {"url": receiver.url + "/points?member={{ customer.id | urlencode }}&n={{ vars.n }}",
                  "method": "GET"}, cid, variables={"n": 3})
    [seen] = receiver.requests
    assert seen.method == "GET" and seen.path == f"/points?member={cid}&n=3" and seen.body == b""
    assert "content-type" not in seen.headers


def test_a_body_that_does_not_render_json_fails_with_a_hint(db_url: str, receiver: Receiver) -> None:
    with pytest.raises(ActionFailed, match="tojson"):
        call(db_url, {"url": receiver.url + "/h", "body": '{"name": {{ customer.name }}}'}, customer(db_url))
    assert receiver.count == 0


def test_a_rendered_url_that_is_not_http_fails(db_url: str, receiver: Receiver) -> None:
    with pytest.raises(ActionFailed, match="no host"):
        call(db_url, {"url": "https://{{ vars.host }}/x"}, customer(db_url), variables={})


def test_preview_renders_but_does_not_call(db_url: str, receiver: Receiver) -> None:
    result = call(db_url, {"url": receiver.url + "/h"}, customer(db_url), simulate=True)
    assert result["detail"]["status"] == "dry-run" and receiver.count == 0


def test_detail_keeps_the_query_string_out(db_url: str, receiver: Receiver) -> None:
    result = call(db_url, {"url": receiver.url + "/h?api_key=abc"}, customer(db_url))
    assert result["detail"]["url"] == receiver.url + "/h"
    assert receiver.requests[0].path == "/h?api_key=abc"


# -- config ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("config", "message"), [
    ({"url": "ftp://example.com/x"}, "http:// or https://"),
    ({"url": "file:///etc/passwd"}, "http:// or https://"),
    ({"url": "https:///x"}, "no host"),
    ({"url": "https://example.com:99999/x"}, "not valid"),
    ({"url": "https://example.com/x", "method": "TRACE"}, "method"),
    ({"url": "https://example.com/x", "headers": {"X-Tideflow-Signature": "x"}}, "set by Tideflow"),
    ({"url": "https://example.com/x", "headers": {"idempotency-key": "x"}}, "set by Tideflow"),
    ({"url": "https://example.com/x", "headers": {"Bad Header": "x"}}, "valid header name"),
    ({"url": "https://example.com/x", "method": "GET", "body": "{}"}, "GET request has no body"),
    ({"url": "https://example.com/x", "secret_env": "HOME"}, "TIDEFLOW_WEBHOOK_"),
    ({"url": "https://example.com/x", "timeout_seconds": 0}, "greater than or equal to 1"),
    ({"url": "https://example.com/x", "timeout_seconds": 61}, "less than or equal to 60"),
    ({"url": "https://example.com/x", "response_map": {"1x": "a"}}, "variable name"),
    ({"url": "https://example.com/x", "response_map": {"x": "a..b"}}, "dotted keys"),
    ({"url": "https://example.com/x", "retry_on_status": [200]}, "not an error status"),
    ({"url": "https://example.com/x", "retry_on_status": ["3xx"]}, "'4xx' or '5xx'"),
    ({"url": "https://example.com/x", "colour": "red"}, "Extra inputs"),
])
def test_bad_config_is_refused(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WebhookConfig.model_validate(config)


def test_config_defaults_and_templated_urls() -> None:
    config = WebhookConfig.model_validate({"url": "https://{{ customer.region }}.example.com/{{ customer.id }}"})
    assert config.method == "POST" and config.timeout_seconds == 10 and config.retry_on_status == [429, "5xx"]
    assert WebhookConfig.model_validate({"url": "https://x.example", "retry_on_status": ["409", "4XX"]}
                                        ).retry_on_status == [409, "4xx"]


def test_the_node_type_is_registered_with_its_ports_and_form() -> None:
    node_type = default_registry().get("action.webhook")
    assert node_type is CallWebhook
    described = CallWebhook.describe()
    assert described["label"] == {"zh-CN": "调用 Webhook", "en": "Call webhook"}
    assert described["ports"] == ["out", "failed"] and described["failure_port"] == "failed"
    props = described["config_schema"]["properties"]
    assert props["url"]["format"] == "template" and props["method"]["default"] == "POST"
    assert CallWebhook.timeout.total_seconds() > 60 * 2  # room for connect + read at the largest timeout


def test_the_validator_compiles_url_body_and_header_templates() -> None:
    document = flow("hooks", [
        ("start", "trigger.api", {}),
        ("hook", "action.webhook", {"url": "https://x.example/{{ customer.id }", "body": "{{ nope }}",
                                    "headers": {"X-A": "{{ vars.a | }}"}}),
    ], [("start", "out", "hook")])
    problems = {(p.field, p.code) for p in validate(document).problems}
    assert {("config.url", "bad_template"), ("config.body", "bad_template"),
            ("config.headers.X-A", "bad_template")} <= problems


def test_lookup_follows_dotted_paths() -> None:
    document = {"data": {"items": [{"id": 1}, {"id": 2}], "n": 0, "none": None}}
    assert lookup(document, "data.items.1.id") == 2
    assert lookup(document, "data.items.-1.id") == 2
    assert lookup(document, "data.n") == 0
    assert lookup(document, "data.none") is None
    missing = lookup(document, "data.items.5.id")
    assert missing is lookup(document, "data.nope") is lookup(document, "data.n.x")
