"""The ticket set-up pages' strings (designer/tickets/setup_pages.py), as main added them in the old keyed
catalogue: kept until those pages are converted to gettext (the rest of the area already is)."""

from __future__ import annotations

from designer import i18n

# the set-up pages (ticket groups, agents, ticket types): designer/tickets/setup_pages.py
i18n.add({
    "zh-CN": {
        "ts.groups": "工单组", "ts.agents": "坐席", "ts.types": "工单类型", "ts.saved": "已保存。",
        "ts.setup": "工单设置",
        "ts.add_group": "添加工单组", "ts.add_type": "添加工单类型", "ts.add_agent": "添加坐席", "ts.edit": "编辑",
        "ts.key": "标识", "ts.key.help": "字母、数字、- 或 _；保存后不能修改", "ts.name": "名称",
        "ts.strategy": "分配方式", "ts.st.round_robin": "轮流分配", "ts.st.least_loaded": "负载最少优先",
        "ts.st.skill_based": "按技能", "ts.supervisor": "组长（接收 SLA 超时提醒）", "ts.supervisor.none": "（无）",
        "ts.capacity": "每个坐席同时处理的工单数", "ts.notify": "提醒发送方式", "ts.members": "坐席",
        "ts.open": "未结工单", "ts.save": "保存", "ts.back": "返回",
        "ts.group.unknown": "找不到工单组「{key}」。", "ts.agent.unknown": "找不到用户 {id}。",
        "ts.type.unknown": "找不到工单类型「{key}」。", "ts.none": "还没有。",
        "ts.agent": "坐席", "ts.skills": "技能", "ts.skills.help": "用逗号分隔，按重要性排列，例如：空调, 冰箱",
        "ts.agent_capacity": "个人容量", "ts.agent_capacity.help": "留空则使用所在组的容量",
        "ts.availability": "状态", "ts.load": "负载", "ts.wecom_userid": "企业微信账号（UserID）", "ts.email": "邮箱",
        "ts.agent.pick": "选择用户", "ts.agent.groups": "所在工单组",
        "ts.flow": "运行的工单流程", "ts.flow.none": "（不运行流程，直接在组里排队）", "ts.default_group": "默认工单组",
        "ts.default_priority": "默认优先级", "ts.auto_refund": "收到退款申请（refund.requested）时自动创建",
        "ts.fields": "自定义字段", "ts.f.key": "字段标识", "ts.f.label": "显示名称", "ts.f.type": "类型",
        "ts.f.required": "必填", "ts.f.choices": "选项（逗号分隔）",
        "ts.f.help": "清空标识即删除这一行；空行用来添加新字段。",
        "ts.ft.text": "文本", "ts.ft.number": "整数", "ts.ft.choice": "选项", "ts.ft.date": "日期",
        "ts.used": "工单数", "ts.err": "未保存：{message}", "ts.auto": "自动创建",
    },
    "en": {
        "ts.groups": "Ticket groups", "ts.agents": "Agents", "ts.types": "Ticket types", "ts.saved": "Saved.",
        "ts.setup": "Ticket set-up",
        "ts.add_group": "Add a ticket group", "ts.add_type": "Add a ticket type", "ts.add_agent": "Add an agent",
        "ts.edit": "Edit", "ts.key": "Key", "ts.key.help": "letters, digits, - or _; it cannot change once saved",
        "ts.name": "Name", "ts.strategy": "Assignment", "ts.st.round_robin": "round robin",
        "ts.st.least_loaded": "least loaded first", "ts.st.skill_based": "by skills",
        "ts.supervisor": "Supervisor (gets SLA breach notices)", "ts.supervisor.none": "(none)",
        "ts.capacity": "Open tickets per agent", "ts.notify": "Notices go out by", "ts.members": "Agents",
        "ts.open": "Open tickets", "ts.save": "Save", "ts.back": "Back",
        "ts.group.unknown": "There is no ticket group “{key}”.", "ts.agent.unknown": "There is no user {id}.",
        "ts.type.unknown": "There is no ticket type “{key}”.", "ts.none": "None yet.",
        "ts.agent": "Agent", "ts.skills": "Skills",
        "ts.skills.help": "comma-separated, most important first, e.g. air conditioners, fridges",
        "ts.agent_capacity": "Own capacity", "ts.agent_capacity.help": "leave empty to use the group's",
        "ts.availability": "Status", "ts.load": "Load", "ts.wecom_userid": "WeCom account (UserID)",
        "ts.email": "Email", "ts.agent.pick": "Pick a user", "ts.agent.groups": "Ticket groups",
        "ts.flow": "Ticket flow it runs", "ts.flow.none": "(no flow: it queues in its group)",
        "ts.default_group": "Default ticket group", "ts.default_priority": "Default priority",
        "ts.auto_refund": "Create one for every refund request (refund.requested)",
        "ts.fields": "Custom fields", "ts.f.key": "Field key", "ts.f.label": "Label", "ts.f.type": "Type",
        "ts.f.required": "Required", "ts.f.choices": "Choices (comma-separated)",
        "ts.f.help": "Empty a key to remove its row; the empty rows add new fields.",
        "ts.ft.text": "text", "ts.ft.number": "whole number", "ts.ft.choice": "choice", "ts.ft.date": "date",
        "ts.used": "Tickets", "ts.err": "Not saved: {message}", "ts.auto": "created automatically",
    },
})
