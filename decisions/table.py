"""DMN decision tables: the model, the seven hit policies and :func:`evaluate`.

A table has input columns, output columns and rules. Everything in it is FEEL
(:mod:`decisions.feel`): an input column's *expression* (``ticket.amount``, ``Applicant Age``,
``amount * 1.1``), a rule's *input entries* (unary tests: ``< limit``, ``[min..max]``,
``"gold","silver"``, ``? > 10``) and its *output entries* (expressions: ``"VIP-" + level``,
``amount * 0.1``). Everything is parsed (and checked against the column types where a cell is a
plain literal) when the model is built, so a typo is a validation error on the canvas, not a
failed routing at 3 a.m.

**Names.** A cell may use the table's inputs — an input whose expression is a name (``Applicant
Age``) by that name, any other by its path (``customer.tier``) — and the variables of the
surroundings: in a flow ``customer``, ``event``, ``vars``, ``journey`` and ``ticket``
(:data:`FLOW_NAMES`); in a decision graph the decision's requirements. Names made of several words
are recognised only when known, so a DRG passes its names in the validation context
(``DecisionTable.model_validate(data, context={"feel_names": names})``). A name that is known
nowhere is an error (``"queue_a"`` was meant, not ``queue_a``).

Hit policies (DMN 1.5 §8.2.11):

- single hit — ``UNIQUE`` (at most one rule may match, else :class:`HitPolicyViolation`),
  ``ANY`` (the matching rules must agree on every output, else :class:`HitPolicyViolation`),
  ``PRIORITY`` (the match whose outputs come first in the outputs' ``allowed_values``),
  ``FIRST`` (the first match in rule order). Result: one ``{output name: value}`` dict, or None
  (or the outputs' ``default`` entries when no rule matches).
- multiple hit — ``RULE ORDER`` (rule order), ``OUTPUT ORDER`` (by output priority, ties in rule
  order), ``COLLECT`` (rule order). Result: a list of dicts, possibly empty. ``COLLECT`` with an
  aggregation returns a value instead: ``SUM``/``MIN``/``MAX`` of the single output (None when
  nothing matched; null outputs are skipped) or ``COUNT`` of the matches (0 when nothing matched).

Input values are coerced to the column's ``type_ref``: ``number`` (also ``integer``, ``long``,
``double``) accepts int, Decimal, float and decimal strings such as ``"1999.00"`` (money is never
a float in Tideflow; a float given anyway is read as its shortest repr, so 0.1 is 0.1);
``string`` accepts str; ``boolean`` accepts bool and ``"true"``/``"false"``; ``date`` accepts
``datetime.date`` and ISO ``YYYY-MM-DD`` strings. A value that does not fit raises
:class:`DecisionInputError`; a missing path is null. An empty ``type_ref`` means untyped: values
are used as they are. Evaluation runs under the FEEL budget (:mod:`decisions.feel.limits`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator
from pydantic_core import ErrorDetails

from decisions.feel import (
    FeelLimitError,
    FeelSyntaxError,
    FeelValue,
    ValueKind,
    compile_expression,
    compile_unary_tests,
    format_literal,
    parse_literal,
    parse_unary_tests,
    value_kind,
)
from decisions.feel import interpreter as feel_interpreter
from decisions.feel import syntax as feel_syntax
from decisions.feel.library import BUILTINS
from decisions.feel.limits import Budget, metered
from decisions.feel.types import FeelType, coerce, resolve
from decisions.feel.values import FeelFunction, FeelRange, YearsMonths, feel_compare, feel_equal, literal_text, to_feel
from decisions.feel.values import format_value as temporal_text
from wording import Msg, message_of, verbatim


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


#: the variables of a flow a table may use (see the module docstring)
FLOW_NAMES = frozenset({"customer", "event", "vars", "journey", "ticket"})

_TYPE_KINDS: dict[str, ValueKind] = {
    "string": "string",
    "number": "number", "integer": "number", "int": "number", "long": "number", "short": "number",
    "double": "number", "float": "number", "decimal": "number",
    "boolean": "boolean", "bool": "boolean",
    "date": "date",
}
_INTEGER_TYPES = frozenset({"integer", "int", "long", "short"})
_INTEGER_TEXT = re.compile(r"-?\d+")
#: an input expression read as a path into the input dict (flat dotted keys allowed)
_PATH = re.compile(r"[^\W\d][\w]*(?:\.[^\W\d][\w]*)*")
#: an input expression that is a name with spaces (``Applicant Age``)
_NAME_WITH_SPACES = re.compile(r"[^\W\d][\w'/-]*(?: +[\w'/-]+)+")
_NCNAME_INVALID = re.compile(r"[^\w.-]")


def type_kind(type_ref: str) -> ValueKind | None:
    """The value kind a DMN ``typeRef`` names (``feel:number`` → number); None when untyped/unknown."""
    return _TYPE_KINDS.get(type_ref.rsplit(":", 1)[-1].strip().lower())


def is_integer_type(type_ref: str) -> bool:
    return type_ref.rsplit(":", 1)[-1].strip().lower() in _INTEGER_TYPES


def literal_or_none(text: str) -> tuple[bool, FeelValue]:
    """``(True, value)`` when an output entry is a plain literal (``"vip"``, ``42``, ``date("…")``)."""
    try:
        return True, parse_literal(text)
    except FeelSyntaxError:
        return False, None


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
    expression: str = Field(default="", description="FEEL expression giving the column's value, e.g. "
                                                    "'ticket.amount' or 'Applicant Age'; empty: not given yet")
    type_ref: str = Field(default="", description="string, number, integer, boolean or date; empty = untyped")
    allowed_values: list[FeelValue] | None = Field(
        default=None, description="the column's domain (DMN inputValues); used by the gap analysis")
    input_variable: str = Field(default="", description="a name the cells may use for the input value "
                                                        "(Camunda's camunda:inputVariable; 'cellInput' always works)")

    @field_validator("expression")
    @classmethod
    def _trimmed(cls, expression: str) -> str:
        return expression.strip()

    @property
    def title(self) -> str:
        return self.label or self.expression or self.id


class OutputClause(_Clause):
    """An output column."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1, description="key of this output in the result dict")
    label: str = ""
    type_ref: str = ""
    allowed_values: list[FeelValue] | None = Field(
        default=None, description="allowed values, highest priority first (PRIORITY / OUTPUT ORDER)")
    default: str = Field(default="", description="FEEL expression for the output when no rule matches "
                                                 "(DMN defaultOutputEntry, single-hit tables); empty: null")


