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
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from decisions import drg
from decisions.feel import (
    Comparison,
    FeelSyntaxError,
    FeelValue,
    format_literal,
    parse_unary_tests,
)
from decisions.table import Aggregation, DecisionTable, HitPolicy, validation_message
from wording import Msg, joined, message_of

DMN_NAMESPACES: dict[str, str] = {
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd": "1.1",
    "http://www.omg.org/spec/DMN/20151101/dmn11.xsd": "1.1",
    "http://www.omg.org/spec/DMN/20151101/MODEL/": "1.1",
    "http://www.omg.org/spec/DMN/20180521/MODEL/": "1.2",
    "https://www.omg.org/spec/DMN/20191111/MODEL/": "1.3",
    "https://www.omg.org/spec/DMN/20211108/MODEL/": "1.4",
    "https://www.omg.org/spec/DMN/20230324/MODEL/": "1.5",
}
DMN13_NAMESPACE = "https://www.omg.org/spec/DMN/20191111/MODEL/"
DMNDI13_NAMESPACE = "https://www.omg.org/spec/DMN/20191111/DMNDI/"
DC_NAMESPACE = "http://www.omg.org/spec/DMN/20180521/DC/"
MAX_DOCUMENT_BYTES = 5_000_000

_Qualify = Callable[[str], str]
_BY_SCHEMELESS = {namespace.split("://", 1)[1]: version for namespace, version in DMN_NAMESPACES.items()}


class DmnImportError(ValueError):
    """The document is not a supported DMN decision table; the message names the element."""


class SeveralDecisionTables(DmnImportError):
    """The document holds several decision tables and no ``decision_id`` said which one (callers ask which; the
    message, translated, is no test for this)."""


# --------------------------------------------------------------------------------------------- import


def _parse(source: str | bytes) -> tuple[ET.Element, str]:
    if len(source) > MAX_DOCUMENT_BYTES:
        raise DmnImportError(Msg("the document is larger than %(limit)s bytes", limit=MAX_DOCUMENT_BYTES))
    _refuse_dtd(source)
    root = ET.fromstring(source)  # noqa: S314 - no DTD, hence no entities (checked above)
    _require_feel(root, "<definitions>")
    namespace, _, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
    if local != "definitions":
        raise DmnImportError(Msg("the root element is <%(local)s>, not a DMN <definitions>", local=local))
    if namespace.split("://", 1)[-1] not in _BY_SCHEMELESS:
        supported = ", ".join(sorted(DMN_NAMESPACES))
        raise DmnImportError(Msg("<definitions> has namespace '%(namespace)s', which is not DMN 1.1–1.5 "
                                 "(%(supported)s)",
                                 namespace=namespace or "(none)", supported=supported))
    return root, namespace


def _refuse_dtd(source: str | bytes) -> None:
    def refuse(*_: object) -> None:
        raise DmnImportError(Msg("DMN documents with a DTD (<!DOCTYPE …>) or entity declarations are refused"))

    parser = ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(source, True)
    except ExpatError as error:
        raise DmnImportError(Msg("not well-formed XML: %(error)s", error=message_of(error))) from None


_NOT_LOGIC = frozenset({"description", "extensionElements", "question", "allowedAnswers", "variable",
                        "informationRequirement", "knowledgeRequirement", "authorityRequirement",
                        "supportedObjective", "impactedPerformanceIndicator", "decisionMaker",
                        "decisionOwner", "usingProcess", "usingTask"})
_LOGIC = frozenset({"literalExpression", "decisionTable", "context", "invocation", "functionDefinition",
                    "relation", "list", "conditional", "filter", "for", "some", "every"})

ImportResolver = Callable[[drg.Import], "str | bytes | None"]


