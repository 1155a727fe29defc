"""``tideflow decide FILE --input JSON``: evaluate a decision table from a file, as the CLI does it.

``FILE`` is a DMN document (``.dmn`` / ``.xml``: Camunda Modeler's files) or JSON: a table
(``{"name": …, "inputs": …}``) or a ``logic.decision_table`` node config (``{"table": …}``).
Every input column must be given in ``--input`` (nested ``{"ticket": {"amount": 6000}}`` or flat
``{"ticket.amount": 6000}``; ``null`` for a deliberately missing value) unless ``allow_missing``.
Every problem is a :class:`DecideError` with a one-line message: the CLI prints it and exits 1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from decisions.dmn_xml import DmnImportError, load_decision_table, load_decision_tables
from decisions.table import (
    DecisionTable,
    DecisionTableError,
    HitPolicyViolation,
    evaluate,
    find_path,
)


class DecideError(Exception):
    """A problem to print as one line (exit code 1)."""


def load_table(path: str, decision_id: str | None = None) -> DecisionTable:
    """The table in a .dmn/.xml or .json file; :class:`DecideError` names the file and the line."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DecideError(f"cannot read {path}: {exc.strerror}") from None
    if path.lower().endswith(".json"):
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            raise DecideError(f"{path} is not valid JSON: {reason}{where}") from None
        if isinstance(data, Mapping) and isinstance(data.get("table"), Mapping):
            data = data["table"]
        try:
            return DecisionTable.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "table"
            message = str(first["msg"]).removeprefix("Value error, ")
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise DecideError(f"{path}: {where}: {message}{more}") from None
    try:
        if decision_id is None:
            tables = load_decision_tables(raw)
            if len(tables) > 1:
                raise DecideError(f"{path} holds several decision tables "
                                  f"({', '.join(repr(t.id) for t in tables)}); pass --decision ID")
            return tables[0]
        return load_decision_table(raw, decision_id)
    except DmnImportError as exc:
        raise DecideError(f"{path}: {exc}") from None


def parse_input(text: str) -> dict[str, Any]:
    """``--input``: a JSON object, or ``@file.json``."""
    source = "--input"
    if text.startswith("@"):
        source = text[1:]
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise DecideError(f"cannot read {source}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DecideError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise DecideError(f'{source} must be a JSON object such as {{"amount": 6000, "vip": "gold"}}')
    return data


def has_path(inputs: Mapping[str, Any], expression: str) -> bool:
    """Whether ``expression`` is given: as a flat key, or as a nested path (its value may be null)."""
    return find_path(inputs, expression)[0]


def _example(expression: str) -> str:
    value: Any = "…"
    for part in reversed(expression.split(".")):
        value = {part: value}
    return json.dumps(value, ensure_ascii=False)


def decide(path: str, input_text: str, decision_id: str | None = None,
           allow_missing: bool = False) -> dict[str, Any]:
    """Load, check the inputs, evaluate: ``{"result", "hit_policy", "matched_rules", "selected_rules"}``."""
    table = load_table(path, decision_id)
    inputs = parse_input(input_text)
    if not allow_missing:
        missing = [clause for clause in table.inputs if not has_path(inputs, clause.expression)]
        if missing:
            names = ", ".join(f"'{c.expression}'" + (f" ({c.label})" if c.label else "") for c in missing)
            raise DecideError(f"--input lacks {names}; add it, e.g. {_example(missing[0].expression)} "
                              "(null for unknown), or pass --allow-missing")
    try:
        result = evaluate(table, inputs)
    except HitPolicyViolation as exc:
        raise DecideError(str(exc)) from None
    except DecisionTableError as exc:
        raise DecideError(f"{path}: {exc}") from None
    return result.as_json()
