"""How the FEEL candidates from PyPI do on the DMN TCK, beside Tideflow's own (docs/decisions.md).

Not part of ``make bench``: bkflow-feel is not a dependency. To re-run::

    .venv/bin/pip install --target /tmp/bkflow bkflow-feel
    .venv/bin/python -m bench.feel_candidates /tmp/bkflow

It takes the TCK tests whose decisions are all literal expressions (FEEL text, the part a FEEL
library is responsible for: 0 decision tables, contexts or BKMs involved) and evaluates them with
each engine through the same DRG runner, input conversion and result comparison, then times the
same evaluations. jDMN's Python runtime (jdmn-python-runtime) is not measured: it executes Python
code that jDMN's Java code generator writes ahead of time and has no FEEL parser of its own.
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal
from typing import Any

from decisions import drg
from decisions.dmn_xml import load_definitions
from decisions.feel import interpreter as fi
from tests.decisions import tck_runner as tck


def _literal_only(graph: drg.Graph, names: list[str]) -> bool:
    seen: set[int] = set()
    stack = [n for n in graph.nodes.values() if n.name in names]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        element = node.element
        if isinstance(element, drg.Decision):
            if not isinstance(element.expression, drg.LiteralBoxed):
                return False
            stack.extend(node.information)
            if node.knowledge:
                return False
    return True


def _flatten(scope: fi.Scope) -> dict[str, Any]:
    chain = []
    current: fi.Scope | None = scope
    while current is not None:
        chain.append(current.vars)
        current = current.parent
    merged: dict[str, Any] = {}
    for variables in reversed(chain):
        merged.update(variables)
    return {key: _to_python(value) for key, value in merged.items() if not key.startswith("@")}


def _to_python(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_to_python(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_python(item) for key, item in value.items()}
    return value


def _from_python(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return Decimal(repr(value))
    if isinstance(value, list):
        return [_from_python(item) for item in value]
    if isinstance(value, dict):
        return {key: _from_python(item) for key, item in value.items()}
    return value


def _bkflow_feel(graph: drg.Graph, text: str, where: str) -> Any:
    from bkflow_feel.api import parse_expression

    def evaluate(scope: fi.Scope) -> Any:
        try:
            return _from_python(parse_expression(text, _flatten(scope), raise_exception=False))
        except Exception:
            return None

    return evaluate


def run(engine: str) -> tuple[int, int, int, int, float]:
    original = drg.Graph._feel
    if engine == "bkflow-feel":
        drg.Graph._feel = _bkflow_feel  # type: ignore[method-assign]
    passed = total = valued = valued_passed = 0
    elapsed = 0.0
    try:
        for level in tck.LEVELS:
            for path in tck.test_files(level):
                cases = tck.read_cases(path, level)
                model = tck.model_file(path)
                try:
                    graph = load_definitions(model.read_bytes(), resolve_import=tck._resolver(model.parent),
                                             lenient=True).compile(lenient=True)
                except Exception:
                    total += len(cases)
                    continue
                for case in cases:
                    if case.kind != "decision" or not _literal_only(graph, [n.name for n in case.results]):
                        continue
                    total += 1
                    started = time.perf_counter()
                    outcome = tck.run_case(graph, case)
                    elapsed += time.perf_counter() - started
                    passed += outcome.passed
                    if any(node.expected is not None for node in case.results):
                        valued += 1
                        valued_passed += outcome.passed
    finally:
        drg.Graph._feel = original  # type: ignore[method-assign]
    return passed, total, valued_passed, valued, elapsed


def main() -> int:
    if len(sys.argv) > 1:
        sys.path.insert(0, sys.argv[1])
    print("| engine | literal-expression TCK tests passed | pass rate | of those expecting a value | "
          "time for the set |\n|---|---|---|---|---|")
    for engine in ("tideflow", "bkflow-feel"):
        passed, total, valued_passed, valued, elapsed = run(engine)
        print(f"| {engine} | {passed} / {total} | {100 * passed / max(total, 1):.1f} % | "
              f"{valued_passed} / {valued} ({100 * valued_passed / max(valued, 1):.1f} %) | {elapsed:.2f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
