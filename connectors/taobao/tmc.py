"""Taobao's message service (消息服务, TMC) read through the TOP API: messages become the same canonical
order and refund events the poller makes (docs/connectors/taobao.md, "Message service").

Taobao offers two ways to take an app's messages (open.taobao.com 消息服务使用介绍; developer.alibaba.com
doc 119543): a long-lived WebSocket connection — only through its Java and .NET SDKs, whose binary
protocol is not published — or, "in any language", the API: ``taobao.tmc.messages.consume`` takes up to
200 waiting messages of the app's queue (a user group, or the default one) and
``taobao.tmc.messages.confirm`` says which were handled (``s_message_ids``) and which must come again
(``f_message_ids``). Tideflow uses the API. There is no HTTP push to a URL of ours.

A message is ``{"user_id", "user_nick", "topic", "content" (JSON text), "id", "pub_time",
"pub_app_key"}``; ``id`` is a 64-bit number and is sent back to confirm exactly as received. The
content of trade and refund messages carries ids, not the record (TOP's docs for each topic list
``tid``, ``oid``, ``buyer_open_uid``, ``payment``, ``status``, ``refund_id``, ``refund_fee`` …), and Taobao's
advice is to fetch the record when the message arrives. So:

* ``taobao_trade_*`` with a ``tid`` → ``taobao.trade.fullinfo.get`` → :func:`trade_events`;
* ``taobao_refund_*`` with a ``refund_id`` → ``taobao.refund.get`` → :func:`refund_events`;

— the poller's own mapping, hence the poller's own event ids (``<channel>:<shop>:<tid>:<status>``): a
change seen by both is stored once, whichever comes first. Everything else (another topic, content that
is not JSON, a record Taobao says does not exist, a message for another seller when ``seller_nick`` is
set) is kept raw as unmapped, under its topic, and confirmed: shown and counted, not delivered again.

What is *verified*: the messages come from the configured TOP router over HTTPS in answer to a request
signed with the app secret (TOP signs requests, not answers); a message is taken as this shop's only
when it names the configured ``seller_nick`` (when set) and its record can be read with the shop's
session key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from connectors.base import unmapped_record
from connectors.polling import MessageBatch, ShopApiError
from connectors.taobao.client import TopClient
from connectors.taobao.orders import REFUND_FIELDS, TRADE_FIELDS, refund_events, trade_events
from wording import Msg, joined, message_of

#: TOP codes that mean the configuration is wrong, not the record: the whole batch comes again later
CONFIGURATION_CODES = frozenset({"11", "12", "25", "26", "27", "28", "29", "31"})
#: messages taken per consume call, and consume calls per poll at most
BATCH = 100
MAX_BATCHES = 10


def message_id(message: dict[str, Any]) -> str:
    return str(message.get("id") if message.get("id") is not None else "").strip()


def _content(message: dict[str, Any]) -> dict[str, Any] | None:
    content = message.get("content")
    if isinstance(content, dict):
        return content
    try:
        parsed = json.loads(str(content or ""))
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _unmapped(message: dict[str, Any], reason: str) -> list[dict[str, Any]]:
    return [unmapped_record(reason, message, message_id(message), str(message.get("topic") or "")[:80])]


def _or_unmapped(message: dict[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The record's events; when the record maps to none, the TMC message itself is kept unmapped (under its
    topic and message id, so it is confirmed and shown once), with the record's reason."""
    mapped = [e for e in events if "unmapped" not in e]
    if mapped:
        return mapped
    reasons = joined([e["unmapped"].reason for e in events], "; ") if events else Msg("its record maps to no event")
    return _unmapped(message, Msg("%(reasons)s: maps to no order or refund event", reasons=reasons))


def message_events(message: dict[str, Any], fetch_trade: Callable[[str], dict[str, Any]],
                   fetch_refund: Callable[[str], dict[str, Any]], *, shop: str, channel: str,
                   attribution: dict[str, str], seller_nick: str = "") -> list[dict[str, Any]]:
    """The canonical events (or one unmapped record) of one TMC message. ``fetch_*`` read the record;
    a :class:`ShopApiError` they raise for a configuration problem or a busy platform propagates."""
    topic = str(message.get("topic") or "")
    content = _content(message)
    if content is None:
        return _unmapped(message, Msg("the message content is not a JSON object"))
    nick = str(message.get("user_nick") or content.get("seller_nick") or "")
    if seller_nick and nick and nick != seller_nick:
        return _unmapped(message, Msg("a message for seller '%(nick)s', not this shop ('%(seller_nick)s'): give each "
                                      "shop its own TMC group (taobao.tmc.group.add) and set tmc_group", nick=nick,
                                      seller_nick=seller_nick))
    try:
        if topic.startswith("taobao_trade_") and content.get("tid") not in (None, ""):
            trade = fetch_trade(str(content["tid"]))
            return _or_unmapped(message, trade_events(trade, shop=shop, channel=channel, attribution=attribution))
        if topic.startswith("taobao_refund_") and content.get("refund_id") not in (None, ""):
            refund = fetch_refund(str(content["refund_id"]))
            return _or_unmapped(message, refund_events(refund, shop=shop, channel=channel))
    except ShopApiError as exc:
        if exc.retryable or exc.code in CONFIGURATION_CODES:
            raise
        return _unmapped(message, Msg("its record cannot be read: %(error)s", error=message_of(exc)))
    return _unmapped(message, Msg("topic %(topic)s gives no order or refund event", topic=topic or "(none)"))


def _confirmer(client: TopClient, group: str, done: list[str], again: list[str]) -> Callable[[], None]:
    def confirm() -> None:
        client.tmc_confirm(group, done, again)

    return confirm


def consume(client: TopClient, *, group: str, shop: str, channel: str, attribution: dict[str, str],
            seller_nick: str = "", max_batches: int = MAX_BATCHES) -> Iterator[MessageBatch]:
    """Batches of mapped messages until the queue is empty (or ``max_batches``). When reading a record
    fails for a reason that is not the record's (the call limit, the network, an expired session), the
    batch so far is yielded (handled messages confirmed, the rest to be delivered again) and the error
    raised after it."""
    for _ in range(max_batches):
        messages = client.tmc_consume(group, BATCH)
        if not messages:
            return
        events: list[dict[str, Any]] = []
        done: list[str] = []
        failure: ShopApiError | None = None
        for index, message in enumerate(messages):
            try:
                events.extend(message_events(
                    message, lambda tid: client.trade_fullinfo(tid, TRADE_FIELDS),
                    lambda refund_id: client.refund_get(refund_id, REFUND_FIELDS), shop=shop, channel=channel,
                    attribution=attribution, seller_nick=seller_nick))
            except ShopApiError as exc:
                failure = exc
                again = [message_id(m) for m in messages[index:] if message_id(m)]
                break
            if message_id(message):
                done.append(message_id(message))
        else:
            again = []
        yield MessageBatch(events, _confirmer(client, group, done, again))
        if failure is not None:
            raise failure
        if len(messages) < BATCH:
            return