class _Reader:
    """Reads one document into :class:`~decisions.drg.Definitions`."""

    def __init__(self, root: ET.Element, namespace: str, lenient: bool) -> None:
        self.root = root
        self.ns = namespace
        self.lenient = lenient
        self.names: set[str] = set()

    def q(self, tag: str) -> str:
        return f"{{{self.ns}}}{tag}"

    def local(self, element: ET.Element) -> str:
        return element.tag.rpartition("}")[2]

    def text(self, element: ET.Element | None) -> str:
        if element is None:
            return ""
        found = element.find(self.q("text"))
        return (found.text or "") if found is not None else ""

    def type_ref(self, element: ET.Element | None) -> str:
        """A typeRef: an attribute (DMN 1.2+, and 1.1's QName form) or 1.1's <typeRef> child."""
        if element is None:
            return ""
        value = element.get("typeRef")
        if value is None:
            child = element.find(self.q("typeRef"))
            value = child.text if child is not None else ""
        value = (value or "").strip()
        if ":" in value and not value.startswith("{"):
            prefix, _, rest = value.partition(":")
            if prefix.lower() in ("feel", "dmn", "xsd") or prefix in _KNOWN_PREFIXES:
                return rest
        return value

    def variable_type(self, element: ET.Element) -> str:
        return self.type_ref(element.find(self.q("variable"))) or element.get("typeRef", "")

    def href(self, element: ET.Element) -> str:
        return element.get("href", "")

    # ----------------------------------------------------------------- definitions

    def definitions(self) -> drg.Definitions:
        root = self.root
        definitions = drg.Definitions(name=root.get("name", ""), namespace=root.get("namespace", ""),
                                      version=_BY_SCHEMELESS[self.ns.split("://", 1)[-1]], id=root.get("id", ""))
        for element in root:
            tag = self.local(element)
            if tag == "itemDefinition":
                item = self.item_definition(element)
                definitions.item_definitions[item.name] = item
            elif tag == "import":
                definitions.imports.append(drg.Import(element.get("name", ""), element.get("namespace", ""),
                                                      element.get("locationURI", "")))
        self.names = self.collect_names(root)
        for element in root:
            tag = self.local(element)
            built: drg.Element | None = None
            if tag == "inputData":
                built = drg.InputData(self.element_id(element), element.get("name", ""), self.variable_type(element))
            elif tag == "decision":
                built = self.decision(element)
            elif tag == "businessKnowledgeModel":
                built = self.bkm(element)
            elif tag == "decisionService":
                built = self.decision_service(element)
            if built is not None:
                if built.id in definitions.elements:
                    raise DmnImportError(Msg("%(element)s: the id '%(id)s' is used twice", element=built.describe(),
                                             id=built.id))
                definitions.elements[built.id] = built
        return definitions

    def element_id(self, element: ET.Element) -> str:
        found = element.get("id") or element.get("name")  # ids are optional in DMN; names are unique
        if not found:
            raise DmnImportError(Msg("a <%(tag)s> has neither an id nor a name", tag=self.local(element)))
        return found

    def collect_names(self, root: ET.Element) -> set[str]:
        names = set()
        for element in root.iter():
            tag = self.local(element)
            name = element.get("name")
            if name and tag in ("inputData", "decision", "businessKnowledgeModel", "decisionService", "variable",
                                "itemDefinition", "itemComponent", "formalParameter", "parameter", "column",
                                "parameters", "import"):
                names.add(" ".join(name.split()))
            if tag in ("for", "some", "every") and element.get("iteratorVariable"):
                names.add(element.get("iteratorVariable", ""))
        return names

    def item_definition(self, element: ET.Element) -> drg.ItemDefinition:
        allowed = element.find(self.q("allowedValues"))
        constraint = element.find(self.q("typeConstraint"))
        function = element.find(self.q("functionItem"))
        item = drg.ItemDefinition(
            name=element.get("name", ""), type_ref=self.type_ref(element),
            is_collection=element.get("isCollection", "false").strip().lower() == "true",
            components=[self.item_definition(child) for child in element.findall(self.q("itemComponent"))],
            allowed_values=self.text(allowed), type_constraint=self.text(constraint))
        if function is not None:
            item.function_parameters = [(p.get("name", ""), self.type_ref(p))
                                        for p in function.findall(self.q("parameters"))]
            item.function_output = function.get("outputTypeRef", "")
        return item

    def requirements(self, element: ET.Element, requirement: str, *children: str) -> list[str]:
        hrefs = []
        for found in element.findall(self.q(requirement)):
            for child in children:
                for required in found.findall(self.q(child)):
                    hrefs.append(self.href(required))
        return hrefs

    def decision(self, element: ET.Element) -> drg.Decision:
        decision = drg.Decision(self.element_id(element), element.get("name", ""), self.variable_type(element))
        where = decision.describe()
        decision.information = self.requirements(element, "informationRequirement", "requiredDecision",
                                                 "requiredInput")
        decision.knowledge = self.requirements(element, "knowledgeRequirement", "requiredKnowledge")
        question = element.find(self.q("question"))
        decision.question = (question.text or "").strip() if question is not None else ""
        logic = [child for child in element if self.local(child) in _LOGIC]
        unknown = [self.local(child) for child in element
                   if self.local(child) not in _LOGIC and self.local(child) not in _NOT_LOGIC]
        if unknown and not logic:
            raise DmnImportError(Msg("%(where)s holds <%(tag)s>, which Tideflow does not evaluate", where=where,
                                     tag=unknown[0]))
        if logic:
            decision.expression = self.boxed(logic[0], where, decision.name)
        return decision

    def bkm(self, element: ET.Element) -> drg.BusinessKnowledgeModel:
        bkm = drg.BusinessKnowledgeModel(self.element_id(element), element.get("name", ""),
                                         self.variable_type(element))
        logic = element.find(self.q("encapsulatedLogic"))
        if logic is not None:
            function = self.function(logic, bkm.describe(), bkm.name)
            bkm.logic = function
        bkm.knowledge = self.requirements(element, "knowledgeRequirement", "requiredKnowledge")
        return bkm

    def decision_service(self, element: ET.Element) -> drg.DecisionService:
        def hrefs(tag: str) -> list[str]:
            return [self.href(child) for child in element.findall(self.q(tag))]

        return drg.DecisionService(self.element_id(element), element.get("name", ""), self.variable_type(element),
                                   outputs=hrefs("outputDecision"), encapsulated=hrefs("encapsulatedDecision"),
                                   input_decisions=hrefs("inputDecision"), input_data=hrefs("inputData"))

    # ----------------------------------------------------------------- boxed expressions

    def child_expression(self, element: ET.Element | None, where: str, name: str) -> drg.Boxed | None:
        if element is None:
            return None
        logic = [child for child in element if self.local(child) in _LOGIC]
        return self.boxed(logic[0], where, name) if logic else None

    def boxed(self, element: ET.Element, where: str, name: str) -> drg.Boxed:
        tag = self.local(element)
        _require_feel(element, f"{where} <{tag}>")
        element_id = element.get("id", "")
        type_ref = self.type_ref(element)
        if tag == "literalExpression":
            if element.find(self.q("importedValues")) is not None:
                raise DmnImportError(Msg("%(where)s <literalExpression>: imported values are not supported",
                                         where=where))
            return drg.LiteralBoxed(element_id, type_ref, self.text(element))
        if tag == "decisionTable":
            return self.table(element, where, name)
        if tag == "context":
            entries: list[tuple[str | None, str, drg.Boxed | None]] = []
            for entry in element.findall(self.q("contextEntry")):
                variable = entry.find(self.q("variable"))
                entry_name = " ".join(variable.get("name", "").split()) if variable is not None else None
                entries.append((entry_name or None, self.type_ref(variable),
                                self.child_expression(entry, f"{where} entry '{entry_name or 'result'}'",
                                                      entry_name or name)))
            return drg.ContextBoxed(element_id, type_ref, entries)
        if tag == "invocation":
            callee_element = next((child for child in element if self.local(child) in _LOGIC), None)
            callee = self.text(callee_element) if callee_element is not None else ""
            bindings = []
            for binding in element.findall(self.q("binding")):
                parameter = binding.find(self.q("parameter"))
                parameter_name = " ".join((parameter.get("name", "") if parameter is not None else "").split())
                bindings.append((parameter_name, self.child_expression(binding, f"{where} binding", parameter_name)))
            return drg.InvocationBoxed(element_id, type_ref, callee, bindings)
        if tag == "functionDefinition":
            return self.function(element, where, name)
        if tag == "relation":
            columns = [" ".join(column.get("name", "").split()) for column in element.findall(self.q("column"))]
            rows: list[list[drg.Boxed | None]] = []
            for row in element.findall(self.q("row")):
                rows.append([self.boxed(cell, f"{where} relation", name) for cell in row
                             if self.local(cell) in _LOGIC])
            return drg.RelationBoxed(element_id, type_ref, columns, rows)
        if tag == "list":
            return drg.ListBoxed(element_id, type_ref, [self.boxed(item, f"{where} list", name) for item in element
                                                        if self.local(item) in _LOGIC])
        if tag == "conditional":
            return drg.ConditionalBoxed(
                element_id, type_ref,
                self.child_expression(element.find(self.q("if")), f"{where} if", name),
                self.child_expression(element.find(self.q("then")), f"{where} then", name),
                self.child_expression(element.find(self.q("else")), f"{where} else", name))
        if tag == "filter":
            return drg.FilterBoxed(element_id, type_ref,
                                   self.child_expression(element.find(self.q("in")), f"{where} in", name),
                                   self.child_expression(element.find(self.q("match")), f"{where} match", name))
        if tag in ("for", "some", "every"):
            body_tag = "return" if tag == "for" else "satisfies"
            return drg.IteratorBoxed(element_id, type_ref, tag, " ".join(element.get("iteratorVariable", "").split()),
                                     self.child_expression(element.find(self.q("in")), f"{where} in", name),
                                     self.child_expression(element.find(self.q(body_tag)), f"{where} {body_tag}",
                                                           name))
        raise DmnImportError(Msg("%(where)s: <%(tag)s> is not supported", where=where, tag=tag))

    def function(self, element: ET.Element, where: str, name: str) -> drg.FunctionBoxed:
        kind = element.get("kind", "FEEL").strip() or "FEEL"
        parameters = [(" ".join(p.get("name", "").split()), self.type_ref(p))
                      for p in element.findall(self.q("formalParameter"))]
        body = self.child_expression(element, f"{where} body", name)
        if kind.upper() != "FEEL" and not self.lenient:
            raise DmnImportError(Msg("%(where)s: functions of kind %(kind)s (Java, PMML) are not supported",
                                     where=where, kind=kind))
        return drg.FunctionBoxed(element.get("id", ""), self.type_ref(element), parameters, body, kind)

    def table(self, table: ET.Element, where: str, name: str) -> drg.TableBoxed:
        q = self.q
        hit_policy = table.get("hitPolicy", "UNIQUE").strip().upper()
        hit_policy = _HIT_POLICY_ABBREVIATIONS.get(hit_policy, hit_policy)
        if hit_policy not in HitPolicy.__members__.values():
            raise DmnImportError(Msg("%(where)s <decisionTable>: hitPolicy '%(hit_policy)s' is not one of %(known)s",
                                     where=where, hit_policy=hit_policy, known=", ".join(HitPolicy)))
        aggregation = table.get("aggregation")
        if aggregation is not None and aggregation.strip().upper() not in Aggregation.__members__:
            raise DmnImportError(Msg("%(where)s <decisionTable>: aggregation '%(aggregation)s' is not one of "
                                     "%(known)s", where=where, aggregation=aggregation, known=", ".join(Aggregation)))

        inputs = []
        for number, element in enumerate(table.findall(q("input")), start=1):
            input_id = element.get("id") or f"Input_{number}"
            expression = element.find(q("inputExpression"))
            if expression is not None:
                _require_feel(expression, f"{where} <input id='{input_id}'> <inputExpression>")
            text = self.text(expression).strip()
            inputs.append({
                "id": input_id, "label": element.get("label", ""), "expression": text,
                "type_ref": self.type_ref(expression),
                "allowed_values": _value_list(element.find(q("inputValues")), self.text,
                                              f"{where} <input id='{input_id}'> <inputValues>", strict=False),
                "input_variable": element.get(f"{{{CAMUNDA_NAMESPACE}}}inputVariable", ""),
            })

        outputs = []
        output_types = []
        for number, element in enumerate(table.findall(q("output")), start=1):
            output_id = element.get("id") or f"Output_{number}"
            default = element.find(q("defaultOutputEntry"))
            output_types.append(self.type_ref(element))
            outputs.append({
                "id": output_id, "label": element.get("label", ""), "type_ref": self.type_ref(element),
                "name": element.get("name") or element.get("label") or table.get("outputLabel") or name or output_id,
                "allowed_values": _value_list(element.find(q("outputValues")), self.text,
                                              f"{where} <output id='{output_id}'> <outputValues>"),
                "default": self.text(default),
            })
        if not outputs:
            raise DmnImportError(Msg("%(where)s <decisionTable> has no <output>", where=where))
        single_output = len(outputs) == 1

        rules = []
        for number, element in enumerate(table.findall(q("rule")), start=1):
            rule_id = element.get("id") or f"Rule_{number}"
            input_entries = []
            for entry in element.findall(q("inputEntry")):
                _require_feel(entry, f"{where} <rule id='{rule_id}'> <inputEntry id='{entry.get('id')}'>")
                input_entries.append(self.text(entry))
            output_entries = []
            for entry in element.findall(q("outputEntry")):
                _require_feel(entry, f"{where} <rule id='{rule_id}'> <outputEntry id='{entry.get('id')}'>")
                output_entries.append(self.text(entry))
            description = element.find(q("description"))
            rules.append({"id": rule_id, "input_entries": input_entries, "output_entries": output_entries,
                          "description": (description.text or "").strip() if description is not None else ""})
        data = {"id": (where.split("id='", 1)[1].split("'", 1)[0] if "id='" in where else ""),
                "name": name or "decision", "hit_policy": hit_policy,
                "aggregation": aggregation.strip().upper() if aggregation else None,
                "inputs": inputs, "outputs": outputs, "rules": rules}
        built = self.validate_table(data, where)
        return drg.TableBoxed(table.get("id", ""), self.type_ref(table), built, output_types, single_output)

    def validate_table(self, data: dict[str, Any], where: str) -> DecisionTable:
        try:
            table = DecisionTable.model_validate(data, context={"feel_names": self.names})
        except ValidationError as error:
            problems = joined([_problem(detail) for detail in error.errors()], "; ")
            raise DmnImportError(Msg("%(where)s: %(problems)s", where=where, problems=problems)) from None
        used = _multi_word_names(table, self.names)
        if used:
            table = table.model_copy(update={"variables": sorted(used)})
        return table


