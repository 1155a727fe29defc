"""``tideflow decide FILE --input JSON``: evaluate a decision from a file, as the CLI does it.

``FILE`` is a DMN document (``.dmn`` / ``.xml``: Camunda Modeler's, Drools', Trisotech's files) or
JSON: a table (``{"name": …, "inputs": …}``) or a ``logic.decision_table`` node config
(``{"table": …}``).

A DMN document is read whole — its decision requirements graph (decisions, input data, BKMs,
decision services) — and the chosen decision is evaluated with everything it requires, each
decision once, in dependency order. The report gives the decision's ``result``, every decision
computed on the way by name (``decisions``), for a decision table its ``hit_policy`` and rules
(``matched_rules``, ``selected_rules``), and ``notes`` when FEEL turned something into null.

Every input must be given in ``--input`` — the model's input data, and the columns a table reads
directly (nested ``{"ticket": {"amount": 6000}}`` or flat ``{"ticket.amount": 6000}``; ``null`` for
a deliberately missing value) — unless ``allow_missing``. Every problem is a :class:`DecideError`
with a one-line message: the CLI prints it and exits 1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from decisions import drg
from decisions.dmn_xml import DmnImportError, load_definitions
from decisions.feel import FeelLimitError
from decisions.table import (
    DecisionTable,
    DecisionTableError,
    HitPolicyViolation,
    evaluate,
    find_path,
    json_value,
    validation_message,
)
from wording import Msg, message_of


class DecideError(Exception):
    """A problem to print as one line (exit code 1)."""


def load_table(path: str, decision_id: str | None = None) -> DecisionTable:
    """The table in a .json file (or the decision table ``decision_id`` of a .dmn file)."""
    raw = _read(path)
    if not path.lower().endswith(".json"):
        graph = load_graph_file(path, raw)
        node = _target(graph, path, decision_id)
        expression = node.element.expression if isinstance(node.element, drg.Decision) else None
        if not isinstance(expression, drg.TableBoxed) or expression.table is None:
            raise DecideError(Msg("%(path)s: %(element)s is not a decision table", path=path,
                                  element=node.element.describe()))
        return expression.table
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        if isinstance(exc, json.JSONDecodeError):
            raise DecideError(Msg("%(source)s is not valid JSON: %(msg)s at line %(lineno)s column %(colno)s",
                                  source=path, msg=exc.msg, lineno=exc.lineno, colno=exc.colno)) from None
        raise DecideError(Msg("%(path)s is not valid JSON: not UTF-8", path=path)) from None
    if isinstance(data, Mapping) and isinstance(data.get("table"), Mapping):
        data = data["table"]
    try:
        return DecisionTable.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "table"
        message = validation_message(first)
        if exc.error_count() > 1:
            raise DecideError(Msg("%(path)s: %(where)s: %(message)s (and %(more)s more)", path=path, where=where,
                                  message=message, more=exc.error_count() - 1)) from None
        raise DecideError(Msg("%(path)s: %(where)s: %(message)s", path=path, where=where, message=message)) from None


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DecideError(Msg("cannot read %(path)s: %(strerror)s", path=path, strerror=exc.strerror)) from None


def load_graph_file(path: str, raw: bytes | None = None) -> drg.Graph:
    """The checked DRG of a DMN file; imports are read from files beside it (by location or namespace)."""
    folder = Path(path).parent

    def resolve(imported: drg.Import) -> bytes | None:
        if imported.location:
            candidate = (folder / imported.location).resolve()
            if candidate.parent == folder.resolve() and candidate.is_file():
                return candidate.read_bytes()
        for sibling in sorted(folder.glob("*.dmn")):
            if imported.namespace and f'namespace="{imported.namespace}"'.encode() in sibling.read_bytes():
                return sibling.read_bytes()
        return None

    try:
        definitions = load_definitions(raw if raw is not None else _read(path), resolve_import=resolve)
        return definitions.compile()
    except (DmnImportError, drg.DrgError) as exc:
        raise DecideError(Msg("%(path)s: %(exc)s", path=path, exc=message_of(exc))) from None


def _target(graph: drg.Graph, path: str, decision_id: str | None) -> Any:
    nodes = [node for node in graph.nodes.values() if isinstance(node.element, drg.Decision) and not node.prefix]
    if decision_id is not None:
        for node in nodes:
            if decision_id in (node.element.id, node.element.name):
                return node
        known = ", ".join(repr(node.element.id) for node in nodes)
        raise DecideError(Msg("%(path)s: no decision '%(decision_id)s' (decisions: %(known)s)", path=path,
                              decision_id=decision_id, known=known or "none"))
    required = {id(r) for node in nodes for r in node.information}
    tops = [node for node in nodes if id(node) not in required]
    if len(tops) == 1:
        return tops[0]
    if not tops:
        raise DecideError(Msg("%(path)s holds no decision", path=path))
    raise DecideError(Msg("%(path)s holds several decisions (%(ids)s); pass --decision ID", path=path,
                          ids=", ".join(repr(n.element.id) for n in tops)))


def parse_input(text: str) -> dict[str, Any]:
    """``--input``: a JSON object, or ``@file.json``."""
    source = "--input"
    if text.startswith("@"):
        source = text[1:]
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise DecideError(Msg("cannot read %(source)s: %(strerror)s", source=source,
                                  strerror=exc.strerror)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DecideError(Msg("%(source)s is not valid JSON: %(msg)s at line %(lineno)s column %(colno)s",
                              source=source, msg=exc.msg, lineno=exc.lineno, colno=exc.colno)) from None
    if not isinstance(data, dict):
        raise DecideError(Msg("%(source)s must be a JSON object such as {\"amount\": 6000, \"vip\": \"gold\"}",
                              source=source))
    return data


def nested(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Flat dotted keys (``{"ticket.amount": 6000}``) made nested; nested ones kept."""
    result: dict[str, Any] = {}
    for key, value in inputs.items():
        if "." in key and not key.startswith(".") and not key.endswith("."):
            target = result
            *parents, last = key.split(".")
            for part in parents:
                existing = target.get(part)
                if not isinstance(existing, dict):
                    existing = {} if existing is None else existing
                    target[part] = existing
                target = existing
            if isinstance(target, dict):
                target.setdefault(last, value)
        else:
            current = result.get(key)
            if isinstance(current, dict) and isinstance(value, Mapping):
                result[key] = {**value, **current}
            else:
                result[key] = value
    return result


