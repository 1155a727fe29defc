"""The messaging rules' strings (settings page, send node rules) in zh-CN and English."""

from __future__ import annotations

from designer import i18n

_STRINGS: tuple[tuple[str, str, str], ...] = (
    ("nav.policies", "发送规则", "Sending rules"),
    ("pol.title", "消息发送规则", "Messaging rules"),
    ("pol.intro", "这些规则对所有流程的营销消息生效。事务消息（订单通知、工单回复等）不受频次上限和免打扰限制；"
                  "客户退订后任何消息都不再发送。",
     "These rules apply to promotional messages of every flow. Transactional messages (order notices, ticket "
     "replies) are exempt from the cap and quiet hours; nothing is sent to a customer who opted out."),
    ("pol.cap", "频次上限", "Frequency cap"),
    ("pol.cap_on", "限制每位客户收到的营销消息数量（所有流程合计）",
     "Limit the promotional messages each customer gets (all flows together)"),
    ("pol.cap_count", "最多条数", "At most (messages)"),
    ("pol.cap_window", "时间窗口", "Within"),
    ("pol.quiet", "默认免打扰时段", "Default quiet hours"),
    ("pol.quiet_on", "在免打扰时段内不发营销消息（延后到时段结束）",
     "Hold promotional messages during quiet hours (sent when they end)"),
    ("pol.quiet_start", "开始", "From"),
    ("pol.quiet_end", "结束", "Until"),
    ("pol.quiet_help", "按客户所在时区（客户没有时区时按流程的时区）。流程可在「流程设置」里设置自己的免打扰时段，"
                       "会覆盖这里的默认值；开始与结束相同表示该流程不设免打扰。",
     "In the customer's time zone (the flow's when the customer has none). A flow's own quiet hours (flow "
     "settings) replace this default; a flow whose quiet hours start and end at the same time has none."),
    ("pol.save", "保存规则", "Save rules"),
    ("pol.saved", "发送规则已保存，下一条消息起生效。", "Rules saved; they apply from the next message on."),
    ("pol.env", "尚未在此保存过：当前频次上限来自环境变量 TIDEFLOW_FREQUENCY_CAP。",
     "Not saved here yet: the cap in force comes from TIDEFLOW_FREQUENCY_CAP."),
    ("pol.updated", "最后修改：{who}，{when}", "Last changed by {who}, {when}"),
    ("pol.flows", "各流程的设置", "Per flow"),
    ("pol.flow", "流程", "Flow"),
    ("pol.flow_cap", "频次上限", "Frequency cap"),
    ("pol.flow_quiet", "免打扰", "Quiet hours"),
    ("pol.applies", "生效", "applies"),
    ("pol.off", "关闭", "off"),
    ("pol.default", "默认（{start}–{end}）", "default ({start}–{end})"),
    ("pol.none", "无", "none"),
    ("pol.no_flows", "还没有客户旅程。", "No journeys yet."),
    ("pol.edit_flow", "在编辑器中打开", "Open in the editor"),
    ("pol.rules", "发送规则", "Sending rules"),
    ("pol.rules_link", "修改发送规则", "Change the sending rules"),
    ("pol.rule.consent", "客户退订（或删除好友）后不发送", "Not sent to customers who opted out"),
    ("pol.rule.transactional", "事务消息：不受频次上限和免打扰限制",
     "Transactional: exempt from the cap and quiet hours"),
    ("pol.rule.no_cap", "频次上限：未启用", "Frequency cap: off"),
    ("pol.rule.flow_uncapped", "频次上限：本流程已关闭", "Frequency cap: turned off for this flow"),
    ("pol.rule.cap", "频次上限：每位客户 {window}内最多 {count} 条营销消息（所有流程合计），超出则跳过",
     "Frequency cap: at most {count} promotional messages per customer in {window} (all flows); more are skipped"),
    ("pol.rule.quiet_flow", "免打扰：{start}–{end}（本流程设置，客户时区），期间的消息延后发送",
     "Quiet hours: {start}–{end} (this flow's, customer's time zone); messages wait until they end"),
    ("pol.rule.quiet_default", "免打扰：{start}–{end}（默认规则，客户时区），期间的消息延后发送",
     "Quiet hours: {start}–{end} (the default, customer's time zone); messages wait until they end"),
    ("pol.rule.no_quiet", "免打扰：未设置", "Quiet hours: none"),
    ("pol.rule.flow_no_quiet", "免打扰：本流程不设", "Quiet hours: none for this flow"),
    ("pol.badge.cap", "频控 {count}/{window}", "cap {count}/{window}"),
    ("pol.badge.quiet", "免打扰 {start}–{end}", "quiet {start}–{end}"),
    ("pol.badge.exempt", "事务消息", "transactional"),
)

i18n.add({"zh-CN": {k: zh for k, zh, _ in _STRINGS}, "en": {k: en for k, _, en in _STRINGS}})
