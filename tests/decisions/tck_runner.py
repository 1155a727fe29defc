"""Run the public DMN TCK (github.com/dmn-tck/tck, test files under tests/decisions/tck/) against
Tideflow's DMN engine, and score it per compliance level and per feature (the TCK's labels).

A *test* is one ``<testCase>`` of a TCK test file; it passes when every ``<resultNode>`` of it
gives the expected value (numbers within 0.00000001, as the TCK's own runners compare; dates and
times equal with the same zone; lists item by item, contexts entry by entry; ``errorResult="true"``
expects null). Which tests are
in scope, and why the others are not, is ``tests/decisions/tck/scope.toml``.

``python -m tests.decisions.tck_runner`` prints the figures (for docs/decisions.md) and every
failing in-scope test.
"""

from __future__ import annotations

import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from decisions import drg
from decisions.dmn_xml import DmnImportError, load_definitions
from decisions.feel import temporal
from decisions.feel.limits import FeelLimitError
from decisions.feel.values import FeelError, YearsMonths, feel_equal, literal_text

TCK = Path(__file__).parent / "tck"
LEVELS = ("compliance-level-2", "compliance-level-3")
_TC = "{http://www.omg.org/spec/DMN/20160719/testcase}"
_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
NUMBER_PRECISION = Decimal("0.00000001")
#: a fixed "now" for now()/today(): the TCK's tests of them only check types and relations
NOW = datetime(2026, 12, 6, 10, 0, 0, tzinfo=temporal.zone("UTC"))


@dataclass
class ResultNode:
    name: str
    kind: str
    expected: Any
    error: bool


@dataclass
class TestCase:
    level: str
    folder: str
    file: str
    id: str
    invocable: str | None
    kind: str
    inputs: dict[str, Any]
    results: list[ResultNode]
    labels: list[str]

    @property
    def key(self) -> str:
        return f"{self.folder}/{self.id}"


@dataclass
class Outcome:
    case: TestCase
    passed: bool
    detail: str = ""


@dataclass
class Scope:
    excluded: dict[str, str] = field(default_factory=dict)  # folder or folder/id → reason
    known_failures: dict[str, str] = field(default_factory=dict)  # folder/id → reason

    def reason_excluded(self, case: TestCase) -> str | None:
        return self.excluded.get(case.key) or self.excluded.get(case.folder)


def load_scope() -> Scope:
    data = tomllib.loads((TCK / "scope.toml").read_text(encoding="utf-8"))
    return Scope(dict(data.get("excluded", {})), dict(data.get("known_failures", {})))


# --------------------------------------------------------------------------------------------- values


def parse_value(element: ET.Element | None) -> Any:
    """A TCK ``<value>``/``<list>``/components element as the Python value the engine gives."""
    if element is None:
        return None
    if element.get(f"{_XSI}nil") == "true":
        return None
    children = list(element)
    if children:
        first = children[0].tag.rpartition("}")[2]
        if first == "list":
            return [parse_value(_value_child(item)) for item in children[0] if item.tag.endswith("item")]
        if first == "component":
            return {child.get("name", ""): parse_value(_value_child(child)) for child in children
                    if child.tag.endswith("component")}
        if first in ("item",):
            return [parse_value(_value_child(item)) for item in children]
        if first == "value":
            return parse_value(children[0])
    kind = (element.get(f"{_XSI}type") or "").rpartition(":")[2]
    text = element.text or ""
    if kind in ("decimal", "double", "int", "integer", "long", "float", "short"):
        try:
            return Decimal(text.strip())
        except InvalidOperation:
            return text
    if kind == "boolean":
        return text.strip() == "true"
    if kind == "date":
        return ("date", text.strip())
    if kind == "dateTime":
        return ("date and time", text.strip())
    if kind == "time":
        return ("time", text.strip())
    if kind == "duration":
        return ("duration", text.strip())
    return text


