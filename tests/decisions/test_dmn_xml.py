"""DMN XML: a Camunda-Modeler-style file, every DMN namespace, refusing bad documents, round trips."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from decisions.analysis import analyse
from decisions.dmn_xml import (
    DMN13_NAMESPACE,
    DmnImportError,
    dump_decision_table,
    dump_decision_tables,
    load_decision_table,
    load_decision_tables,
)
from decisions.table import (
    Aggregation,
    DecisionTable,
    HitPolicy,
    HitPolicyViolation,
    evaluate,
)

REFUND_ROUTING = (Path(__file__).parent / "data" / "refund_routing.dmn").read_bytes()


def refund(amount: object, vip: str = "none", refunds: int = 0, new: bool = False) -> dict[str, object]:
    return {"ticket": {"refund_amount": amount},
            "customer": {"vip_level": vip, "refunds_30d": refunds, "is_new": new}}


@pytest.fixture(scope="module")
def routing() -> DecisionTable:
    return load_decision_table(REFUND_ROUTING, "refund_routing")


def test_camunda_file_imports_every_decision_table_and_skips_other_decisions() -> None:
    tables = load_decision_tables(REFUND_ROUTING)
    assert [table.id for table in tables] == ["refund_routing", "refund_risk_score"]
    assert [table.name for table in tables] == ["退款工单路由", "退款风险分"]
    assert tables[1].hit_policy is HitPolicy.COLLECT
    assert tables[1].aggregation is Aggregation.SUM


def test_imported_columns_and_rules(routing: DecisionTable) -> None:
    assert routing.hit_policy is HitPolicy.UNIQUE  # no hitPolicy attribute means UNIQUE
    amount, vip = routing.inputs
    assert (amount.id, amount.label, amount.expression, amount.type_ref) == (
        "Input_amount", "退款金额 (元)", "ticket.refund_amount", "number")
    assert vip.allowed_values == ["none", "silver", "gold", "platinum"]
    assert [output.name for output in routing.outputs] == ["queue", "priority", "review_levels"]
    assert routing.outputs[1].allowed_values == ["urgent", "high", "normal"]
    assert routing.outputs[2].allowed_values is None
    assert len(routing.rules) == 7
    large = routing.rule("DecisionRule_large")
    assert large.input_entries == ["[2000..10000)", ""]  # Camunda writes an empty <text/> for "-"
    assert large.description == "大额：资深组，二级复核"
    assert routing.rule("DecisionRule_mid_gold").description == ""


@pytest.mark.parametrize(("amount", "vip", "queue", "priority", "reviews"), [
    (99, "none", "refund_standard", "normal", 0),
    ("199.99", "gold", "refund_vip", "high", 0),
    (200, "silver", "refund_standard", "normal", 1),
    (Decimal("1999.99"), "platinum", "refund_vip", "urgent", 1),
    (2000, "gold", "refund_senior", "high", 2),
    ("10000.00", "none", "refund_risk", "urgent", 3),
])
def test_refund_routing(routing: DecisionTable, amount: object, vip: str, queue: str, priority: str,
                        reviews: int) -> None:
    result = evaluate(routing, refund(amount, vip))
    assert result.value == {"queue": queue, "priority": priority, "review_levels": reviews}
    assert len(result.matched_rule_ids) == 1


def test_the_shipped_routing_table_is_complete_and_unambiguous(routing: DecisionTable) -> None:
    assert analyse(routing) == []


def test_risk_score_sums_points_and_reports_its_gap() -> None:
    score = load_decision_table(REFUND_ROUTING, "refund_risk_score")
    assert evaluate(score, refund(6000, refunds=3, new=True)).value == 90
    assert evaluate(score, refund(6000)).value == 40
    assert evaluate(score, refund(100)).value is None
    findings = analyse(score)
    assert [finding.kind for finding in findings] == ["gap"]
    assert findings[0].example == {
        "退款金额 (元)": "<= 5000", "近30天退款次数": "< 3", "新客": "false"}


def test_choosing_a_decision() -> None:
    with pytest.raises(DmnImportError,
                       match=r"several decision tables \('refund_routing', 'refund_risk_score'\)"):
        load_decision_table(REFUND_ROUTING)
    with pytest.raises(DmnImportError, match=r"<decision id='refund_summary' name='路由摘要'> \(holds "
                                             r"<literalExpression>\) is not a decision table"):
        load_decision_table(REFUND_ROUTING, "refund_summary")
    with pytest.raises(DmnImportError, match="no <decision id='nope'>"):
        load_decision_table(REFUND_ROUTING, "nope")


def test_import_export_import_round_trips(routing: DecisionTable) -> None:
    tables = load_decision_tables(REFUND_ROUTING)
    exported = dump_decision_tables(tables)
    assert f'<definitions xmlns="{DMN13_NAMESPACE}"' in exported
    assert load_decision_tables(exported) == tables
    assert dump_decision_tables(load_decision_tables(exported)) == exported
    single = dump_decision_table(routing)
    assert 'id="Definitions_refund_routing" name="退款工单路由"' in single
    assert load_decision_table(single) == routing


def test_export_writes_policies_values_and_descriptions() -> None:
    table = DecisionTable.model_validate({
        "id": "vip_discount", "name": "VIP <折扣> & \"más\"", "hit_policy": "OUTPUT ORDER",
        "inputs": [{"id": "i", "expression": "customer.level", "type_ref": "integer",
                    "allowed_values": [1, 2, 3]}],
        "outputs": [{"id": "o", "name": "rate", "type_ref": "number",
                     "allowed_values": [Decimal("0.15"), Decimal("0.10"), 0]}],
        "rules": [{"id": "r1", "input_entries": ["3"], "output_entries": ["0.15"],
                   "description": "top & <b>"},
                  {"id": "r2", "input_entries": ["> 1"], "output_entries": ["0.10"]},
                  {"id": "r3", "input_entries": ["-"], "output_entries": ["0"]}],
    })
    exported = dump_decision_table(table)
    assert 'hitPolicy="OUTPUT ORDER"' in exported
    assert "<text>1,2,3</text>" in exported and "<text>0.15,0.10,0</text>" in exported
    assert "<text>&gt; 1</text>" in exported
    again = load_decision_table(exported)
    assert again == table
    assert evaluate(again, {"customer": {"level": 3}}).value == [
        {"rate": Decimal("0.15")}, {"rate": Decimal("0.10")}, {"rate": 0}]


def small_document(namespace: str, table: str = "", decision: str = "") -> str:
    table = table or """
      <input id="i1" label="Amount">
        <inputExpression id="e1" typeRef="number"><text>amount</text></inputExpression>
      </input>
      <output id="o1" name="queue" typeRef="string"/>
      <rule id="r1"><inputEntry id="ie1"><text>&lt; 100</text></inputEntry>
        <outputEntry id="oe1"><text>"small"</text></outputEntry></rule>
      <rule id="r2"><inputEntry id="ie2"><text>&gt;= 100</text></inputEntry>
        <outputEntry id="oe2"><text>"large"</text></outputEntry></rule>"""
    decision = decision or f'<decision id="d" name="D"><decisionTable id="t">{table}</decisionTable>' \
                           '</decision>'
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<definitions xmlns="{namespace}" id="defs" name="x" ' \
           f'namespace="urn:x">{decision}</definitions>'


@pytest.mark.parametrize("namespace", [
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
    "http://www.omg.org/spec/DMN/20151101/dmn11.xsd",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "http://www.omg.org/spec/DMN/20191111/MODEL/",
    "https://www.omg.org/spec/DMN/20211108/MODEL/",
    "https://www.omg.org/spec/DMN/20230324/MODEL/",
])
def test_every_dmn_version_imports(namespace: str) -> None:
    table = load_decision_table(small_document(namespace))
    assert evaluate(table, {"amount": 150}).value == {"queue": "large"}


def test_prefixed_dmn_elements_import() -> None:
    document = f"""<dmn:definitions xmlns:dmn="{DMN13_NAMESPACE}" id="defs" name="x" namespace="urn:x">
      <dmn:decision id="d" name="D"><dmn:decisionTable id="t" hitPolicy="FIRST">
        <dmn:input id="i1">
          <dmn:inputExpression typeRef="string"><dmn:text>shop.type</dmn:text></dmn:inputExpression>
        </dmn:input>
        <dmn:output id="o1" name="rate" typeRef="number"/>
        <dmn:rule id="r1"><dmn:inputEntry><dmn:text>"direct"</dmn:text></dmn:inputEntry>
          <dmn:outputEntry><dmn:text>0.05</dmn:text></dmn:outputEntry></dmn:rule>
      </dmn:decisionTable></dmn:decision></dmn:definitions>"""
    table = load_decision_table(document)
    assert evaluate(table, {"shop": {"type": "direct"}}).value == {"rate": Decimal("0.05")}


def test_bytes_and_str_both_import() -> None:
    document = small_document(DMN13_NAMESPACE)
    assert load_decision_table(document) == load_decision_table(document.encode())


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/">
  <decision id="d">&lol2;</decision>
</definitions>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE definitions [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/">&secret;</definitions>"""


