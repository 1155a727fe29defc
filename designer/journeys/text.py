"""The journeys area's strings (the journey list and journey pages) in zh-CN and English.

One catalogue per area, merged into :mod:`designer.i18n` when the area is imported.
"""

from __future__ import annotations

from designer import i18n

i18n.add({
    "zh-CN": {
        "js.running": "运行中", "js.waiting": "等待中", "js.completed": "已完成", "js.converted": "已转化",
        "js.exited": "已退出", "js.failed": "失败", "js.cancelled": "已取消",
        "notice.cancel_sent": "已向旅程 {id} 发送取消信号，几秒后状态会变为「已取消」。",
        "err.journey_unknown": "找不到旅程「{id}」。",
        "err.temporal_down": "工作流引擎（Temporal）当前没有连接，所以现在无法取消旅程。",
        "err.temporal_down.fix": "请确认 Temporal 和 worker 已启动（例如 make run），稍后再试。",
        "err.not_active": "旅程 {id} 已经是「{state}」状态，不需要取消。",
        "err.signal_failed": "取消信号没有送达旅程 {id}（{error}）。",
        "err.signal_failed.fix": "工作流可能已经结束；刷新页面查看最新状态，或稍后重试。", "jo.id": "旅程 ID",
        "jo.flow": "流程", "jo.node": "当前节点", "jo.started": "开始时间", "jo.ended": "结束时间",
        "jo.cancel": "取消旅程", "jo.filter.flow": "流程", "jo.flow.any": "全部流程", "jo.status.any": "全部状态",
        "jo.empty": "没有符合条件的旅程。", "jo.by_status": "按状态统计", "jo.total": "合计",
        "jo.engine_down": "工作流引擎（Temporal）当前没有连接：可以查看旅程，但暂时无法取消。",
        "jo.messages": "此旅程发送的消息", "ms.sent": "已发送", "ms.skipped: capped": "已跳过：超出频次上限",
        "ms.skipped: no consent": "已跳过：客户已退订", "ms.skipped: no customer": "已跳过：找不到客户",
        "ms.skipped: channel not configured": "已跳过：渠道未配置", "ms.node": "节点",
    },
    "en": {
        "js.running": "Running", "js.waiting": "Waiting", "js.completed": "Completed", "js.converted": "Converted",
        "js.exited": "Exited", "js.failed": "Failed", "js.cancelled": "Cancelled",
        "notice.cancel_sent": "Cancel sent to journey {id}; its status turns to Cancelled in a few seconds.",
        "err.journey_unknown": "There is no journey “{id}”.",
        "err.temporal_down": "The workflow engine (Temporal) is not connected, so the journey cannot be cancelled "
                             "right now.",
        "err.temporal_down.fix": "Make sure Temporal and the worker are running (e.g. make run), then try again.",
        "err.not_active": "Journey {id} is already {state}; there is nothing to cancel.",
        "err.signal_failed": "The cancel signal did not reach journey {id} ({error}).",
        "err.signal_failed.fix": "The workflow may have ended already; reload the page to see its status, or try "
                                 "again later.",
        "jo.id": "Journey id", "jo.flow": "Flow", "jo.node": "Current node", "jo.started": "Started",
        "jo.ended": "Ended", "jo.cancel": "Cancel journey", "jo.filter.flow": "Flow", "jo.flow.any": "All flows",
        "jo.status.any": "All statuses", "jo.empty": "No journeys match.", "jo.by_status": "By status",
        "jo.total": "Total",
        "jo.engine_down": "The workflow engine (Temporal) is not connected: journeys can be viewed but not cancelled "
                          "right now.",
        "jo.messages": "Messages sent in this journey", "ms.sent": "sent", "ms.skipped: capped": "skipped: capped",
        "ms.skipped: no consent": "skipped: no consent", "ms.skipped: no customer": "skipped: no customer",
        "ms.skipped: channel not configured": "skipped: channel not configured", "ms.node": "Node",
    },
})
