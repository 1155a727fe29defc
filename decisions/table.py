"""DMN decision tables: the model, the seven hit policies and :func:`evaluate`.

A table has input columns (each reads a dotted path from the input dict, e.g. ``ticket.amount``),
output columns and rules. A rule's input entries are FEEL unary tests (see
:mod:`decisions.feel`), its output entries FEEL literals. Everything is parsed and
type-checked when the model is built, so a typo is a validation error on the canvas, not a
failed routing at 3 a.m.

Hit policies (DMN 1.3 §8.2.11):

- single hit — ``UNIQUE`` (at most one rule may match, else :class:`HitPolicyViolation`),
  ``ANY`` (the matching rules must agree on every output, else :class:`HitPolicyViolation`),
  ``PRIORITY`` (the match whose outputs come first in the outputs' ``allowed_values``),
  ``FIRST`` (the first match in rule order). Result: one ``{output name: value}`` dict, or None.
- multiple hit — ``RULE ORDER`` (rule order), ``OUTPUT ORDER`` (by output priority, ties in rule
  order), ``COLLECT`` (rule order; DMN leaves it arbitrary). Result: a list of dicts, possibly
  empty. ``COLLECT`` with an aggregation returns a number instead: ``SUM``/``MIN``/``MAX`` of
  the single output (None when nothing matched; null outputs are skipped) or ``COUNT`` of the
  matches (0 when nothing matched).

Input values are coerced to the column's ``type_ref``: ``number`` (also ``integer``, ``long``,
``double``) accepts int, Decimal, float and decimal strings such as ``"1999.00"`` (money is never
a float in Tideflow; a float given anyway is read as its shortest repr, so 0.1 is 0.1);
``string`` accepts str;
``boolean`` accepts bool and ``"true"``/``"false"``; ``date`` accepts ``datetime.date`` and
ISO ``YYYY-MM-DD`` strings. A value that does not fit raises :class:`DecisionInputError`; a
missing path is null. An empty ``type_ref`` means untyped: values are used as they are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from decisions.feel import (
    FeelSyntaxError,
    FeelValue,
    ValueKind,
    format_literal,
    parse_literal,
    parse_unary_tests,
    value_kind,
)


class HitPolicy(StrEnum):
    UNIQUE = "UNIQUE"
    ANY = "ANY"
    PRIORITY = "PRIORITY"
    FIRST = "FIRST"
    RULE_ORDER = "RULE ORDER"
    OUTPUT_ORDER = "OUTPUT ORDER"
    COLLECT = "COLLECT"


SINGLE_HIT_POLICIES = frozenset({HitPolicy.UNIQUE, HitPolicy.ANY, HitPolicy.PRIORITY, HitPolicy.FIRST})


class Aggregation(StrEnum):
    SUM = "SUM"
    MIN = "MIN"
    MAX = "MAX"
    COUNT = "COUNT"


_TYPE_KINDS: dict[str, ValueKind] = {
    "string": "string",
    "number": "number", "integer": "number", "int": "number", "long": "number", "short": "number",
    "double": "number", "float": "number", "decimal": "number",
    "boolean": "boolean", "bool": "boolean",
    "date": "date",
}
_INTEGER_TYPES = frozenset({"integer", "int", "long", "short"})
_INTEGER_TEXT = re.compile(r"-?\d+")
_PATH = re.compile(r"[^\s.]+(?:\.[^\s.]+)*")
_NCNAME_INVALID = re.compile(r"[^\w.-]")


def type_kind(type_ref: str) -> ValueKind | None:
    """The value kind a DMN ``typeRef`` names (``feel:number`` → number); None when untyped/unknown."""
    return _TYPE_KINDS.get(type_ref.rsplit(":", 1)[-1].strip().lower())


def is_integer_type(type_ref: str) -> bool:
    return type_ref.rsplit(":", 1)[-1].strip().lower() in _INTEGER_TYPES


# --------------------------------------------------------------------------------------------- model


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _typed_value(value: Any, kind: ValueKind | None) -> Any:
    """An allowed value as read from JSON, made the column's kind: "0.15" → Decimal, "2024-10-01" → date.

    Floats become the Decimal of their shortest repr (0.15 → Decimal("0.15")), so they equal the
    FEEL literal ``0.15``.
    """
    if isinstance(value, float) and math.isfinite(value):
        return Decimal(repr(value))
    if isinstance(value, str) and kind == "number":
        if _INTEGER_TEXT.fullmatch(value.strip()):
            return int(value)
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return value
        return number if number.is_finite() else value
    if isinstance(value, str) and kind == "date":
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return value
    return value


class _Clause(_Frozen):
    @model_validator(mode="before")
    @classmethod
    def _typed_allowed_values(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("allowed_values"), list):
            kind = type_kind(str(data.get("type_ref") or ""))
            return {**data, "allowed_values": [_typed_value(value, kind) for value in data["allowed_values"]]}
        return data


class InputClause(_Clause):
    """An input column."""

    id: str = Field(min_length=1)
    label: str = ""
    expression: str = Field(description="dotted path into the input dict, e.g. 'ticket.amount'")
    type_ref: str = Field(default="", description="string, number, integer, boolean or date; empty = untyped")
    allowed_values: list[FeelValue] | None = Field(
        default=None, description="the column's domain (DMN inputValues); used by the gap analysis")

    @field_validator("expression")
    @classmethod
    def _dotted_path(cls, expression: str) -> str:
        expression = expression.strip()
        if not _PATH.fullmatch(expression):
            raise ValueError(f"input expression '{expression}' must be a dotted path such as 'ticket.amount' "
                             "(FEEL expressions are not supported here)")
        return expression

    @property
    def title(self) -> str:
        return self.label or self.expression


class OutputClause(_Clause):
    """An output column."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1, description="key of this output in the result dict")
    label: str = ""
    type_ref: str = ""
    allowed_values: list[FeelValue] | None = Field(
        default=None, description="allowed values, highest priority first (PRIORITY / OUTPUT ORDER)")


