"""JD (京东 POP) orders and refund applications as canonical order and refund events (pure).

Order state (``orderState``) → canonical order status:

======================================================  ===========
``WAIT_SELLER_STOCK_OUT``, ``WAIT_SELLER_DELIVERY``     paid (JD lists orders once they are paid)
``WAIT_GOODS_RECEIVE_CONFIRM``                          shipped
``FINISHED_L``                                          completed
``TRADE_CANCELED``                                      cancelled
``LOCKED``, ``PAUSE``, ``POP_ORDER_PAUSE``              no event (a hold, not a change of state)
======================================================  ===========

An order first seen shipped or completed also yields its ``order.paid`` (at
``paymentConfirmTime``). Event ids are ``jd:<shop>:<orderId>:<status>``.

Refund application status (``status`` of ``refundapply.queryPageList``): ``0`` 未审核 and ``10``
物流待跟进 → requested; ``1`` 审核通过, ``3`` 京东财务审核通过, ``5`` 人工审核通过, ``6`` 拦截并退款,
``9`` 强制关单并退款 → completed; ``2`` 审核不通过, ``4`` 京东财务审核不通过, ``11`` 用户撤销 → rejected.
``applyRefundSum`` is in fen already.

The buyer is ``jd_buyer`` = ``open_id_buyer`` (else ``xid_buyer``, else the legacy ``pin``); ``phone``
when ``consigneeInfo.mobile`` is a full number (``enSearch`` encrypts it, so it is left out).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from connectors.canonical import CanonicalOrder, CanonicalRefund, OrderItem, order_event, refund_event
from connectors.polling import china_time, mobile, unit_price_fen, yuan_to_fen

log = logging.getLogger(__name__)
CHANNEL = "jd"

ORDER_STATE = {
    "WAIT_SELLER_STOCK_OUT": "paid", "WAIT_SELLER_DELIVERY": "paid",
    "WAIT_GOODS_RECEIVE_CONFIRM": "shipped",
    "FINISHED_L": "completed",
    "TRADE_CANCELED": "cancelled",
}
#: the states asked for (order_state is required by JOS)
ORDER_STATES = "WAIT_SELLER_STOCK_OUT,WAIT_GOODS_RECEIVE_CONFIRM,WAIT_SELLER_DELIVERY,FINISHED_L,TRADE_CANCELED"
ORDER_FIELDS = ("orderId,venderId,orderState,orderTotalPrice,orderSellerPrice,orderPayment,freightPrice,"
                "orderStartTime,paymentConfirmTime,modified,consigneeInfo,itemInfoList,pin,open_id_buyer,xid_buyer")
REFUND_STATUS = {0: "requested", 10: "requested", 1: "completed", 3: "completed", 5: "completed", 6: "completed",
                 9: "completed", 2: "rejected", 4: "rejected", 11: "rejected"}
_AFTER_PAYMENT = ("shipped", "completed")


def _buyer(record: dict[str, Any], *names: str) -> dict[str, str]:
    for name in names:
        value = str(record.get(name) or "").strip()
        if value:
            return {"jd_buyer": value}
    return {}


def _items(order: dict[str, Any]) -> list[OrderItem]:
    items: list[OrderItem] = []
    for line in order.get("itemInfoList") or []:
        if not isinstance(line, dict):
            continue
        quantity = max(1, int(line.get("itemTotal") or 1))
        unit = yuan_to_fen(line.get("jdPrice"), "itemInfoList.jdPrice")
        sku = str(line.get("outerSkuId") or line.get("skuId") or line.get("wareId") or "?")
        items.append(OrderItem(sku=sku[:120], name=str(line.get("skuName") or "")[:300], quantity=quantity,
                               price_fen=unit_price_fen(unit * quantity, quantity)))
    return items


def order_events(order: dict[str, Any], *, shop: str,
                 attribution: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The canonical events of one JD order; [] for a state that is not a change, or no buyer id."""
    order_id = str(order.get("orderId") or "").strip()
    status = ORDER_STATE.get(str(order.get("orderState") or ""))
    identities = _buyer(order, "open_id_buyer", "xid_buyer", "pin")
    consignee = order.get("consigneeInfo")
    phone = mobile(consignee.get("mobile")) if isinstance(consignee, dict) else None
    if phone:
        identities["phone"] = phone
    if not order_id or status is None or not identities:
        log.info("JD order %s skipped (state %s%s)", order_id or "?", order.get("orderState"),
                 "" if identities else ", no buyer id")
        return []
    try:
        created = china_time(order.get("orderStartTime"))
        paid_at = china_time(order.get("paymentConfirmTime"))
        modified = china_time(order.get("modified")) or paid_at or created
        if modified is None:
            raise ValueError("the order has neither modified nor orderStartTime")
        base = {"order_id": order_id, "shop": shop, "channel": CHANNEL,
                "amount_fen": yuan_to_fen(order.get("orderPayment"), "orderPayment"), "items": _items(order),
                "created_at": created, "paid_at": paid_at, "attribution": dict(attribution or {})}
        events: list[dict[str, Any]] = []
        if status in _AFTER_PAYMENT and paid_at is not None:
            events.append(order_event(CanonicalOrder(status="paid", **base), identities, paid_at))
        occurred = paid_at if status == "paid" and paid_at else modified
        events.append(order_event(CanonicalOrder(status=status, **base), identities, occurred))
        return events
    except (ValidationError, ValueError) as exc:
        log.warning("JD order %s skipped: it does not map to a canonical order (%s)", order_id, type(exc).__name__)
        return []


def refund_apply_events(apply: dict[str, Any], *, shop: str) -> list[dict[str, Any]]:
    """The canonical event of one refund application; [] when it cannot be mapped."""
    refund_id = str(apply.get("id") or "").strip()
    order_id = str(apply.get("orderId") or "").strip()
    try:
        status = REFUND_STATUS.get(int(apply.get("status")))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        status = None
    identities = _buyer(apply, "openIdBuyer", "xidBuyer", "buyerId")
    if not refund_id or not order_id or status is None or not identities:
        log.info("JD refund application %s skipped (status %s)", refund_id or "?", apply.get("status"))
        return []
    try:
        amount = int(apply.get("applyRefundSum") or 0)
        occurred = (china_time(apply.get("checkTime")) if status != "requested" else None) \
            or china_time(apply.get("applyTime"))
        if occurred is None:
            raise ValueError("the application has no applyTime")
        refund = CanonicalRefund(refund_id=refund_id, order_id=order_id, shop=shop, channel=CHANNEL, status=status,
                                 amount_fen=amount, reason=str(apply.get("reason") or "")[:500])
        return [refund_event(refund, identities, occurred)]
    except (ValidationError, ValueError) as exc:
        log.warning("JD refund application %s skipped: it does not map to a canonical refund (%s)", refund_id,
                    type(exc).__name__)
        return []
