"""The connectors area's strings (the settings page) in zh-CN and English.

One catalogue per area, merged into :mod:`designer.i18n` when the area is imported.
"""

from __future__ import annotations

from designer import i18n

i18n.add({
    "zh-CN": {
        "cn.title": "连接器",
        "cn.intro": "外部系统（企业微信、店铺、邮件、短信、Webhook）的接入配置。密钥加密保存，只写不读。",
        "cn.configured": "已配置的连接器", "cn.none": "还没有配置连接器。", "cn.add": "添加连接器",
        "cn.id": "连接器 ID", "cn.id_hint": "小写字母、数字、- 或 _，以字母开头；用作事件来源和回调地址",
        "cn.name": "名称", "cn.enabled": "启用", "cn.settings": "设置", "cn.secrets": "密钥",
        "cn.set": "已设置", "cn.unset": "未设置", "cn.keep": "留空则保留原值", "cn.save": "保存", "cn.delete": "删除",
        "cn.hook": "回调地址", "cn.channels": "发送渠道", "cn.saved": "已保存。", "cn.deleted": "已删除。",
        "cn.problems": "未保存：请修正以下问题", "cn.not_installed": "此类型的连接器未安装",
        "cn.unreadable": "密钥无法用本实例的密钥解密，请重新填写。", "cn.json": "JSON 对象",
    },
    "en": {
        "cn.title": "Connectors",
        "cn.intro": "How Tideflow reaches outside systems (WeCom, shops, email, SMS, webhooks). Secrets are encrypted "
                    "and write-only.",
        "cn.configured": "Configured connectors", "cn.none": "No connector is configured yet.",
        "cn.add": "Add a connector", "cn.id": "Connector id",
        "cn.id_hint": "lower-case letters, digits, - or _, starting with a letter; the events' source and the "
                      "callback URL",
        "cn.name": "Name", "cn.enabled": "Enabled", "cn.settings": "Settings", "cn.secrets": "Secrets",
        "cn.set": "set", "cn.unset": "not set", "cn.keep": "leave empty to keep", "cn.save": "Save",
        "cn.delete": "Delete", "cn.hook": "Callback URL", "cn.channels": "Channels", "cn.saved": "Saved.",
        "cn.deleted": "Deleted.", "cn.problems": "Not saved: fix these problems",
        "cn.not_installed": "this connector kind is not installed",
        "cn.unreadable": "The secrets cannot be decrypted with this instance's key; enter them again.",
        "cn.json": "JSON object",
    },
})