class Rule(_Frozen):
    id: str = Field(min_length=1)
    input_entries: list[str] = Field(description="one FEEL unary test per input column; '-' = any")
    output_entries: list[str] = Field(description="one FEEL literal per output column")
    description: str = ""


def _default_id(name: str) -> str:
    candidate = _NCNAME_INVALID.sub("_", name.strip()) or "decision"
    if not (candidate[0].isalpha() or candidate[0] == "_"):
        candidate = f"Decision_{candidate}"
    return candidate


class DecisionTable(_Frozen):
    """A DMN decision table. Entries are parsed and checked against the column types on construction."""

    id: str = Field(default="", description="DMN decision id; derived from the name when empty")
    name: str = Field(min_length=1)
    hit_policy: HitPolicy = HitPolicy.UNIQUE
    aggregation: Aggregation | None = None
    inputs: list[InputClause] = Field(default_factory=list)
    outputs: list[OutputClause] = Field(min_length=1)
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _derive_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("id") and isinstance(data.get("name"), str):
            return {**data, "id": _default_id(data["name"])}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> DecisionTable:
        _require_unique("input id", [clause.id for clause in self.inputs])
        _require_unique("output id", [clause.id for clause in self.outputs])
        _require_unique("output name", [clause.name for clause in self.outputs])
        _require_unique("rule id", [rule.id for rule in self.rules])
        self._check_policy()
        clauses: list[InputClause | OutputClause] = [*self.inputs, *self.outputs]
        for clause in clauses:
            kind = type_kind(clause.type_ref)
            for value in clause.allowed_values or []:
                if value is None or (kind is not None and value_kind(value) != kind):
                    raise ValueError(f"allowed value {format_literal(value)} of column '{clause.id}' "
                                     f"is not a {clause.type_ref}")
        for rule in self.rules:
            self._check_rule(rule)
        return self

    def _check_policy(self) -> None:
        if self.aggregation is not None and self.hit_policy != HitPolicy.COLLECT:
            raise ValueError(f"aggregation {self.aggregation} needs hit policy COLLECT, "
                             f"not {self.hit_policy}")
        if self.aggregation in (Aggregation.SUM, Aggregation.MIN, Aggregation.MAX):
            if len(self.outputs) != 1:
                raise ValueError(f"COLLECT {self.aggregation} needs exactly one output column, "
                                 f"this table has {len(self.outputs)}")
            if type_kind(self.outputs[0].type_ref) not in (None, "number"):
                raise ValueError(f"COLLECT {self.aggregation} needs a number output, "
                                 f"'{self.outputs[0].name}' is a {self.outputs[0].type_ref}")
        if self.hit_policy in (HitPolicy.PRIORITY, HitPolicy.OUTPUT_ORDER) and not any(
                clause.allowed_values for clause in self.outputs):
            raise ValueError(f"hit policy {self.hit_policy} orders by the outputs' allowed values; "
                             "give at least one output allowed values, highest priority first")

    def _check_rule(self, rule: Rule) -> None:
        if len(rule.input_entries) != len(self.inputs):
            raise ValueError(f"rule '{rule.id}' has {len(rule.input_entries)} input entries "
                             f"for {len(self.inputs)} input columns")
        if len(rule.output_entries) != len(self.outputs):
            raise ValueError(f"rule '{rule.id}' has {len(rule.output_entries)} output entries "
                             f"for {len(self.outputs)} output columns")
        for entry, input_clause in zip(rule.input_entries, self.inputs, strict=True):
            try:
                tests = parse_unary_tests(entry)
            except FeelSyntaxError as error:
                raise ValueError(f"rule '{rule.id}', input '{input_clause.title}': {error}") from None
            kind = type_kind(input_clause.type_ref)
            wrong = tests.literal_kinds() - {kind} if kind else set()
            if wrong:
                raise ValueError(f"rule '{rule.id}', input '{input_clause.title}': '{entry}' compares with a "
                                 f"{' and a '.join(sorted(wrong))} but the column is a "
                                 f"{input_clause.type_ref}")
        for entry, output_clause in zip(rule.output_entries, self.outputs, strict=True):
            try:
                value = parse_literal(entry)
            except FeelSyntaxError as error:
                raise ValueError(f"rule '{rule.id}', output '{output_clause.name}': {error}") from None
            kind = type_kind(output_clause.type_ref)
            if value is not None and kind is not None and value_kind(value) != kind:
                raise ValueError(f"rule '{rule.id}', output '{output_clause.name}': {entry} is not a "
                                 f"{output_clause.type_ref}")
            if value is not None and output_clause.allowed_values is not None \
                    and _index_of(value, output_clause.allowed_values) is None:
                allowed = ", ".join(format_literal(v) for v in output_clause.allowed_values)
                raise ValueError(f"rule '{rule.id}', output '{output_clause.name}': {entry} is not one of "
                                 f"the allowed values {allowed}")

    def rule_outputs(self, rule: Rule) -> dict[str, FeelValue]:
        """The rule's outputs as ``{output name: value}``."""
        return {clause.name: parse_literal(entry)
                for clause, entry in zip(self.outputs, rule.output_entries, strict=True)}

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def _require_unique(what: str, values: Sequence[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} '{value}'")
        seen.add(value)


def _index_of(value: FeelValue, allowed: Sequence[FeelValue]) -> int | None:
    for index, candidate in enumerate(allowed):
        if value_kind(candidate) == value_kind(value) and candidate == value:
            return index
    return None


# --------------------------------------------------------------------------------------------- evaluation


class DecisionTableError(Exception):
    """Evaluating a decision table failed; the message names the table, the rules and the inputs."""


class DecisionInputError(DecisionTableError):
    """An input value does not fit its column's type."""


class HitPolicyViolation(DecisionTableError):
    """More than one rule matched under UNIQUE, or matches disagree under ANY."""

    def __init__(self, message: str, rule_ids: Sequence[str], inputs: Mapping[str, FeelValue]) -> None:
        super().__init__(message)
        self.rule_ids = tuple(rule_ids)
        self.inputs = dict(inputs)


Outputs = dict[str, FeelValue]
DecisionValue = Outputs | list[Outputs] | int | Decimal | float | None


@dataclass(frozen=True)
class DecisionResult:
    """What a table decided.

    ``value`` is one outputs dict (or None) for single-hit policies, a list of outputs dicts for
    multiple-hit policies and a number (or None) for an aggregated COLLECT. ``matched_rule_ids``
    lists every rule whose inputs matched, in rule order; ``selected_rule_ids`` the rules that make
    up ``value``, in result order.
    """

    hit_policy: HitPolicy
    value: DecisionValue
    matched_rule_ids: tuple[str, ...]
    selected_rule_ids: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """``{"result", "hit_policy", "matched_rules", "selected_rules"}`` with JSON-safe values
        (see :func:`json_value`)."""
        return {"result": json_value(self.value), "hit_policy": self.hit_policy.value,
                "matched_rules": list(self.matched_rule_ids), "selected_rules": list(self.selected_rule_ids)}


def json_value(value: Any) -> Any:
    """A result as plain JSON: whole numbers stay ``int``, other numbers become decimal strings
    (``"0.15"`` — money is never a float), dates ISO strings; dicts and lists recursively."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal | float):
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite():
            return str(number)
        return int(number) if number == number.to_integral_value() else format(number.normalize(), "f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return str(value)


def find_path(inputs: Mapping[str, Any], expression: str) -> tuple[bool, Any]:
    """Whether a dotted path (``ticket.amount``) is given, and its value (None when it is not); a flat
    key of that name wins."""
    if expression in inputs:
        return True, inputs[expression]
    current: Any = inputs
    for part in expression.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return False, None
        current = current[part]
    return True, current


def resolve_path(inputs: Mapping[str, Any], expression: str) -> Any:
    """The value at a dotted path (``ticket.amount``); a flat key of that name wins; missing → None."""
    return find_path(inputs, expression)[1]


def coerce_input(clause: InputClause, raw: Any) -> FeelValue:
    """An input value converted to the column's type; raises :class:`DecisionInputError`."""
    kind = type_kind(clause.type_ref)
    if raw is None:
        return None
    if kind is None:
        return raw if value_kind(raw) is not None else _unsupported(clause, raw)
    if isinstance(raw, float):
        raw = Decimal(repr(raw)) if math.isfinite(raw) else raw
    if kind == "number":
        if isinstance(raw, int | Decimal) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            try:
                number = Decimal(raw.strip())
            except InvalidOperation:
                pass
            else:
                if number.is_finite():
                    return number
    elif kind == "string":
        if isinstance(raw, str):
            return raw
    elif kind == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
    elif kind == "date":
        if isinstance(raw, date) and not isinstance(raw, datetime):
            return raw
        if isinstance(raw, str):
            try:
                return date.fromisoformat(raw.strip())
            except ValueError:
                pass
    raise DecisionInputError(f"input '{clause.title}' ({clause.expression}) is a {clause.type_ref}, "
                             f"got {type(raw).__name__} {raw!r}")


def _unsupported(clause: InputClause, raw: Any) -> NoReturn:
    raise DecisionInputError(f"input '{clause.title}' ({clause.expression}): a {type(raw).__name__} "
                             "cannot be tested; pass a number, string, boolean or date")


def evaluate(table: DecisionTable, inputs: Mapping[str, Any]) -> DecisionResult:
    """Evaluate the table against ``inputs`` under its hit policy."""
    values = [coerce_input(clause, resolve_path(inputs, clause.expression)) for clause in table.inputs]
    matched = [rule for rule in table.rules
               if all(parse_unary_tests(entry).matches(value)
                      for entry, value in zip(rule.input_entries, values, strict=True))]
    shown = {clause.expression: value for clause, value in zip(table.inputs, values, strict=True)}
    policy = table.hit_policy
    matched_ids = tuple(rule.id for rule in matched)

    def result(value: DecisionValue, selected: Sequence[Rule]) -> DecisionResult:
        return DecisionResult(policy, value, matched_ids, tuple(rule.id for rule in selected))

    if policy in SINGLE_HIT_POLICIES:
        if not matched:
            return result(None, [])
        if policy == HitPolicy.UNIQUE and len(matched) > 1:
            raise HitPolicyViolation(
                f"decision '{table.name}' has hit policy UNIQUE but rules {_quoted(matched_ids)} all match "
                f"{_describe(shown)}", matched_ids, shown)
        if policy == HitPolicy.ANY:
            first = table.rule_outputs(matched[0])
            for other in matched[1:]:
                if table.rule_outputs(other) != first:
                    raise HitPolicyViolation(
                        f"decision '{table.name}' has hit policy ANY but matching rules "
                        f"'{matched[0].id}' and '{other.id}' give different outputs ({_describe(first)} vs "
                        f"{_describe(table.rule_outputs(other))}) for {_describe(shown)}", matched_ids, shown)
        chosen = min(matched, key=lambda rule: _priority(table, rule)) if policy == HitPolicy.PRIORITY \
            else matched[0]
        return result(table.rule_outputs(chosen), [chosen])

    if policy == HitPolicy.OUTPUT_ORDER:
        matched = sorted(matched, key=lambda rule: _priority(table, rule))
    if policy == HitPolicy.COLLECT and table.aggregation is not None:
        return result(_aggregate(table, matched), matched)
    return result([table.rule_outputs(rule) for rule in matched], matched)


def _priority(table: DecisionTable, rule: Rule) -> tuple[int, ...]:
    """Lower sorts first: per output with allowed values, the index of the rule's value in them."""
    key: list[int] = []
    for clause, entry in zip(table.outputs, rule.output_entries, strict=True):
        if clause.allowed_values:
            index = _index_of(parse_literal(entry), clause.allowed_values)
            key.append(len(clause.allowed_values) if index is None else index)
    return tuple(key)


def _aggregate(table: DecisionTable, matched: Sequence[Rule]) -> int | Decimal | float | None:
    if table.aggregation == Aggregation.COUNT:
        return len(matched)
    numbers: list[int | Decimal | float] = []
    for rule in matched:
        value = parse_literal(rule.output_entries[0])
        if value is None:
            continue
        if value_kind(value) != "number" or isinstance(value, bool | str | date):
            raise DecisionTableError(f"decision '{table.name}': COLLECT {table.aggregation} needs numbers, "
                                     f"rule '{rule.id}' gives {format_literal(value)}")
        numbers.append(value)
    if not numbers:
        return None
    if table.aggregation == Aggregation.SUM:
        return sum(numbers[1:], start=numbers[0])
    return min(numbers) if table.aggregation == Aggregation.MIN else max(numbers)


def _quoted(ids: Sequence[str]) -> str:
    return ", ".join(f"'{rule_id}'" for rule_id in ids)


def _describe(values: Mapping[str, FeelValue]) -> str:
    return "{" + ", ".join(f"{key} = {format_literal(value)}" for key, value in values.items()) + "}"
