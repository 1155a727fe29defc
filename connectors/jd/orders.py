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

Refund application status (``status`` of ``refundapply.queryPageList``), every documented one:

=====================================================================  ==========
``0`` 未审核, ``7`` 青龙拦截成功 (the parcel is stopped; the refund     requested
follows), ``8`` 青龙拦截失败 (the buyer must reject or return it),
``10`` 物流待跟进(线下拦截), ``17`` 协商退货退款, ``19`` 纠纷介入,
``27`` 京东承诺拦截
``1`` 审核通过, ``3`` 京东财务审核通过 (退款成功), ``5`` 人工审核通过,        completed
``6`` 京东拦截并退款, ``9`` 强制关单并退款, ``16`` 拒收后退款
``2`` 审核不通过, ``4`` 京东财务审核不通过, ``11`` 用户撤销, ``18`` 协商关闭    rejected
=====================================================================  ==========

A status JD adds later is kept raw as an unmapped record (never dropped). ``applyRefundSum`` is in fen.

After-sale service orders (售后服务单, ``jingdong.asc.query.list``): a return (``customerExpect`` 10 退货)
or a refund-only service (11 仅退款) becomes ``refund.*`` with the id ``asc-<serviceId>``: ``10010`` 完成 →
completed, ``10004`` 审核关闭 / ``10011`` 取消 → rejected, any other service status → requested. The list
carries no refunded amount, so these events say ``amount_fen`` 0: the money moves with the service's
refund application (the refunds stream), and settlement never counts it twice. Exchanges, repairs and
the other service kinds are kept raw as unmapped.

The buyer is ``jd_buyer`` = ``open_id_buyer`` (else ``xid_buyer``, else the legacy ``pin``); ``phone``
when ``consigneeInfo.mobile`` is a full number (``enSearch`` encrypts it, so it is left out).
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
CHANNEL = "jd"

ORDER_STATE = {
    "WAIT_SELLER_STOCK_OUT": "paid", "WAIT_SELLER_DELIVERY": "paid",
    "WAIT_GOODS_RECEIVE_CONFIRM": "shipped",
    "FINISHED_L": "completed",
    "TRADE_CANCELED": "cancelled",
}
#: states that hold an order without changing it: no event, nothing to keep
HOLDS = frozenset({"LOCKED", "PAUSE", "POP_ORDER_PAUSE"})
#: the states asked for (order_state is required by JOS)
ORDER_STATES = "WAIT_SELLER_STOCK_OUT,WAIT_GOODS_RECEIVE_CONFIRM,WAIT_SELLER_DELIVERY,FINISHED_L,TRADE_CANCELED"
ORDER_FIELDS = ("orderId,venderId,orderState,orderTotalPrice,orderSellerPrice,orderPayment,freightPrice,"
                "orderStartTime,paymentConfirmTime,modified,consigneeInfo,itemInfoList,pin,open_id_buyer,xid_buyer")
REFUND_STATUS = {0: "requested", 7: "requested", 8: "requested", 10: "requested", 17: "requested", 19: "requested",
                 27: "requested",
                 1: "completed", 3: "completed", 5: "completed", 6: "completed", 9: "completed", 16: "completed",
                 2: "rejected", 4: "rejected", 11: "rejected", 18: "rejected"}
#: 售后服务单 kinds that are refunds (10 退货, 11 仅退款) and service statuses that end one
ASC_REFUND_KINDS = {10: "return", 11: "refund only"}
ASC_STATUS = {10010: "completed", 10004: "rejected", 10011: "rejected"}
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
    state = str(order.get("orderState") or "")
    if status is None and state in HOLDS:
        return []  # a hold, not a change of state
    if not order_id or status is None or not identities:
        why = Msg("no order id") if not order_id else (Msg("state %(state)s is not mapped", state=repr(state))
                                                        if status is None else Msg("no buyer id"))
        return [unmapped_record(Msg("order: %(why)s", why=why), order, order_id, f"order:{state}")]
    try:
        created = china_time(order.get("orderStartTime"))
        paid_at = china_time(order.get("paymentConfirmTime"))
        modified = china_time(order.get("modified")) or paid_at or created
        if modified is None:
            raise ValueError(Msg("the order has neither modified nor orderStartTime"))
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
        return [unmapped_record(Msg("order does not map to a canonical order (%(error)s)", error=type(exc).__name__),
                                order, order_id, f"order:{state}")]


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
        why = Msg("no id or order") if not refund_id or not order_id else (
            Msg("status %(status)s is not a documented one", status=repr(apply.get("status"))) if status is None
            else Msg("no buyer id"))
        return [unmapped_record(Msg("refund application: %(why)s", why=why), apply, refund_id,
                                f"refundapply:{apply.get('status')}")]
    try:
        amount = int(apply.get("applyRefundSum") or 0)
        occurred = (china_time(apply.get("checkTime")) if status != "requested" else None) \
            or china_time(apply.get("applyTime"))
        if occurred is None:
            raise ValueError(Msg("the application has no applyTime"))
        refund = CanonicalRefund(refund_id=refund_id, order_id=order_id, shop=shop, channel=CHANNEL, status=status,
                                 amount_fen=amount, reason=str(apply.get("reason") or "")[:500])
        return [refund_event(refund, identities, occurred)]
    except (ValidationError, ValueError) as exc:
        return [unmapped_record(Msg("refund application does not map to a refund (%(error)s)",
                                    error=type(exc).__name__), apply,
                                refund_id, f"refundapply:{apply.get('status')}")]


def asc_service_events(service: dict[str, Any], *, shop: str) -> list[dict[str, Any]]:
    """The canonical event of one after-sale service order (售后服务单); kept raw when it is no refund."""
    service_id = str(service.get("serviceId") or "").strip()
    order_id = str(service.get("orderId") or "").strip()
    try:
        kind = int(service.get("customerExpect"))  # type: ignore[arg-type]
        code = int(service.get("serviceStatus"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        kind = code = -1
    identities = _buyer(service, "openIdBuyer", "xidBuyer", "customerPin")
    if kind not in ASC_REFUND_KINDS or not service_id or not order_id or not identities:
        why = (Msg("service kind %(kind)s is not a return or refund", kind=repr(service.get("customerExpect")))
               if kind not in ASC_REFUND_KINDS else Msg("no service id, order or buyer"))
        return [unmapped_record(Msg("after-sale service: %(why)s", why=why), service, f"asc-{service_id}",
                                f"asc:{service.get('customerExpect')}")]
    status = ASC_STATUS.get(code, "requested")
    try:
        occurred = (china_time(service.get("updateDate")) or china_time(service.get("approveTime"))
                    or china_time(service.get("applyTime")))
        if occurred is None:
            raise ValueError(Msg("the service has no time"))
        refund = CanonicalRefund(refund_id=f"asc-{service_id}", order_id=order_id, shop=shop, channel=CHANNEL,
                                 status=status, amount_fen=0,
                                 reason=f"{ASC_REFUND_KINDS[kind]}: {service.get('questionDesc') or ''!s}"[:500])
        return [refund_event(refund, identities, occurred, event_id=f"jd:{shop}:asc:{service_id}:{code}")]
    except (ValidationError, ValueError) as exc:
        return [unmapped_record(Msg("after-sale service does not map to a refund (%(error)s)",
                                    error=type(exc).__name__), service,
                                f"asc-{service_id}", f"asc:{kind}")]
