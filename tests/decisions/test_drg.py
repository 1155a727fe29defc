"""Decision requirement graphs: import checks naming the element, dependency order, scopes, BKMs,
literal-expression decisions, DMN 1.1 documents, Camunda semantics."""

from __future__ import annotations

from decimal import Decimal

import pytest

from decisions.dmn_xml import DmnImportError, load_graph

DMN15 = "https://www.omg.org/spec/DMN/20230324/MODEL/"


def model(body: str, namespace: str = DMN15) -> str:
    return f'<definitions xmlns="{namespace}" id="m" name="m" namespace="urn:m">{body}</definitions>'


def requires(*hrefs: str, kind: str = "requiredDecision") -> str:
    return "".join(f'<informationRequirement><{kind} href="#{h}"/></informationRequirement>' for h in hrefs)


def literal(text: str) -> str:
    return f"<literalExpression><text>{text}</text></literalExpression>"


PRICING = model(f"""
  <inputData id="amount" name="Order Amount"><variable name="Order Amount" typeRef="number"/></inputData>
  <inputData id="tier" name="Customer Tier"><variable name="Customer Tier" typeRef="string"/></inputData>
  <businessKnowledgeModel id="rate_bkm" name="Discount Rate">
    <encapsulatedLogic><formalParameter name="tier" typeRef="string"/>
      <decisionTable hitPolicy="UNIQUE">
        <input id="i"><inputExpression typeRef="string"><text>tier</text></inputExpression></input>
        <output id="o" typeRef="number"/>
        <rule id="g"><inputEntry><text>"gold"</text></inputEntry><outputEntry><text>0.1</text></outputEntry></rule>
        <rule id="o"><inputEntry><text>not("gold")</text></inputEntry><outputEntry><text>0</text></outputEntry></rule>
      </decisionTable>
    </encapsulatedLogic>
  </businessKnowledgeModel>
  <decision id="discount" name="Discount">
    {requires("amount", "tier", kind="requiredInput")}
    <knowledgeRequirement><requiredKnowledge href="#rate_bkm"/></knowledgeRequirement>
    {literal("Order Amount * Discount Rate(Customer Tier)")}
  </decision>
  <decision id="total" name="Total To Pay">
    {requires("discount")}{requires("amount", kind="requiredInput")}
    {literal("Order Amount - Discount")}
  </decision>
  <decision id="label" name="Label">
    {requires("total")}
    <invocation><literalExpression><text>string</text></literalExpression>
      <binding><parameter name="from"/>{literal("Total To Pay")}</binding></invocation>
  </decision>""")


def test_decisions_evaluate_in_dependency_order_each_seeing_its_requirements_by_name() -> None:
    graph = load_graph(PRICING)
    evaluation = graph.evaluate({"Order Amount": 200, "Customer Tier": "gold"}, ["Label"])
    assert evaluation.results == {"Label": "180"}
    assert evaluation.order == ["Discount", "Total To Pay", "Label"]
    assert evaluation.decided == {"Discount": Decimal("20.0"), "Total To Pay": Decimal("180.0"), "Label": "180"}


def test_a_decision_does_not_see_decisions_it_does_not_require() -> None:
    graph = load_graph(PRICING.replace("Order Amount - Discount", "Order Amount - Label"))
    evaluation = graph.evaluate({"Order Amount": 200, "Customer Tier": "gold"}, ["Total To Pay"])
    assert evaluation.results == {"Total To Pay": None}
    assert "no variable named 'Label'" in evaluation.notes


def test_a_missing_requirement_is_refused_naming_the_element() -> None:
    broken = PRICING.replace('<requiredDecision href="#discount"/>', '<requiredDecision href="#gone"/>')
    with pytest.raises(DmnImportError, match="<decision id='total' name='Total To Pay'> requires the decision or "
                                             "input data '#gone', which is not in the model"):
        load_graph(broken)


def test_a_cycle_is_refused_naming_the_decisions() -> None:
    cyclic = model(f"""
      <decision id="a" name="A">{requires("b")}{literal("B + 1")}</decision>
      <decision id="b" name="B">{requires("c")}{literal("C + 1")}</decision>
      <decision id="c" name="C">{requires("a")}{literal("A + 1")}</decision>""")
    with pytest.raises(DmnImportError, match=r"requires itself through 'A' → 'B' → 'C' → 'A'|"
                                             r"requires itself through 'B' → 'C' → 'A' → 'B'|"
                                             r"requires itself through 'C' → 'A' → 'B' → 'C'"):
        load_graph(cyclic)


def test_feel_that_does_not_parse_is_refused_at_import() -> None:
    with pytest.raises(DmnImportError, match=r"<decision id='a' name='A'>: 'B \+': expected an expression"):
        load_graph(model(f'<decision id="a" name="A">{literal("B +")}</decision>'))


def test_dmn_11_documents_with_typeref_elements() -> None:
    dmn11 = model("""
      <itemDefinition name="tAge"><typeRef>feel:number</typeRef><allowedValues><text>[0..150]</text></allowedValues>
      </itemDefinition>
      <inputData id="age" name="Age"><variable name="Age" typeRef="tAge"/></inputData>
      <decision id="adult" name="Adult"><informationRequirement><requiredInput href="#age"/></informationRequirement>
        <literalExpression><text>Age >= 18</text></literalExpression></decision>""",
                  namespace="http://www.omg.org/spec/DMN/20151101/dmn11.xsd")
    graph = load_graph(dmn11)
    assert graph.evaluate({"Age": 30}).results == {"Adult": True}
    assert graph.evaluate({"Age": 200}).results == {"Adult": None}  # 200 is not a tAge: null


def test_camunda_style_tables_read_process_variables_and_required_outputs() -> None:
    camunda = model(f"""
      <decision id="route" name="Route"><decisionTable>
        <input id="i"><inputExpression typeRef="number"><text>amount</text></inputExpression></input>
        <output id="q" name="queue" typeRef="string"/><output id="p" name="priority" typeRef="string"/>
        <rule id="r"><inputEntry><text>&gt; 100</text></inputEntry>
          <outputEntry><text>"big"</text></outputEntry><outputEntry><text>"high"</text></outputEntry></rule>
      </decisionTable></decision>
      <decision id="summary" name="Summary">{requires("route")}{literal('queue + "/" + priority')}</decision>""")
    assert load_graph(camunda).evaluate({"amount": 500}, ["Summary"]).decided == {
        "Route": {"queue": "big", "priority": "high"}, "Summary": "big/high"}
