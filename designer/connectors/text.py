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
        "cn.sync": "同步状态", "cn.last_sync": "上次同步成功", "cn.last_attempt": "上次尝试",
        "cn.never": "尚未成功同步",
        "cn.last_error": "最近错误", "cn.no_error": "无", "cn.cursors": "同步游标",
        "cn.behind": "落后 {d}", "cn.no_cursor": "尚未开始同步", "cn.backlog": "待路由积压",
        "cn.unrouted": "{n} 个事件尚未路由到旅程", "cn.routing_errors": "其中 {n} 个路由失败，等待重试",
        "cn.last_event": "最近收到的事件", "cn.none_yet": "暂无", "cn.unmapped": "未映射的消息",
        "cn.unmapped_n": "{n} 条未映射的消息", "cn.resync": "重新同步", "cn.resync_from": "从此时间起（北京时间）",
        "cn.resync_hint": "留空则从回溯时间（至少 1 小时前）起。重新读取的订单不会重复计入。",
        "cn.resync_bad_time": "重新同步的起始时间无效：请按 年-月-日 时:分 填写。",
        "cn.resynced": "已安排重新同步：下次轮询从所选时间起读取。",
        "cn.seconds": "{n} 秒", "cn.minutes": "{n} 分", "cn.hours": "{n} 小时", "cn.days": "{n} 天",
        "cn.unmapped_title": "连接器 {id} 未映射的消息",
        "cn.unmapped_intro": "这些消息已通过验证，但无法转换为 Tideflow 事件（未知的消息类型或状态、缺少记录等）。"
                             "它们原样保存、计数，不会被静默丢弃；手机号和银行卡号已打码。",
        "cn.by_kind": "按消息类型", "cn.received": "收到时间", "cn.kind": "类型", "cn.reason": "原因",
        "cn.raw": "原始内容",
        "cn.deliveries": "共投递 {n} 次，最近 {last}", "cn.newest": "最新的", "cn.older": "更早的",
        "cn.unmapped_none": "没有未映射的消息。", "cn.no_connector": "没有 ID 为 {id} 的连接器。",
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
        "cn.sync": "Sync status", "cn.last_sync": "Last successful sync", "cn.last_attempt": "last attempt",
        "cn.never": "never synced yet", "cn.last_error": "Last error", "cn.no_error": "none",
        "cn.cursors": "Cursors", "cn.behind": "{d} behind", "cn.no_cursor": "not started yet",
        "cn.backlog": "Routing backlog", "cn.unrouted": "{n} events not routed to journeys yet",
        "cn.routing_errors": "{n} of them failed routing and wait for a retry", "cn.last_event": "Last event received",
        "cn.none_yet": "none yet", "cn.unmapped": "Unmapped messages", "cn.unmapped_n": "{n} unmapped messages",
        "cn.resync": "Resync", "cn.resync_from": "From (China time)",
        "cn.resync_hint": "Empty: from the backfill (at least 1 hour back). Orders read again are not counted twice.",
        "cn.resync_bad_time": "The resync start is not a valid time: give year-month-day hour:minute.",
        "cn.resynced": "Resync scheduled: the next poll reads from the chosen time.",
        "cn.seconds": "{n} s", "cn.minutes": "{n} min", "cn.hours": "{n} h", "cn.days": "{n} d",
        "cn.unmapped_title": "Unmapped messages of connector {id}",
        "cn.unmapped_intro": "These messages were verified but map to no Tideflow event (an unknown message type or "
                             "status, a missing record …). They are kept as received and counted, never dropped "
                             "silently; phone and card numbers are masked.",
        "cn.by_kind": "By message type", "cn.received": "Received", "cn.kind": "Type", "cn.reason": "Why",
        "cn.raw": "As received", "cn.deliveries": "delivered {n} times, last {last}", "cn.newest": "Newest",
        "cn.older": "Older", "cn.unmapped_none": "No unmapped messages.",
        "cn.no_connector": "There is no connector {id}.",
    },
})
