"""抖店 (Douyin shop) pushes → canonical order and refund events. Pure: no I/O.

A push (消息推送) is a JSON array of messages ``{"tag": "101", "msg_id": "…", "data": "<JSON string>"}``,
POSTed with the headers ``app-id`` and ``event-sign`` (see :mod:`connectors.douyin.signing`). The
messages are thin — the parent order id (``p_id``), the shop, a status, times — and never name the
buyer, so the connector completes every order or refund message with ``order.orderDetail``
(:mod:`connectors.douyin.client`). 抖店 amounts are integers in fen already.

======  ==========================  =====================
tag     抖店 message                 Tideflow event
======  ==========================  =====================
100     订单创建 TradeCreate          ``order.created``
101     订单支付/确认 TradePaid        ``order.paid``
102     卖家发货 TradeSellerShip       ``order.shipped``
103     交易完成 TradeSuccess          ``order.completed``
106     订单取消 TradeCanceled         ``order.cancelled``
200     买家发起售后 RefundCreated      ``refund.requested``
206     退款成功 RefundSuccess          ``refund.completed``
204     拒绝退款 RefundRefused          ``refund.rejected``
205     拒绝退货申请                    ``refund.rejected``
207     售后关闭 RefundClosed           ``refund.rejected``
======  ==========================  =====================

Other tags (logistics or address changes, intermediate after-sale steps) give no event: the connector
stores them raw as *unmapped* (visible and counted at ``GET /api/connectors/<id>/unmapped``).

Tag ``0`` is the console's check when a merchant saves the push URL: one message
``[{"tag":"0","msg_id":"0","data":"2020-09-10T16:27:56.52842897+08:00"}]`` whose ``data`` is a timestamp
string, not JSON; it must be answered ``{"code":0,"msg":"success"}`` or the URL cannot be saved.

``order.paid`` is dated by the order's ``pay_time`` (the order detail's, else the message's), never by
when the push arrived: journeys' waits and settlement periods count from the payment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, Literal

from connectors.canonical import CanonicalOrder, CanonicalRefund, OrderItem, order_event, refund_event
from connectors.errors import ConnectorProtocolError
from wording import Msg

CHANNEL: Final = "douyin"
ORDER_TAGS: Final[dict[str, str]] = {"100": "created", "101": "paid", "102": "shipped", "103": "completed",
                                     "106": "cancelled"}
REFUND_TAGS: Final[dict[str, Literal["requested", "completed", "rejected"]]] = {
    "200": "requested", "206": "completed", "204": "rejected", "205": "rejected", "207": "rejected"}
TEST_TAGS: Final = frozenset({"0"})
#: China time, for times 抖店 sends as ``yyyy-MM-dd HH:mm:ss`` text rather than unix seconds
CHINA: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
#: when each message's change happened (first field present wins)
TIME_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "100": ("create_time",), "101": ("pay_time",), "102": ("update_time",), "103": ("complete_time",),
    "106": ("cancel_time",), "200": ("apply_time", "update_time"), "206": ("success_time",),
    "204": ("refuse_time",), "205": ("refuse_time",), "207": ("close_time",),
}
MAX_MESSAGES: Final = 500
PHONE: Final = re.compile(r"^\+?(86)?1\d{10}$")


@dataclass(frozen=True)
class Message:
    tag: str
    msg_id: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def order_id(self) -> str:
        value = self.data.get("p_id") or self.data.get("order_id")
        if value in (None, "", 0):
            raise ConnectorProtocolError(Msg("message %(msg_id)s (tag %(tag)s) has no p_id (the order)",
                                             msg_id=self.msg_id, tag=self.tag))
        return str(value)

    @property
    def relevant(self) -> bool:
        return self.tag in ORDER_TAGS or self.tag in REFUND_TAGS


def parse_messages(body: bytes) -> list[Message]:
    """The messages of one push, or :class:`ConnectorProtocolError` naming what is wrong."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConnectorProtocolError(Msg("the push is not JSON (%(value)s)",
                                         value=getattr(exc, 'msg', type(exc).__name__))) from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise ConnectorProtocolError(Msg("the push must be a JSON array of messages {tag, msg_id, data}"))
    if len(data) > MAX_MESSAGES:
        raise ConnectorProtocolError(Msg("the push has %(count)s messages; at most %(max_messages)s are accepted",
                                         count=len(data), max_messages=MAX_MESSAGES))
    messages = []
    for n, item in enumerate(data):
        if not isinstance(item, dict) or item.get("tag") in (None, ""):
            raise ConnectorProtocolError(Msg("message [%(n)s] has no tag", n=n))
        tag = str(item["tag"])
        raw = item.get("data")
        if tag in TEST_TAGS:  # the URL check: data is a timestamp string, nothing to parse
            messages.append(Message(tag=tag, msg_id=str(item.get("msg_id") or ""), data={"check": str(raw)[:80]}))
            continue
        if isinstance(raw, str):
            try:
                raw = json.loads(raw) if raw.strip() else {}
            except json.JSONDecodeError as exc:
                raise ConnectorProtocolError(Msg("message [%(n)s] (tag %(tag)s): data is not a JSON string (%(msg)s)",
                                                 n=n, tag=tag, msg=exc.msg)) \
                    from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConnectorProtocolError(Msg("message [%(n)s] (tag %(tag)s): data must be a JSON object", n=n, tag=tag))
        messages.append(Message(tag=tag, msg_id=str(item.get("msg_id") or ""), data=raw))
    return messages


