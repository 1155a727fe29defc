"""How one rendered message reaches a WeCom customer: a welcome message or a 1:1 mass-send task.

WeCom lets an app write to a customer in two ways:

* **send_welcome_msg** — right after the add-contact callback, with its ``welcome_code`` (valid 20 s,
  once). The customer sees the message at once, from the staff member they just added.
* **add_msg_template** (企业群发) — a task the staff member confirms in their WeCom client; WeCom
  limits how many a customer may receive.

:func:`deliver` uses the welcome code when the journey's current event is the ``wecom.contact_added``
of this customer and its code is still fresh (or an earlier attempt of this very code had no
answer); otherwise it creates a mass-send task from the staff member who owns the customer. A later
message of the same journey (the coupon a day after the welcome) therefore goes out as a task, not
with the long-expired code.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.base import OutboundMessage
from connectors.wecom.api_errors import WeComRejected, WelcomeCodeUnusable
from connectors.wecom.client import WELCOME_CODE_TTL, WeComClient, attachments_for
from wording import Msg

#: events whose payload may carry a usable welcome_code
WELCOME_EVENT_TYPES = frozenset({"wecom.contact_added"})


@dataclass(frozen=True)
class WelcomeCode:
    code: str
    #: unix seconds of the callback, when known
    issued_at: float | None

    def fresh(self, now: float) -> bool:
        return self.issued_at is None or now - self.issued_at < WELCOME_CODE_TTL


def _unix(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def welcome_code_of(message: OutboundMessage) -> WelcomeCode | None:
    """The welcome code this message may use: ``options["welcome_code"]`` (explicit, no age known), or the
    ``welcome_code`` in the payload of the journey's current event when that is this customer's
    ``wecom.contact_added``."""
    explicit = message.options.get("welcome_code")
    if isinstance(explicit, str) and explicit:
        return WelcomeCode(explicit, None)
    event = message.event or {}
    payload = event.get("payload") if isinstance(event.get("payload"), dict) else {}
    code = payload.get("welcome_code") if payload else None
    if event.get("type") not in WELCOME_EVENT_TYPES or not isinstance(code, str) or not code:
        return None
    customer_id = message.customer.get("id")
    if customer_id and event.get("customer_id") and event["customer_id"] != customer_id:
        return None
    return WelcomeCode(code, _unix(event.get("occurred_at")))


def sender_of(message: OutboundMessage, default_sender: str | None) -> str | None:
    """The staff member a mass-send task goes to: the one in the journey's current WeCom event, the
    customer's ``wecom_follow_user`` attribute (kept from their contact_added), or the default."""
    event = message.event or {}
    payload = event.get("payload") if isinstance(event.get("payload"), dict) else {}
    if str(event.get("type", "")).startswith("wecom.") and payload and payload.get("user_id"):
        return str(payload["user_id"])
    owner = message.customer.get("wecom_follow_user")
    if isinstance(owner, str) and owner:
        return owner
    return default_sender or None


def _mask(external_userid: str) -> str:
    return external_userid[:4] + "…" + external_userid[-4:] if len(external_userid) > 10 else "…"


def deliver(client: WeComClient, message: OutboundMessage, *, default_sender: str | None = None,
            now: float | None = None, media: Any = None) -> str:
    """Send ``message`` to its customer; the provider message id. Raises ``WeComRetryable`` /
    ``WeComRejected`` (``.retryable`` says which)."""
    external = message.identities.get("wecom_external_userid")
    if not external:
        raise WeComRejected(Msg("the customer has no WeCom external_userid (they never added a staff member), so "
                                "WeCom cannot reach them; use a fallback channel"))
    done = client.delivered.get(message.key)
    if done is not None:
        return done
    now = time.time() if now is None else now
    attachments = attachments_for(message.attachments)
    if media is not None:  # images go by an uploaded media id: WeCom refuses a pic_url it did not issue
        attachments = media.with_media_ids(attachments)
    welcome = welcome_code_of(message)
    provider_id: str | None = None
    if welcome is not None:
        state = client.welcome_state(welcome.code)
        if state == "unknown" or (state is None and welcome.fresh(now)):
            tag = hashlib.sha256(welcome.code.encode()).hexdigest()[:16]
            try:
                client.send_welcome_msg(welcome.code, message.content or None, attachments,
                                        issued_at=welcome.issued_at)
                provider_id = f"welcome:{tag}"
            except WelcomeCodeUnusable:
                if state != "unknown":
                    raise
                # the earlier attempt had no answer and WeCom now calls the code used: that attempt got through
                provider_id = f"welcome:{tag}:unconfirmed"
    if provider_id is None:
        sender = sender_of(message, default_sender)
        result = client.add_msg_template([external], message.content or None, sender=sender, attachments=attachments)
        if external in result.fail_list:
            raise WeComRejected(Msg("WeCom did not queue the message for customer %(value)s: they are not a contact "
                                    "of %(value2)s any more, or have reached WeCom's limit of mass messages",
                                    value=_mask(external), value2=sender or 'any staff member'), api="add_msg_template")
        provider_id = result.msgid
    client.delivered.put(message.key, provider_id)
    return provider_id