class Rule(_Frozen):
    id: str = Field(min_length=1)
    input_entries: list[str] = Field(description="one FEEL unary test per input column; '-' = any")
    output_entries: list[str] = Field(description="one FEEL expression per output column")
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
    variables: list[str] = Field(
        default_factory=list, description="variables the cells read besides the inputs and the flow's "
                                          "(names with spaces are recognised only when listed)")

    _compiled: _CompiledTable | None = PrivateAttr(default=None)
    _names: frozenset[str] = PrivateAttr(default=frozenset())

    @model_validator(mode="before")
    @classmethod
    def _derive_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("id") and isinstance(data.get("name"), str):
            return {**data, "id": _default_id(data["name"])}
        return data

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> DecisionTable:
        context = info.context if isinstance(info.context, Mapping) else {}
        outer = context.get("feel_names")
        _require_unique(Msg("input id"), [clause.id for clause in self.inputs])
        _require_unique(Msg("output id"), [clause.id for clause in self.outputs])
        _require_unique(Msg("output name"), [clause.name for clause in self.outputs])
        _require_unique(Msg("rule id"), [rule.id for rule in self.rules])
        self._check_policy()
        clauses: list[InputClause | OutputClause] = [*self.inputs, *self.outputs]
        for clause in clauses:
            kind = type_kind(clause.type_ref)
            for value in clause.allowed_values or []:
                if value is None or (kind is not None and value_kind(value) != kind):
                    raise ValueError(Msg("allowed value %(value)s of column '%(id)s' is not a %(type_ref)s",
                                         value=format_literal(value), id=clause.id, type_ref=clause.type_ref))
        names = self.input_names() | FLOW_NAMES | frozenset(self.variables) | frozenset(outer or ())
        object.__setattr__(self, "_names", names)
        check_names = bool(context.get("check_names", False))
        for clause in self.inputs:
            if clause.expression:
                self._check_feel(clause.expression, Msg("input '%(title)s': expression", title=clause.title), names,
                                 check_names)
        for clause in self.outputs:
            if clause.default.strip():
                self._check_feel(clause.default, Msg("output '%(name)s': default", name=clause.name), names,
                                 check_names)
        for rule in self.rules:
            self._check_rule(rule, names, check_names)
        return self

    def input_names(self) -> frozenset[str]:
        """The names the inputs give cells: each input expression that is a name, and path roots."""
        found: set[str] = {clause.input_variable for clause in self.inputs if clause.input_variable}
        for clause in self.inputs:
            expression = clause.expression
            if _PATH.fullmatch(expression):
                found.add(expression.split(".", 1)[0])
            elif _NAME_WITH_SPACES.fullmatch(expression):
                found.add(feel_syntax.normalise_name(expression))
        return frozenset(found)

    def feel_names(self) -> frozenset[str]:
        """Every name a cell of this table may use."""
        return self._names or (self.input_names() | FLOW_NAMES | frozenset(self.variables))

    def unknown_names(self, known: Iterable[str] = ()) -> list[tuple[str, str, str]]:
        """``(field, where, name)`` for every name the table reads that is known nowhere: an input
        expression's must be a flow variable (:data:`FLOW_NAMES`), one the table lists in
        ``variables`` or ``known``; a cell's may also be an input. ``queue_a`` where ``"queue_a"`` was
        meant is one."""
        outer = FLOW_NAMES | frozenset(self.variables) | frozenset(known) | BUILTINS.keys()
        allowed = outer | self.input_names() | {"cellInput"}
        found: list[tuple[str, str, str]] = []
        cells: list[tuple[str, str, str, bool, frozenset[str]]] = [
            (clause.expression, f"table.inputs.{index}.expression", Msg("input '%(title)s'", title=clause.title), False,
             outer)
            for index, clause in enumerate(self.inputs) if clause.expression]
        cells += [(clause.default, f"table.outputs.{index}.default",
                   Msg("output '%(name)s': default", name=clause.name), False, allowed)
                  for index, clause in enumerate(self.outputs) if clause.default.strip()]
        for rule in self.rules:
            cells += [(entry, "table.rules",
                       Msg("rule '%(rule)s', input '%(title)s'", rule=rule.id, title=clause.title), True, allowed)
                      for entry, clause in zip(rule.input_entries, self.inputs, strict=True)]
            cells += [(entry, "table.rules", Msg("rule '%(rule)s', output '%(name)s'", rule=rule.id, name=clause.name),
                       False, allowed)
                      for entry, clause in zip(rule.output_entries, self.outputs, strict=True)
                      if not literal_or_none(entry)[0]]
        for text, field, where, tests, names in cells:
            try:
                tree: feel_syntax.Node = feel_syntax.parse_unary_tests(text, allowed) if tests \
                    else feel_syntax.parse_expression(text, allowed)
            except FeelSyntaxError:
                continue
            found += [(field, where, name) for name in sorted(free_names(tree) - names)]
        return found

    def _check_feel(self, text: str, where: str, names: frozenset[str], check_names: bool,
                    tests: bool = False) -> None:
        try:
            tree: feel_syntax.Node = feel_syntax.parse_unary_tests(text, names) if tests \
                else feel_syntax.parse_expression(text, names)
        except FeelSyntaxError as error:
            raise ValueError(Msg("%(where)s: %(error)s", where=where, error=message_of(error))) from None
        if check_names:
            unknown = sorted(free_names(tree) - names - BUILTINS.keys() - {"cellInput"})
            if unknown:
                if len(unknown) == 1:
                    raise ValueError(Msg("%(where)s: '%(text)s' uses unknown name '%(name)s'; to write text, quote "
                                         "it: \"%(name)s\"", where=where, text=text, name=unknown[0]))
                raise ValueError(Msg("%(where)s: '%(text)s' uses unknown names %(names)s", where=where, text=text,
                                     names=", ".join(repr(n) for n in unknown)))

    def _check_policy(self) -> None:
        if self.aggregation is not None and self.hit_policy != HitPolicy.COLLECT:
            raise ValueError(Msg("aggregation %(aggregation)s needs hit policy COLLECT, not %(hit_policy)s",
                                 aggregation=self.aggregation, hit_policy=self.hit_policy))
        if self.aggregation in (Aggregation.SUM, Aggregation.MIN, Aggregation.MAX, Aggregation.COUNT) \
                and len(self.outputs) != 1:
            raise ValueError(Msg("COLLECT %(aggregation)s needs exactly one output column, this table has %(count)s",
                                 aggregation=self.aggregation, count=len(self.outputs)))
        if self.aggregation == Aggregation.SUM and type_kind(self.outputs[0].type_ref) not in (None, "number"):
            raise ValueError(Msg("COLLECT %(aggregation)s needs a number output, '%(name)s' is a %(type_ref)s",
                                 aggregation=self.aggregation, name=self.outputs[0].name,
                                 type_ref=self.outputs[0].type_ref))
        if self.aggregation in (Aggregation.MIN, Aggregation.MAX) \
                and type_kind(self.outputs[0].type_ref) not in (None, "number", "string", "date"):
            raise ValueError(Msg("COLLECT %(aggregation)s needs a number output, '%(name)s' is a %(type_ref)s",
                                 aggregation=self.aggregation, name=self.outputs[0].name,
                                 type_ref=self.outputs[0].type_ref))
        if self.hit_policy in (HitPolicy.PRIORITY, HitPolicy.OUTPUT_ORDER) and not any(
                clause.allowed_values for clause in self.outputs):
            raise ValueError(Msg("hit policy %(hit_policy)s orders by the outputs' allowed values; give at least one "
                                 "output allowed values, highest priority first", hit_policy=self.hit_policy))

    def _check_rule(self, rule: Rule, names: frozenset[str], check_names: bool) -> None:
        if len(rule.input_entries) != len(self.inputs):
            raise ValueError(Msg("rule '%(id)s' has %(entries)s input entries for %(columns)s input columns",
                                 id=rule.id, entries=len(rule.input_entries), columns=len(self.inputs)))
        if len(rule.output_entries) != len(self.outputs):
            raise ValueError(Msg("rule '%(id)s' has %(entries)s output entries for %(columns)s output columns",
                                 id=rule.id, entries=len(rule.output_entries), columns=len(self.outputs)))
        for entry, input_clause in zip(rule.input_entries, self.inputs, strict=True):
            where = Msg("rule '%(rule)s', input '%(title)s'", rule=rule.id, title=input_clause.title)
            try:
                tests = parse_unary_tests(entry)
            except FeelSyntaxError:
                self._check_feel(entry, where, names, check_names, tests=True)
                continue
            kind = type_kind(input_clause.type_ref)
            wrong = tests.literal_kinds() - {kind} if kind else set()
            if wrong:
                raise ValueError(Msg("%(where)s: '%(entry)s' compares with a %(kinds)s but the column is a "
                                     "%(type_ref)s", where=where, entry=entry, kinds=" and a ".join(sorted(wrong)),
                                     type_ref=input_clause.type_ref))
        for entry, output_clause in zip(rule.output_entries, self.outputs, strict=True):
            where = Msg("rule '%(rule)s', output '%(name)s'", rule=rule.id, name=output_clause.name)
            literal, value = literal_or_none(entry)
            if not literal:
                self._check_feel(entry, where, names, check_names)
                continue
            kind = type_kind(output_clause.type_ref)
            if value is not None and kind is not None and value_kind(value) != kind:
                raise ValueError(Msg("%(where)s: %(entry)s is not a %(type_ref)s", where=where, entry=entry,
                                     type_ref=output_clause.type_ref))
            if value is not None and output_clause.allowed_values is not None \
                    and _index_of(value, output_clause.allowed_values) is None:
                allowed = ", ".join(format_literal(v) for v in output_clause.allowed_values)
                raise ValueError(Msg("%(where)s: %(entry)s is not one of the allowed values %(allowed)s", where=where,
                                     entry=entry, allowed=allowed))

    def rule_outputs(self, rule: Rule) -> dict[str, FeelValue]:
        """The rule's outputs as ``{output name: value}`` when they are literals; an expression
        output is given as its text (use :func:`evaluate` for values)."""
        outputs: dict[str, FeelValue] = {}
        for clause, entry in zip(self.outputs, rule.output_entries, strict=True):
            literal, value = literal_or_none(entry)
            outputs[clause.name] = value if literal else f"={entry.strip()}"
        return outputs

    def literal_outputs(self, rule: Rule) -> dict[str, FeelValue] | None:
        """The rule's outputs when every one is a literal, else None."""
        outputs: dict[str, FeelValue] = {}
        for clause, entry in zip(self.outputs, rule.output_entries, strict=True):
            literal, value = literal_or_none(entry)
            if not literal:
                return None
            outputs[clause.name] = value
        return outputs

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def free_names(tree: feel_syntax.Node) -> set[str]:
    """Names an expression reads from its surroundings (not those it binds itself). Conditions of
    filters are skipped: they read the items' entries, unknown until run time."""
    found: set[str] = set()

    def visit(node: Any, bound: frozenset[str]) -> None:
        if isinstance(node, feel_syntax.Name):
            if node.name not in bound:
                found.add(node.name)
            return
        if isinstance(node, feel_syntax.Filter):
            visit(node.target, bound)
            return
        if isinstance(node, feel_syntax.For | feel_syntax.Quantified):
            inner = set(bound) | {"partial"}
            for iteration in node.iterations:
                visit(iteration.source, frozenset(inner))
                if iteration.until is not None:
                    visit(iteration.until, frozenset(inner))
                inner.add(iteration.name)
            visit(node.body if isinstance(node, feel_syntax.For) else node.condition, frozenset(inner))
            return
        if isinstance(node, feel_syntax.FunctionDef):
            visit(node.body, bound | {name for name, _ in node.params})
            return
        if isinstance(node, feel_syntax.ContextExpr):
            inner = set(bound)
            for key, value in node.entries:
                visit(value, frozenset(inner))
                inner.add(key)
            return
        for child in feel_interpreter._children(node):
            visit(child, bound)

    visit(tree, frozenset())
    return found