def _time(value: Any) -> datetime | None:
    """Unix seconds (or milliseconds), or ``yyyy-MM-dd HH:mm:ss`` China time, as an aware datetime."""
    if isinstance(value, bool) or value in (None, "", 0, "0"):
        return None
    text = str(value).strip()
    if not text.isdigit():
        try:
            return datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
        except ValueError:
            raise ConnectorProtocolError(Msg("time %(value)s is neither unix seconds nor yyyy-MM-dd HH:mm:ss",
                                             value=repr(text[:30]))) \
                from None
    seconds = int(text)
    return datetime.fromtimestamp(seconds / 1000 if seconds > 10**11 else seconds, UTC)


def _fen(value: Any, what: str) -> int:
    if isinstance(value, bool | float):
        raise ConnectorProtocolError(Msg("%(what)s must be an integer amount in fen", what=what))
    try:
        fen = int(value or 0)
    except (TypeError, ValueError):
        raise ConnectorProtocolError(Msg("%(what)s is not an amount in fen: %(value)s", what=what,
                                         value=repr(str(value)[:30]))) from None
    if fen < 0:
        raise ConnectorProtocolError(Msg("%(what)s is negative", what=what))
    return fen


def buyer_identities(detail: dict[str, Any]) -> dict[str, str]:
    """``douyin_buyer`` (``doudian_open_id``) and ``phone`` when the order detail has it in clear.

    抖店 encrypts the receiver's phone (``encrypt_post_tel``); decrypting needs the separate
    ``order.batchDecrypt`` permission, so an encrypted phone is left out.
    """
    identities: dict[str, str] = {}
    phone = str(detail.get("post_tel") or "").strip()
    if PHONE.match(phone):
        identities["phone"] = phone
    for key in ("doudian_open_id", "open_id", "user_id"):
        value = detail.get(key)
        if value not in (None, "", 0) and not isinstance(value, bool):
            identities["douyin_buyer"] = str(value)
            break
    if not identities:
        raise ConnectorProtocolError(Msg("order %(value)s has no buyer (no doudian_open_id)",
                                         value=detail.get('order_id')))
    return identities


def _items(detail: dict[str, Any], only: str | None = None) -> list[OrderItem]:
    items = []
    for line in detail.get("sku_order_list") or []:
        if not isinstance(line, dict) or (only is not None and str(line.get("order_id")) != only):
            continue
        quantity = max(1, int(line.get("item_num") or 1))
        paid = _fen(line.get("pay_amount"), "sku_order_list[].pay_amount")
        if paid % quantity:
            paid = _fen(line.get("origin_amount"), "sku_order_list[].origin_amount")
        unit = paid // quantity
        sku = line.get("sku_id") or line.get("product_id") or line.get("order_id")
        items.append(OrderItem(sku=str(sku or "unknown"), name=str(line.get("product_name") or "")[:300],
                               quantity=quantity, price_fen=unit))
    return items


def _when(message: Message, detail: dict[str, Any]) -> datetime:
    """When the message's change happened: the payment's own time for ``order.paid`` (the detail's
    ``pay_time``, else the message's), otherwise the message's time field, then the order's update time."""
    candidates: list[Any] = []
    if message.tag == "101":
        candidates += [detail.get("pay_time"), message.data.get("pay_time")]
    candidates += [message.data.get(k) for k in TIME_FIELDS.get(message.tag, ())]
    candidates += [message.data.get("update_time"), detail.get("update_time"), detail.get("create_time")]
    for value in candidates:
        found = _time(value)
        if found is not None:
            return found
    raise ConnectorProtocolError(Msg("message %(msg_id)s (tag %(tag)s) and its order carry no time",
                                     msg_id=message.msg_id, tag=message.tag))


def event_from_message(message: Message, detail: dict[str, Any]) -> dict[str, Any]:
    """The canonical event of one order or refund message, with its order's detail (``shop_order_detail``)."""
    shop = str(detail.get("shop_id") or message.data.get("shop_id") or "")
    if not shop:
        raise ConnectorProtocolError(Msg("message %(msg_id)s names no shop_id", msg_id=message.msg_id))
    if message.tag in ORDER_TAGS:
        order = CanonicalOrder(
            order_id=message.order_id, shop=shop, channel=CHANNEL, status=ORDER_TAGS[message.tag],  # type: ignore[arg-type,unused-ignore]
            amount_fen=_fen(detail.get("pay_amount", message.data.get("pay_amount")), "pay_amount"),
            items=_items(detail), created_at=_time(detail.get("create_time")), paid_at=_time(detail.get("pay_time")))
        return order_event(order, buyer_identities(detail), _when(message, detail))
    if message.tag in REFUND_TAGS:
        aftersale = message.data.get("aftersale_id")
        if aftersale in (None, "", 0):
            raise ConnectorProtocolError(Msg("message %(msg_id)s (tag %(tag)s) has no aftersale_id",
                                             msg_id=message.msg_id, tag=message.tag))
        sub_order = message.data.get("s_id")
        refund = CanonicalRefund(
            refund_id=str(aftersale), order_id=message.order_id, shop=shop, channel=CHANNEL,
            status=REFUND_TAGS[message.tag], amount_fen=_fen(message.data.get("refund_amount"), "refund_amount"),
            reason=str(message.data.get("latest_record") or "")[:500],
            items=_items(detail, str(sub_order)) if sub_order not in (None, "", 0) else [])
        return refund_event(refund, buyer_identities(detail), _when(message, detail))
    raise ConnectorProtocolError(Msg("tag %(tag)s gives no event", tag=message.tag))
