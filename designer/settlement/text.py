"""The settlement area's strings (the dashboard and statement pages) in zh-CN and English.

One catalogue per area, merged into :mod:`designer.i18n` when the area is imported.
"""

from __future__ import annotations

from designer import i18n

i18n.add({
    "zh-CN": {
        "st.title": "结算", "st.pending": "待审批结算单", "st.pending.none": "没有待审批的结算单。",
        "st.pending.sum": "共 {n} 张，合计 ¥{total}", "st.periods": "各期合计（按结算方类型）",
        "st.changes": "与上期相比", "st.runs": "最近的结算批次", "st.run_period": "结算一个周期",
        "st.run_period.help": "选择已发布的结算流程和日期范围；同一方案版本同一周期只结算一次，"
                              "重复运行返回已有结算单。",
        "st.flow": "结算流程", "st.from": "开始日期", "st.to": "结束日期", "st.run": "开始结算",
        "st.no_flows": "还没有已发布的结算流程（可从模板「月度门店结算」等创建）。",
        "st.party": "结算方", "st.party_type": "类型", "st.period": "周期", "st.sales": "销售额",
        "st.orders": "订单数", "st.commission": "佣金", "st.clawback": "追回", "st.total": "应付",
        "st.status": "状态", "st.plan": "方案", "st.version": "方案版本", "st.approve": "通过",
        "st.reject": "驳回", "st.reason": "原因（驳回必填）", "st.lines": "明细", "st.rule": "规则",
        "st.description": "说明", "st.exact": "精确值（分）", "st.amount": "金额", "st.csv": "下载 CSV",
        "st.print": "打印视图", "st.adjust": "更正（生成关联的调整单）", "st.adjust.amount": "调整金额（元，可为负）",
        "st.adjust.submit": "生成调整单", "st.adjusts": "调整自结算单 #{id}", "st.decided": "{who} 于 {at} {what}",
        "st.orders_of_line": "本行订单", "st.delta": "变化", "st.new": "新增", "st.gone": "减少",
        "st.pay": "生成付款指令", "st.statements": "结算单", "st.count": "张数",
        "ss.draft": "草稿", "ss.pending": "待审批", "ss.approved": "已通过", "ss.rejected": "已驳回",
        "ss.paid": "已付款", "st.notfound": "找不到结算单 #{id}。",
    },
    "en": {
        "st.title": "Settlement", "st.pending": "Statements waiting for approval",
        "st.pending.none": "No statement is waiting for approval.", "st.pending.sum": "{n} statements, ¥{total} in all",
        "st.periods": "Totals per period (by party type)", "st.changes": "Against the previous period",
        "st.runs": "Recent runs", "st.run_period": "Settle a period",
        "st.run_period.help": "Pick a published settlement flow and the dates; a period is settled once per plan "
                              "version, and running it again returns the same statements.",
        "st.flow": "Settlement flow", "st.from": "From", "st.to": "To", "st.run": "Settle",
        "st.no_flows": "No settlement flow is published yet (create one from a template such as 月度门店结算).",
        "st.party": "Party", "st.party_type": "Type", "st.period": "Period", "st.sales": "Sales",
        "st.orders": "Orders", "st.commission": "Commission", "st.clawback": "Clawback", "st.total": "Payable",
        "st.status": "Status", "st.plan": "Plan", "st.version": "Plan version", "st.approve": "Approve",
        "st.reject": "Reject", "st.reason": "Reason (required to reject)", "st.lines": "Lines", "st.rule": "Rule",
        "st.description": "Description", "st.exact": "Exact (fen)", "st.amount": "Amount", "st.csv": "Download CSV",
        "st.print": "Print view", "st.adjust": "Correct (a linked adjustment statement)",
        "st.adjust.amount": "Adjustment (yuan, may be negative)", "st.adjust.submit": "Create adjustment",
        "st.adjusts": "Adjusts statement #{id}", "st.decided": "{what} by {who} at {at}",
        "st.orders_of_line": "Orders of this line", "st.delta": "Change", "st.new": "New", "st.gone": "Gone",
        "st.pay": "Pay out approved", "st.statements": "Statements", "st.count": "Count",
        "ss.draft": "draft", "ss.pending": "pending", "ss.approved": "approved", "ss.rejected": "rejected",
        "ss.paid": "paid", "st.notfound": "There is no statement #{id}.",
    },
})
