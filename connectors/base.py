"""What a connector is: the inbound side (verify, parse, normalise, answer) and the outbound side
(deliver a message) of one outside system, kept apart and free of engine imports.

A connector is a class with:

* ``kind`` (``wecom``, ``youzan``, ``email`` …), ``label`` (zh-CN and en);
* ``Settings`` and ``Secrets`` — pydantic models; settings may be shown, secrets are write-only
  and encrypted at rest by the engine;
* ``inbound(request, settings, secrets) -> InboundReply`` — verify the platform's signature
  (raise :class:`connectors.errors.SignatureVerificationError` → HTTP 401, nothing stored), parse
  (raise :class:`connectors.errors.ConnectorProtocolError` or ``ValueError`` → 400), normalise to
  Tideflow events (dicts shaped like ``POST /api/events``) and say what to answer;
* ``channels`` and ``deliver(channel, message, settings, secrets) -> provider message id`` for the
  outbound side (``action.send_message`` channels), or no channels.

Connectors are discovered through the entry point group ``tideflow.connectors`` (name = kind).
The web app serves every configured connector at ``/hooks/<connector id>``; the events are stored
once (dedupe on source + id) before the platform gets its answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from wording import Msg


@dataclass(frozen=True)
class InboundRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class Unmapped:
    """A message the connector received (signed, well-formed) but cannot turn into a Tideflow event — a type
    it does not map, a status it does not know. It is stored raw, shown and counted, never dropped."""

    #: what is missing, for the operator: ``Msg("tag %(tag)s gives no event", tag=108)`` — kept translatable
    #: (engine.connector_ops stores it with wording.stored), so the page shows it in the reader's language
    reason: str
    raw: str  # the message as the platform sent it (JSON text)
    message_id: str = ""  # the platform's id of the message (dedupes its redeliveries), if it has one
    kind: str = ""  # the platform's message type: a tag, topic, status


def unmapped_record(reason: str, raw: Any, message_id: str = "", kind: str = "") -> dict[str, Any]:
    """An unmapped record in a polled connector's page (``poll_window`` yields it among the events)."""
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
    return {"unmapped": Unmapped(reason=reason, raw=text, message_id=message_id, kind=kind)}


@dataclass
class InboundReply:
    """Events to ingest, messages that map to none (``unmapped``) and the answer the platform expects."""

    events: list[dict[str, Any]] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    #: platform news that is not a customer event (a staff member left, a group changed, new archived
    #: chats): ``{"kind": …, …}`` dicts handed to the notice handlers (engine/notices.py) after the events
    notices: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    body: bytes | str = b"success"
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundMessage:
    """A rendered message for one customer, as ``action.send_message`` hands it to a channel."""

    key: str  # the idempotency key: pass it to the platform where it dedupes
    channel: str
    content: str
    customer: dict[str, Any]  # customer view: name, attributes, tags
    identities: dict[str, str]  # the customer's identities (external_userid, openid, phone, email …)
    attachments: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    #: the journey's current event (the triggering one, or the last one a wait received): e.g. WeCom's
    #: welcome_code arrives in the wecom.contact_added event's payload
    event: dict[str, Any] = field(default_factory=dict)


class NoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Connector:
    kind: ClassVar[str]
    label: ClassVar[dict[str, str]] = {}
    Settings: ClassVar[type[BaseModel]] = NoSettings
    Secrets: ClassVar[type[BaseModel]] = NoSettings
    #: message channels this connector delivers (names of action.send_message channels)
    channels: ClassVar[tuple[str, ...]] = ()
    #: the sender shapes the events itself (a generic webhook): an invalid event is the sender's to fix (400);
    #: otherwise the connector maps a platform's format and an invalid event is quarantined instead
    sender_shapes_events: ClassVar[bool] = False

    def inbound(self, request: InboundRequest, settings: Any, secrets: Any) -> InboundReply:
        raise LookupError(Msg("%(kind)s takes no inbound deliveries", kind=self.kind))

    def busy_reply(self, retry_after: int) -> InboundReply:
        """The answer that makes the platform deliver again later, given when Tideflow is too busy to take a
        delivery (nothing was stored). Default: 503 with Retry-After, which platforms that retry on any
        non-2xx answer (WeCom, WeChat, Shopify, our webhook senders) redeliver; a connector whose platform
        expects a body of its own overrides this."""
        return InboundReply(status=503, body=b"busy, retry later", headers={"Retry-After": str(retry_after)})

    def delivers(self, settings: Any) -> bool:
        """Whether this configuration can send messages (an inbound-only set-up answers False)."""
        return bool(self.channels)

    def deliver(self, message: OutboundMessage, settings: Any, secrets: Any) -> str:
        raise LookupError(Msg("%(kind)s delivers no messages", kind=self.kind))
