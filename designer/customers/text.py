"""The customers area's strings (the customer list and profile pages) in zh-CN and English.

One catalogue per area, merged into :mod:`designer.i18n` when the area is imported.
"""

from __future__ import annotations

from designer import i18n

i18n.add({
    "zh-CN": {
        "err.customer_unknown": "找不到客户「{id}」。", "cu.q": "按姓名、客户 ID、手机号或邮箱搜索",
        "cu.identities": "身份标识", "cu.tags": "标签", "cu.created": "创建时间", "cu.attributes": "属性",
        "cu.timezone": "时区", "cu.consent": "订阅与授权", "cu.journeys": "所在旅程", "cu.messages": "收到的消息",
        "cu.merged": "该客户已合并到 {id}。", "cu.empty": "没有符合条件的客户。",
        "cu.default_tz": "未设置（按流程时区）", "cu.profile": "客户档案",
        "cu.masked": "为保护隐私，手机号、邮箱和各平台 ID 已部分隐藏。", "ik.phone": "手机号", "ik.email": "邮箱",
        "ik.wecom_external_userid": "企业微信外部联系人", "ik.wechat_openid": "公众号 openid",
        "ik.wechat_unionid": "微信 unionid", "ik.external_id": "外部系统 ID", "ik.buyer": "{shop} 买家 ID",
    },
    "en": {
        "err.customer_unknown": "There is no customer “{id}”.",
        "cu.q": "Search by name, customer id, phone or email", "cu.identities": "Identities", "cu.tags": "Tags",
        "cu.created": "Created", "cu.attributes": "Attributes", "cu.timezone": "Timezone", "cu.consent": "Consent",
        "cu.journeys": "Journeys", "cu.messages": "Messages received",
        "cu.merged": "This customer was merged into {id}.", "cu.empty": "No customers match.",
        "cu.default_tz": "not set (the flow's timezone applies)", "cu.profile": "Customer profile",
        "cu.masked": "Phones, emails and platform ids are partly hidden to protect privacy.", "ik.phone": "Phone",
        "ik.email": "Email", "ik.wecom_external_userid": "WeCom external contact",
        "ik.wechat_openid": "WeChat OA openid", "ik.wechat_unionid": "WeChat unionid",
        "ik.external_id": "External system id", "ik.buyer": "{shop} buyer id",
    },
})