_HIT_POLICY_ABBREVIATIONS = {"U": "UNIQUE", "A": "ANY", "P": "PRIORITY", "F": "FIRST", "R": "RULE ORDER",
                             "O": "OUTPUT ORDER", "C": "COLLECT", "RULE_ORDER": "RULE ORDER",
                             "OUTPUT_ORDER": "OUTPUT ORDER"}
CAMUNDA_NAMESPACE = "http://camunda.org/schema/1.0/dmn"
_KNOWN_PREFIXES = frozenset({"feel", "FEEL"})


def _multi_word_names(table: DecisionTable, names: set[str]) -> set[str]:
    """The names a table's cells read that its own inputs do not give (kept with the table, so
    it parses again on its own)."""
    own = table.input_names()
    cells = [clause.expression for clause in table.inputs] + [entry for rule in table.rules
                                                               for entry in rule.input_entries + rule.output_entries]
    return {name for name in names if name not in own and " " in name and any(name in cell for cell in cells)}


def load_definitions(source: str | bytes, *, resolve_import: ImportResolver | None = None,
                     lenient: bool = False, _depth: int = 0) -> drg.Definitions:
    """The whole DRG of a DMN 1.1–1.5 document (decisions, input data, BKMs, decision services,
    item definitions). ``resolve_import`` gives the document an ``<import>`` names (None: imports
    are refused). Raises :class:`DmnImportError` naming the element."""
    root, namespace = _parse(source)
    reader = _Reader(root, namespace, lenient)
    definitions = reader.definitions()
    for imported in definitions.imports:
        if _depth > 8:
            raise DmnImportError(Msg("imports nest more than 8 documents deep"))
        document = resolve_import(imported) if resolve_import is not None else None
        if document is None:
            raise DmnImportError(Msg("<import name='%(name)s' namespace='%(namespace)s'>: the imported model is not "
                                     "available; import the models it needs together", name=imported.name,
                                     namespace=imported.namespace))
        definitions.imported[imported.name] = load_definitions(document, resolve_import=resolve_import,
                                                               lenient=lenient, _depth=_depth + 1)
    return definitions


