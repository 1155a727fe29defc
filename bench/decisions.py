"""Decision tables: 10,000 evaluations of a 50-rule table with FEEL input entries (target < 1 s).

The table routes a refund by amount, VIP level, channel and the customer's refund count, as ops
teams write it: ranges, comparisons against another input variable (``< limit``), lists of strings,
``not(…)`` and ``?`` tests, and outputs computed from the inputs (``amount * 0.1``). Inputs vary per
evaluation (a fixed pseudo-random sequence), so no cache can answer for the evaluator. The table's
hit policy is FIRST; about half the evaluations fall through to the catch-all last rule, so most
rules are tried.

Beside it, the ratio to the evaluator Tideflow had before FEEL (``decisions.feel.simple``: literal
unary tests only, parsed and matched one cell at a time), on a table of the same shape whose cells
that evaluator can read (the FEEL-only cells replaced by literals): speed-up > 1 means the FEEL
evaluator is faster on what both can do.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from bench.common import Report, Row, Stack, at_most, env_int

TARGET_SECONDS = 1.0
RULES = 50
LEVELS = ["none", "silver", "gold", "platinum"]
CHANNELS = ["taobao", "jd", "youzan", "douyin", "wecom"]


def _rules(feel: bool) -> list[dict[str, Any]]:
    rules = []
    for i in range(RULES - 1):
        low, high = i * 200, i * 200 + 400
        level = LEVELS[i % len(LEVELS)]
        channels = ", ".join(f'"{c}"' for c in CHANNELS[i % 3:i % 3 + 2])
        if feel:
            entries = [f"[{low}..{high})", f'"{level}"' if i % 5 else f'not("{level}", "none")', channels,
                       "< limit" if i % 2 else f"? >= {i % 4}"]
            outputs = [f'"q{i}"', "amount * 0.1" if i % 3 == 0 else f"{i}"]
        else:
            entries = [f"[{low}..{high})", f'"{level}"' if i % 5 else f'not("{level}", "none")', channels,
                       "< 3" if i % 2 else f">= {i % 4}"]
            outputs = [f'"q{i}"', f"{i}"]
        rules.append({"id": f"r{i}", "input_entries": entries, "output_entries": outputs})
    rules.append({"id": "rest", "input_entries": ["-", "-", "-", "-"], "output_entries": ['"standard"', "0"]})
    return rules


def table_document(feel: bool) -> dict[str, Any]:
    return {
        "name": "refund routing", "hit_policy": "FIRST",
        "inputs": [{"id": "amount", "expression": "amount", "type_ref": "number"},
                   {"id": "level", "expression": "level", "type_ref": "string"},
                   {"id": "channel", "expression": "channel", "type_ref": "string"},
                   {"id": "refunds", "expression": "refunds", "type_ref": "number"}],
        "outputs": [{"id": "queue", "name": "queue", "type_ref": "string"},
                    {"id": "score", "name": "score", "type_ref": "number"}],
        "rules": _rules(feel),
    }


def inputs(count: int) -> list[dict[str, Any]]:
    chooser = random.Random(17)
    return [{"amount": chooser.randrange(0, 12_000), "level": chooser.choice(LEVELS),
             "channel": chooser.choice(CHANNELS), "refunds": chooser.randrange(0, 6), "limit": 3}
            for _ in range(count)]


def simple_evaluator(table: Any) -> Callable[[Mapping[str, Any]], Any]:
    """The evaluator decisions/table.py had before FEEL: literal unary tests (decisions.feel.simple),
    parsed (cached) and matched cell by cell, FIRST hit, literal outputs."""
    from decisions.feel.simple import parse_literal, parse_unary_tests
    from decisions.table import coerce_input, resolve_path

    def evaluate(values: Mapping[str, Any]) -> Any:
        row = [coerce_input(clause, resolve_path(values, clause.expression)) for clause in table.inputs]
        for rule in table.rules:
            if all(parse_unary_tests(entry).matches(value) for entry, value in zip(rule.input_entries, row,
                                                                                   strict=True)):
                return {clause.name: parse_literal(entry) for clause, entry in zip(table.outputs, rule.output_entries,
                                                                                   strict=True)}
        return None

    return evaluate


def _time(evaluate: Callable[[Mapping[str, Any]], Any], workload: list[dict[str, Any]]) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    results = [evaluate(values) for values in workload]
    return time.perf_counter() - started, results


async def run(stack: Stack) -> Report:
    from decisions.table import DecisionTable, evaluate

    count = env_int("BENCH_DECISIONS", 10_000)
    workload = inputs(count)
    feel_table = DecisionTable.model_validate(table_document(feel=True))
    simple_table = DecisionTable.model_validate(table_document(feel=False))
    evaluate(feel_table, workload[0])  # compiling the cells once is publish time, not evaluation
    feel_seconds, feel_results = _time(lambda values: evaluate(feel_table, values).value, workload)
    evaluate(simple_table, workload[0])
    new_seconds, new_results = _time(lambda values: evaluate(simple_table, values).value, workload)
    old = simple_evaluator(simple_table)
    old(workload[0])
    old_seconds, old_results = _time(old, workload)
    if [r and {k: str(v) for k, v in r.items()} for r in new_results] != \
            [r and {k: str(v) for k, v in r.items()} for r in old_results]:
        raise RuntimeError("the FEEL evaluator and the simple-test evaluator disagree on the literal table")
    fell_through = sum(1 for r in feel_results if r and r["queue"] == "standard")
    report = Report("decisions")
    report.rows += [
        Row(f"{count:,} evaluations, {RULES}-rule FEEL table", f"{feel_seconds:.2f} s", f"< {TARGET_SECONDS:.0f} s",
            at_most(feel_seconds, TARGET_SECONDS)),
        Row(f"{count:,} evaluations, {RULES}-rule literal table: FEEL vs simple-test evaluator",
            f"{new_seconds:.2f} s vs {old_seconds:.2f} s", "speed-up (old ÷ new)",
            old_seconds / new_seconds if new_seconds else None),
    ]
    report.notes.append(
        f"decisions: FIRST hit policy, {fell_through:,} of {count:,} evaluations reach the catch-all rule; "
        f"the simple-test evaluator is the pre-FEEL matching loop over decisions.feel.simple")
    return report