def has_path(inputs: Mapping[str, Any], expression: str) -> bool:
    """Whether ``expression`` is given: as a flat key, or as a nested path (its value may be null)."""
    return find_path(inputs, expression)[0]


def _example(expression: str) -> str:
    value: Any = "…"
    for part in reversed(expression.split(".")):
        value = {part: value}
    return json.dumps(value, ensure_ascii=False)


def _missing(graph: drg.Graph, node: Any, inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(path, label)`` of what the decision reads that ``--input`` does not give."""
    wanted: list[tuple[str, str]] = []
    seen: set[int] = set()
    stack = [node]
    decided = {n.element.name for n in graph.nodes.values() if isinstance(n.element, drg.Decision)}
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        element = current.element
        if isinstance(element, drg.Decision):
            texts = drg.boxed_texts(element.expression)
            for required in current.information:
                # input data the decision actually reads (Camunda files often draw ones they do not)
                if isinstance(required.element, drg.InputData) and any(required.element.name in t for t in texts) \
                        and not has_path(inputs, required.element.name):
                    wanted.append((required.element.name, ""))
            stack.extend(r for r in current.information if isinstance(r.element, drg.Decision))
            expression = element.expression
            if isinstance(expression, drg.TableBoxed) and expression.table is not None:
                for clause in expression.table.inputs:
                    root = clause.expression.split(".", 1)[0]
                    required = {r.element.name for r in current.information}
                    if clause.expression and root not in required and root not in decided \
                            and "(" not in clause.expression and not has_path(inputs, clause.expression) \
                            and clause.expression.replace(".", "").replace("_", "").isalnum():
                        wanted.append((clause.expression, clause.label))
    return wanted


def decide(path: str, input_text: str, decision_id: str | None = None,
           allow_missing: bool = False) -> dict[str, Any]:
    """Load, check the inputs, evaluate: see the module docstring for the report."""
    inputs = parse_input(input_text)
    if path.lower().endswith(".json"):
        return _decide_table(path, load_table(path, decision_id), inputs, allow_missing)
    graph = load_graph_file(path)
    node = _target(graph, path, decision_id)
    if not allow_missing:
        missing = _missing(graph, node, inputs)
        if missing:
            names = ", ".join(f"'{name}'" + (f" ({label})" if label else "") for name, label in missing)
            raise DecideError(Msg("--input lacks %(names)s; add it, e.g. %(example)s (null for unknown), or pass "
                                  "--allow-missing", names=names, example=_example(missing[0][0])))
    try:
        evaluation = graph.evaluate(nested(inputs), [node.element.id])
    except FeelLimitError as exc:
        raise DecideError(Msg("%(path)s: %(element)s: %(exc)s", path=path, element=node.element.describe(),
                              exc=message_of(exc))) from None
    failed = [error for error in evaluation.tables.values() if isinstance(error, DecisionTableError)]
    if failed:  # a hit policy violated or an input of the wrong type: an error, not a null result
        raise DecideError(message_of(failed[0]) if isinstance(failed[0], HitPolicyViolation)
                          else Msg("%(path)s: %(exc)s", path=path, exc=message_of(failed[0])))
    table_result = evaluation.tables.get(node.element.id)
    report: dict[str, Any] = {"decision": node.element.name}
    if table_result is not None and isinstance(node.element.expression, drg.TableBoxed):
        report.update(table_result.as_json())
        report.pop("notes", None)
    else:
        report["result"] = json_value(evaluation.results.get(node.name))
    report["decisions"] = {name: json_value(value) for name, value in evaluation.decided.items()}
    if evaluation.notes:
        report["notes"] = evaluation.notes
    return report


def _decide_table(path: str, table: DecisionTable, inputs: dict[str, Any], allow_missing: bool) -> dict[str, Any]:
    if not allow_missing:
        missing = [clause for clause in table.inputs if clause.expression and not has_path(inputs, clause.expression)]
        if missing:
            names = ", ".join(f"'{c.expression}'" + (f" ({c.label})" if c.label else "") for c in missing)
            raise DecideError(Msg("--input lacks %(names)s; add it, e.g. %(example)s (null for unknown), or pass "
                                  "--allow-missing", names=names, example=_example(missing[0].expression)))
    try:
        result = evaluate(table, inputs)
    except HitPolicyViolation as exc:
        raise DecideError(message_of(exc)) from None
    except (DecisionTableError, FeelLimitError) as exc:
        raise DecideError(Msg("%(path)s: %(exc)s", path=path, exc=message_of(exc))) from None
    return result.as_json()