def load_graph(source: str | bytes, *, resolve_import: ImportResolver | None = None,
               lenient: bool = False) -> drg.Graph:
    """Load and check a DRG: missing requirements, cycles and FEEL that does not parse are refused
    here, naming the element."""
    definitions = load_definitions(source, resolve_import=resolve_import, lenient=lenient)
    try:
        return definitions.compile(lenient=lenient)
    except drg.DrgError as error:
        raise DmnImportError(message_of(error)) from None


def load_decision_tables(source: str | bytes) -> list[DecisionTable]:
    """Every decision table in a DMN document that is a decision's logic, in document order."""
    definitions = load_definitions(source, resolve_import=_no_imports)
    tables = [decision.expression.table for decision in definitions.decisions()
              if isinstance(decision.expression, drg.TableBoxed) and decision.expression.table is not None]
    if not tables:
        others = [Msg("%(element)s (holds %(kind)s)", element=d.describe(), kind=_kind(d.expression))
                  for d in definitions.decisions()]
        if others:
            raise DmnImportError(Msg("the document has no <decision> with a <decisionTable> (decisions found: "
                                     "%(found)s)", found=joined(others, ", ")))
        raise DmnImportError(Msg("the document has no <decision> with a <decisionTable>"))
    return tables


def _no_imports(imported: drg.Import) -> None:
    return None


