"""The catalogue of event types Tideflow understands, with labels for the designer's pickers.

Connectors normalise platform pushes to these types. Plugins declare the types they bring through the
entry point group ``tideflow.event_types`` (an entry point names a dict ``type → {"zh-CN": label, "en":
label}``). Your own systems may send any type under ``custom.`` (e.g. ``custom.viewed_product``) without
declaring it; the types seen in the events table join the pickers' catalogue (:func:`catalogue`).
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib.metadata import entry_points

from engine.text import Msg

log = logging.getLogger(__name__)
PLUGIN_GROUP = "tideflow.event_types"
TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")

EVENT_TYPES: dict[str, dict[str, str]] = {
    "customer.created": {"zh-CN": "新客户", "en": "Customer created"},
    "customer.updated": {"zh-CN": "客户资料更新", "en": "Customer updated"},
    "customer.subscribed": {"zh-CN": "客户订阅", "en": "Customer subscribed"},
    "customer.unsubscribed": {"zh-CN": "客户退订", "en": "Customer unsubscribed"},
    "customer.interacted": {"zh-CN": "客户互动", "en": "Customer interacted"},
    "wecom.contact_added": {"zh-CN": "添加企微好友", "en": "WeCom contact added"},
    "wecom.contact_edited": {"zh-CN": "企微好友资料变更", "en": "WeCom contact edited"},
    "wecom.contact_deleted": {"zh-CN": "删除企微好友", "en": "WeCom contact deleted"},
    "wecom.message_received": {"zh-CN": "收到企微消息", "en": "WeCom message received"},
    "wecom.owner_changed": {"zh-CN": "跟进成员变更（继承）", "en": "WeCom owner changed (handover)"},
    "wecom.transfer_failed": {"zh-CN": "客户接替失败", "en": "WeCom takeover failed"},
    "wecom.group_created": {"zh-CN": "客户群创建", "en": "WeCom group created"},
    "wecom.group_member_joined": {"zh-CN": "入群", "en": "Joined a WeCom group"},
    "wecom.group_member_left": {"zh-CN": "退群", "en": "Left a WeCom group"},
    "wecom.group_dismissed": {"zh-CN": "客户群解散", "en": "WeCom group dismissed"},
    "wecom.group_owner_changed": {"zh-CN": "群主变更", "en": "WeCom group owner changed"},
    "wechat.subscribed": {"zh-CN": "关注公众号", "en": "WeChat OA subscribed"},
    "wechat.unsubscribed": {"zh-CN": "取关公众号", "en": "WeChat OA unsubscribed"},
    "wechat.menu_clicked": {"zh-CN": "点击公众号菜单", "en": "WeChat OA menu clicked"},
    "wechat.message_received": {"zh-CN": "收到公众号消息", "en": "WeChat OA message received"},
    "wechat.template_delivered": {"zh-CN": "模板消息送达", "en": "WeChat template delivered"},
    "product.viewed": {"zh-CN": "浏览商品", "en": "Product viewed"},
    "cart.added": {"zh-CN": "加入购物车", "en": "Added to cart"},
    "order.created": {"zh-CN": "下单", "en": "Order created"},
    "order.paid": {"zh-CN": "订单支付", "en": "Order paid"},
    "order.shipped": {"zh-CN": "订单发货", "en": "Order shipped"},
    "order.delivered": {"zh-CN": "订单签收", "en": "Order delivered"},
    "order.completed": {"zh-CN": "订单完成", "en": "Order completed"},
    "order.cancelled": {"zh-CN": "订单取消", "en": "Order cancelled"},
    "refund.requested": {"zh-CN": "申请退款", "en": "Refund requested"},
    "refund.completed": {"zh-CN": "退款完成", "en": "Refund completed"},
    "refund.rejected": {"zh-CN": "退款关闭", "en": "Refund rejected or withdrawn"},
    "coupon.redeemed": {"zh-CN": "核销优惠券", "en": "Coupon redeemed"},
    "survey.answered": {"zh-CN": "提交问卷", "en": "Survey answered"},
    "ticket.created": {"zh-CN": "工单创建", "en": "Ticket created"},
    "ticket.resolved": {"zh-CN": "工单解决", "en": "Ticket resolved"},
    "wechat.qr_scanned": {"zh-CN": "扫描公众号带参二维码", "en": "WeChat OA QR code scanned"},
    "referral.progress": {"zh-CN": "裂变邀请进度", "en": "Referral progress"},
    "loyalty.points_earned": {"zh-CN": "获得积分", "en": "Points earned"},
    "loyalty.points_redeemed": {"zh-CN": "积分兑换", "en": "Points redeemed"},
    "loyalty.redemption_cancelled": {"zh-CN": "积分兑换撤销（积分退回）", "en": "Redemption cancelled (points back)"},
    "loyalty.tier_changed": {"zh-CN": "会员等级变化", "en": "Tier changed"},
    "loyalty.points_expiring": {"zh-CN": "积分即将过期", "en": "Points expiring"},
}
#: types only Tideflow itself produces (follow-up events): refused at POST /api/events
INTERNAL_TYPES = frozenset({"referral.progress", "loyalty.points_earned", "loyalty.points_redeemed",
                            "loyalty.redemption_cancelled", "loyalty.tier_changed", "loyalty.points_expiring"})
CUSTOM = re.compile(r"^custom\.[a-z0-9_]+(\.[a-z0-9_]+)*$")


@lru_cache(maxsize=1)
def plugin_event_types() -> dict[str, tuple[str, dict[str, str]]]:
    """Event types declared by installed plugins: type → (distribution, labels). A declaration that is
    malformed or clashes with a built-in type is logged and left out, never fatal."""
    found: dict[str, tuple[str, dict[str, str]]] = {}
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        dist = getattr(getattr(ep, "dist", None), "name", None) or ep.name
        try:
            declared = ep.load()
            if not isinstance(declared, Mapping):
                raise TypeError(f"{ep.value} is a {type(declared).__name__}, not a dict of type → labels")
            for name, labels in declared.items():
                if not isinstance(name, str) or not TYPE_PATTERN.match(name) or name.startswith("custom."):
                    raise ValueError(Msg("'%(name)s' is not an event type name like 'lottery.prize_claimed'",
                                         name=name))
                if name in EVENT_TYPES:
                    raise ValueError(Msg("'%(name)s' is a built-in event type", name=name))
                if not isinstance(labels, Mapping):
                    raise TypeError(f"the labels of {name!r} must be a dict such as {{'zh-CN': …, 'en': …}}")
                found[name] = (str(dist), {str(k): str(v) for k, v in labels.items()})
        except Exception as exc:  # a broken plugin must not take the engine down
            log.error("event types of plugin %s (%s) left out: %s", ep.name, dist, exc)
    return found


def is_known(event_type: str) -> bool:
    return event_type in EVENT_TYPES or bool(CUSTOM.match(event_type)) or event_type in plugin_event_types()


#: the families a picker groups types by (the part before the first dot), in this order
FAMILIES: tuple[str, ...] = ("customer", "wecom", "wechat", "product", "cart", "order", "refund", "coupon",
                             "survey", "ticket", "referral", "loyalty")


@dataclass(frozen=True)
class SeenType:
    """What the events table says about one type: how often it came lately, when last, from where."""

    count: int = 0
    last: datetime | None = None
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class CatalogueEntry:
    """One event type a person can pick: its labels, where it comes from and what was seen of it."""

    type: str
    labels: dict[str, str]
    origin: str  # builtin, plugin, custom (only seen)
    family: str
    plugin: str | None = None
    producers: tuple[str, ...] = ()  # the connectors that send it
    seen: SeenType = field(default_factory=SeenType)

    def label(self, lang: str) -> str:
        return self.labels.get(lang) or self.labels.get("en") or self.type

    def as_dict(self) -> dict[str, object]:
        return {"type": self.type, "label": self.labels, "origin": self.origin, "family": self.family,
                "plugin": self.plugin, "producers": list(self.producers), "seen_count": self.seen.count,
                "last_seen": self.seen.last.isoformat() if self.seen.last else None,
                "seen_sources": list(self.seen.sources)}


def catalogue(seen: Mapping[str, SeenType] | None = None,
              producers: Mapping[str, Iterable[str]] | None = None) -> list[CatalogueEntry]:
    """Every type a picker offers: the built-in ones, the plugins' and the types seen in the events table
    that neither declares (``custom.*``), grouped by family; within a family the busiest first, then by
    name. ``producers`` says which connectors send a type (the designer knows the connectors). Pure."""
    seen = seen or {}
    producers = producers or {}
    entries: list[CatalogueEntry] = []

    def family(name: str) -> str:
        return name.split(".", 1)[0]

    for name, labels in EVENT_TYPES.items():
        entries.append(CatalogueEntry(name, dict(labels), "builtin", family(name), None,
                                      tuple(producers.get(name, ())), seen.get(name, SeenType())))
    for name, (dist, labels) in plugin_event_types().items():
        entries.append(CatalogueEntry(name, labels, "plugin", family(name), dist, tuple(producers.get(name, ())),
                                      seen.get(name, SeenType())))
    known = {e.type for e in entries}
    for name, what in seen.items():
        if name not in known and is_known(name):
            entries.append(CatalogueEntry(name, {}, "custom", "custom", None, (), what))
    rank = {f: i for i, f in enumerate(FAMILIES)}
    origin_rank = {"builtin": 0, "plugin": 1, "custom": 2}
    return sorted(entries, key=lambda e: (origin_rank[e.origin], rank.get(e.family, len(rank)), e.family,
                                          -e.seen.count, e.type))


def explain_unknown(event_type: str) -> str:
    close = difflib.get_close_matches(event_type, [*EVENT_TYPES, *plugin_event_types()], n=2)
    example = f"custom.{event_type.replace('.', '_')[:40]}"
    if close:
        return Msg("unknown event type '%(type)s'; did you mean %(close)s? use a type from GET /api/event-types "
                   "or your own under 'custom.' (e.g. '%(example)s')", type=event_type,
                   close=" or ".join(repr(c) for c in close), example=example)
    return Msg("unknown event type '%(type)s'; use a type from GET /api/event-types or your own under 'custom.' "
               "(e.g. '%(example)s')", type=event_type, example=example)
