"""Shopify webhooks → canonical order and refund events. Pure: no I/O.

A webhook is a JSON body with the headers ``X-Shopify-Topic`` (``orders/paid`` …),
``X-Shopify-Shop-Domain`` (``shop.myshopify.com``), ``X-Shopify-Webhook-Id`` (the same on every
redelivery of one webhook), ``X-Shopify-Hmac-Sha256`` and ``X-Shopify-Triggered-At``.

Amounts are decimal strings in the shop's currency (``"199.00"``); they become integer minor units
(fen for CNY, cents for USD/EUR, whole yen for JPY …) through :class:`~decimal.Decimal`, and the
event keeps the ``currency``. The event id is ``shopify:<shop>:<webhook id>``: a redelivered webhook
is a duplicate, while each topic is its own event.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

from connectors.canonical import CanonicalOrder, CanonicalRefund, OrderItem, order_event, refund_event
from connectors.errors import ConnectorProtocolError
from wording import Msg

CHANNEL: Final = "shopify"
ORDER_TOPICS: Final[dict[str, str]] = {
    "orders/create": "created",
    "orders/paid": "paid",
    "orders/fulfilled": "shipped",
    "orders/cancelled": "cancelled",
}
REFUND_TOPICS: Final[dict[str, Literal["requested", "completed", "rejected"]]] = {"refunds/create": "completed"}
#: ISO 4217 currencies whose minor unit is not 1/100 (Shopify sends their amounts with these decimals)
ZERO_DECIMALS: Final = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX",
                                  "VND", "VUV", "XAF", "XOF", "XPF"})
THREE_DECIMALS: Final = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
PHONE: Final = re.compile(r"^\+?[0-9][0-9\s\-()]{5,18}$")
EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DOMAIN: Final = re.compile(r"^[a-z0-9][a-z0-9\-]*\.myshopify\.com$")


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def exponent(currency: str) -> int:
    """Decimal places of ``currency``'s minor unit (2 unless listed)."""
    if currency in ZERO_DECIMALS:
        return 0
    return 3 if currency in THREE_DECIMALS else 2


