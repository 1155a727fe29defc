"""The ``webhook`` connector: Tideflow's own signed webhooks, in both directions.

**Inbound** (``POST /hooks/<connector id>``): any system that can sign a request with the shared
secret (``X-Tideflow-Signature``, see :mod:`connectors.webhook.signing`) sends one event or a list
of events in the ``POST /api/events`` shape. The signature is checked over the raw body with a
300 s tolerance (``tolerance_seconds``) before anything is parsed; a bad or stale signature raises
:class:`~connectors.errors.SignatureVerificationError` (401, nothing stored). The events' ``source``
is always the connector id — a ``source`` in the body is ignored — so a redelivery (same ``id``)
is stored once. The answer is ``200 {"received": <n>}``.

**Outbound** (channel ``webhook``): each message is POSTed to ``settings.url`` as JSON
``{key, channel, content, customer: {id, name}, identities, attachments}``, signed with the same
secret, with the idempotency key in ``Idempotency-Key``. 2xx is delivered (the provider id is the
answer's ``id`` when it has one, else the key); 408/425/429/5xx, timeouts and connection errors are
retryable; any other status is permanent (:class:`WebhookDeliveryError`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.base import Connector, InboundReply, InboundRequest, OutboundMessage
from connectors.errors import ConnectorProtocolError
from connectors.webhook.signing import (
    DEFAULT_TOLERANCE,
    SIGNATURE_HEADER,
    WebhookSignatureMismatch,
    sign_payload,
    verify_signature,
)
from wording import Msg, message_of

MAX_EVENTS = 1000
USER_AGENT = "Tideflow/0.1"
SNIPPET = 200


@lru_cache(maxsize=2)
def http_client(verify_tls: bool) -> httpx.Client:
    """One pooled client per TLS mode for the process (loading the CA bundle per send is slow); thread-safe."""
    return httpx.Client(verify=verify_tls, follow_redirects=False, headers={"User-Agent": USER_AGENT})


class WebhookDeliveryError(Exception):
    """A message could not be delivered to the outbound URL. ``retryable``: whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(default="", max_length=2000, examples=["https://crm.example.com/tideflow/messages"],
                     description="where the webhook channel POSTs messages; empty: inbound only")
    tolerance_seconds: int = Field(default=DEFAULT_TOLERANCE, ge=30, le=3600,
                                   description="how far a signature's timestamp may be from now (replay window)")
    timeout_seconds: float = Field(default=10, gt=0, le=60, description="per outbound request")
    verify_tls: bool = Field(default=True, description="check the receiver's certificate (off only for tests)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if value and (not value.startswith(("http://", "https://")) or any(c.isspace() for c in value)):
            raise ValueError(Msg("must be an absolute http:// or https:// URL without spaces"))
        return value


class WebhookSecrets(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    secret: SecretStr = Field(min_length=16, max_length=512,
                              description="shared HMAC secret: verifies inbound requests, signs outbound ones")
    previous_secret: SecretStr = Field(default=SecretStr(""), max_length=512,
                                       description="during a rotation, inbound requests signed with it still "
                                                   "verify; empty when not rotating")


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """One event (object) or a list of events from a raw body, each without ``source``; else an error."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConnectorProtocolError(Msg("the body is not UTF-8 JSON")) from None
    except json.JSONDecodeError as exc:
        raise ConnectorProtocolError(Msg("the body is not valid JSON (%(msg)s at line %(lineno)s column %(colno)s)",
                                         msg=exc.msg, lineno=exc.lineno, colno=exc.colno)) from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ConnectorProtocolError(Msg("the body is an empty list: send one event or a list of events"))
    if len(items) > MAX_EVENTS:
        raise ConnectorProtocolError(Msg("the body holds %(count)s events; at most %(max_events)s per request",
                                         count=len(items), max_events=MAX_EVENTS))
    events: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"event {index}" if isinstance(data, list) else "the event"
        if not isinstance(item, dict):
            raise ConnectorProtocolError(Msg("%(where)s is %(name)s, not an object like {\"id\": \"…\", \"type\": "
                                             "\"order.paid\", \"customer\": {\"phone\": \"…\"}}", where=where,
                                             name=type(item).__name__))
        for name in ("id", "type"):
            if not isinstance(item.get(name), str) or not item[name]:
                raise ConnectorProtocolError(Msg("%(where)s: '%(name)s' must be a non-empty string", where=where,
                                                 name=name))
        if not isinstance(item.get("customer"), dict) or not item["customer"]:
            raise ConnectorProtocolError(Msg("%(where)s: 'customer' must be an object of identities, e.g. "
                                             "{\"phone\": \"13800138000\"}", where=where))
        events.append({k: v for k, v in item.items() if k != "source"})
    return events


def message_body(message: OutboundMessage) -> bytes:
    """The outbound JSON for one message (compact UTF-8): what is signed and sent."""
    document = {
        "key": message.key,
        "channel": message.channel,
        "content": message.content,
        "customer": {"id": message.customer.get("id"), "name": message.customer.get("name")},
        "identities": dict(message.identities),
        "attachments": list(message.attachments),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WebhookConnector(Connector):
    kind = "webhook"
    label = {"zh-CN": "通用 Webhook", "en": "Generic webhook"}
    sender_shapes_events = True
    Settings = WebhookSettings
    Secrets = WebhookSecrets
    channels = ("webhook",)

    #: the receiver's clock (unix seconds); tests may replace it
    clock: ClassVar[Callable[[], float]] = time.time

    def inbound(self, request: InboundRequest, settings: Any, secrets: Any) -> InboundReply:
        if request.method.upper() != "POST":
            return InboundReply(status=405, body=json.dumps({"error": "send events with POST"}),
                                content_type="application/json")
        header = request.headers.get(SIGNATURE_HEADER.lower())
        now = int(type(self).clock())
        keys = [s.get_secret_value() for s in (secrets.secret, secrets.previous_secret) if s.get_secret_value()]
        for attempt, key in enumerate(keys):
            try:
                verify_signature(key, request.body, header, now, settings.tolerance_seconds)
                break
            except WebhookSignatureMismatch:
                if attempt == len(keys) - 1:
                    raise
        events = parse_events(request.body)
        return InboundReply(events=events, status=200, body=json.dumps({"received": len(events)}),
                            content_type="application/json")

    def delivers(self, settings: Any) -> bool:
        return bool(settings.url)

    def deliver(self, message: OutboundMessage, settings: Any, secrets: Any) -> str:
        if not settings.url:
            raise WebhookDeliveryError(Msg("this webhook connector has no url, so the webhook channel has nowhere to "
                                           "send; set url in its settings"))
        secret = secrets.secret.get_secret_value()
        body = message_body(message)
        headers = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json",
                   "User-Agent": USER_AGENT, "Idempotency-Key": message.key,
                   SIGNATURE_HEADER: sign_payload(secret, body, int(type(self).clock()))}
        where = f"POST {settings.url.split('?')[0]}"
        try:
            response = http_client(settings.verify_tls).post(settings.url, content=body, headers=headers,
                                                             timeout=settings.timeout_seconds)
        except httpx.TimeoutException as exc:
            raise WebhookDeliveryError(Msg("%(where)s timed out after %(timeout_seconds)s s (%(name)s); will retry "
                                           "with the same key", where=where,
                                           timeout_seconds=format(settings.timeout_seconds, 'g'),
                                           name=type(exc).__name__),
                                       retryable=True) from None
        except httpx.TransportError as exc:
            raise WebhookDeliveryError(Msg("%(where)s failed: %(name)s: %(exc)s; will retry", where=where,
                                           name=type(exc).__name__, exc=message_of(exc)),
                                       retryable=True) from None
        status = response.status_code
        if 200 <= status < 300:
            try:
                answer = response.json()
            except ValueError:
                return message.key
            found = answer.get("id") if isinstance(answer, dict) else None
            return found if isinstance(found, str) and found else message.key
        said = " ".join(response.text[:SNIPPET].split()).replace(secret, "[redacted]")
        retryable = status in (408, 425, 429) or status >= 500
        hint = Msg("will retry") if retryable else Msg("retrying will not help")
        if 300 <= status < 400:
            hint = Msg("redirects are not followed; configure the final URL (%(location)s)",
                       location=response.headers.get("location", "?"))
        raise WebhookDeliveryError(Msg("%(where)s answered HTTP %(status)s: %(said)s (%(hint)s)", where=where,
                                       status=status, said=repr(said), hint=hint), retryable=retryable,
                                   status=status)