@pytest.mark.parametrize(("document", "problem"), [
    (BILLION_LAUGHS, "DTD"),
    (EXTERNAL_ENTITY, "DTD"),
    ('<!DOCTYPE definitions><definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/"/>', "DTD"),
    ("<definitions", "not well-formed XML"),
    ("", "not well-formed XML"),
    ('<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"/>',
     "not DMN 1.1–1.5"),
    ("<definitions/>", r"namespace '\(none\)'"),
    ('<process xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/"/>', "root element is <process>"),
])
def test_unsafe_or_foreign_documents_are_refused(document: str, problem: str) -> None:
    with pytest.raises(DmnImportError, match=problem):
        load_decision_tables(document)


def test_oversized_documents_are_refused() -> None:
    with pytest.raises(DmnImportError, match="larger than"):
        load_decision_tables(b" " * 5_000_001)


@pytest.mark.parametrize(("document", "problem"), [
    (small_document(DMN13_NAMESPACE, decision='<decision id="lit"><literalExpression><text>1</text>'
                                              '</literalExpression></decision>'),
     r"no <decision> with a <decisionTable> \(decisions found: "
     r"<decision id='lit'> \(holds <literalExpression>\)"),
    (small_document(DMN13_NAMESPACE, decision="<inputData id='x'/>"),
     "no <decision> with a <decisionTable>$"),
    (small_document(DMN13_NAMESPACE,
                    table='<input id="i1"><inputExpression><text>amount</text></inputExpression></input>'),
     "<decisionTable> has no <output>"),
    (small_document(DMN13_NAMESPACE).replace('<decisionTable id="t">',
                                             '<decisionTable id="t" hitPolicy="BEST">'),
     "hitPolicy 'BEST' is not one of UNIQUE, ANY"),
    (small_document(DMN13_NAMESPACE).replace('<decisionTable id="t">',
                                             '<decisionTable id="t" hitPolicy="COLLECT" aggregation="AVG">'),
     "aggregation 'AVG' is not one of SUM"),
    (small_document(DMN13_NAMESPACE).replace("&lt; 100", "&lt;&lt; 100"),
     r"<decision id='d' name='D'>: rule 'r1', input 'Amount': '<< 100': expected an expression at position 2"),
    (small_document(DMN13_NAMESPACE).replace("&lt; 100", '"one hundred"'),
     "<decision id='d' name='D'>: rule 'r1', input 'Amount': '\"one hundred\"' compares with a string"),
    (small_document(DMN13_NAMESPACE).replace(
        '<rule id="r1"><inputEntry id="ie1"><text>&lt; 100</text></inputEntry>', '<rule id="r1">'),
     "rule 'r1' has 0 input entries for 1 input columns"),
    (small_document(DMN13_NAMESPACE).replace('<inputEntry id="ie2">',
                                             '<inputEntry id="ie2" expressionLanguage="juel">'),
     "<rule id='r2'> <inputEntry id='ie2'> uses expression language 'juel'; only FEEL is supported"),
    (small_document(DMN13_NAMESPACE).replace('namespace="urn:x"',
                                             'namespace="urn:x" expressionLanguage="javascript"'),
     "<definitions> uses expression language 'javascript'"),
    (small_document(DMN13_NAMESPACE).replace(
        '<output id="o1" name="queue" typeRef="string"/>',
        '<output id="o1" name="queue" typeRef="string">'
        "<outputValues><text>&lt; 5</text></outputValues></output>"),
     "<output id='o1'> <outputValues>: '< 5' must be a list of literals"),
])
def test_unsupported_tables_are_refused_naming_the_element(document: str, problem: str) -> None:
    with pytest.raises(DmnImportError, match=problem):
        load_decision_tables(document)


def test_imported_unique_table_still_enforces_its_policy() -> None:
    document = small_document(DMN13_NAMESPACE).replace("&gt;= 100", "&gt;= 50")
    with pytest.raises(HitPolicyViolation, match="'r1', 'r2'"):
        evaluate(load_decision_table(document), {"amount": 70})
