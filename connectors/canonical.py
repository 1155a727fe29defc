"""Canonical order and refund events: the one shape every shop connector (Youzan, Taobao/Tmall, JD,
Douyin, Shopify) and ``POST /api/events`` use, so flows and settlement never care which platform sent
an order.

An order event has type ``order.<status>`` and a flat payload (:class:`CanonicalOrder`): the order id,
shop, channel, amount in fen, items, status and, for settlement, ``attribution`` (who earns on the
order: ``{"store": "S01", "agent": "A07", "anchor": "zhubo-3"}``). A refund event has type
``refund.requested`` / ``refund.completed`` / ``refund.rejected`` and a :class:`CanonicalRefund`
payload linked to its order. The buyer's identities (phone, ``<shop>_buyer`` …) are the event's
``customer``, so the same phone in two shops resolves to one customer.

Pure: no engine imports, no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wording import Msg

#: order statuses in the order they happen; an older status never overwrites a newer one
#: (a late ``order.paid`` after ``order.shipped`` leaves the order shipped). ``cancelled`` and
#: ``refunded`` are final.
ORDER_STATUSES: Final = ("created", "paid", "shipped", "delivered", "completed", "cancelled", "refunded")
OrderStatus = Literal["created", "paid", "shipped", "delivered", "completed", "cancelled", "refunded"]
REFUND_STATUSES: Final = ("requested", "completed", "rejected")
RefundStatus = Literal["requested", "completed", "rejected"]
CHANNELS: Final = ("youzan", "taobao", "tmall", "jd", "douyin", "shopify", "api")
#: event type → order status (``order.refunded`` is not an event: refunds come as ``refund.*``)
ORDER_EVENT_STATUS: Final = {f"order.{s}": s for s in ORDER_STATUSES if s != "refunded"}
REFUND_EVENT_STATUS: Final = {f"refund.{s}": s for s in REFUND_STATUSES}

_ID = Field(min_length=1, max_length=80)


def check_channel(value: str) -> str:
    if value not in CHANNELS:
        raise ValueError(Msg("unknown channel '%(value)s'; use one of %(value2)s", value=value,
                             value2=', '.join(CHANNELS)))
    return value


def status_rank(status: str) -> int:
    """Position of ``status`` in :data:`ORDER_STATUSES` (final statuses rank highest)."""
    return ORDER_STATUSES.index(status)


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=120, description="the platform's SKU / item id")
    name: str = Field(default="", max_length=300)
    quantity: int = Field(ge=1, le=1_000_000)
    price_fen: int = Field(ge=0, description="unit price actually paid, in fen")
    category: str = Field(default="", max_length=120, description="product type, for routing and rate plans")


class CanonicalOrder(BaseModel):
    """The payload of every ``order.*`` event."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = _ID
    shop: str = Field(min_length=1, max_length=80, description="the shop / store id within the channel")
    channel: str = Field(description="youzan, taobao, tmall, jd, douyin, shopify or api")
    status: OrderStatus
    amount_fen: int = Field(ge=0, description="what the buyer paid, in fen (after discounts, with freight)")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    items: list[OrderItem] = Field(default_factory=list, max_length=500)
    created_at: datetime | None = None
    paid_at: datetime | None = None
    attribution: dict[str, str] = Field(default_factory=dict, description="party role → party id, for settlement")
    coupon_code: str | None = Field(default=None, max_length=80)

    _channel = field_validator("channel")(check_channel)

    @field_validator("created_at", "paid_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(Msg("needs a timezone, e.g. 2026-11-23T10:00:00+08:00"))
        return value


class CanonicalRefund(BaseModel):
    """The payload of every ``refund.*`` event."""

    model_config = ConfigDict(extra="forbid")
    refund_id: str = _ID
    order_id: str = _ID
    shop: str = Field(min_length=1, max_length=80)
    channel: str
    status: RefundStatus
    amount_fen: int = Field(ge=0, description="the amount refunded (or asked for), in fen")
    reason: str = Field(default="", max_length=500)
    items: list[OrderItem] = Field(default_factory=list, max_length=500)

    _channel = field_validator("channel")(check_channel)


def order_event(order: CanonicalOrder, identities: dict[str, str], occurred_at: datetime,
                event_id: str | None = None) -> dict[str, Any]:
    """An ``order.<status>`` event in the ``POST /api/events`` shape (without ``source``).

    The default id ``<channel>:<shop>:<order id>:<status>`` makes a platform's redelivery of the same
    status change a duplicate, while each status change is its own event.
    """
    if order.status == "refunded":
        raise ValueError(Msg("a refunded order is reported with a refund event (refund_event), not order.refunded"))
    return {"id": event_id or f"{order.channel}:{order.shop}:{order.order_id}:{order.status}",
            "type": f"order.{order.status}", "customer": dict(identities),
            "occurred_at": occurred_at.isoformat(), "payload": order.model_dump(mode="json", exclude_none=True)}


def refund_event(refund: CanonicalRefund, identities: dict[str, str], occurred_at: datetime,
                 event_id: str | None = None) -> dict[str, Any]:
    """A ``refund.<status>`` event in the ``POST /api/events`` shape (without ``source``)."""
    return {"id": event_id or f"{refund.channel}:{refund.shop}:refund:{refund.refund_id}:{refund.status}",
            "type": f"refund.{refund.status}", "customer": dict(identities),
            "occurred_at": occurred_at.isoformat(), "payload": refund.model_dump(mode="json", exclude_none=True)}
