"""Import and export DMN XML decision tables (the files Camunda Modeler and other DMN tools write).

Reads DMN 1.1, 1.2, 1.3, 1.4 and 1.5 (the namespace decides; ``http`` and ``https`` spellings are
both accepted) and writes DMN 1.3, which Camunda 7 and 8 and most tools read. Only decision tables
are imported: other decisions (literal expressions, invocations, …), input data, requirements and
the diagram (DMNDI) are ignored on import and not written on export. What the model does not hold
is lost in a round trip: element ids of entries and expressions, ``camunda:*`` attributes,
``annotationEntry`` columns (the rule ``<description>`` is kept), ``outputLabel``, default output
entries. Import → export → import gives an equal :class:`DecisionTable`. Cells in another
``expressionLanguage`` than FEEL (Camunda 7's JUEL, JavaScript, …) are refused.

Safety: documents are parsed with the standard library's expat after a first pass that refuses
any DTD (``<!DOCTYPE``) or entity declaration, so entity expansion ("billion laughs") and
external entities cannot happen; documents over :data:`MAX_DOCUMENT_BYTES` are refused.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pyexpat import ExpatError, ParserCreate

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from decisions.feel import (
    Comparison,
    FeelSyntaxError,
    FeelValue,
    format_literal,
    parse_literal,
    parse_unary_tests,
)
from decisions.table import Aggregation, DecisionTable, HitPolicy

DMN_NAMESPACES: dict[str, str] = {
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd": "1.1",
    "http://www.omg.org/spec/DMN/20151101/MODEL/": "1.1",
    "http://www.omg.org/spec/DMN/20180521/MODEL/": "1.2",
    "https://www.omg.org/spec/DMN/20191111/MODEL/": "1.3",
    "https://www.omg.org/spec/DMN/20211108/MODEL/": "1.4",
    "https://www.omg.org/spec/DMN/20230324/MODEL/": "1.5",
}
DMN13_NAMESPACE = "https://www.omg.org/spec/DMN/20191111/MODEL/"
MAX_DOCUMENT_BYTES = 5_000_000

_Qualify = Callable[[str], str]
_BY_SCHEMELESS = {namespace.split("://", 1)[1]: version for namespace, version in DMN_NAMESPACES.items()}


class DmnImportError(ValueError):
    """The document is not a supported DMN decision table; the message names the element."""


# --------------------------------------------------------------------------------------------- import


def load_decision_tables(source: str | bytes) -> list[DecisionTable]:
    """Every decision table in a DMN document, in document order."""
    root, namespace = _parse(source)
    tables: list[DecisionTable] = []
    others: list[str] = []
    for decision in root.findall(f"{{{namespace}}}decision"):
        table = decision.find(f"{{{namespace}}}decisionTable")
        if table is None:
            others.append(_decision_summary(decision))
            continue
        tables.append(_decision_table(decision, table, namespace))
    if not tables:
        found = f" (decisions found: {', '.join(others)})" if others else ""
        raise DmnImportError(f"the document has no <decision> with a <decisionTable>{found}")
    return tables


def load_decision_table(source: str | bytes, decision_id: str | None = None) -> DecisionTable:
    """One decision table: the one with ``decision_id``, or the only one in the document."""
    if decision_id is not None:
        root, namespace = _parse(source)
        for decision in root.findall(f"{{{namespace}}}decision"):
            if decision.get("id") == decision_id:
                table = decision.find(f"{{{namespace}}}decisionTable")
                if table is None:
                    raise DmnImportError(f"{_decision_summary(decision)} is not a decision table")
                return _decision_table(decision, table, namespace)
        ids = ", ".join(repr(d.get("id")) for d in root.findall(f"{{{namespace}}}decision"))
        raise DmnImportError(f"no <decision id='{decision_id}'> in the document (decisions: {ids or 'none'})")
    tables = load_decision_tables(source)
    if len(tables) > 1:
        raise DmnImportError("the document has several decision tables "
                             f"({', '.join(repr(t.id) for t in tables)}); say which decision_id to load")
    return tables[0]


def _parse(source: str | bytes) -> tuple[ET.Element, str]:
    if len(source) > MAX_DOCUMENT_BYTES:
        raise DmnImportError(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
    _refuse_dtd(source)
    root = ET.fromstring(source)  # noqa: S314 - no DTD, hence no entities (checked above)
    _require_feel(root, "<definitions>")
    namespace, _, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
    if local != "definitions":
        raise DmnImportError(f"the root element is <{local}>, not a DMN <definitions>")
    if namespace.split("://", 1)[-1] not in _BY_SCHEMELESS:
        supported = ", ".join(sorted(DMN_NAMESPACES))
        raise DmnImportError(f"<definitions> has namespace '{namespace or '(none)'}', "
                             f"which is not DMN 1.1–1.5 ({supported})")
    return root, namespace


def _refuse_dtd(source: str | bytes) -> None:
    def refuse(*_: object) -> None:
        raise DmnImportError("DMN documents with a DTD (<!DOCTYPE …>) or entity declarations are refused")

    parser = ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(source, True)
    except ExpatError as error:
        raise DmnImportError(f"not well-formed XML: {error}") from None


def _decision_summary(decision: ET.Element) -> str:
    body = next((child.tag.rpartition("}")[2] for child in decision
                 if child.tag.rpartition("}")[2] not in _NOT_LOGIC), "nothing")
    return f"<decision id='{decision.get('id')}'> (holds <{body}>)"


_NOT_LOGIC = frozenset({"description", "extensionElements", "question", "allowedAnswers", "variable",
                        "informationRequirement", "knowledgeRequirement", "authorityRequirement",
                        "supportedObjective", "impactedPerformanceIndicator", "decisionMaker",
                        "decisionOwner", "usingProcess", "usingTask"})


def _decision_table(decision: ET.Element, table: ET.Element, ns: str) -> DecisionTable:
    decision_id = decision.get("id") or ""
    where = f"<decision id='{decision_id}'>"

    def q(tag: str) -> str:
        return f"{{{ns}}}{tag}"

    hit_policy = table.get("hitPolicy", "UNIQUE").strip().upper()
    if hit_policy not in HitPolicy.__members__.values():
        raise DmnImportError(f"{where} <decisionTable>: hitPolicy '{hit_policy}' is not one of "
                             f"{', '.join(HitPolicy)}")
    aggregation = table.get("aggregation")
    if aggregation is not None and aggregation.strip().upper() not in Aggregation.__members__:
        raise DmnImportError(f"{where} <decisionTable>: aggregation '{aggregation}' is not one of "
                             f"{', '.join(Aggregation)}")

    inputs = []
    for number, element in enumerate(table.findall(q("input")), start=1):
        input_id = element.get("id") or f"Input_{number}"
        expression = element.find(q("inputExpression"))
        if expression is None:
            raise DmnImportError(f"{where} <input id='{input_id}'> has no <inputExpression>")
        _require_feel(expression, f"{where} <input id='{input_id}'> <inputExpression>")
        text = _text(expression, q)
        if not text.strip():
            raise DmnImportError(f"{where} <input id='{input_id}'> <inputExpression> has no <text>")
        inputs.append({
            "id": input_id, "label": element.get("label", ""), "expression": text,
            "type_ref": expression.get("typeRef", ""),
            "allowed_values": _value_list(element.find(q("inputValues")), q,
                                          f"{where} <input id='{input_id}'> <inputValues>"),
        })

    outputs = []
    for number, element in enumerate(table.findall(q("output")), start=1):
        output_id = element.get("id") or f"Output_{number}"
        outputs.append({
            "id": output_id, "label": element.get("label", ""), "type_ref": element.get("typeRef", ""),
            "name": element.get("name") or element.get("label") or output_id,
            "allowed_values": _value_list(element.find(q("outputValues")), q,
                                          f"{where} <output id='{output_id}'> <outputValues>"),
        })
    if not outputs:
        raise DmnImportError(f"{where} <decisionTable> has no <output>")

    rules = []
    for number, element in enumerate(table.findall(q("rule")), start=1):
        rule_id = element.get("id") or f"Rule_{number}"
        input_entries = []
        for column, entry in enumerate(element.findall(q("inputEntry"))):
            _require_feel(entry, f"{where} <rule id='{rule_id}'> <inputEntry id='{entry.get('id')}'>")
            text = _text(entry, q)
            try:
                parse_unary_tests(text)
            except FeelSyntaxError as error:
                title = (inputs[column]["label"] or inputs[column]["expression"]
                         if column < len(inputs) else "?")
                raise DmnImportError(f"{where} <rule id='{rule_id}'> <inputEntry id='{entry.get('id')}'> "
                                     f"(input '{title}'): {error}") from None
            input_entries.append(text)
        output_entries = []
        for entry in element.findall(q("outputEntry")):
            _require_feel(entry, f"{where} <rule id='{rule_id}'> <outputEntry id='{entry.get('id')}'>")
            text = _text(entry, q)
            try:
                parse_literal(text)
            except FeelSyntaxError as error:
                raise DmnImportError(f"{where} <rule id='{rule_id}'> <outputEntry id='{entry.get('id')}'>: "
                                     f"{error}") from None
            output_entries.append(text)
        description = element.find(q("description"))
        rules.append({"id": rule_id, "input_entries": input_entries, "output_entries": output_entries,
                      "description": (description.text or "").strip() if description is not None else ""})

    try:
        return DecisionTable.model_validate({
            "id": decision_id, "name": decision.get("name") or decision_id, "hit_policy": hit_policy,
            "aggregation": aggregation.strip().upper() if aggregation else None,
            "inputs": inputs, "outputs": outputs, "rules": rules,
        })
    except ValidationError as error:
        problems = "; ".join(_problem(detail) for detail in error.errors())
        raise DmnImportError(f"{where}: {problems}") from None


def _problem(detail: ErrorDetails) -> str:
    message = detail["msg"].removeprefix("Value error, ")
    location = ".".join(str(part) for part in detail["loc"])
    return f"{location}: {message}" if location else message


def _require_feel(element: ET.Element, where: str) -> None:
    language = element.get("expressionLanguage")
    if language and "feel" not in language.lower():
        raise DmnImportError(f"{where} uses expression language '{language}'; only FEEL is supported")


def _text(element: ET.Element, q: _Qualify) -> str:
    text = element.find(q("text"))
    return (text.text or "") if text is not None else ""


def _value_list(element: ET.Element | None, q: _Qualify, where: str) -> list[FeelValue] | None:
    if element is None:
        return None
    text = _text(element, q)
    if not text.strip():
        return None
    try:
        tests = parse_unary_tests(text)
    except FeelSyntaxError as error:
        raise DmnImportError(f"{where}: {error}") from None
    literals = all(isinstance(test, Comparison) and test.operator == "=" for test in tests.tests)
    if tests.negated or not literals:
        raise DmnImportError(f"{where}: '{text}' must be a list of literals such as \"a\",\"b\"")
    return [test.value for test in tests.tests if isinstance(test, Comparison)]


# --------------------------------------------------------------------------------------------- export


def dump_decision_tables(tables: Sequence[DecisionTable], *, definitions_id: str = "Definitions_tideflow",
                         definitions_name: str = "Tideflow decisions",
                         namespace: str = "urn:tideflow:decisions") -> str:
    """A DMN 1.3 document holding the tables, one ``<decision>`` each."""
    ids = [table.id for table in tables]
    if len(set(ids)) != len(ids):
        raise ValueError(f"decision ids must be unique in one document: {', '.join(ids)}")

    def q(tag: str) -> str:  # elements are written unprefixed in the default namespace set on the root
        return tag

    root = ET.Element(q("definitions"), {
        "xmlns": DMN13_NAMESPACE, "id": definitions_id, "name": definitions_name, "namespace": namespace,
        "exporter": "Tideflow", "exporterVersion": "1"})
    for table in tables:
        decision = ET.SubElement(root, q("decision"), {"id": table.id, "name": table.name})
        attributes = {"id": f"{table.id}_table"}
        if table.hit_policy != HitPolicy.UNIQUE:
            attributes["hitPolicy"] = table.hit_policy.value
        if table.aggregation is not None:
            attributes["aggregation"] = table.aggregation.value
        body = ET.SubElement(decision, q("decisionTable"), attributes)
        for clause in table.inputs:
            element = ET.SubElement(body, q("input"), _present(id=clause.id, label=clause.label))
            expression = ET.SubElement(element, q("inputExpression"),
                                       _present(id=f"{clause.id}_expression", typeRef=clause.type_ref))
            ET.SubElement(expression, q("text")).text = clause.expression
            _write_values(element, q("inputValues"), f"{clause.id}_values", clause.allowed_values, q)
        for output in table.outputs:
            element = ET.SubElement(body, q("output"), _present(
                id=output.id, label=output.label, name=output.name, typeRef=output.type_ref))
            _write_values(element, q("outputValues"), f"{output.id}_values", output.allowed_values, q)
        for rule in table.rules:
            element = ET.SubElement(body, q("rule"), {"id": rule.id})
            if rule.description:
                ET.SubElement(element, q("description")).text = rule.description
            for index, entry in enumerate(rule.input_entries, start=1):
                cell = ET.SubElement(element, q("inputEntry"), {"id": f"{rule.id}_in{index}"})
                ET.SubElement(cell, q("text")).text = entry
            for index, entry in enumerate(rule.output_entries, start=1):
                cell = ET.SubElement(element, q("outputEntry"), {"id": f"{rule.id}_out{index}"})
                ET.SubElement(cell, q("text")).text = entry
    ET.indent(root, space="  ")
    body_text = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body_text}\n'


def dump_decision_table(table: DecisionTable, *, namespace: str = "urn:tideflow:decisions") -> str:
    """A DMN 1.3 document holding one table; the definitions are named after it."""
    return dump_decision_tables([table], definitions_id=f"Definitions_{table.id}",
                                definitions_name=table.name, namespace=namespace)


def _present(**attributes: str) -> dict[str, str]:
    return {name: value for name, value in attributes.items() if value}


def _write_values(parent: ET.Element, tag: str, element_id: str, values: list[FeelValue] | None,
                  q: _Qualify) -> None:
    if values:
        element = ET.SubElement(parent, tag, {"id": element_id})
        ET.SubElement(element, q("text")).text = ",".join(format_literal(value) for value in values)