def _kind(boxed: drg.Boxed | None) -> str:
    names = {drg.LiteralBoxed: "<literalExpression>", drg.ContextBoxed: "<context>",
             drg.InvocationBoxed: "<invocation>", drg.FunctionBoxed: "<functionDefinition>",
             drg.RelationBoxed: "<relation>", drg.ListBoxed: "<list>"}
    return names.get(type(boxed), "nothing") if boxed is not None else "nothing"


def load_decision_table(source: str | bytes, decision_id: str | None = None) -> DecisionTable:
    """One decision table: the one with ``decision_id``, or the only one in the document."""
    if decision_id is not None:
        definitions = load_definitions(source, resolve_import=_no_imports)
        for decision in definitions.decisions():
            if decision.id == decision_id:
                if not isinstance(decision.expression, drg.TableBoxed) or decision.expression.table is None:
                    raise DmnImportError(Msg("%(element)s (holds %(kind)s) is not a decision table",
                                             element=decision.describe(), kind=_kind(decision.expression)))
                return decision.expression.table
        ids = ", ".join(repr(d.id) for d in definitions.decisions())
        raise DmnImportError(Msg("no <decision id='%(decision_id)s'> in the document (decisions: %(ids)s)",
                                 decision_id=decision_id, ids=ids or "none"))
    tables = load_decision_tables(source)
    if len(tables) > 1:
        raise SeveralDecisionTables(Msg("the document has several decision tables (%(ids)s); say which decision_id to "
                                        "load",
                                 ids=", ".join(repr(t.id) for t in tables)))
    return tables[0]


