"""Youzan Cloud (有赞云) pushes → canonical order and refund events. Pure: no I/O.

A push (有赞云 消息推送, "无容器" HTTP push) is a JSON object POSTed with the headers ``Event-Sign``,
``Event-Type`` and ``Client-Id``::

    {"client_id": "…", "kdt_id": 56232, "kdt_name": "有赞的店", "id": "E2020…", "type": "trade_TradePaid",
     "status": "TRADE_PAID", "msg": "%7B%22full_order_info%22…", "msg_id": "6dc15f0b-…", "version": 1621946649,
     "sendCount": 1, "test": false, "mode": 1}

``msg`` is the business message: URL-encoded (UTF-8, form encoding: a space is ``+``) JSON for the
``trade_*`` messages, a JSON object for the newer ``youzan_trade_Refund*`` ones. ``trade_TradeCreate`` /
``trade_TradePaid`` / ``trade_TradeBuyerPay`` carry the whole trade (``full_order_info``); the others are thin (``tid``,
``update_time``, refund fields) and the connector fetches the trade (``youzan.trade.get``) to learn the
buyer. Amounts are yuan strings (``"129.00"``) and become integer fen through :class:`~decimal.Decimal`.
Times are ``yyyy-MM-dd HH:mm:ss`` in China time (UTC+8).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal
from urllib.parse import unquote_plus

from connectors.canonical import CanonicalOrder, CanonicalRefund, OrderItem, order_event, refund_event
from connectors.errors import ConnectorProtocolError
from wording import Msg

CHINA: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
CHANNEL: Final = "youzan"

#: push type → order status (messages carrying or needing the trade)
ORDER_TYPES: Final[dict[str, str]] = {
    "trade_TradeCreate": "created",
    "trade_TradePaid": "paid",
    "trade_TradeBuyerPay": "paid",  # "waiting for the seller to ship": paid, deduplicated with TradePaid
    "trade_TradeSellerShip": "shipped",
    "trade_TradeSuccess": "completed",
    "trade_TradeClose": "cancelled",
}
#: push type → refund status (the old ``trade_refund_*`` and the newer ``youzan_trade_Refund*`` messages)
REFUND_TYPES: Final[dict[str, Literal["requested", "completed", "rejected"]]] = {
    "trade_refund_BuyerCreated": "requested",
    "trade_refund_RefundSellerCreated": "requested",
    "youzan_trade_RefundCreated": "requested",
    "trade_refund_RefundSellerAgree": "completed",
    "trade_refund_RefundSuccess": "completed",
    "trade_refund_SysRefund": "completed",
    "youzan_trade_RefundSellerAgree": "completed",
    "youzan_trade_RefundSuccess": "completed",
    "trade_refund_RefundSellerRefuseBuyer": "rejected",
    "trade_refund_RefundClosed": "rejected",
    "youzan_trade_RefundClosed": "rejected",
}
#: when each order status happened, by the trade's ``order_info`` time fields (first one present wins)
STATUS_TIMES: Final[dict[str, tuple[str, ...]]] = {
    "created": ("created",),
    "paid": ("pay_time",),
    "shipped": ("consign_time", "update_time"),
    "completed": ("success_time", "update_time"),
    "cancelled": ("update_time",),
}
PHONE: Final = re.compile(r"^\+?(86)?1\d{10}$")


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Push:
    """One parsed push envelope."""

    type: str
    kdt_id: str
    id: str
    msg_id: str
    version: int | None
    test: bool
    msg: dict[str, Any] = field(default_factory=dict)


def yuan_to_fen(value: Any, what: str) -> int:
    """``"129.00"`` (or 129, "129.5") → 12900 fen, exactly; more than 2 decimals or a negative is an error."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise ConnectorProtocolError(Msg("%(what)s must be a yuan amount like \"129.00\", got %(name)s", what=what,
                                         name=type(value).__name__))
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConnectorProtocolError(Msg("%(what)s is not a yuan amount: %(value)s", what=what,
                                         value=repr(str(value)[:40]))) from None
    fen = amount * 100
    if not amount.is_finite() or fen != fen.to_integral_value() or fen < 0:
        raise ConnectorProtocolError(Msg("%(what)s %(value)s is not a non-negative amount in yuan with at most 2 "
                                         "decimals", what=what, value=repr(str(value)[:40])))
    return int(fen)


