"""The labels of the sidebar area's statuses and other values (``{{ x|label("...") }}``).

Made by tools/i18n_convert.py from the old keyed catalogue; each table's gettext context is the old
key prefix. Rename a kind to something clearer (with its uses) whenever you like."""

from __future__ import annotations

from designer.display import add_labels
from designer.i18n import NC_

add_labels("lib.link", "lib.link", {
    "desc": NC_("lib.link", "Card summary"),
    "image_url": NC_("lib.link", "Cover image URL"),
    "title": NC_("lib.link", "Card title"),
    "url": NC_("lib.link", "Link URL"),
})
add_labels("lib.mp", "lib.mp", {
    "appid": NC_("lib.mp", "Mini program AppID"),
    "image_url": NC_("lib.mp", "Cover image URL"),
    "page": NC_("lib.mp", "Page path (ending in .html)"),
    "title": NC_("lib.mp", "Card title"),
})
add_labels("lib.s", "lib.s", {
    "approved": NC_("lib.s", "published"),
    "archived": NC_("lib.s", "archived"),
    "pending": NC_("lib.s", "waiting for review"),
    "rejected": NC_("lib.s", "rejected"),
})
add_labels("lib.sit", "lib.sit", {
    "campaign_running": NC_("lib.sit", "campaign running"),
    "in_journey": NC_("lib.sit", "in journey"),
    "open_ticket": NC_("lib.sit", "open ticket"),
    "tag": NC_("lib.sit", "has tag"),
    "tier": NC_("lib.sit", "loyalty tier"),
})
add_labels("lib.use", "lib.use", {
    "cancelled": NC_("lib.use", "cancelled"),
    "failed": NC_("lib.use", "failed"),
    "rendered": NC_("lib.use", "prepared"),
    "sent": NC_("lib.use", "sent"),
})
add_labels("sb.ch", "sb.ch", {
    "api": NC_("sb.ch", "API"),
    "douyin": NC_("sb.ch", "Douyin shop"),
    "jd": NC_("sb.ch", "JD"),
    "shopify": NC_("sb.ch", "Shopify"),
    "taobao": NC_("sb.ch", "Taobao"),
    "tmall": NC_("sb.ch", "Tmall"),
    "youzan": NC_("sb.ch", "Youzan"),
})
add_labels("sb.js", "sb.js", {
    "cancelled": NC_("sb.js", "Sending cancelled"),
    "configFailed": NC_("sb.js", "WeCom's JS-SDK check failed:"),
    "connecting": NC_("sb.js", "Finding the current chat…"),
    "couponRefused": NC_("sb.js", "Not issued:"),
    "done": NC_("sb.js", "Done"),
    "done_coupon": NC_("sb.js", "Coupon issued"),
    "done_enroll": NC_("sb.js", "Enrolled in the flow"),
    "done_tag": NC_("sb.js", "Tag added"),
    "done_ticket": NC_("sb.js", "Ticket #%(id)s created"),
    "done_untag": NC_("sb.js", "Tag removed"),
    "failed": NC_("sb.js", "The request failed"),
    "noChat": NC_("sb.js", "Cannot tell who this chat is with:"),
    "notEntered": NC_("sb.js", "Not enrolled: the customer is already in this flow or does not qualify"),
    "notInWeCom": NC_("sb.js", "Open the sidebar from the chat toolbar of the WeCom client."),
    "notRecorded": NC_("sb.js", "Tideflow could not record this:"),
    "notRecordedSent": NC_("sb.js", "Tideflow could not record this, do not send it again:"),
    "sendFailed": NC_("sb.js", "Not sent:"),
    "sending": NC_("sb.js", "Sending…"),
    "sent": NC_("sb.js", "Sent to the chat"),
    "signedOut": NC_("sb.js", "Your session expired; signing in again…"),
})
add_labels("sb.kind", "sb.kind", {
    "image": NC_("sb.kind", "Image"),
    "link": NC_("sb.kind", "Link"),
    "miniprogram": NC_("sb.kind", "Mini program"),
    "text": NC_("sb.kind", "Text"),
})
add_labels("sb.os", "sb.os", {
    "cancelled": NC_("sb.os", "cancelled"),
    "completed": NC_("sb.os", "completed"),
    "created": NC_("sb.os", "created"),
    "delivered": NC_("sb.os", "delivered"),
    "paid": NC_("sb.os", "paid"),
    "refunded": NC_("sb.os", "refunded"),
    "shipped": NC_("sb.os", "shipped"),
})
add_labels("sb.reason", "sb.reason", {
    "campaign_running": NC_("sb.reason", "campaign %(value)s running"),
    "condition": NC_("sb.reason", "condition %(value)s holds"),
    "in_journey": NC_("sb.reason", "in journey %(value)s"),
    "keyword": NC_("sb.reason", "the customer wrote “%(value)s”"),
    "open_ticket": NC_("sb.reason", "open ticket (%(value)s)"),
    "tag": NC_("sb.reason", "tagged %(value)s"),
    "tier": NC_("sb.reason", "tier %(value)s"),
})
add_labels("sb.source", "sb.source", {
    "channel": NC_("sb.source", "Channel"),
    "first_touch": NC_("sb.source", "First touch"),
    "last_touch": NC_("sb.source", "Last touch"),
    "source": NC_("sb.source", "Source"),
})
