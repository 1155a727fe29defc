"""The decisions area's strings (the decision-table editor in the canvas: ``templates/editor/_fields.html``,
``static/decisions/decision_table.js``; the labels of the node's fields; the decision-graph page
``templates/decisions/graph.html``) in zh-CN and English.

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
    ("nav.decisions", "决策模型", "Decisions"),
    ("drg.title", "决策模型（DMN 决策需求图）", "Decision models (DMN requirement graphs)"),
    ("drg.intro", "导入 Camunda、Drools 或 Trisotech 导出的 DMN 1.1–1.5 模型，"
                  "查看决策、输入数据和业务知识模型之间的依赖；打开决策表编辑、导出，并用一组输入计算整个模型。"
                  "模型不会保存：决策表在流程的「决策表」节点中使用。",
     "Import a DMN 1.1–1.5 model from Camunda, Drools or Trisotech and see how its decisions, input data and "
     "business knowledge models depend on each other; open its decision tables to edit or export them, and "
     "evaluate the whole model on an input. Nothing is stored: tables are used in flows by the decision table node."),
    ("drg.file", "DMN 文件", "DMN file"),
    ("drg.file_hint", ".dmn 或 .xml，UTF-8，最大 {mb} MB；引用其他模型（import）的文件请先合并。",
     ".dmn or .xml, UTF-8, at most {mb} MB; a model that imports other models cannot be read on its own."),
    ("drg.import", "导入并查看", "Import and show"),
    ("drg.no_file", "请选择一个 DMN 文件。", "Choose a DMN file."),
    ("drg.too_big", "文件超过 {mb} MB。", "The file is larger than {mb} MB."),
    ("drg.not_utf8", "文件不是 UTF-8 编码：请在 DMN 工具中另存为 UTF-8。",
     "The file is not UTF-8: save it as UTF-8 in your DMN tool."),
    ("drg.refused", "无法读取此模型：{reason}", "This model cannot be read: {reason}"),
    ("drg.not_xml", "不是完整的 XML 文档：{reason}", "Not a complete XML document: {reason}"),
    ("drg.graph", "决策需求图", "Decision requirement graph"),
    ("drg.information", "信息需求", "information requirement"),
    ("drg.knowledge", "知识需求（调用）", "knowledge requirement (invocation)"),
    ("drg.click", "点击决策或业务知识模型查看其逻辑。", "Click a decision or knowledge model to see its logic."),
    ("drg.open", "打开", "Open"),
    ("drg.kind.decision", "决策", "Decision"),
    ("drg.kind.input", "输入数据", "Input data"),
    ("drg.kind.bkm", "业务知识模型", "Business knowledge model"),
    ("drg.kind.service", "决策服务", "Decision service"),
    ("drg.logic.table", "决策表", "decision table"),
    ("drg.logic.literal", "文字表达式", "literal expression"),
    ("drg.logic.context", "上下文", "context"),
    ("drg.logic.invocation", "调用", "invocation"),
    ("drg.logic.function", "函数", "function"),
    ("drg.logic.relation", "关系", "relation"),
    ("drg.logic.list", "列表", "list"),
    ("drg.logic.conditional", "条件", "conditional"),
    ("drg.logic.filter", "筛选", "filter"),
    ("drg.logic.iterator", "迭代", "iterator"),
    ("drg.logic.none", "无逻辑", "no logic"),
    ("drg.evaluate", "计算整个模型", "Evaluate the whole model"),
    ("drg.feel_hint", "FEEL 值：数字 35、文本 \"金卡\"、日期 date(\"2026-11-11\")、"
                      "上下文 {a: 1}、列表 [1, 2]；留空为 null。",
     "A FEEL value: 35, \"gold\", date(\"2026-11-11\"), {a: 1}, [1, 2]; empty is null."),
    ("drg.null", "（空 / null）", "(empty / null)"),
    ("drg.no_inputs", "此模型没有输入数据。", "This model has no input data."),
    ("drg.run", "计算", "Evaluate"),
    ("drg.results", "每个决策的结果", "Each decision's result"),
    ("drg.decision", "决策", "Decision"),
    ("drg.result", "结果", "Result"),
    ("drg.done", "已计算。", "Evaluated."),
    ("drg.elements", "决策与业务知识模型", "Decisions and knowledge models"),
    ("drg.requires", "依赖", "Requires"),
    ("drg.parameters", "参数", "Parameters"),
    ("drg.no_logic", "此元素没有决策逻辑。", "This element has no decision logic."),
)
i18n.add({"zh-CN": {k: zh for k, zh, _ in _STRINGS}, "en": {k: en for k, _, en in _STRINGS}})
