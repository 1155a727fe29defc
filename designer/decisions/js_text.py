"""The decision-table editor's strings (``static/decisions/decision_table.js``, drawn inside the
``logic.decision_table`` property form): the script looks them up by these keys; the page hands it
the texts in the reader's language (``templates/editor/_fields.html``)."""

from __future__ import annotations

from designer.i18n import N_, gettext

JS_TEXT: dict[str, str] = {
    "dmn.name": N_("Table name"), "dmn.hit_policy": N_("Hit policy"), "dmn.aggregation": N_("Aggregation"),
    "dmn.inputs": N_("Inputs"), "dmn.outputs": N_("Outputs"), "dmn.label": N_("Label"),
    "dmn.expression": N_("Input expression"), "dmn.type": N_("Type"), "dmn.values": N_("Allowed values (optional)"),
    "dmn.priority_values": N_("Values (by priority)"), "dmn.output_name": N_("Output name (variable)"),
    "dmn.description": N_("Description"), "dmn.rule_id": N_("Rule id"), "dmn.add_rule": N_("Add a rule"),
    "dmn.add_input": N_("Add an input"), "dmn.add_output": N_("Add an output"),
    "dmn.remove_rule": N_("Remove this rule"), "dmn.remove_input": N_("Remove this input"),
    "dmn.remove_output": N_("Remove this output"), "dmn.move_up": N_("Move up (FIRST / RULE ORDER go by order)"),
    "dmn.cells_hint": N_("Input cells: - for any; < 10, [1..10), \"gold\",\"silver\", not(\"gold\"). "
                         "Output cells: \"text\", a number, true/false or null."),
    "dmn.import": N_("Import DMN…"), "dmn.export": N_("Export DMN"),
    "dmn.which": N_("Type the id of the decision to import:"), "dmn.imported": N_("Imported"),
    "dmn.clean": N_("no overlaps, no gaps"), "dmn.test": N_("Test this table"), "dmn.test_input": N_("Input (JSON)"),
    "dmn.run_test": N_("Evaluate"), "dmn.bad_input": N_("The input is not valid JSON:"), "dmn.result": N_("Result:"),
    "dmn.matched": N_("Matched rules:"), "dmn.json": N_("JSON (advanced)"),
    "dmn.summary": N_("%(rules)s rules · %(policy)s · inputs: %(inputs)s · outputs: %(outputs)s"),
    "dmn.when": N_("When (inputs)"), "dmn.then": N_("Then (outputs)"), "dmn.annotations": N_("Annotations"),
    "dmn.actions": N_("Actions"), "dmn.rule_n": N_("Rule %(n)s"), "dmn.drag": N_("Drag to reorder the rules"),
    "dmn.move_down": N_("Move down"), "dmn.insert_below": N_("Insert a rule below"),
    "dmn.keys_hint": N_("Enter on the last rule adds a rule."),
}


def js_text() -> dict[str, str]:
    """The editor's strings in the current language."""
    return {key: gettext(text) for key, text in JS_TEXT.items()}
