"""The events area's strings (the event-type picker) in zh-CN and English."""

from __future__ import annotations

from designer import i18n

_STRINGS: tuple[tuple[str, str, str], ...] = (
    ("evt.group.customer", "客户", "Customer"),
    ("evt.group.wecom", "企业微信", "WeCom"),
    ("evt.group.wechat", "微信公众号", "WeChat Official Account"),
    ("evt.group.product", "商品", "Products"),
    ("evt.group.cart", "购物车", "Cart"),
    ("evt.group.order", "订单（各电商平台）", "Orders (every shop platform)"),
    ("evt.group.refund", "退款（各电商平台）", "Refunds (every shop platform)"),
    ("evt.group.coupon", "优惠券", "Coupons"),
    ("evt.group.survey", "问卷", "Surveys"),
    ("evt.group.ticket", "工单", "Tickets"),
    ("evt.group.referral", "裂变活动", "Referral campaigns"),
    ("evt.group.loyalty", "会员积分与等级", "Loyalty points and tiers"),
    ("evt.group.custom", "自定义（已收到过）", "Custom (already received)"),
    ("evt.group.plugin", "插件：{name}", "Plugin: {name}"),
    ("evt.seen", "最近收到 {n} 次", "{n} received lately"),
    ("evt.seen_before", "收到过", "received before"),
    ("evt.sender.wecom", "企业微信", "WeCom"),
    ("evt.sender.wechat_oa", "公众号", "Official Account"),
    ("evt.sender.youzan", "有赞", "Youzan"),
    ("evt.sender.taobao", "淘宝", "Taobao"),
    ("evt.sender.tmall", "天猫", "Tmall"),
    ("evt.sender.jd", "京东", "JD"),
    ("evt.sender.douyin", "抖店", "Douyin shop"),
    ("evt.sender.shopify", "Shopify", "Shopify"),
    ("evt.picker.hint", "从目录中选择，或输入新的类型（自定义事件以 custom. 开头）",
     "pick from the catalogue, or type a new type (your own under custom.)"),
    ("evt.picker.none", "没有匹配的类型：按回车使用你输入的类型", "No type matches: press Enter to use what you typed"),
)

i18n.add({"zh-CN": {k: zh for k, zh, _ in _STRINGS}, "en": {k: en for k, _, en in _STRINGS}})
