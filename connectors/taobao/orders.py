"""Taobao / Tmall trades and refunds as canonical order and refund events (pure).

Trade status (``status``) → canonical order status:

=====================================================================  ===========
``TRADE_NO_CREATE_PAY``, ``WAIT_BUYER_PAY``, ``PAY_PENDING``,          created
``WAIT_PRE_AUTH_CONFIRM``
``WAIT_SELLER_SEND_GOODS``, ``PAID_FORBID_CONSIGN``                    paid
``SELLER_CONSIGNED_PART``, ``WAIT_BUYER_CONFIRM_GOODS``                shipped
``TRADE_BUYER_SIGNED``                                                 delivered
``TRADE_FINISHED``                                                     completed
``TRADE_CLOSED``, ``TRADE_CLOSED_BY_TAOBAO``                           cancelled
=====================================================================  ===========

A trade first seen already shipped, delivered or completed (it changed more than once between two
polls, or during a backfill) also yields its ``order.paid`` (at ``pay_time``), so journeys triggered
by ``order.paid`` never miss it. Event ids are ``<channel>:<shop>:<tid>:<status>``: re-reading a
window, or a change that leaves the status as it was (a seller memo), is a duplicate; a real status
change is a new event.

Refund status → canonical refund status: ``SUCCESS`` → completed; ``SELLER_REFUSE_BUYER`` and
``CLOSED`` → rejected; every ``WAIT_*`` state → requested.

A trade or refund that maps to no event — a status Taobao adds later, no buyer id (an app without the
``buyer_open_uid`` grant sees only ``buyer_nick``), fields that do not parse — is never dropped: it is kept raw
as an unmapped record (:func:`connectors.base.unmapped_record`, kind ``trade:<status>`` /
``refund:<status>``), stored and counted by the sync like every connector's (engine/connector_ops.py).

The buyer is ``taobao_buyer`` = ``buyer_open_uid`` (the same for Taobao and Tmall shops of one app);
``phone`` only when the API gave a full mobile number (``receiver_mobile`` is usually masked).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from connectors.base import unmapped_record
from connectors.canonical import CanonicalOrder, CanonicalRefund, OrderItem, order_event, refund_event
from connectors.polling import china_time, mobile, unit_price_fen, yuan_to_fen
from wording import Msg

log = logging.getLogger(__name__)

TRADE_STATUS = {
    "TRADE_NO_CREATE_PAY": "created", "WAIT_BUYER_PAY": "created", "PAY_PENDING": "created",
    "WAIT_PRE_AUTH_CONFIRM": "created",
    "WAIT_SELLER_SEND_GOODS": "paid", "PAID_FORBID_CONSIGN": "paid",
    "SELLER_CONSIGNED_PART": "shipped", "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_BUYER_SIGNED": "delivered",
    "TRADE_FINISHED": "completed",
    "TRADE_CLOSED": "cancelled", "TRADE_CLOSED_BY_TAOBAO": "cancelled",
}
REFUND_STATUS = {
    "WAIT_SELLER_AGREE": "requested", "WAIT_BUYER_RETURN_GOODS": "requested",
    "WAIT_SELLER_CONFIRM_GOODS": "requested", "WAIT_BUYER_CONFIRM_EXCHANGE_SELLER_SEND_GOODS": "requested",
    "WAIT_SELLER_CONSIGN_GOODS": "requested", "EXCHANGE_TRANSFORM_TO_REFUND": "requested",
    "SELLER_REFUSE_BUYER": "rejected", "CLOSED": "rejected",
    "SUCCESS": "completed",
}
#: statuses that imply the trade was paid before
_AFTER_PAYMENT = ("shipped", "delivered", "completed")

TRADE_FIELDS = ("tid,tid_str,status,payment,post_fee,total_fee,created,pay_time,modified,buyer_open_uid,"
                "receiver_mobile,type,orders")
REFUND_FIELDS = ("refund_id,tid,oid,status,refund_fee,total_fee,payment,created,modified,reason,desc,title,num,"
                 "num_iid,sku,price,buyer_open_uid,order_status,refund_phase")


def _identities(record: dict[str, Any], phone_field: str | None = None) -> dict[str, str]:
    found: dict[str, str] = {}
    buyer = str(record.get("buyer_open_uid") or "").strip()
    if buyer:
        found["taobao_buyer"] = buyer
    if phone_field:
        phone = mobile(record.get(phone_field))
        if phone:
            found["phone"] = phone
    return found


def _order_id(record: dict[str, Any]) -> str:
    return str(record.get("tid_str") or record.get("tid") or "").strip()


def _items(trade: dict[str, Any]) -> list[OrderItem]:
    wrapped = trade.get("orders")
    lines = wrapped.get("order") if isinstance(wrapped, dict) else wrapped
    items: list[OrderItem] = []
    for line in lines or []:
        if not isinstance(line, dict):
            continue
        quantity = int(line.get("num") or 1)
        paid = yuan_to_fen(line.get("payment") if line.get("payment") not in (None, "") else line.get("price"),
                           "orders.payment")
        sku = str(line.get("outer_sku_id") or line.get("sku_id") or line.get("num_iid") or line.get("oid") or "?")
        items.append(OrderItem(sku=sku[:120], name=str(line.get("title") or "")[:300], quantity=max(1, quantity),
                               price_fen=unit_price_fen(paid, quantity), category=str(line.get("cid") or "")[:120]))
    return items


def trade_events(trade: dict[str, Any], *, shop: str, channel: str,
                 attribution: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The canonical events of one trade (``taobao.trades.sold.increment.get``); one unmapped record for a
    trade that maps to none (an unknown status, no buyer id, fields that do not parse)."""
    tid = _order_id(trade)
    raw_status = str(trade.get("status") or "")
    status = TRADE_STATUS.get(raw_status)
    identities = _identities(trade, "receiver_mobile")
    if not tid or status is None or not identities:
        why = (Msg("it has no tid") if not tid else Msg("status %(status)s is not one Tideflow maps",
                                                          status=raw_status or "(none)")
               if status is None else Msg("it has no buyer id (buyer_open_uid)"))
        return [unmapped_record(Msg("trade %(tid)s: %(why)s", tid=tid or "?", why=why), trade, tid,
                                f"trade:{raw_status}"[:80])]
    try:
        created = china_time(trade.get("created"))
        paid_at = china_time(trade.get("pay_time"))
        modified = china_time(trade.get("modified")) or created
        base = {"order_id": tid, "shop": shop, "channel": channel,
                "amount_fen": yuan_to_fen(trade.get("payment"), "payment"), "items": _items(trade),
                "created_at": created, "paid_at": paid_at, "attribution": dict(attribution or {})}
        events: list[dict[str, Any]] = []
        if status in _AFTER_PAYMENT and paid_at is not None:
            events.append(order_event(CanonicalOrder(status="paid", **base), identities, paid_at))
        occurred = paid_at if status == "paid" and paid_at else modified
        if occurred is None:
            raise ValueError(Msg("the trade has neither modified nor created"))
        events.append(order_event(CanonicalOrder(status=status, **base), identities, occurred))
        return events
    except (ValidationError, ValueError) as exc:
        log.warning("Taobao trade %s kept unmapped: it does not map to a canonical order (%s)", tid,
                    type(exc).__name__)
        return [unmapped_record(Msg("trade %(tid)s does not map to a canonical order (%(error)s)", tid=tid,
                                    error=type(exc).__name__), trade, tid, f"trade:{raw_status}"[:80])]