def _problem(detail: ErrorDetails) -> Msg:
    message = validation_message(detail)
    location = ".".join(str(part) for part in detail["loc"])
    return Msg("%(where)s: %(error)s", where=location, error=message) if location else message



def _require_feel(element: ET.Element, where: str) -> None:
    language = element.get("expressionLanguage")
    if language and "feel" not in language.lower():
        raise DmnImportError(Msg("%(where)s uses expression language '%(language)s'; only FEEL is supported",
                                 where=where, language=language))


def _value_list(element: ET.Element | None, text_of: Callable[[ET.Element | None], str], where: str,
                strict: bool = True) -> list[FeelValue] | None:
    if element is None:
        return None
    text = text_of(element)
    if not text.strip():
        return None
    try:
        tests = parse_unary_tests(text)
    except FeelSyntaxError as error:
        if not strict:
            return None
        raise DmnImportError(Msg("%(where)s: %(error)s", where=where, error=message_of(error))) from None
    literals = all(isinstance(test, Comparison) and test.operator == "=" for test in tests.tests)
    if tests.negated or not literals:
        if not strict:
            return None
        raise DmnImportError(Msg("%(where)s: '%(text)s' must be a list of literals such as \"a\",\"b\"", where=where,
                                 text=text))
    return [test.value for test in tests.tests if isinstance(test, Comparison)]


