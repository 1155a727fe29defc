"""Trying a whole DMN model out: tables edited in the designer swapped in, inputs given as FEEL, every
decision evaluated in dependency order and reported by name (the designer's decision-graph page; the
command-line counterpart is :mod:`decisions.decide`).

* :func:`replace_tables` puts edited tables (the grid editor's JSON, by element key) into the model's
  decisions and BKMs, checked like an imported table;
* :func:`input_values` reads each input as a FEEL expression (``35``, ``"gold"``, ``date("2026-11-11")``,
  ``{income: 5000, debts: [100, 200]}``) under the evaluation limits; an empty text is null;
* :func:`report` lists every decision computed, in the order it was computed, with its value as JSON
  and as FEEL text, the table's rules for decision tables, and the error of a table that failed (a hit
  policy violated, an input of the wrong type) on that decision.

Every problem is a :class:`WorkbenchError` naming the field (``tables.<key>``, ``inputs.<name>``) and
what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from decisions import drg
from decisions.feel import FeelLimitError, FeelSyntaxError, compile_expression
from decisions.feel.limits import Budget
from decisions.feel.values import literal_text
from decisions.table import DecisionTable, DecisionTableError, json_value, validation_message
from wording import Msg, joined, message_of

#: the longest FEEL text one input may be
MAX_INPUT_TEXT = 20_000


@dataclass
class WorkbenchError(Exception):
    field: str
    message: Msg
    fix: Msg

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def element_key(node: Any) -> str:
    """The key of a graph node: its element id, after its import name and a dot when imported."""
    return str(node.prefix + node.element.id)


def table_boxed(element: drg.Element) -> drg.TableBoxed | None:
    """The decision table that is the logic of a decision or a BKM's body, if it is one."""
    if isinstance(element, drg.Decision):
        boxed: drg.Boxed | None = element.expression
    elif isinstance(element, drg.BusinessKnowledgeModel) and element.logic is not None:
        boxed = element.logic.body
    else:
        return None
    return boxed if isinstance(boxed, drg.TableBoxed) and boxed.table is not None else None


def _names(definitions: drg.Definitions) -> set[str]:
    names = {element.name for element in definitions.elements.values()}
    names.update(definitions.item_definitions)
    for imported in definitions.imported.values():
        names.update(_names(imported))
    return names


def replace_tables(definitions: drg.Definitions, tables: Mapping[str, Any]) -> None:
    """Swap edited tables in, by element id (the model has no imports on the designer's page)."""
    names = _names(definitions)
    for key, data in tables.items():
        element = definitions.elements.get(key)
        boxed = table_boxed(element) if element is not None else None
        if element is None or boxed is None:
            raise WorkbenchError(f"tables.{key}", Msg("the model has no decision table '%(key)s'", key=key),
                                 Msg("send the tables by the ids of the decisions or BKMs that hold them"))
        try:
            table = DecisionTable.model_validate(data, context={"feel_names": names})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise WorkbenchError(f"tables.{key}" + (f".{where}" if where else ""), validation_message(first),
                                 Msg("correct the table of %(element)s", element=element.describe())) from None
        if len(table.outputs) != len(boxed.output_type_refs):
            boxed.output_type_refs = [output.type_ref for output in table.outputs]
        boxed.table = table
        boxed.single_output = len(table.outputs) == 1


def input_values(graph: drg.Graph, texts: Mapping[str, str | None]) -> dict[str, Any]:
    """The inputs by name, each read as a FEEL expression; unknown names are refused."""
    known = set(graph.input_names())
    values: dict[str, Any] = {}
    for name, text in texts.items():
        if name not in known:
            raise WorkbenchError(f"inputs.{name}", Msg("the model has no input data named '%(name)s'", name=name),
                                 Msg("give values for %(names)s", names=", ".join(sorted(known)))
                                 if known else Msg("the model has no inputs"))
        source = (text or "").strip()
        if not source or source == "null":
            values[name] = None
            continue
        if len(source) > MAX_INPUT_TEXT:
            raise WorkbenchError(f"inputs.{name}", Msg("the value is %(length)s characters long", length=len(source)),
                                 Msg("give at most %(limit)s", limit=MAX_INPUT_TEXT))
        try:
            expression = compile_expression(source)
        except FeelSyntaxError as exc:
            raise WorkbenchError(f"inputs.{name}", Msg("not a FEEL value: %(exc)s", exc=message_of(exc)),
                                 Msg('write text in quotes ("gold"), numbers as 35, dates as date("2026-11-11"), '
                                     "contexts as {a: 1}")) from None
        budget = Budget()
        try:
            value = expression.evaluate(budget=budget)
        except FeelLimitError as exc:
            raise WorkbenchError(f"inputs.{name}", message_of(exc), Msg("give a smaller value")) from None
        if value is None:
            why = joined(budget.notes[:2], "; ") or Msg("it is null")
            raise WorkbenchError(f"inputs.{name}", Msg("'%(text)s' has no value (%(why)s)", text=source[:80], why=why),
                                 Msg('write text in quotes ("gold"), or leave the field empty for null'))
        values[name] = value
    return values


def report(graph: drg.Graph, evaluation: drg.Evaluation) -> dict[str, Any]:
    """Every decision computed, by name, in the order it was computed (see the module docstring)."""
    by_name = {node.name: node for node in graph.nodes.values() if isinstance(node.element, drg.Decision)}
    decisions = []
    for name, value in evaluation.decided.items():
        node = by_name[name]
        entry: dict[str, Any] = {"key": element_key(node), "name": name, "value": json_value(value),
                                 "text": literal_text(value), "table": None, "error": None}
        boxed = table_boxed(node.element)
        if boxed is not None and boxed.table is not None:
            outcome = evaluation.tables.get(boxed.table.id)
            if isinstance(outcome, DecisionTableError):
                entry["error"] = message_of(outcome)
            elif outcome is not None:
                entry["table"] = {"hit_policy": outcome.hit_policy.value,
                                  "matched_rules": list(outcome.matched_rule_ids),
                                  "selected_rules": list(outcome.selected_rule_ids)}
        decisions.append(entry)
    return {"decisions": decisions, "notes": list(evaluation.notes)}
