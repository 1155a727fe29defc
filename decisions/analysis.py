"""Static checks of a decision table: overlapping rules, gaps and unreachable rules.

Method: each input column is cut into *atoms*, regions of the column's domain inside which every
rule's entry is either true everywhere or false everywhere. For number and date columns the atoms
are the points and open intervals between all the endpoints the column's entries mention
(``< 1000`` and ``[1000..5000)`` give ``< 1000``, ``1000``, ``(1000..5000)``, ``5000``,
``> 5000``); integer-typed columns and dates drop intervals that hold no whole number or day. For
strings the atoms are each mentioned value plus "any other string"; booleans have ``true`` and
``false``; a column with ``allowed_values`` has exactly those values. A rule then covers a box of
atoms, and membership is decided by running the real evaluator on one representative value per
atom, so the analysis and :func:`~decisions.table.evaluate` cannot disagree.

- **overlap** — under UNIQUE, two rules that share an atom in every column (both match a common
  input); under ANY only when their outputs differ. The example names the shared region.
- **gap** — a region of inputs no rule matches (reported for every hit policy, because an
  unmatched ticket has no owner). Regions are merged per column, so a table with a gap between
  two amount bands reports one finding, not one per VIP level.
- **unreachable** — under FIRST, a rule whose every input is matched by earlier rules; under any
  policy, a rule that matches no possible input (e.g. ``(1..2)`` on an integer column).
- **possible_overlap**, **unanalysable** — see limits.

Limits:

- Null inputs are only considered in columns where some entry mentions ``null``; otherwise gaps
  and overlaps are about non-null values (a missing input matches only ``-`` cells).
- String comparisons and string ranges (``< "m"``), and columns mixing literal types, are not
  analysed unless the input lists ``allowed_values``: such a column is reported as
  ``unanalysable``; pairs that may intersect there are reported as ``possible_overlap``, and for
  gaps a non-``-`` entry there is optimistically assumed to match (gaps may be missed, none are
  invented). Under FIRST such a rule is never reported unreachable.
- Untyped number columns are treated as real numbers (an open interval between two integers is a
  gap even if the inputs are always whole numbers): give the input ``type_ref="integer"``.
- Gap search stops after :data:`MAX_GAP_FINDINGS` regions or :data:`MAX_SEARCH_STEPS` steps and
  then adds a ``truncated`` finding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SkipValidation

from decisions.feel import (
    Comparison,
    FeelSyntaxError,
    FeelValue,
    NullTest,
    Range,
    UnaryTests,
    ValueKind,
    format_literal,
    parse_unary_tests,
)
from decisions.table import (
    DecisionTable,
    HitPolicy,
    InputClause,
    is_integer_type,
    type_kind,
)
from wording import Msg, joined

MAX_GAP_FINDINGS = 50
MAX_SEARCH_STEPS = 20_000

FindingKind = Literal["overlap", "possible_overlap", "gap", "unreachable", "unanalysable", "truncated"]


class Finding(BaseModel):
    """One problem found in a table.

    ``example`` describes the region concerned: input title (label, else expression; with the input
    id when titles repeat) → FEEL unary tests, ``-`` for any value.
    """

    model_config = ConfigDict(frozen=True)

    kind: FindingKind
    message: SkipValidation[str]  # a wording.Msg, kept as it is so the designer can translate it
    rule_ids: list[str] = Field(default_factory=list)
    example: dict[str, str] = Field(default_factory=dict)


# --------------------------------------------------------------------------------------------- atoms

AtomKind = Literal["point", "interval", "value", "other", "null", "any", "unknown"]


@dataclass(frozen=True)
class _Atom:
    kind: AtomKind
    representative: FeelValue = None
    low: FeelValue = None  # interval bounds; None = unbounded
    high: FeelValue = None


@dataclass
class _Column:
    clause: InputClause
    atoms: list[_Atom]
    ordered: bool = False
    unanalysable_reason: str | None = None

    @property
    def title(self) -> str:
        return self.clause.title

    def membership(self, tests: UnaryTests) -> list[bool | None]:
        """Per atom: does the entry match it (None = cannot tell)."""
        unknown = True if tests.is_any else None
        return [unknown if atom.kind == "unknown" else tests.matches(atom.representative)
                for atom in self.atoms]

    def describe(self, indexes: Sequence[int]) -> str:
        """FEEL unary tests for the union of the given atoms."""
        chosen = sorted(set(indexes))
        if len(chosen) == len(self.atoms):
            return "-"
        null_index = len(self.atoms) - 1
        if self.atoms and self.atoms[null_index].kind == "null" and chosen == list(range(null_index)):
            return "not(null)"  # every value but null
        parts: list[str] = []
        if self.ordered:
            run: list[_Atom] = []
            previous = -2
            for index in chosen:
                atom = self.atoms[index]
                if atom.kind == "null":
                    continue
                if index != previous + 1 and run:
                    parts.append(_describe_run(run))
                    run = []
                run.append(atom)
                previous = index
            if run:
                parts.append(_describe_run(run))
        else:
            atoms = [self.atoms[index] for index in chosen]
            if any(atom.kind == "other" for atom in atoms):
                excluded = [format_literal(atom.representative) for index, atom in enumerate(self.atoms)
                            if atom.kind == "value" and index not in chosen]
                null_in_column = any(atom.kind == "null" for atom in self.atoms)
                if null_in_column and not any(atom.kind == "null" for atom in atoms):
                    excluded.append("null")
                return f"not({', '.join(excluded)})"
            parts.extend(format_literal(atom.representative) for atom in atoms if atom.kind == "value")
        if any(self.atoms[index].kind == "null" for index in chosen):
            parts.append("null")
        return ", ".join(parts) if parts else "-"


def _describe_run(run: Sequence[_Atom]) -> str:
    first, last = run[0], run[-1]
    low, low_closed = (first.representative, True) if first.kind == "point" else (first.low, False)
    high, high_closed = (last.representative, True) if last.kind == "point" else (last.high, False)
    if low is None and high is None:
        return "-"
    if low is None:
        return f"{'<=' if high_closed else '<'} {format_literal(high)}"
    if high is None:
        return f"{'>=' if low_closed else '>'} {format_literal(low)}"
    if low == high:
        return format_literal(low)
    opening, closing = "[" if low_closed else "(", "]" if high_closed else ")"
    return f"{opening}{format_literal(low)}..{format_literal(high)}{closing}"


def _mentions_null(tests: UnaryTests) -> bool:
    return any(isinstance(test, NullTest) or (isinstance(test, Comparison) and test.value is None)
               for test in tests.tests)


def _build_column(clause: InputClause, entries: Sequence[UnaryTests]) -> _Column:
    null_atoms = [_Atom("null")] if any(_mentions_null(tests) for tests in entries) else []
    if clause.allowed_values:
        return _Column(clause, [_Atom("value", value) for value in clause.allowed_values] + null_atoms)
    kinds: set[ValueKind] = set()
    for tests in entries:
        kinds |= tests.literal_kinds()
    declared = type_kind(clause.type_ref)
    if declared is not None:
        kinds = {declared}
    if not kinds:  # only -, null and not(null): one atom for every non-null value
        return _Column(clause, [_Atom("any", "any value"), *null_atoms])
    if len(kinds) > 1:
        return _unanalysable(clause, Msg("its entries mix %(kinds)s literals", kinds=" and ".join(sorted(kinds))))
    kind = kinds.pop()
    if kind == "boolean":
        return _Column(clause, [_Atom("value", True), _Atom("value", False), *null_atoms])
    if kind == "string":
        if any(isinstance(test, Range) or (isinstance(test, Comparison) and test.operator not in ("=", "!="))
               for tests in entries for test in tests.tests):
            return _unanalysable(clause, Msg("string comparisons and ranges are not analysed (give the input "
                                             "allowed values)"))
        mentioned = _mentioned_values(entries)
        other = "other"
        while other in mentioned:
            other += "'"
        atoms = [_Atom("value", value) for value in mentioned] + [_Atom("other", other)]
        return _Column(clause, atoms + null_atoms)
    discrete: Discreteness = "date" if kind == "date" else (
        "integer" if is_integer_type(clause.type_ref) else None)
    return _Column(clause, _ordered_atoms(_endpoints(entries), discrete) + null_atoms, ordered=True)


def _unanalysable(clause: InputClause, reason: Msg) -> _Column:
    return _Column(clause, [_Atom("unknown")], unanalysable_reason=reason)


def _mentioned_values(entries: Sequence[UnaryTests]) -> list[FeelValue]:
    mentioned: list[FeelValue] = []
    for tests in entries:
        for test in tests.tests:
            if isinstance(test, Comparison) and test.value is not None and test.value not in mentioned:
                mentioned.append(test.value)
    return mentioned


def _endpoints(entries: Sequence[UnaryTests]) -> list[FeelValue]:
    found: dict[object, FeelValue] = {}
    for tests in entries:
        for test in tests.tests:
            values = [test.value] if isinstance(test, Comparison) else (
                [test.low, test.high] if isinstance(test, Range) else [])
            for value in values:
                if value is not None:
                    found.setdefault(_sort_key(value), value)
    return [found[key] for key in sorted(found, key=_sort_key_order)]


def _sort_key(value: FeelValue) -> object:
    return Decimal(repr(value)) if isinstance(value, float) else (
        Decimal(value) if isinstance(value, int) and not isinstance(value, bool) else value)


def _sort_key_order(key: object) -> Decimal | date:
    assert isinstance(key, Decimal | date)
    return key


Discreteness = Literal["integer", "date"] | None


def _ordered_atoms(endpoints: Sequence[FeelValue], discrete: Discreteness) -> list[_Atom]:
    atoms: list[_Atom] = []
    previous: FeelValue = None
    for endpoint in [*endpoints, None]:
        inside = _between(previous, endpoint, discrete)
        if inside is not None:
            atoms.append(_Atom("interval", inside, previous, endpoint))
        if endpoint is not None and (discrete != "integer" or _is_integral(endpoint)):
            atoms.append(_Atom("point", endpoint, endpoint, endpoint))
        previous = endpoint
    return atoms


def _is_integral(value: FeelValue) -> bool:
    return isinstance(value, int) or (isinstance(value, Decimal) and value == value.to_integral_value())


def _between(low: FeelValue, high: FeelValue, discrete: Discreteness) -> FeelValue:
    """A value strictly between two endpoints (None = unbounded), or None when there is none."""
    if discrete == "date":
        if low is None and high is None:
            return date(2000, 1, 1)
        if low is None:
            assert isinstance(high, date)
            return high - timedelta(days=1)
        assert isinstance(low, date)
        candidate = low + timedelta(days=1)
        return candidate if high is None or (isinstance(high, date) and candidate < high) else None
    low_number = None if low is None else _sort_key(low)
    high_number = None if high is None else _sort_key(high)
    assert low_number is None or isinstance(low_number, Decimal)
    assert high_number is None or isinstance(high_number, Decimal)
    if discrete == "integer":
        if low_number is None:
            return 0 if high_number is None else int(high_number.to_integral_value(ROUND_CEILING)) - 1
        candidate_int = int(low_number.to_integral_value(ROUND_FLOOR)) + 1
        return candidate_int if high_number is None or candidate_int < high_number else None
    if low_number is None:
        return 0 if high_number is None else high_number - 1
    if high_number is None:
        return low_number + 1
    return (low_number + high_number) / 2


# --------------------------------------------------------------------------------------------- analysis

Membership = list[list[list[bool | None]]]  # [rule][column][atom]


@dataclass
class _Search:
    columns: list[_Column]
    membership: Membership
    covers: Callable[[bool | None], bool]
    regions: list[list[list[int]]] = field(default_factory=list)
    steps: int = 0
    truncated: bool = False
    limit: int = MAX_GAP_FINDINGS

    def run(self, region: list[list[int]], rules: list[int]) -> None:
        self._descend(region, rules, 0, [])

    def _descend(self, region: list[list[int]], rules: list[int], column: int,
                 prefix: list[list[int]]) -> None:
        if column == len(self.columns) or self.truncated:
            return
        self.steps += 1
        if self.steps > MAX_SEARCH_STEPS:
            self.truncated = True
            return
        groups: dict[frozenset[int], list[int]] = {}
        for atom in region[column]:
            active = frozenset(rule for rule in rules if self.covers(self.membership[rule][column][atom]))
            groups.setdefault(active, []).append(atom)
        for active, atoms in groups.items():
            if active:
                self._descend(region, sorted(active), column + 1, [*prefix, atoms])
                continue
            if len(self.regions) >= self.limit:
                self.truncated = True
                return
            self.regions.append([*prefix, atoms, *region[column + 1:]])


def analyse(table: DecisionTable) -> list[Finding]:
    """Overlaps (UNIQUE, ANY), gaps (all policies), unreachable rules; see the module docstring."""
    entries = [[_simple(rule.input_entries[index]) for rule in table.rules]
               for index in range(len(table.inputs))]
    columns = [_build_column(clause, [entry for entry in column_entries if entry is not None])
               for clause, column_entries in zip(table.inputs, entries, strict=True)]
    membership: Membership = [[_membership(columns[c], entries[c][r]) for c in range(len(columns))]
                              for r in range(len(table.rules))]
    findings: list[Finding] = [
        Finding(kind="unanalysable",
                message=Msg("input '%(title)s' is not analysed: %(reason)s", title=column.title,
                            reason=column.unanalysable_reason))
        for column in columns if column.unanalysable_reason]
    for clause, column_entries in zip(table.inputs, entries, strict=True):
        opaque = [rule.input_entries[table.inputs.index(clause)] for rule, entry in
                  zip(table.rules, column_entries, strict=True) if entry is None]
        if opaque:
            findings.append(Finding(
                kind="unanalysable",
                message=Msg("input '%(title)s': %(count)s cell(s) such as '%(cell)s' read variables or compute, so "
                            "they are not analysed (overlaps involving them are only possible ones)",
                            title=clause.title, count=len(opaque), cell=opaque[0])))
    findings += _empty_rules(table, columns, membership)
    if table.hit_policy in (HitPolicy.UNIQUE, HitPolicy.ANY):
        findings += _overlaps(table, columns, membership)
    if table.hit_policy == HitPolicy.FIRST:
        findings += _shadowed(table, columns, membership)
    findings += _gaps(table, columns, membership)
    return findings


def _membership(column: _Column, tests: UnaryTests | None) -> list[bool | None]:
    return column.membership(tests) if tests is not None else [None] * len(column.atoms)


def _simple(entry: str) -> UnaryTests | None:
    """The entry in the analysable literal subset, or None when it uses more of FEEL."""
    try:
        return parse_unary_tests(entry)
    except FeelSyntaxError:
        return None


def _example(columns: Sequence[_Column], region: Sequence[Sequence[int]]) -> dict[str, str]:
    titles = [column.title for column in columns]
    keys = [title if titles.count(title) == 1 else f"{title} ({column.clause.id})"
            for title, column in zip(titles, columns, strict=True)]
    return {key: column.describe(atoms) for key, column, atoms in zip(keys, columns, region, strict=True)}


def _spoken(example: dict[str, str]) -> Msg:
    narrowed = [f"{title}: {tests}" for title, tests in example.items() if tests != "-"]
    return joined(narrowed, "; ") if narrowed else Msg("every input")


def _empty_rules(table: DecisionTable, columns: Sequence[_Column], membership: Membership) -> list[Finding]:
    findings: list[Finding] = []
    for index, rule in enumerate(table.rules):
        for column_index, column in enumerate(columns):
            if not any(member is not False for member in membership[index][column_index]):
                findings.append(Finding(
                    kind="unreachable", rule_ids=[rule.id],
                    message=Msg("rule '%(rule)s' matches no possible input: '%(entry)s' excludes every value of "
                                "input '%(title)s'", rule=rule.id, entry=rule.input_entries[column_index],
                                title=column.title)))
                break
    return findings


def _overlaps(table: DecisionTable, columns: Sequence[_Column], membership: Membership) -> list[Finding]:
    findings: list[Finding] = []
    outputs = [table.rule_outputs(rule) for rule in table.rules]
    for first in range(len(table.rules)):
        for second in range(first + 1, len(table.rules)):
            if table.hit_policy == HitPolicy.ANY and outputs[first] == outputs[second]:
                continue
            shared: list[list[int]] = []
            certain = True
            for column_index in range(len(columns)):
                pairs = list(zip(membership[first][column_index], membership[second][column_index],
                                 strict=True))
                sure = [atom for atom, (a, b) in enumerate(pairs) if a is True and b is True]
                maybe = [atom for atom, (a, b) in enumerate(pairs) if a is not False and b is not False]
                if not maybe:
                    break
                certain = certain and bool(sure)
                shared.append(sure or maybe)
            else:
                ids = [table.rules[first].id, table.rules[second].id]
                example = _example(columns, shared)
                unique = table.hit_policy == HitPolicy.UNIQUE
                values = {"first": ids[0], "second": ids[1], "inputs": _spoken(example)}
                if certain:
                    message = Msg("rules '%(first)s' and '%(second)s' both match (%(inputs)s), which hit policy "
                                  "%(policy)s forbids", policy=table.hit_policy, **values) if unique else \
                        Msg("rules '%(first)s' and '%(second)s' both match with different outputs (%(inputs)s), "
                            "which hit policy %(policy)s forbids", policy=table.hit_policy, **values)
                    findings.append(Finding(kind="overlap", rule_ids=ids, example=example, message=message))
                else:
                    message = Msg("rules '%(first)s' and '%(second)s' may both match (%(inputs)s); a column involved "
                                  "is not analysed", **values) if unique else \
                        Msg("rules '%(first)s' and '%(second)s' may both match with different outputs (%(inputs)s); "
                            "a column involved is not analysed", **values)
                    findings.append(Finding(kind="possible_overlap", rule_ids=ids, example=example, message=message))
    return findings


def _shadowed(table: DecisionTable, columns: Sequence[_Column], membership: Membership) -> list[Finding]:
    findings: list[Finding] = []
    for index in range(1, len(table.rules)):
        region = [[atom for atom, member in enumerate(membership[index][column]) if member is not False]
                  for column in range(len(columns))]
        if any(not atoms for atoms in region):
            continue  # matches nothing: reported by _empty_rules
        search = _Search(list(columns), membership, covers=lambda member: member is True, limit=1)
        search.run(region, list(range(index)))
        if search.regions or search.truncated:
            continue
        earlier = [table.rules[other].id for other in range(index)
                   if _intersects(membership[other], membership[index])]
        rule_id = table.rules[index].id
        findings.append(Finding(
            kind="unreachable", rule_ids=[rule_id, *earlier],
            message=Msg("rule '%(rule)s' is never selected under FIRST: earlier rules %(earlier)s match every "
                        "input it matches", rule=rule_id, earlier=", ".join(repr(r) for r in earlier))))
    return findings


def _intersects(covering: list[list[bool | None]], covered: list[list[bool | None]]) -> bool:
    """Whether the first rule surely matches some input the second may match, in every column."""
    return all(any(a is True and b is not False for a, b in zip(first, second, strict=True))
               for first, second in zip(covering, covered, strict=True))


def _gaps(table: DecisionTable, columns: Sequence[_Column], membership: Membership) -> list[Finding]:
    if not table.rules:
        return [Finding(kind="gap", message=Msg("the table has no rules, so no input matches"))]
    search = _Search(list(columns), membership, covers=lambda member: member is not False)
    search.run([list(range(len(column.atoms))) for column in columns], list(range(len(table.rules))))
    findings = []
    for region in search.regions:
        example = _example(columns, region)
        findings.append(Finding(kind="gap", example=example,
                                message=Msg("no rule matches %(inputs)s", inputs=_spoken(example))))
    if search.truncated:
        findings.append(Finding(
            kind="truncated",
            message=Msg("gap search stopped after %(gaps)s gaps / %(steps)s steps; more gaps may exist",
                        gaps=len(search.regions), steps=search.steps)))
    return findings