# --------------------------------------------------------------------------------------------- export


def dump_decision_tables(tables: Sequence[DecisionTable], *, definitions_id: str = "Definitions_tideflow",
                         definitions_name: str = "Tideflow decisions",
                         namespace: str = "urn:tideflow:decisions") -> str:
    """A DMN 1.3 document holding the tables, one ``<decision>`` each, with a DMNDI diagram (one
    shape per decision and input) so that Camunda Modeler draws it. Variables a table reads besides
    its inputs (``table.variables``) become ``<inputData>`` it requires, so names with spaces parse
    when the file comes back."""
    ids = [table.id for table in tables]
    if len(set(ids)) != len(ids):
        raise ValueError(Msg("decision ids must be unique in one document: %(ids)s", ids=", ".join(ids)))

    def q(tag: str) -> str:  # elements are written unprefixed in the default namespace set on the root
        return tag

    root = ET.Element(q("definitions"), {
        "xmlns": DMN13_NAMESPACE, "xmlns:dmndi": DMNDI13_NAMESPACE, "xmlns:dc": DC_NAMESPACE,
        "xmlns:camunda": CAMUNDA_NAMESPACE, "id": definitions_id, "name": definitions_name,
        "namespace": namespace, "exporter": "Tideflow", "exporterVersion": "1"})
    shapes: list[tuple[str, int, int]] = []
    inputs: dict[str, str] = {}
    for column, table in enumerate(tables):
        decision = ET.SubElement(root, q("decision"), {"id": table.id, "name": table.name})
        for variable in table.variables:
            input_id = inputs.setdefault(variable, f"InputData_{len(inputs) + 1}")
            requirement = ET.SubElement(decision, q("informationRequirement"),
                                        {"id": f"{table.id}_requires_{input_id}"})
            ET.SubElement(requirement, q("requiredInput"), {"href": f"#{input_id}"})
        shapes.append((table.id, 160 + 220 * column, 100))
        attributes = {"id": f"{table.id}_table"}
        if table.hit_policy != HitPolicy.UNIQUE:
            attributes["hitPolicy"] = table.hit_policy.value
        if table.aggregation is not None:
            attributes["aggregation"] = table.aggregation.value
        body = ET.SubElement(decision, q("decisionTable"), attributes)
        for clause in table.inputs:
            element = ET.SubElement(body, q("input"), _present(id=clause.id, label=clause.label,
                                                              **{"camunda:inputVariable": clause.input_variable}))
            expression = ET.SubElement(element, q("inputExpression"),
                                       _present(id=f"{clause.id}_expression", typeRef=clause.type_ref))
            ET.SubElement(expression, q("text")).text = clause.expression
            _write_values(element, q("inputValues"), f"{clause.id}_values", clause.allowed_values, q)
        for output in table.outputs:
            element = ET.SubElement(body, q("output"), _present(
                id=output.id, label=output.label, name=output.name, typeRef=output.type_ref))
            _write_values(element, q("outputValues"), f"{output.id}_values", output.allowed_values, q)
            if output.default.strip():
                default = ET.SubElement(element, q("defaultOutputEntry"), {"id": f"{output.id}_default"})
                ET.SubElement(default, q("text")).text = output.default
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
    for number, (variable, input_id) in enumerate(inputs.items()):
        ET.SubElement(root, q("inputData"), {"id": input_id, "name": variable})
        shapes.append((input_id, 160 + 220 * number, 300))
    diagram = ET.SubElement(ET.SubElement(root, "dmndi:DMNDI"), "dmndi:DMNDiagram", {"id": "DMNDiagram_1"})
    for element_id, x, y in shapes:
        shape = ET.SubElement(diagram, "dmndi:DMNShape", {"id": f"DMNShape_{element_id}",
                                                           "dmnElementRef": element_id})
        ET.SubElement(shape, "dc:Bounds", {"height": "80" if y == 100 else "45", "width": "180", "x": str(x),
                                           "y": str(y)})
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