def china_time(text: Any) -> datetime | None:
    """``"2024-11-04 14:37:14"`` (China time) → an aware datetime; empty → None."""
    if not text or not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA)
    except ValueError:
        raise ConnectorProtocolError(Msg("time %(value)s is not yyyy-MM-dd HH:mm:ss", value=repr(text[:40]))) from None


def decode_msg(msg: Any) -> dict[str, Any]:
    """The business message: URL-encoded JSON (``trade_*``) or already an object (``youzan_trade_Refund*``)."""
    if msg is None or msg == "":
        return {}
    if isinstance(msg, dict):
        return msg
    if not isinstance(msg, str):
        raise ConnectorProtocolError(Msg("'msg' must be a URL-encoded JSON string or an object"))
    # Youzan encodes ``msg`` like Java's URLEncoder (form encoding): a space is '+', a literal '+' is %2B
    # (recorded pushes: "created":"2021-03-07+17:56:50"). Percent-decoding alone would leave the '+'.
    try:
        decoded = json.loads(unquote_plus(msg, errors="strict"))
    except UnicodeDecodeError:
        raise ConnectorProtocolError(Msg("'msg' is not URL-encoded UTF-8")) from None
    except json.JSONDecodeError as exc:
        raise ConnectorProtocolError(Msg("'msg' is not URL-encoded JSON (%(msg)s)", msg=exc.msg)) from None
    if not isinstance(decoded, dict):
        raise ConnectorProtocolError(Msg("'msg' must decode to a JSON object"))
    return decoded


