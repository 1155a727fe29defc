"""The decision-graph page's pure parts, on DMN TCK models: the layout of a requirement graph
(decisions/diagram.py) and evaluating a whole model with edited tables and FEEL inputs
(decisions/workbench.py), checked against the TCK's own expected results."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from decisions import diagram, drg, workbench
from decisions.dmn_xml import load_definitions, load_graph
from tests.decisions import tck_runner as tck

LEVEL3 = Path(__file__).resolve().parent / "tck" / "compliance-level-3"
LENDING = LEVEL3 / "0004-lending" / "0004-lending.dmn"
VACATION = LEVEL3 / "0020-vacation-days" / "0020-vacation-days.dmn"
LAMBDA = LEVEL3 / "0092-feel-lambda" / "0092-feel-lambda.dmn"


def graph_of(path: Path) -> drg.Graph:
    return load_graph(path.read_bytes(), resolve_import=lambda imported: None)


def overlapping(a: diagram.Box, b: diagram.Box) -> bool:
    return a.x < b.x + b.width and b.x < a.x + a.width and a.y < b.y + b.height and b.y < a.y + a.height


def test_the_lending_graph_is_drawn_with_its_knowledge_models_and_both_kinds_of_requirement() -> None:
    picture = diagram.layout(graph_of(LENDING))
    kinds = [box.kind for box in picture.boxes]
    assert (kinds.count("decision"), kinds.count("input"), kinds.count("bkm")) == (11, 4, 9)
    by_name = {box.name: box for box in picture.boxes}
    assert by_name["ApplicantData"].kind == "input"
    assert by_name["Routing"].rank == by_name["Adjudication"].rank == 0  # nothing requires them: the top row
    assert by_name["Strategy"].logic == "table"
    assert by_name["AffordabilityCalculation"].kind == "bkm"
    arrows = {(picture.box(a.source).name, picture.box(a.target).name, a.kind) for a in picture.arrows}
    # as the DMN 1.5 specification's lending example draws it (figure 11-2)
    assert ("ApplicantData", "ApplicationRiskScore", "information") in arrows
    assert ("ApplicationRiskScoreModel", "ApplicationRiskScore", "knowledge") in arrows
    assert ("Pre-bureauRiskCategory", "BureauCallType", "information") in arrows
    # information flows upwards, arrows start at their source and end at their target, nothing overlaps
    for arrow in picture.arrows:
        source, target = picture.box(arrow.source), picture.box(arrow.target)
        assert source.y > target.y, arrow
        assert arrow.start[1] == source.y and arrow.end[1] == target.y + target.height
        assert source.x <= arrow.start[0] <= source.x + source.width
        assert arrow.path.startswith(f"M{arrow.start[0]:.1f},{arrow.start[1]:.1f} C")
    boxes = picture.boxes
    assert not [(a.name, b.name) for i, a in enumerate(boxes) for b in boxes[i + 1:] if overlapping(a, b)]
    assert all(b.x >= 0 and b.x + b.width <= picture.width and b.y + b.height <= picture.height for b in boxes)
    # the same model always gives the same picture
    again = diagram.layout(graph_of(LENDING))
    assert [(b.key, b.x, b.y) for b in again.boxes] == [(b.key, b.x, b.y) for b in boxes]


def test_wide_ranks_wrap_and_a_knowledge_model_calling_itself_needs_no_arrow() -> None:
    picture = diagram.layout(graph_of(LAMBDA))
    rows: dict[int, int] = {}
    for box in picture.boxes:
        rows[box.y] = rows.get(box.y, 0) + 1
    assert max(rows.values()) <= diagram.MAX_PER_ROW
    assert picture.width <= 2 * diagram.PADDING + diagram.MAX_PER_ROW * (diagram.BOX_WIDTH + diagram.GAP_X)
    assert all(a.source != a.target for a in picture.arrows)


def test_ranks_survive_cycles_between_knowledge_models() -> None:
    # BKMs may call each other (mutual recursion is legal FEEL); the longest chain is cut where it closes
    # (``above``: what requires each element) d requires a and i; a and b call each other
    ranks = diagram._ranks(["d", "a", "b", "i"], {"a": ["d", "b"], "b": ["a"], "i": ["d"]})
    assert ranks["d"] == 0 and ranks["i"] == 1 and ranks["a"] == 1 and set(ranks) == {"d", "a", "b", "i"}


def vacation_cases() -> list[Any]:
    return tck.read_cases(VACATION.parent / "0020-vacation-days-test-01.xml", "compliance-level-3")


@pytest.mark.parametrize("case", vacation_cases(), ids=lambda case: case.id)
def test_the_whole_vacation_model_evaluates_to_the_tck_results(case: Any) -> None:
    graph = graph_of(VACATION)
    texts = {name: str(value) for name, value in case.inputs.items()}  # the TCK's decimals, written as FEEL
    evaluation = graph.evaluate(workbench.input_values(graph, texts))
    found = workbench.report(graph, evaluation)
    by_name = {d["name"]: d for d in found["decisions"]}
    assert set(by_name) == {"Total Vacation Days", "Base Vacation Days", "Extra days case 1", "Extra days case 2",
                            "Extra days case 3"}
    for result in case.results:
        assert Decimal(str(by_name[result.name]["value"])) == result.expected
    # dependency order: what Total Vacation Days requires comes before it
    assert [d["name"] for d in found["decisions"]][-1] == "Total Vacation Days"
    assert by_name["Extra days case 1"]["table"]["hit_policy"] == "COLLECT"


def test_an_edited_table_is_what_the_graph_evaluates() -> None:
    # case 001: Age 16, Years of Service 1 gives 27 = 22 + max(5, 0) + 0; give under-18s 10 extra days instead
    definitions = load_definitions(VACATION.read_bytes())
    table = workbench.table_boxed(definitions.elements["d_Extra_days_case_1"])
    assert table is not None and table.table is not None
    edited = table.table.model_dump(mode="json")
    edited["rules"][0]["output_entries"] = ["10"]
    workbench.replace_tables(definitions, {"d_Extra_days_case_1": edited})
    graph = definitions.compile()
    found = workbench.report(graph, graph.evaluate(workbench.input_values(graph, {"Age": "16",
                                                                                  "Years of Service": "1"})))
    by_name = {d["name"]: d for d in found["decisions"]}
    assert by_name["Extra days case 1"]["value"] == 10 and by_name["Total Vacation Days"]["value"] == 32
    assert by_name["Total Vacation Days"]["text"] == "32"


@pytest.mark.parametrize(("tables", "field"), [
    ({"d_Base_Vacation_Days": {}}, "tables.d_Base_Vacation_Days"),  # a literal expression, not a table
    ({"nope": {}}, "tables.nope"),
    ({"d_Extra_days_case_1": {"name": "x", "outputs": []}}, "tables.d_Extra_days_case_1.outputs"),
    ({"d_Extra_days_case_1": {"name": "x", "outputs": [{"id": "o", "name": "o"}], "inputs": [],
                              "rules": [{"id": "r", "input_entries": [], "output_entries": ["1 +"]}]}},
     "tables.d_Extra_days_case_1"),
])
def test_a_bad_table_is_refused_naming_it(tables: dict[str, Any], field: str) -> None:
    definitions = load_definitions(VACATION.read_bytes())
    with pytest.raises(workbench.WorkbenchError) as refused:
        workbench.replace_tables(definitions, tables)
    assert refused.value.field.startswith(field) and refused.value.fix


@pytest.mark.parametrize(("texts", "field", "says"), [
    ({"Salary": "1"}, "inputs.Salary", "no input data named"),
    ({"Age": "sixteen"}, "inputs.Age", "has no value"),  # a bare word is a name, which names nothing
    ({"Age": "16 +"}, "inputs.Age", "not a FEEL value"),
    ({"Age": "[1..1000000000]"}, "inputs.Age", ""),  # a range is a value; the table then finds no rule
    ({"Age": "for i in 1..1000000000 return i"}, "inputs.Age", "limit"),
    ({"Age": "x" * (workbench.MAX_INPUT_TEXT + 1)}, "inputs.Age", "characters"),
])
def test_inputs_are_feel_and_bad_ones_are_refused_naming_them(texts: dict[str, str], field: str, says: str) -> None:
    graph = graph_of(VACATION)
    if not says:
        assert workbench.input_values(graph, texts)["Age"] is not None
        return
    with pytest.raises(workbench.WorkbenchError) as refused:
        workbench.input_values(graph, texts)
    assert refused.value.field == field and says in refused.value.message


def test_empty_inputs_are_null_and_structured_inputs_are_contexts() -> None:
    graph = graph_of(LENDING)
    values = workbench.input_values(graph, {"ApplicantData": '{Age: 35, MaritalStatus: "M", EmploymentStatus: '
                                                              '"EMPLOYED", ExistingCustomer: true, Monthly: '
                                                              '{Income: 10000, Repayments: 2500, Expenses: 3000}}',
                                            "BureauData": "", "SupportingDocuments": "null"})
    assert values["ApplicantData"]["Monthly"]["Income"] == Decimal(10000)
    assert values["BureauData"] is None and values["SupportingDocuments"] is None
