"""The decisions area's strings (the decision-table editor in the canvas: ``templates/editor/_fields.html``,
``static/decisions/decision_table.js``; the labels of the node's fields) in zh-CN and English.

One catalogue per area, merged into :mod:`designer.i18n` when the area is imported.
"""

from __future__ import annotations

from designer import i18n

#: (key, zh-CN, en)
_STRINGS: tuple[tuple[str, str, str], ...] = (
    ("field.table", "决策表", "Decision table"),
    ("field.port_output", "按此输出选择端口", "Output that picks the port"),
    ("field.default_port", "未命中时的端口", "Port when no rule matches"),
    ("field.result_variable", "结果变量名", "Result variable"),
    ("field.allow_gaps", "允许未覆盖的输入", "Allow gaps"),
    ("dmn.name", "名称", "Name"),
    ("dmn.hit_policy", "命中策略", "Hit policy"),
    ("dmn.aggregation", "聚合", "Aggregation"),
    ("dmn.inputs", "输入", "Inputs"),
    ("dmn.outputs", "输出", "Outputs"),
    ("dmn.label", "标题", "Label"),
    ("dmn.expression", "输入表达式", "Input expression"),
    ("dmn.type", "类型", "Type"),
    ("dmn.values", "取值范围（可选）", "Allowed values (optional)"),
    ("dmn.priority_values", "取值（按优先级）", "Values (by priority)"),
    ("dmn.output_name", "输出名（变量名）", "Output name (variable)"),
    ("dmn.description", "说明", "Description"),
    ("dmn.rule_id", "规则 ID", "Rule id"),
    ("dmn.add_rule", "添加规则", "Add a rule"),
    ("dmn.add_input", "添加输入列", "Add an input"),
    ("dmn.add_output", "添加输出列", "Add an output"),
    ("dmn.remove_rule", "删除此规则", "Remove this rule"),
    ("dmn.remove_input", "删除此输入列", "Remove this input"),
    ("dmn.remove_output", "删除此输出列", "Remove this output"),
    ("dmn.move_up", "上移（FIRST / RULE ORDER 按顺序）", "Move up (FIRST / RULE ORDER go by order)"),
    ("dmn.cells_hint", "输入单元格：- 表示任意；< 10、[1..10)、\"gold\",\"silver\"、not(\"gold\")。"
                       "输出单元格：\"文本\"、数字、true/false 或 null。",
     "Input cells: - for any; < 10, [1..10), \"gold\",\"silver\", not(\"gold\"). "
     "Output cells: \"text\", a number, true/false or null."),
    ("dmn.import", "导入 DMN…", "Import DMN…"),
    ("dmn.export", "导出 DMN", "Export DMN"),
    ("dmn.which", "请输入要导入的决策 ID：", "Type the id of the decision to import:"),
    ("dmn.imported", "已导入", "Imported"),
    ("dmn.clean", "无重叠、无遗漏", "no overlaps, no gaps"),
    ("dmn.test", "测试此决策表", "Test this table"),
    ("dmn.test_input", "输入（JSON）", "Input (JSON)"),
    ("dmn.run_test", "计算", "Evaluate"),
    ("dmn.bad_input", "输入不是有效的 JSON：", "The input is not valid JSON:"),
    ("dmn.result", "结果：", "Result:"),
    ("dmn.matched", "命中规则：", "Matched rules:"),
    ("dmn.json", "JSON（高级）", "JSON (advanced)"),
)
i18n.add({"zh-CN": {k: zh for k, zh, _ in _STRINGS}, "en": {k: en for k, _, en in _STRINGS}})
