"""DMN decision tables in the JSON API: import from DMN XML, test-evaluate, export back to XML.

- ``POST /api/decisions`` — body: a DMN 1.1–1.5 document (``Content-Type: application/xml`` or
  ``text/xml``) or JSON ``{"xml": "...", "decision_id": "...", "input_prefix": "event.payload"}``.
  Answers the table as the ``logic.decision_table`` node's config (``config``), the static analysis
  (``analysis``: overlaps, gaps, unreachable rules, …) and the problems the node would have in a
  flow (``problems``: e.g. an input expression ``amount`` that names nothing in a flow — give
  ``input_prefix`` to root bare inputs under ``event.payload``, ``vars.ticket``, …). Bad XML is a
  400 naming the line; unsupported DMN features are a 400 naming the element.
- ``POST /api/decisions/evaluate`` ``{"table": ..., "input": {...}}`` — the result, as the
  designer's "test this table" button shows it. A hit-policy violation is a 422 naming the rules.
- ``POST /api/decisions/export`` ``{"table": ...}`` — the table as a DMN 1.3 document (for Camunda
  Modeler and other DMN tools).
- ``POST /api/decisions/graph/evaluate`` ``{"xml": "...", "inputs": {"Age": "35"}, "tables": {...}}`` — the
  whole decision requirement graph of a DMN model evaluated (the designer's decision-graph page): inputs
  by input-data name, each a FEEL expression; ``tables`` are edited decision tables by the id of the
  decision (or BKM) that holds them. Answers every decision computed, by name, in dependency order
  (:func:`decisions.workbench.report`). A problem names its field: ``xml``, ``tables.<id>…``,
  ``inputs.<name>``.

Nothing is stored: a table lives in its node's config, so flow versions keep it (one concept, one
home). Every route needs a role that may edit flows (marketer, ops, finance; admin).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from decisions import drg, workbench
from decisions.analysis import Finding
from decisions.dmn_xml import (
    MAX_DOCUMENT_BYTES,
    DmnImportError,
    SeveralDecisionTables,
    dump_decision_table,
    load_decision_table,
    load_definitions,
)
from decisions.feel import FeelLimitError
from decisions.table import DecisionTable, DecisionTableError, HitPolicyViolation, evaluate
from designer import errors, i18n
from designer.auth import require
from designer.errors import ApiError, validation_problems
from designer.limits import json_body
from designer.permissions import FLOW_EDITORS
from engine.db.models import User
from engine.expressions import CONTEXT_NAMES
from engine.nodes.logic_decision_table import TICKET, DecisionTableConfig, DecisionTableNode, findings
from engine.text import Msg, message_of

router = APIRouter(prefix="/api/decisions", tags=["decisions"])

Editor = Annotated[User, Depends(require(*FLOW_EDITORS))]
XML_TYPES = ("application/xml", "text/xml")
PREFIX_PATTERN = r"^(customer|event|vars|journey)(\.[A-Za-z0-9_]+)*$"


class ImportIn(BaseModel):
    """A DMN document sent as JSON."""

    model_config = ConfigDict(extra="forbid")
    xml: str = Field(min_length=1, max_length=MAX_DOCUMENT_BYTES, description="the DMN XML document")
    decision_id: str | None = Field(default=None, description="which <decision> to import when there are several")
    input_prefix: str | None = Field(default=None, pattern=PREFIX_PATTERN, examples=["event.payload"],
                                     description="put this in front of input expressions that do not start "
                                                 "with customer, event, vars, journey or ticket")


class Analysis(BaseModel):
    overlaps: list[Finding] = Field(description="rules that match the same input under UNIQUE (or disagree under ANY)")
    gaps: list[Finding] = Field(description="inputs no rule matches")
    other: list[Finding] = Field(description="unreachable rules, possible overlaps, columns not analysed")


class ImportOut(BaseModel):
    config: dict[str, Any] = Field(description="the logic.decision_table node's config")
    analysis: Analysis
    problems: list[dict[str, Any]] = Field(description="what the node would report in a flow (field, message, fix)")


class EvaluateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    table: DecisionTable
    input: dict[str, Any] = Field(default_factory=dict, examples=[{"event": {"payload": {"amount": 6000}}}],
                                  description="values by input expression: nested or flat dotted keys")


class EvaluateOut(BaseModel):
    result: Any = Field(description="outputs dict (single hit), list (multiple hit), number (aggregation) or null")
    hit_policy: str
    matched_rules: list[str]
    selected_rules: list[str]


class ExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    table: DecisionTable


def analysis_of(table: DecisionTable) -> Analysis:
    lang = i18n.api_language()  # the findings in the API's language, like its error messages
    found = [f.model_copy(update={"message": i18n.translate(f.message, lang)}) for f in findings(table)]
    return Analysis(overlaps=[f for f in found if f.kind == "overlap"],
                    gaps=[f for f in found if f.kind in ("gap", "truncated")],
                    other=[f for f in found if f.kind not in ("overlap", "gap", "truncated")])


def rooted(table: DecisionTable, prefix: str | None) -> DecisionTable:
    """The table with ``prefix.`` before every input expression that does not start with a name flow
    expressions know (customer, event, vars, journey, now) or ``ticket``."""
    if not prefix:
        return table
    inputs = [clause if clause.expression.split(".", 1)[0] in {*CONTEXT_NAMES, TICKET}
              else clause.model_copy(update={"expression": f"{prefix}.{clause.expression}"})
              for clause in table.inputs]
    return table.model_copy(update={"inputs": inputs})


async def _import_request(request: Request, decision_id: str | None, input_prefix: str | None) -> ImportIn:
    body = await request.body()
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media in XML_TYPES or media.endswith("+xml"):
        if not body.strip():
            raise ApiError(400, Msg("the request body is empty"), Msg("send the DMN XML document as the body"), "body")
        try:
            return ImportIn(xml=body.decode("utf-8"), decision_id=decision_id, input_prefix=input_prefix)
        except UnicodeDecodeError:
            raise ApiError(400, Msg("the XML is not UTF-8"), Msg("save the .dmn file as UTF-8"), "body") from None
        except ValidationError as exc:
            problems = validation_problems(list(exc.errors()))
            raise ApiError.invalid(problems) from None
    if media == "application/json":
        data = await json_body(request)  # UTF-8, depth and size checked (engine/bounded_json.py)
        try:
            found = ImportIn.model_validate(data)
        except ValidationError as exc:
            problems = validation_problems(list(exc.errors()))
            raise ApiError.invalid(problems) from None
        return found.model_copy(update={"decision_id": found.decision_id or decision_id,
                                        "input_prefix": found.input_prefix or input_prefix})
    raise ApiError(415, Msg("cannot read a body of type '%(value)s'", value=media or '(none)'),
                   Msg('send the DMN file as application/xml (or text/xml), or JSON {"xml": "..."}'),
                   "content-type")


@router.post("", response_model=ImportOut, openapi_extra={"requestBody": {"content": {
    "application/xml": {"schema": {"type": "string"}},
    "application/json": {"schema": ImportIn.model_json_schema()}}}})
async def import_decision(request: Request, user: Editor,
                          decision_id: Annotated[str | None, Query(max_length=200)] = None,
                          input_prefix: Annotated[str | None, Query(pattern=PREFIX_PATTERN)] = None) -> ImportOut:
    """Import a DMN decision table: the node config, its analysis and its problems in a flow."""
    wanted = await _import_request(request, decision_id, input_prefix)
    try:
        table = load_decision_table(wanted.xml, wanted.decision_id)
    except SeveralDecisionTables as exc:  # field decision_id: the editor asks which (it reads the field, not words)
        raise ApiError(400, Msg("the DMN document cannot be imported: %(detail)s", detail=message_of(exc)),
                       Msg("send ?decision_id= with the id of the decision to import"), "decision_id") from None
    except DmnImportError as exc:
        raise ApiError(400, Msg("the DMN document cannot be imported: %(detail)s", detail=message_of(exc)),
                       Msg("fix the document in your DMN tool (Camunda Modeler) and import it again; see "
                           "docs/decisions.md for the supported subset"), "xml") from None
    except (ValueError, SyntaxError) as exc:  # ElementTree's ParseError is a SyntaxError
        raise ApiError(400, Msg("not well-formed XML: %(exc)s", exc=message_of(exc)),
                       Msg("check the file is a complete DMN document"),
                       "xml") from None
    table = rooted(table, wanted.input_prefix)
    config = DecisionTableConfig(table=table)
    problems = errors.problem_dicts(DecisionTableNode.check(config))
    return ImportOut(config={"table": table.model_dump(mode="json")}, analysis=analysis_of(table),
                     problems=problems)


@router.post("/evaluate", response_model=EvaluateOut)
def evaluate_decision(body: EvaluateIn, user: Editor) -> EvaluateOut:
    """Evaluate a table against one input (the designer's "test this table")."""
    try:
        result = evaluate(body.table, body.input)
    except HitPolicyViolation as exc:
        raise ApiError(422, Msg("more than one rule matches: %(detail)s", detail=message_of(exc)),
                       Msg("make the rules exclusive, or choose hit policy FIRST or PRIORITY"),
                       "table.rules", rule_ids=list(exc.rule_ids)) from None
    except DecisionTableError as exc:
        raise ApiError(422, Msg("the table cannot be evaluated: %(detail)s", detail=message_of(exc)),
                       Msg("send a value of the column's type"), "input") from None
    return EvaluateOut.model_validate(result.as_json())


@router.post("/export", response_class=Response,
             responses={200: {"content": {"application/xml": {}}, "description": "a DMN 1.3 document"}})
def export_decision(body: ExportIn, user: Editor) -> Response:
    """The table as a DMN 1.3 XML document (opens in Camunda Modeler)."""
    filename = f"{body.table.id}.dmn".encode("ascii", "replace").decode().replace("?", "_")
    return Response(dump_decision_table(body.table), media_type="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


class GraphEvaluateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    xml: str = Field(min_length=1, max_length=MAX_DOCUMENT_BYTES, description="the DMN model (XML)")
    inputs: dict[str, str | None] = Field(
        default_factory=dict, examples=[{"Age": "16", "Years of Service": "1"}],
        description="input data by name, each a FEEL expression (35, \"gold\", date(\"2026-11-11\"), {a: 1}); "
                    "empty or missing: null")
    tables: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="edited decision tables by the id of the decision or BKM holding them")


class DecisionOutcome(BaseModel):
    key: str = Field(description="the element id (after its import name and a dot when imported)")
    name: str
    value: Any = Field(description="the result as JSON (decimal numbers as strings, dates as ISO text)")
    text: str = Field(description="the result as FEEL writes it")
    table: dict[str, Any] | None = Field(description="hit policy, matched and selected rules (decision tables)")
    error: str | None = Field(description="why a decision table gave no result (hit policy, input type)")


class GraphEvaluateOut(BaseModel):
    decisions: list[DecisionOutcome] = Field(description="every decision computed, in dependency order")
    notes: list[str] = Field(description="why something became null")


def evaluate_model(body: GraphEvaluateIn) -> GraphEvaluateOut:
    """Load the model, swap the edited tables in, evaluate every decision (see the module docstring)."""
    try:
        definitions = load_definitions(body.xml, resolve_import=lambda imported: None)
    except DmnImportError as exc:
        raise ApiError(400, Msg("the DMN document cannot be imported: %(detail)s", detail=message_of(exc)),
                       Msg("fix the model in your DMN tool and import it again"), "xml") from None
    except (ValueError, SyntaxError) as exc:
        raise ApiError(400, Msg("not well-formed XML: %(exc)s", exc=message_of(exc)),
                       Msg("check the file is a complete DMN document"),
                       "xml") from None
    try:
        workbench.replace_tables(definitions, body.tables)
        graph = definitions.compile()
        values = workbench.input_values(graph, body.inputs)
        evaluation = graph.evaluate(values)
    except workbench.WorkbenchError as exc:
        raise ApiError(422, exc.message, exc.fix, exc.field) from None
    except drg.DrgError as exc:
        raise ApiError(422, Msg("the decision model cannot be evaluated: %(detail)s", detail=message_of(exc)),
                       Msg("correct the edited table (or the model)"), "tables") from None
    except FeelLimitError as exc:
        raise ApiError(422, Msg("the evaluation went over a limit: %(exc)s", exc=message_of(exc)),
                       Msg("give smaller inputs, or simplify the expression named"), "inputs") from None
    report = workbench.report(graph, evaluation)
    lang = i18n.api_language()  # the table errors and null reasons in the API's language, like its error messages
    for decision in report["decisions"]:
        if decision["error"]:
            decision["error"] = i18n.translate(decision["error"], lang)
    report["notes"] = [i18n.translate(note, lang) for note in report["notes"]]
    return GraphEvaluateOut.model_validate(report)


@router.post("/graph/evaluate", response_model=GraphEvaluateOut)
def evaluate_graph(body: GraphEvaluateIn, user: Editor) -> GraphEvaluateOut:
    """Evaluate every decision of a DMN model from inputs given as FEEL (the decision-graph page)."""
    return evaluate_model(body)
