"""The catalogue of event types Tideflow understands, with labels for the designer's pickers.

Connectors normalise platform pushes to these types. Your own systems may send
any type under ``custom.`` (e.g. ``custom.viewed_product``) without declaring it.
"""

from __future__ import annotations

import difflib
import re

from engine.text import Msg

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
    "loyalty.tier_changed": {"zh-CN": "会员等级变化", "en": "Tier changed"},
    "loyalty.points_expiring": {"zh-CN": "积分即将过期", "en": "Points expiring"},
}
#: types only Tideflow itself produces (follow-up events): refused at POST /api/events
INTERNAL_TYPES = frozenset({"referral.progress", "loyalty.points_earned", "loyalty.tier_changed",
                            "loyalty.points_expiring"})
CUSTOM = re.compile(r"^custom\.[a-z0-9_]+(\.[a-z0-9_]+)*$")


def is_known(event_type: str) -> bool:
    return event_type in EVENT_TYPES or bool(CUSTOM.match(event_type))


def explain_unknown(event_type: str) -> str:
    close = difflib.get_close_matches(event_type, list(EVENT_TYPES), n=2)
    example = f"custom.{event_type.replace('.', '_')[:40]}"
    if close:
        return Msg("unknown event type '%(type)s'; did you mean %(close)s? use a type from GET /api/event-types "
                   "or your own under 'custom.' (e.g. '%(example)s')", type=event_type,
                   close=" or ".join(repr(c) for c in close), example=example)
    return Msg("unknown event type '%(type)s'; use a type from GET /api/event-types or your own under 'custom.' "
               "(e.g. '%(example)s')", type=event_type, example=example)
