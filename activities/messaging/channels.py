"""Message channels. ``dry-run`` records the message and sends nothing (demo, preview, tests).

A channel is a callable that delivers one rendered message and returns a provider
message id. Channels backed by outside platforms (WeCom, WeChat OA, SMS, email,
webhook) register themselves here when their connector is configured; a send to a
channel that is not configured is recorded as ``skipped: channel not configured``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from engine.text import Msg

CHANNELS = ("dry-run", "wecom", "wechat_oa", "sms", "email", "webhook")
#: channels whose delivery does no I/O and cannot fail: a bulk send delivers them inside the write
#: transaction that reserves the messages (``SendMessage.run_many``)
INSTANT = frozenset({"dry-run"})

#: channel name → deliver(customer, content, key, config) → provider message id
Deliver = Callable[[dict[str, Any], str, str, dict[str, Any]], str]
_delivery: dict[str, Deliver] = {}


def register(channel: str, deliver: Deliver) -> None:
    if channel not in CHANNELS:
        raise ValueError(Msg("unknown channel '%(channel)s'; channels are %(value)s",
                             channel=channel, value=', '.join(CHANNELS)))
    _delivery[channel] = deliver


def registered(channel: str) -> bool:
    """A delivery function was registered for ``channel`` in this process (tests, plugins)."""
    return channel in _delivery


def delivery(channel: str, database_url: str | None = None) -> Deliver | None:
    """How to deliver on ``channel``: dry-run, a registered function, or the first enabled connector
    (engine/connectors.py) that delivers this channel; None when nothing is configured."""
    if channel == "dry-run":
        return _dry_run
    if channel in _delivery:
        return _delivery[channel]
    return _connector_delivery(channel, database_url)


#: a configured channel's connector is looked up (and its secrets decrypted) at most this often per process:
#: a connector newly configured counts at once, a changed or disabled one within this many seconds
LOOKUP_SECONDS = 2.0
_looked_up: dict[tuple[str, str | None], tuple[float, Any]] = {}
_lookup_lock = threading.Lock()


def _configured(channel: str, database_url: str | None) -> Any:
    from engine import connectors as configured
    from engine.db.session import session_factory

    now = time.monotonic()
    with _lookup_lock:
        hit = _looked_up.get((channel, database_url))
    if hit is not None and now - hit[0] < LOOKUP_SECONDS:
        return hit[1]
    with session_factory(database_url)() as db:
        loaded = configured.for_channel(db, channel)
    if loaded is not None:
        with _lookup_lock:
            _looked_up[(channel, database_url)] = (now, loaded)
    return loaded


#: a delivery's ``config`` may carry the customer's identities (kind → value) its caller has read already, in a
#: session it had open anyway: a connector's delivery then reads none
IDENTITIES = "identities"


def through_connector(channel: str) -> bool:
    """Whether a delivery on ``channel`` goes through a configured connector (which needs the identities)."""
    return channel != "dry-run" and channel not in _delivery


def identities_of(db: Any, customer_id: str | None) -> dict[str, str]:
    from engine.db import models

    return {i.kind: i.value for i in db.query(models.Identity).filter_by(customer_id=customer_id)}


def _connector_delivery(channel: str, database_url: str | None) -> Deliver | None:
    from connectors.base import OutboundMessage
    from engine.db.session import session_factory

    loaded = _configured(channel, database_url)
    if loaded is None:
        return None

    def deliver(customer: dict[str, Any], content: str, key: str, config: dict[str, Any]) -> str:
        identities = config.get(IDENTITIES)
        if identities is None:
            with session_factory(database_url)() as db:
                identities = identities_of(db, customer.get("id"))
        message = OutboundMessage(key=key, channel=channel, content=content, customer=customer,
                                  identities=dict(identities), attachments=list(config.get("attachments") or []),
                                  options={k: v for k, v in config.items() if k not in ("event", IDENTITIES)},
                                  event=dict(config.get("event") or {}))
        return str(loaded.connector.deliver(message, loaded.settings, loaded.secrets))

    return deliver


def _dry_run(customer: dict[str, Any], content: str, key: str, config: dict[str, Any]) -> str:
    return f"dry-run:{key}"