def parse_push(body: bytes) -> Push:
    """The push envelope, or :class:`ConnectorProtocolError` naming what is wrong."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConnectorProtocolError(Msg("the push is not JSON (%(value)s)",
                                         value=getattr(exc, 'msg', type(exc).__name__))) from None
    if not isinstance(data, dict):
        raise ConnectorProtocolError(Msg("the push must be a JSON object"))
    test = data.get("test") in (True, "true", 1, "1")
    if test:
        return Push(type=str(data.get("type") or ""), kdt_id=str(data.get("kdt_id") or ""), id="", msg_id="",
                    version=None, test=True)
    kind = data.get("type")
    if not isinstance(kind, str) or not kind:
        raise ConnectorProtocolError(Msg("the push has no 'type' (e.g. trade_TradePaid)"))
    kdt_id = data.get("kdt_id")
    if kdt_id in (None, "") or isinstance(kdt_id, bool):
        raise ConnectorProtocolError(Msg("the push has no 'kdt_id' (the shop)"))
    version = data.get("version")
    return Push(type=kind, kdt_id=str(kdt_id), id=str(data.get("id") or ""), msg_id=str(data.get("msg_id") or ""),
                version=int(version) if isinstance(version, int) and not isinstance(version, bool) else None,
                test=False, msg=decode_msg(data.get("msg")))


def full_order_info(msg: dict[str, Any]) -> dict[str, Any] | None:
    """The trade in a message (``full_order_info``), if the message carries it."""
    info = msg.get("full_order_info")
    return info if isinstance(info, dict) and isinstance(info.get("order_info"), dict) else None


def trade_id(push: Push) -> str:
    """The trade id (tid) a message is about."""
    info = full_order_info(push.msg)
    tid = (info or {}).get("order_info", {}).get("tid") or push.msg.get("tid") or (
        push.id if push.type in ORDER_TYPES else "")
    if not tid:
        raise ConnectorProtocolError(Msg("the %(type)s message names no trade (tid)", type=push.type))
    return str(tid)


def buyer_identities(info: dict[str, Any]) -> dict[str, str]:
    """The buyer's identities: ``phone`` when Youzan gives it in clear, and ``youzan_buyer``.

    Youzan encrypts personal data for most apps (``$…$1$``); an encrypted phone is left out (decrypting it
    needs Youzan's decrypt API).
    """
    buyer = _obj(info.get("buyer_info"))
    identities: dict[str, str] = {}
    phone = str(buyer.get("buyer_phone") or "").strip().replace(" ", "").replace("-", "")
    if PHONE.match(phone):
        identities["phone"] = phone
    for key in ("yz_open_id", "buyer_id", "fans_id"):
        value = buyer.get(key)
        if value not in (None, "", 0) and not isinstance(value, bool):
            identities["youzan_buyer"] = str(value)
            break
    if not identities:
        raise ConnectorProtocolError(Msg("the trade has no buyer (buyer_info has no buyer_phone, yz_open_id or "
                                         "fans_id)"))
    return identities


def _items(info: dict[str, Any], oids: set[str] | None = None) -> list[OrderItem]:
    items: list[OrderItem] = []
    for line in info.get("orders") or []:
        if not isinstance(line, dict) or (oids is not None and str(line.get("oid")) not in oids):
            continue
        quantity = int(line.get("num") or 1)
        paid = yuan_to_fen(line["payment"], "orders[].payment") if line.get("payment") not in (None, "") else None
        if paid is not None and paid % quantity == 0:
            unit = paid // quantity
        else:
            unit = yuan_to_fen(line.get("price") or "0", "orders[].price")
        sku = line.get("sku_id") or line.get("outer_sku_id") or line.get("item_id") or line.get("oid")
        items.append(OrderItem(sku=str(sku or "unknown"), name=str(line.get("title") or "")[:300], quantity=quantity,
                               price_fen=unit, category=str(line.get("item_type") or "")[:120]))
    return items


def _when(value: datetime | None, push: Push) -> datetime:
    if value is not None:
        return value
    if push.version:
        seconds = push.version / 1000 if push.version > 10**11 else push.version
        return datetime.fromtimestamp(seconds, UTC)
    return datetime.now(UTC)


def order_from_trade(info: dict[str, Any], shop: str, status: str, push: Push) -> dict[str, Any]:
    """An ``order.<status>`` event from a trade (``full_order_info``)."""
    order_info = info["order_info"]
    pay = _obj(info.get("pay_info"))
    amount = pay.get("payment") if pay.get("payment") not in (None, "") else pay.get("total_fee", "0")
    order = CanonicalOrder(
        order_id=str(order_info.get("tid") or ""), shop=shop, channel=CHANNEL, status=status,  # type: ignore[arg-type,unused-ignore]
        amount_fen=yuan_to_fen(amount, "pay_info.payment"), items=_items(info),
        created_at=china_time(order_info.get("created")), paid_at=china_time(order_info.get("pay_time")))
    at = next((t for t in (china_time(order_info.get(k)) for k in STATUS_TIMES[status]) if t is not None), None)
    if status in ("shipped", "completed", "cancelled"):
        at = china_time(push.msg.get("update_time")) or at
    return order_event(order, buyer_identities(info), _when(at, push))


def refund_from_message(msg: dict[str, Any], info: dict[str, Any], shop: str,
                        status: Literal["requested", "completed", "rejected"], push: Push) -> dict[str, Any]:
    """A ``refund.<status>`` event from a refund message and its trade."""
    refund_id = msg.get("refund_id")
    if not refund_id:
        raise ConnectorProtocolError(Msg("the %(type)s message has no refund_id", type=push.type))
    oids_text = str(msg.get("oids") or "")
    oids = {o.strip() for o in oids_text.split(",") if o.strip()} or None
    reason = str(msg.get("refund_reason_desc") or msg.get("refund_reason") or "")
    if status == "rejected" and push.type.endswith("Closed"):
        reason = reason or "closed (withdrawn by the buyer)"
    refund = CanonicalRefund(
        refund_id=str(refund_id), order_id=str(info["order_info"].get("tid") or msg.get("tid")), shop=shop,
        channel=CHANNEL, status=status, amount_fen=yuan_to_fen(msg.get("refunded_fee") or "0", "refunded_fee"),
        reason=reason[:500], items=_items(info, oids) if oids else [])
    return refund_event(refund, buyer_identities(info), _when(china_time(msg.get("update_time")), push))


def needs_trade(push: Push) -> bool:
    """Whether the message lacks the trade (so ``youzan.trade.get`` must fill it in)."""
    return push.type in REFUND_TYPES or (push.type in ORDER_TYPES and full_order_info(push.msg) is None)


def events_from_push(push: Push, trade: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The canonical events of one push; ``trade`` is the fetched ``full_order_info`` for thin messages.

    Types that are not order or refund changes (memo changes, address changes, …) give no events.
    """
    if push.test:
        return []
    info = full_order_info(push.msg) or trade
    if push.type in ORDER_TYPES:
        if info is None:
            raise ConnectorProtocolError(Msg("the %(type)s message carries no trade and none was fetched",
                                             type=push.type))
        return [order_from_trade(info, push.kdt_id, ORDER_TYPES[push.type], push)]
    if push.type in REFUND_TYPES:
        if info is None:
            raise ConnectorProtocolError(Msg("the %(type)s message needs its trade, and none was fetched",
                                             type=push.type))
        return [refund_from_message(push.msg, info, push.kdt_id, REFUND_TYPES[push.type], push)]
    return []
