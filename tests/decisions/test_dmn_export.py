"""A table edited in Tideflow saves as DMN 1.3 that Camunda Modeler opens: the export is read back with
bpmn-io's dmn-moddle and its camunda extension — the parser Camunda Modeler itself uses (vendored under
tests/decisions/vendor, run with Node) — and imported again unchanged. Camunda Modeler's new-diagram
template (an input whose expression has no text yet) imports too."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from decisions.dmn_xml import dump_decision_tables, load_decision_table, load_decision_tables, load_graph
from decisions.table import DecisionTable, evaluate, json_value
from engine.nodes.logic_decision_table import DecisionTableConfig, DecisionTableNode

READER = Path(__file__).parent / "vendor" / "read_dmn.mjs"
NODE = shutil.which("node")

EDITED = DecisionTable.model_validate({
    "id": "vip_discount", "name": "会员折扣 <VIP>", "hit_policy": "FIRST",
    "variables": ["Order Total"],
    "inputs": [
        {"id": "level", "label": "会员等级", "expression": "customer.level", "type_ref": "string",
         "allowed_values": ["gold", "silver"], "input_variable": "lvl"},
        {"id": "spent", "label": "消费", "expression": "customer.spent_fen", "type_ref": "number"},
        {"id": "when", "label": "日期", "expression": "date(event.payload.day)", "type_ref": "date"},
    ],
    "outputs": [
        {"id": "rate", "name": "rate", "type_ref": "number", "default": "0"},
        {"id": "code", "name": "code", "type_ref": "string"},
    ],
    "rules": [
        {"id": "gold_big", "description": "金卡大单", "input_entries": ['lvl = "gold"', "> Order Total * 10", "-"],
         "output_entries": ["0.15", '"VIP-" + upper case(customer.level)']},
        {"id": "double_11", "input_entries": ["-", "-", 'date("2026-11-11")'],
         "output_entries": ["0.11", '"D11"']},
        {"id": "gold", "input_entries": ['"gold"', "[0..100000)", "-"], "output_entries": ["0.1", '"G"']},
    ],
}, context={"feel_names": {"Order Total"}})


def read_like_camunda(xml: str, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "exported.dmn"
    path.write_text(xml, encoding="utf-8")
    assert NODE is not None, "Node.js runs dmn-moddle, Camunda Modeler's DMN reader"
    done = subprocess.run([NODE, str(READER), str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_an_edited_table_exports_as_dmn_13_that_camundas_reader_accepts(tmp_path: Path) -> None:
    xml = dump_decision_tables([EDITED])
    assert 'xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/"' in xml
    seen = read_like_camunda(xml, tmp_path)
    assert seen["warnings"] == []
    [decision] = seen["decisions"]
    assert decision["id"] == "vip_discount" and decision["name"] == "会员折扣 <VIP>"
    assert decision["requires"] == ["#InputData_1"]  # the variable the cells read, drawn as input data
    table = decision["table"]
    assert table["hitPolicy"] == "FIRST"
    assert [(i["expression"], i["typeRef"], i["inputVariable"]) for i in table["inputs"]] == [
        ("customer.level", "string", "lvl"), ("customer.spent_fen", "number", None),
        ("date(event.payload.day)", "date", None)]
    assert [(o["name"], o["default"]) for o in table["outputs"]] == [("rate", "0"), ("code", "")]
    assert table["rules"][0] == {"id": "gold_big", "inputs": ['lvl = "gold"', "> Order Total * 10", "-"],
                                 "outputs": ["0.15", '"VIP-" + upper case(customer.level)']}
    assert set(seen["shapes"]) == {"vip_discount", "InputData_1"}  # every element is drawn


def test_an_edited_table_survives_export_and_import(tmp_path: Path) -> None:
    again = load_decision_table(dump_decision_tables([EDITED]))
    assert again == EDITED
    inputs = {"customer": {"level": "gold", "spent_fen": 20_000}, "event": {"payload": {"day": "2026-11-11"}},
              "Order Total": 100}
    assert json_value(evaluate(again, inputs).value) == {"rate": "0.15", "code": "VIP-GOLD"}
    assert json_value(evaluate(again, {**inputs, "customer": {"level": "silver", "spent_fen": 5}}).value) == \
        {"rate": "0.11", "code": "D11"}


# Camunda Modeler's "new DMN diagram": one table, an input whose expression is still empty, one
# unnamed output — the state a ops user saves before filling it in (written after Camunda Modeler 5's
# template; the second variant leaves <text> out altogether).
CAMUNDA_NEW_DIAGRAM = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" xmlns:dmndi="https://www.omg.org/spec/DMN/20191111/DMNDI/"
  xmlns:dc="http://www.omg.org/spec/DMN/20180521/DC/" xmlns:modeler="http://camunda.org/schema/modeler/1.0"
  xmlns:camunda="http://camunda.org/schema/1.0/dmn" id="Definitions_0x1" name="DRD"
  namespace="http://camunda.org/schema/1.0/dmn" exporter="Camunda Modeler" exporterVersion="5.30.0"
  modeler:executionPlatform="Camunda Cloud" modeler:executionPlatformVersion="8.6.0">
  <decision id="Decision_1" name="Decision 1" camunda:versionTag="1">
    <decisionTable id="DecisionTable_1">
      <input id="Input_1" camunda:inputVariable="cell">
        <inputExpression id="InputExpression_1" typeRef="string">{text}</inputExpression>
      </input>
      <output id="Output_1" typeRef="string" />
    </decisionTable>
  </decision>
  <dmndi:DMNDI>
    <dmndi:DMNDiagram>
      <dmndi:DMNShape dmnElementRef="Decision_1"><dc:Bounds height="80" width="180" x="160" y="100" /></dmndi:DMNShape>
    </dmndi:DMNDiagram>
  </dmndi:DMNDI>
</definitions>"""


@pytest.mark.parametrize("text", ["<text></text>", ""])
def test_camunda_modelers_empty_template_imports_and_says_what_is_missing(text: str) -> None:
    document = CAMUNDA_NEW_DIAGRAM.format(text=text)
    [table] = load_decision_tables(document)
    assert table.inputs[0].expression == "" and table.inputs[0].input_variable == "cell"
    assert table.outputs[0].name == "Decision 1"  # an unnamed single output is named after its decision
    assert evaluate(table, {}).value is None  # no rules yet: nothing matches
    assert load_graph(document).evaluate({}).results == {"Decision 1": None}
    problems = DecisionTableNode.check(DecisionTableConfig(table=table, allow_gaps=True))
    assert [(p.field, p.message) for p in problems if p.code == "bad_expression"] == [
        ("table.inputs.0.expression", "input 'Input_1': no expression yet: say what the column reads, "
                                      "e.g. event.payload.amount")]


def test_a_filled_in_camunda_template_goes_back_to_camunda(tmp_path: Path) -> None:
    document = CAMUNDA_NEW_DIAGRAM.format(text="<text>customer.tier</text>")
    table = load_decision_table(document)
    filled = table.model_copy(update={"rules": [
        {"id": "r1", "input_entries": ['cell = "gold"'], "output_entries": ['"vip"']}]})
    filled = DecisionTable.model_validate(filled.model_dump())
    seen = read_like_camunda(dump_decision_tables([filled]), tmp_path)
    assert seen["warnings"] == []
    assert seen["decisions"][0]["table"]["inputs"][0]["inputVariable"] == "cell"
    assert evaluate(load_decision_table(dump_decision_tables([filled])), {"customer": {"tier": "gold"}}).value == \
        {"Decision 1": "vip"}