def _value_child(element: ET.Element) -> ET.Element | None:
    """The value of an ``<item>`` or ``<component>``: its ``<value>``, ``<list>`` or components."""
    children = list(element)
    if element.get(f"{_XSI}nil") == "true":
        return element
    if len(children) == 1 and children[0].tag.endswith("value"):
        return children[0]
    return element


def to_input(value: Any) -> Any:
    """An expected/input value as a FEEL value (temporal strings parsed)."""
    if isinstance(value, tuple):
        kind, text = value
        try:
            if kind == "date":
                return temporal.parse_date(text)
            if kind == "date and time":
                return temporal.parse_date_time(text)
            if kind == "time":
                return temporal.parse_time(text)
            return temporal.parse_duration(text)
        except FeelError:
            return ("unrepresentable", text)
    if isinstance(value, list):
        return [to_input(item) for item in value]
    if isinstance(value, dict):
        return {key: to_input(item) for key, item in value.items()}
    return value


def same(actual: Any, expected: Any) -> bool:
    """Whether a result is the expected value (see the module docstring)."""
    if isinstance(expected, tuple):
        return False  # a date/time Python cannot hold (year 0, nanoseconds …)
    if expected is None:
        return actual is None
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(
            same(a, e) for a, e in zip(actual, expected, strict=True))
    if isinstance(expected, dict):
        return isinstance(actual, dict) and set(actual) == set(expected) and all(
            same(actual[key], item) for key, item in expected.items())
    if isinstance(expected, Decimal):
        if not isinstance(actual, Decimal) or isinstance(actual, bool):
            return False
        # as every runner in the TCK's repository compares: within 0.00000001 (the TCK writes results
        # of irrational functions and of double-precision tools with fewer than 34 digits)
        return abs(actual - expected) < NUMBER_PRECISION
    if isinstance(expected, datetime | time_of_day):
        return type(actual) is type(expected) and literal_text(actual) == literal_text(expected)
    if isinstance(expected, date | timedelta | YearsMonths):
        return type(actual) is type(expected) and feel_equal(actual, expected) is True
    if isinstance(expected, bool):
        return actual is expected
    return type(actual) is type(expected) and actual == expected


# --------------------------------------------------------------------------------------------- reading


def test_files(level: str) -> Iterator[Path]:
    yield from sorted((TCK / level).glob("*/*-test-*.xml"))


def read_cases(path: Path, level: str) -> list[TestCase]:
    root = ET.parse(path).getroot()  # noqa: S314 - the TCK's own files, committed here
    labels = [label.text or "" for label in root.iter(f"{_TC}label")]
    cases = []
    for element in root.iter(f"{_TC}testCase"):
        inputs = {node.get("name", ""): to_input(parse_value(_value_child(node)))
                  for node in element.findall(f"{_TC}inputNode")}
        results = []
        for node in element.findall(f"{_TC}resultNode"):
            expected = node.find(f"{_TC}expected")
            value = to_input(parse_value(_value_child(expected))) if expected is not None else None
            results.append(ResultNode(node.get("name", ""), node.get("type", "decision"), value,
                                      node.get("errorResult") == "true"))
        cases.append(TestCase(level, path.parent.name, path.name, element.get("id", ""),
                              element.get("invocableName"), element.get("type", "decision"), inputs, results,
                              labels))
    return cases


def model_file(path: Path) -> Path:
    root = ET.parse(path).getroot()  # noqa: S314 - the TCK's own files
    name = root.findtext(f"{_TC}modelName") or ""
    return path.parent / name


def _resolver(folder: Path) -> Callable[[drg.Import], bytes | None]:
    documents: dict[str, bytes] = {}
    for candidate in folder.glob("*.dmn"):
        raw = candidate.read_bytes()
        try:
            namespace = ET.fromstring(raw).get("namespace", "")  # noqa: S314 - the TCK's own files
        except ET.ParseError:
            continue
        documents[namespace] = raw
        documents[candidate.name] = raw

    def resolve(imported: drg.Import) -> bytes | None:
        return documents.get(imported.namespace) or documents.get(imported.location)

    return resolve


# --------------------------------------------------------------------------------------------- running