def _require_unique(what: str, values: Sequence[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(Msg("duplicate %(what)s '%(value)s'", what=what, value=value))
        seen.add(value)


def validation_message(detail: ErrorDetails) -> Msg:
    """A pydantic error's words: the validator's own ``Msg`` (``raise ValueError(Msg(…))``), else pydantic's
    own, verbatim."""
    cause = (detail.get("ctx") or {}).get("error")
    if detail["type"] == "value_error" and isinstance(cause, Exception):
        return message_of(cause)
    return verbatim(detail["msg"].removeprefix("Value error, "))


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


Outputs = dict[str, Any]
DecisionValue = Any


@dataclass(frozen=True)
class DecisionResult:
    """What a table decided.

    ``value`` is one outputs dict (or None) for single-hit policies, a list of outputs dicts for
    multiple-hit policies and a value (or None) for an aggregated COLLECT. ``matched_rule_ids``
    lists every rule whose inputs matched, in rule order; ``selected_rule_ids`` the rules that make
    up ``value``, in result order. ``notes`` are the reasons FEEL gave null somewhere (a function
    given a wrong argument …).
    """

    hit_policy: HitPolicy
    value: DecisionValue
    matched_rule_ids: tuple[str, ...]
    selected_rule_ids: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """``{"result", "hit_policy", "matched_rules", "selected_rules"}`` with JSON-safe values
        (see :func:`json_value`); ``notes`` when there are any."""
        answer = {"result": json_value(self.value), "hit_policy": self.hit_policy.value,
                  "matched_rules": list(self.matched_rule_ids), "selected_rules": list(self.selected_rule_ids)}
        if self.notes:
            answer["notes"] = list(self.notes)
        return answer


def json_value(value: Any) -> Any:
    """A result as plain JSON: whole numbers stay ``int``, other numbers become decimal strings
    (``"0.15"`` — money is never a float), dates ISO strings, times, date-times and durations their
    FEEL text (``2026-11-11T10:00:00@Asia/Shanghai``, ``P7D``); dicts and lists recursively."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal | float):
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite():
            return str(number)
        return int(number) if number == number.to_integral_value() else format(number.normalize(), "f")
    if isinstance(value, date | time | timedelta):
        return temporal_text(value)
    if isinstance(value, YearsMonths | FeelRange | FeelFunction):
        return str(value)
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


def coerce_input(clause: InputClause, raw: Any) -> Any:
    """An input value converted to the column's type; raises :class:`DecisionInputError`."""
    kind = type_kind(clause.type_ref)
    if raw is None:
        return None
    if kind is None:
        if isinstance(raw, Mapping | list | tuple) and not clause.type_ref:
            try:
                return to_feel(raw)
            except ValueError:
                pass
        if clause.type_ref or isinstance(raw, list | tuple | Mapping):
            if not isinstance(raw, bool | int | float | Decimal | str | date | time | timedelta
                              | YearsMonths | Mapping | list | tuple | FeelRange | FeelFunction):
                _unsupported(clause, raw)
            return to_feel(raw)
        return raw if value_kind(raw) is not None or isinstance(raw, time | timedelta | YearsMonths) \
            else _unsupported(clause, raw)
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
    raise DecisionInputError(Msg("input '%(title)s' (%(expression)s) is a %(type_ref)s, got %(kind)s %(raw)s",
                                 title=clause.title, expression=clause.expression, type_ref=clause.type_ref,
                                 kind=type(raw).__name__, raw=repr(raw)))


def _unsupported(clause: InputClause, raw: Any) -> NoReturn:
    raise DecisionInputError(Msg("input '%(title)s' (%(expression)s): a %(kind)s cannot be tested; pass a number, "
                                 "string, boolean or date", title=clause.title, expression=clause.expression,
                                 kind=type(raw).__name__))


Reader = Callable[[InputClause], Any]


@dataclass
class _CompiledRule:
    rule: Rule
    tests: list[feel_interpreter.Test]
    outputs: list[feel_interpreter.Evaluator]


@dataclass
class _CompiledTable:
    inputs: list[feel_interpreter.Evaluator]
    by_path: list[bool]  # read by path from the inputs dict (when no scope is given)
    rules: list[_CompiledRule]
    defaults: list[feel_interpreter.Evaluator | None]
    output_types: list[FeelType | None]
    uses_scope: bool
    #: the lists compiled (a model_copy(update=…) makes new ones, so a stale compilation is never used)
    source: tuple[Any, ...] = ()


def _compile(table: DecisionTable) -> _CompiledTable:
    compiled = table._compiled
    source = (table.inputs, table.outputs, table.rules, table.variables)
    if compiled is not None and all(a is b for a, b in zip(compiled.source, source, strict=True)):
        return compiled
    names = table.feel_names()
    uses_scope = False
    inputs: list[feel_interpreter.Evaluator] = []
    by_path: list[bool] = []
    for clause in table.inputs:
        path = not clause.expression or _PATH.fullmatch(clause.expression) is not None
        by_path.append(path)
        inputs.append(compile_expression(clause.expression or "null", names).run)
        uses_scope = uses_scope or not path
    rules = []
    for rule in table.rules:
        tests = []
        for entry, clause in zip(rule.input_entries, table.inputs, strict=True):
            variables = [name for name in (clause.input_variable, "cellInput") if name]
            compiled_tests = compile_unary_tests(entry, names | set(variables))
            used = [name for name in variables if name in free_names(compiled_tests.tree)]
            tests.append(_binding(compiled_tests.run, used) if used else compiled_tests.run)
            uses_scope = uses_scope or bool(free_names(compiled_tests.tree))
        outputs = []
        for entry in rule.output_entries:
            expression = compile_expression(entry.strip() or "null", names)
            outputs.append(expression.run)
            uses_scope = uses_scope or bool(free_names(expression.tree))
        rules.append(_CompiledRule(rule, tests, outputs))
    defaults = [compile_expression(clause.default, names).run if clause.default.strip() else None
                for clause in table.outputs]
    output_types = [resolve(clause.type_ref) if clause.type_ref and type_kind(clause.type_ref) is not None
                    and type_kind(clause.type_ref) != "number" else None for clause in table.outputs]
    compiled = _CompiledTable(inputs, by_path, rules, defaults, output_types, uses_scope or any(defaults), source)
    object.__setattr__(table, "_compiled", compiled)
    return compiled


def _binding(test: feel_interpreter.Test, names: list[str]) -> feel_interpreter.Test:
    """A test that also sees the input value under ``names`` (Camunda's input variable)."""
    def bound(value: Any, scope: feel_interpreter.Scope) -> bool | None:
        return test(value, scope.child(dict.fromkeys(names, value)))
    return bound


def evaluate(table: DecisionTable, inputs: Mapping[str, Any], *, scope: feel_interpreter.Scope | None = None,
             read: Reader | None = None, budget: Budget | None = None) -> DecisionResult:
    """Evaluate the table against ``inputs`` under its hit policy.

    ``inputs`` is the variables cells and input expressions read (nested dicts; a flat dotted key
    such as ``"ticket.amount"`` is read for the input expression of that text). ``scope`` gives a
    ready FEEL scope instead (a decision graph passes the decision's requirements); ``read``
    overrides how an input column's value is read (a flow reads legacy Jinja input expressions).
    """
    with metered(budget or Budget()) as active:
        try:
            return _evaluate(table, inputs, scope, read, active)
        except RecursionError:  # a safety net: the frame budget (feel.limits.MAX_FRAMES) comes first
            raise FeelLimitError(Msg("the evaluation nests too deeply")) from None


def _evaluate(table: DecisionTable, inputs: Mapping[str, Any], scope: feel_interpreter.Scope | None,
              read: Reader | None, budget: Budget) -> DecisionResult:
    compiled = _compile(table)
    given_scope = scope is not None
    if scope is None:
        scope = feel_interpreter.Scope(_LazyFeel(inputs) if compiled.uses_scope else {})
    values: list[Any] = []
    for clause, expression, path in zip(table.inputs, compiled.inputs, compiled.by_path, strict=True):
        if read is not None:
            raw = read(clause)
        elif path and not given_scope:
            raw = resolve_path(inputs, clause.expression) if clause.expression else None
        else:
            raw = expression(scope)
        value = coerce_input(clause, raw)
        values.append(value if type(value) in _FEEL_READY else to_feel(value))
    budget.charge(len(compiled.rules) // 10 + 1)
    matched: list[_CompiledRule] = []
    if values:
        test_scope = scope
        for rule in compiled.rules:
            for test, value in zip(rule.tests, values, strict=True):
                if test(value, test_scope) is not True:
                    break
            else:
                matched.append(rule)
    else:
        matched = list(compiled.rules)
    shown = {clause.expression or clause.id: value for clause, value in zip(table.inputs, values, strict=True)}
    policy = table.hit_policy
    matched_ids = tuple(rule.rule.id for rule in matched)
    output_scope = scope

    def outputs_of(rule: _CompiledRule) -> Outputs:
        result: Outputs = {}
        for clause, evaluator, declared in zip(table.outputs, rule.outputs, compiled.output_types, strict=True):
            value = evaluator(output_scope)
            result[clause.name] = coerce(value, declared) if declared is not None else value
        return result

    def result(value: DecisionValue, selected: Sequence[_CompiledRule]) -> DecisionResult:
        return DecisionResult(policy, value, matched_ids, tuple(rule.rule.id for rule in selected),
                              tuple(budget.notes))

    if policy in SINGLE_HIT_POLICIES:
        if not matched:
            if any(default is not None for default in compiled.defaults):
                return result({clause.name: default(output_scope) if default is not None else None
                               for clause, default in zip(table.outputs, compiled.defaults, strict=True)}, [])
            return result(None, [])
        if policy == HitPolicy.UNIQUE and len(matched) > 1:
            raise HitPolicyViolation(
                Msg("decision '%(name)s' has hit policy UNIQUE but rules %(rules)s all match %(inputs)s",
                    name=table.name, rules=_quoted(matched_ids), inputs=_describe(shown)), matched_ids, shown)
        if policy == HitPolicy.ANY:
            first = outputs_of(matched[0])
            for other in matched[1:]:
                other_outputs = outputs_of(other)
                if feel_equal(other_outputs, first) is not True:
                    raise HitPolicyViolation(
                        Msg("decision '%(name)s' has hit policy ANY but matching rules '%(rule)s' and '%(other)s' "
                            "give different outputs (%(outputs)s vs %(other_outputs)s) for %(inputs)s",
                            name=table.name, rule=matched[0].rule.id, other=other.rule.id, outputs=_describe(first),
                            other_outputs=_describe(other_outputs), inputs=_describe(shown)),
                        matched_ids, shown)
            return result(first, [matched[0]])
        if policy == HitPolicy.PRIORITY:
            evaluated = [(rule, outputs_of(rule)) for rule in matched]
            chosen, chosen_outputs = min(evaluated, key=lambda pair: _priority(table, pair[1]))
            return result(chosen_outputs, [chosen])
        return result(outputs_of(matched[0]), [matched[0]])

    rows = [(rule, outputs_of(rule)) for rule in matched]
    if policy == HitPolicy.OUTPUT_ORDER:
        rows.sort(key=lambda pair: _priority(table, pair[1]))
    if policy == HitPolicy.COLLECT and table.aggregation is not None:
        if not rows and compiled.defaults[0] is not None:
            return result(compiled.defaults[0](output_scope), [])
        return result(_aggregate(table, [row for _, row in rows]), [rule for rule, _ in rows])
    return result([row for _, row in rows], [rule for rule, _ in rows])


_FEEL_READY = frozenset({type(None), bool, str, Decimal, date, datetime, time, timedelta, list, dict})


class _LazyFeel(dict[str, Any]):
    """The inputs as FEEL variables, each converted when first read."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        super().__init__()
        self.raw = raw

    def get(self, key: Any, default: Any = None) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        if key in self.raw:
            value = to_feel(self.raw[key])
            self[key] = value
            return value
        return default

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.raw


def _priority(table: DecisionTable, outputs: Mapping[str, Any]) -> tuple[int, ...]:
    """Lower sorts first: per output with allowed values, the index of the rule's value in them."""
    key: list[int] = []
    for clause in table.outputs:
        if clause.allowed_values:
            index = _priority_index(outputs.get(clause.name), clause.allowed_values)
            key.append(len(clause.allowed_values) if index is None else index)
    return tuple(key)


def _priority_index(value: Any, allowed: Sequence[FeelValue]) -> int | None:
    for index, candidate in enumerate(allowed):
        if feel_equal(value, to_feel(candidate)) is True:
            return index
    return None


def _aggregate(table: DecisionTable, rows: Sequence[Outputs]) -> Any:
    name = table.outputs[0].name
    if table.aggregation == Aggregation.COUNT:
        return len(rows)
    values = [row[name] for row in rows if row[name] is not None]
    if not values:
        return None
    if table.aggregation == Aggregation.SUM:
        total = values[0]
        for value in values[1:]:
            total = feel_interpreter.arithmetic("+", total, value) if isinstance(total, Decimal) \
                and isinstance(value, Decimal) else _not_numbers(table, value)
        if not isinstance(total, Decimal):
            _not_numbers(table, total)
        return total
    best = values[0]
    for value in values[1:]:
        order = feel_compare(value, best)
        if order is None:
            raise DecisionTableError(Msg("decision '%(name)s': COLLECT %(aggregation)s cannot compare %(best)s with "
                                         "%(value)s", name=table.name, aggregation=table.aggregation,
                                         best=format_value(best), value=format_value(value)))
        if (order < 0) if table.aggregation == Aggregation.MIN else (order > 0):
            best = value
    return best


def _not_numbers(table: DecisionTable, value: Any) -> NoReturn:
    raise DecisionTableError(Msg("decision '%(name)s': COLLECT %(aggregation)s needs numbers, a rule gives %(value)s",
                                 name=table.name, aggregation=table.aggregation, value=format_value(value)))


def format_value(value: Any) -> str:
    return literal_text(value)


def _quoted(ids: Iterable[str]) -> str:
    return ", ".join(f"'{rule_id}'" for rule_id in ids)


def _describe(values: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{key} = {format_value(value)}" for key, value in values.items()) + "}"


__all__ = [
    "FLOW_NAMES", "SINGLE_HIT_POLICIES", "Aggregation", "DecisionInputError", "DecisionResult", "DecisionTable",
    "DecisionTableError", "FeelLimitError", "HitPolicy", "HitPolicyViolation", "InputClause", "OutputClause", "Rule",
    "coerce_input", "evaluate", "find_path", "free_names", "is_integer_type", "json_value", "resolve_path",
    "type_kind",
]