def refund_events(refund: dict[str, Any], *, shop: str, channel: str) -> list[dict[str, Any]]:
    """The canonical event of one refund (``taobao.refunds.receive.get``); one unmapped record when it cannot
    be mapped."""
    refund_id = str(refund.get("refund_id") or "").strip()
    raw_status = str(refund.get("status") or "")
    status = REFUND_STATUS.get(raw_status)
    identities = _identities(refund)
    order_id = _order_id(refund)
    if not refund_id or not order_id or status is None or not identities:
        why = (Msg("it has no refund_id") if not refund_id else Msg("it has no tid") if not order_id
               else Msg("status %(status)s is not one Tideflow maps", status=raw_status or "(none)")
               if status is None else Msg("it has no buyer id (buyer_open_uid)"))
        return [unmapped_record(Msg("refund %(refund_id)s: %(why)s", refund_id=refund_id or "?", why=why), refund,
                                f"refund-{refund_id}" if refund_id else "", f"refund:{raw_status}"[:80])]
    try:
        quantity = max(1, int(refund.get("num") or 1))
        price = yuan_to_fen(refund.get("price"), "price")
        items = [OrderItem(sku=str(refund.get("sku") or refund.get("num_iid") or refund.get("oid") or "?")[:120],
                           name=str(refund.get("title") or "")[:300], quantity=quantity, price_fen=price)] \
            if refund.get("num_iid") or refund.get("oid") else []
        reason = " — ".join(str(part) for part in (refund.get("reason"), refund.get("desc")) if part)[:500]
        occurred = china_time(refund.get("modified")) or china_time(refund.get("created"))
        if occurred is None:
            raise ValueError(Msg("the refund has neither modified nor created"))
        event = refund_event(CanonicalRefund(refund_id=refund_id, order_id=order_id, shop=shop, channel=channel,
                                             status=status, amount_fen=yuan_to_fen(refund.get("refund_fee"),
                                                                                   "refund_fee"),
                                             reason=reason, items=items), identities, occurred)
        return [event]
    except (ValidationError, ValueError) as exc:
        log.warning("Taobao refund %s kept unmapped: it does not map to a canonical refund (%s)", refund_id,
                    type(exc).__name__)
        return [unmapped_record(Msg("refund %(refund_id)s does not map to a canonical refund (%(error)s)",
                                    refund_id=refund_id, error=type(exc).__name__),
                                refund, f"refund-{refund_id}", f"refund:{raw_status}"[:80])]
