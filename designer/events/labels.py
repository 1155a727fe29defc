"""The labels of the events area's values (``{{ x|label("...") }}``): the families the event-type picker
groups types by."""

from __future__ import annotations

from designer.display import add_labels
from designer.i18n import NC_

add_labels("event_family", "event family", {
    "customer": NC_("event family", "Customer"), "wecom": NC_("event family", "WeCom"),
    "wechat": NC_("event family", "WeChat Official Account"), "product": NC_("event family", "Products"),
    "cart": NC_("event family", "Cart"), "order": NC_("event family", "Orders (every shop platform)"),
    "refund": NC_("event family", "Refunds (every shop platform)"), "coupon": NC_("event family", "Coupons"),
    "survey": NC_("event family", "Surveys"), "ticket": NC_("event family", "Tickets"),
    "referral": NC_("event family", "Referral campaigns"), "loyalty": NC_("event family", "Loyalty points and tiers"),
    "custom": NC_("event family", "Custom (already received)"),
})