def run_file(path: Path, level: str) -> list[Outcome]:
    cases = read_cases(path, level)
    model = model_file(path)
    try:
        graph = load_definitions(model.read_bytes(), resolve_import=_resolver(model.parent),
                                 lenient=True).compile(lenient=True)
    except (DmnImportError, drg.DrgError) as error:
        return [Outcome(case, all(node.expected is None for node in case.results), f"import: {error}")
                for case in cases]
    return [run_case(graph, case) for case in cases]


def run_case(graph: drg.Graph, case: TestCase) -> Outcome:
    try:
        if case.kind == "decisionService" and case.invocable:
            actual = graph.invoke_service(case.invocable, case.inputs, now=NOW)
            results = {node.name: actual[node.name] if isinstance(actual, dict) and node.name in actual
                       and len(case.results) > 1 else actual for node in case.results}
        else:
            wanted = [node.name for node in case.results]
            results = graph.evaluate(case.inputs, wanted, now=NOW).results
    except (drg.DrgError, FeelLimitError, FeelError) as error:
        ok = all(node.expected is None for node in case.results)
        return Outcome(case, ok, f"{type(error).__name__}: {error}")
    problems = []
    for node in case.results:
        actual = results.get(node.name)
        if not same(actual, node.expected):
            problems.append(f"{node.name}: expected {_show(node.expected)}, got {_show(actual)}")
    return Outcome(case, not problems, "; ".join(problems))


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return f"{value[0]} {value[1]!r} (not representable)"
    try:
        return literal_text(value)
    except Exception:
        return repr(value)


def run_all(levels: tuple[str, ...] = LEVELS) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for level in levels:
        for path in test_files(level):
            outcomes.extend(run_file(path, level))
    return outcomes


# --------------------------------------------------------------------------------------------- report


@dataclass
class Tally:
    passed: int = 0
    failed: int = 0
    excluded: int = 0

    @property
    def in_scope(self) -> int:
        return self.passed + self.failed

    def rate(self) -> str:
        return f"{100 * self.passed / self.in_scope:.1f} %" if self.in_scope else "–"


def tally(outcomes: list[Outcome], scope: Scope) -> tuple[dict[str, Tally], dict[str, Tally]]:
    by_level: dict[str, Tally] = defaultdict(Tally)
    by_feature: dict[str, Tally] = defaultdict(Tally)
    for outcome in outcomes:
        case = outcome.case
        features = [label for label in case.labels if not label.startswith("Compliance Level")] or ["(unlabelled)"]
        buckets = [by_level[case.level]] + [by_feature[f"{case.level[-1]} · {feature}"] for feature in features]
        for bucket in buckets:
            if scope.reason_excluded(case):
                bucket.excluded += 1
            elif outcome.passed:
                bucket.passed += 1
            else:
                bucket.failed += 1
    return by_level, by_feature


def main() -> int:
    scope = load_scope()
    started = time.perf_counter()
    outcomes = run_all()
    took = time.perf_counter() - started
    by_level, by_feature = tally(outcomes, scope)
    print(f"TCK run: {len(outcomes)} tests in {took:.1f} s\n")
    print("| level | in scope | passed | failed | excluded | pass rate |\n|---|---|---|---|---|---|")
    for level, counts in sorted(by_level.items()):
        print(f"| {level[-1]} | {counts.in_scope} | {counts.passed} | {counts.failed} | {counts.excluded} | "
              f"{counts.rate()} |")
    print("\n| level · feature | in scope | passed | pass rate |\n|---|---|---|---|")
    for feature, counts in sorted(by_feature.items()):
        print(f"| {feature} | {counts.in_scope} | {counts.passed} | {counts.rate()} |")
    failures = [o for o in outcomes if not o.passed and not scope.reason_excluded(o.case)]
    if "-v" in sys.argv:
        print("\nfailing in scope:")
        for outcome in failures:
            known = " (known)" if outcome.case.key in scope.known_failures else ""
            print(f"  {outcome.case.level[-1]} {outcome.case.key}{known}: {outcome.detail[:300]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