def minor_units(value: Any, currency: str, what: str) -> int:
    """``"199.00"`` USD → 19900; ``"1200"`` JPY → 1200; a JSON number (``195.66``, parsed exactly as a
    :class:`~decimal.Decimal` by :func:`parse_body`) the same. A Python float or extra decimals is an error."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise ConnectorProtocolError(Msg("%(what)s must be a decimal string like \"199.00\" or an exact JSON number",
                                         what=what))
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConnectorProtocolError(Msg("%(what)s is not an amount: %(value)s", what=what,
                                         value=repr(str(value)[:40]))) from None
    scaled = amount.scaleb(exponent(currency))
    if not amount.is_finite() or scaled != scaled.to_integral_value() or scaled < 0:
        raise ConnectorProtocolError(Msg("%(what)s %(value)s is not a non-negative %(currency)s amount", what=what,
                                         value=repr(str(value)[:40]), currency=currency))
    return int(scaled)


def parse_time(value: Any) -> datetime | None:
    """Shopify's ISO 8601 times (``2026-11-23T10:00:00-05:00``) → aware datetimes."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConnectorProtocolError(Msg("time %(value)s is not ISO 8601", value=repr(value[:40]))) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_body(body: bytes) -> dict[str, Any]:
    """The webhook's JSON object. Numbers with a fraction become :class:`~decimal.Decimal` (Shopify sends some
    money as numbers: a refund line's ``subtotal`` 195.66), so no amount ever passes through a float."""
    try:
        data = json.loads(body, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConnectorProtocolError(Msg("the webhook body is not JSON (%(value)s)",
                                         value=getattr(exc, 'msg', type(exc).__name__))) \
            from None
    if not isinstance(data, dict):
        raise ConnectorProtocolError(Msg("the webhook body must be a JSON object"))
    return data


def buyer_identities(order: dict[str, Any]) -> dict[str, str]:
    """``email``, ``phone`` (when they look like one) and ``shopify_buyer`` (the customer id) of an order."""
    customer = _obj(order.get("customer"))
    identities: dict[str, str] = {}
    email = str(customer.get("email") or order.get("email") or order.get("contact_email") or "").strip()
    if EMAIL.match(email):
        identities["email"] = email
    billing = _obj(order.get("billing_address"))
    phone = str(customer.get("phone") or order.get("phone") or billing.get("phone") or "").strip()
    if PHONE.match(phone) and 6 <= len(re.sub(r"\D", "", phone)) <= 15:
        identities["phone"] = re.sub(r"[\s\-()]", "", phone)
    if customer.get("id") not in (None, "", 0):
        identities["shopify_buyer"] = str(customer["id"])
    if not identities:
        raise ConnectorProtocolError(Msg("order %(value)s has no buyer (no customer, email or phone)",
                                         value=order.get('id')))
    return identities


def _currency(order: dict[str, Any]) -> str:
    currency = str(order.get("currency") or order.get("presentment_currency") or "").upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ConnectorProtocolError(Msg("the order has no currency (ISO 4217 code)"))
    return currency


def _items(order: dict[str, Any], currency: str) -> list[OrderItem]:
    items: list[OrderItem] = []
    for line in order.get("line_items") or []:
        if not isinstance(line, dict):
            continue
        quantity = max(1, int(line.get("quantity") or 1))
        price = minor_units(line.get("price") or "0", currency, "line_items[].price")
        discount = minor_units(line.get("total_discount") or "0", currency, "line_items[].total_discount")
        unit = price - discount // quantity if discount % quantity == 0 and discount <= price * quantity else price
        sku = line.get("sku") or line.get("variant_id") or line.get("product_id") or line.get("id")
        items.append(OrderItem(sku=str(sku or "unknown")[:120], name=str(line.get("title") or "")[:300],
                               quantity=quantity, price_fen=unit, category=str(line.get("product_type") or "")[:120]))
    return items


def order_from_payload(order: dict[str, Any], shop: str, status: str, webhook_id: str,
                       triggered_at: datetime | None) -> dict[str, Any]:
    """An ``order.<status>`` event from an order webhook payload."""
    if order.get("id") in (None, ""):
        raise ConnectorProtocolError(Msg("the order has no id"))
    currency = _currency(order)
    codes = [c.get("code") for c in order.get("discount_codes") or [] if isinstance(c, dict) and c.get("code")]
    canonical = CanonicalOrder(
        order_id=str(order["id"]), shop=shop, channel=CHANNEL, status=status,  # type: ignore[arg-type,unused-ignore]
        amount_fen=minor_units(order.get("total_price") or "0", currency, "total_price"), currency=currency,
        items=_items(order, currency), created_at=parse_time(order.get("created_at")),
        coupon_code=str(codes[0])[:80] if codes else None)
    own = {"created": order.get("created_at"), "cancelled": order.get("cancelled_at")}.get(status)
    at = parse_time(own) or triggered_at or parse_time(order.get("updated_at")) or datetime.now(UTC)
    return order_event(canonical, buyer_identities(order), at, event_id=f"{CHANNEL}:{shop}:{webhook_id}")


def _shop_money(holder: dict[str, Any], name: str, currency: str, what: str) -> int:
    """``<name>_set.shop_money.amount`` (a string, in the shop's currency) when present, else ``<name>``
    (a string or a number, as older API versions send it)."""
    money = _obj(_obj(holder.get(f"{name}_set")).get("shop_money"))
    value = money.get("amount") if money.get("amount") not in (None, "") else holder.get(name)
    return minor_units(value if value not in (None, "") else "0", currency, what)


def refund_amount(refund: dict[str, Any], currency: str) -> int:
    """What was refunded: the successful ``refund`` transactions (the money that moved) when there are any;
    else — ``transactions: []``, a refund recorded without a payment — its parts: each refunded line's
    subtotal and tax, refunded shipping (``refund_shipping_lines``, or ``shipping_refund`` order
    adjustments, which Shopify sends negative) and duties."""
    transactions = [t for t in refund.get("transactions") or [] if isinstance(t, dict)
                    and t.get("kind") == "refund" and t.get("status") in ("success", None)]
    if transactions:
        return sum(minor_units(t.get("amount") or "0", currency, "transactions[].amount") for t in transactions)
    total = 0
    for line in refund.get("refund_line_items") or []:
        if isinstance(line, dict):
            total += _shop_money(line, "subtotal", currency, "refund_line_items[].subtotal")
            total += _shop_money(line, "total_tax", currency, "refund_line_items[].total_tax")
    for line in refund.get("refund_shipping_lines") or []:
        if isinstance(line, dict):
            total += _shop_money(line, "subtotal_amount", currency, "refund_shipping_lines[].subtotal_amount")
    for adjustment in refund.get("order_adjustments") or []:
        if isinstance(adjustment, dict) and adjustment.get("kind") == "shipping_refund":
            money = _obj(_obj(adjustment.get("amount_set")).get("shop_money")).get("amount", adjustment.get("amount"))
            total += minor_units(str(money or "0").strip().lstrip("-"), currency, "order_adjustments[].amount")
    duties = _obj(_obj(refund.get("total_duties_set")).get("shop_money")).get("amount")
    if duties not in (None, ""):
        total += minor_units(duties, currency, "total_duties_set")
    return total


def refund_from_payload(refund: dict[str, Any], order: dict[str, Any], shop: str,
                        status: Literal["requested", "completed", "rejected"], webhook_id: str,
                        triggered_at: datetime | None) -> dict[str, Any]:
    """A ``refund.<status>`` event from a ``refunds/create`` payload and its order (for the buyer)."""
    if refund.get("id") in (None, "") or refund.get("order_id") in (None, ""):
        raise ConnectorProtocolError(Msg("the refund has no id or order_id"))
    currency = _currency(order)
    items = []
    for line in refund.get("refund_line_items") or []:
        item = line.get("line_item") if isinstance(line, dict) and isinstance(line.get("line_item"), dict) else None
        if item is not None:
            items.extend(_items({"line_items": [{**item, "quantity": line.get("quantity") or 1}]}, currency))
        elif isinstance(line, dict) and line.get("line_item_id") not in (None, ""):  # newer versions: id only
            quantity = max(1, int(line.get("quantity") or 1))
            subtotal = _shop_money(line, "subtotal", currency, "refund_line_items[].subtotal")
            items.append(OrderItem(sku=str(line["line_item_id"])[:120], quantity=quantity,
                                   price_fen=subtotal // quantity if subtotal % quantity == 0 else subtotal))
    canonical = CanonicalRefund(
        refund_id=str(refund["id"]), order_id=str(refund["order_id"]), shop=shop, channel=CHANNEL, status=status,
        amount_fen=refund_amount(refund, currency), reason=str(refund.get("note") or "")[:500], items=items)
    at = parse_time(refund.get("processed_at")) or parse_time(refund.get("created_at")) or triggered_at \
        or datetime.now(UTC)
    return refund_event(canonical, buyer_identities(order), at, event_id=f"{CHANNEL}:{shop}:{webhook_id}")
