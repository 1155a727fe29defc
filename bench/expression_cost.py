"""How long a full expression budget takes at worst: the cost model's calibration.

The sandbox counts operations, never time (engine/expressions.py), so the time an evaluation can take
is ``MAX_STEPS`` × the slowest operation per step. This benchmark runs a set of templates built to be
slow per step — long-text searches and comparisons, regex filters, big-number conversion, sorting,
look-ups on missing values, macro fan-out, cheap operations in loops — each until its budget runs out,
and reports the slowest, in ms per full budget, against the target that keeps a workflow task far
below Temporal's 2 s deadlock detector (≤ 250 ms). The baseline row is a plain loop, for the ratio.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import Report, Row, Stack, at_most

TARGET_MS = 250.0
BIG = "{% set a = 'aa' * 10000 %}{% set b = a~a~a~a~a~a~a~a~a~a %}{% set c = b~b~b~b~b %}"
LOOP = "{% for i in range(10000) %}{% for j in range(10) %}"
END = "{% endfor %}{% endfor %}"
CASES: dict[str, str] = {
    "plain loop (baseline)": LOOP + END,
    "search a 1 MB text": BIG + LOOP + "{% if 'aaaaaaaaaaaaaaaabaaaaaaaaaaaaaaaa' in c %}{% endif %}" + END,
    "search CJK text": "{% set a = '退款' * 10000 %}{% set c = a~a~a~a~a~a~a~a~a~a %}" + LOOP
                       + "{% if '退款退货' in c %}{% endif %}" + END,
    "compare 1 MB texts": BIG + "{% set d = b~b~b~b~b %}" + LOOP + "{% if c == d %}{% endif %}" + END,
    "title filter": "{% set a = 'ab ' * 6000 %}" + LOOP + "{% if a|title %}{% endif %}" + END,
    "wordwrap filter": "{% set a = 'ab ' * 6000 %}" + LOOP + "{% if a|wordwrap(3) %}{% endif %}" + END,
    "urlize filter": "{% set a = 'www.a.com ' * 1900 %}" + LOOP + "{% if a|urlize %}{% endif %}" + END,
    "indent filter": "{% set a = 'a\n' * 9000 %}" + LOOP + "{% if a|indent %}{% endif %}" + END,
    "big number to text": "{% set a = 2 ** 2000 * 2 ** 2000 %}" + LOOP + "{{ a }}" + END,
    "digits to number": "{% set a = '9' * 4000 %}" + LOOP + "{% if a|int %}{% endif %}" + END,
    "sort 10,000 texts": "{% set a = range(10000)|map('string')|list %}" + LOOP + "{% if a|sort %}{% endif %}" + END,
    "look-ups on missing values": LOOP + "{% if customer.a.b.c.d.e.f.g.h %}{% endif %}" * 40 + END,
    "and-chains": LOOP + "{% if i and j and i and j %}{% endif %}" * 40 + END,
    "strftime": LOOP + "{% if now.strftime('%Y' * 5000) %}{% endif %}" + END,
    "macro fan-out": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(30) }}",
}


def _budget_ms(source: str, context: dict[str, Any]) -> float:
    """The best of three runs, in ms; each must end by using up its budget (else the case is broken)."""
    from engine import expressions

    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        with expressions.shared_budget() as budget:
            try:
                expressions.render(source, context)
            except expressions.ExpressionError as exc:
                if budget.steps <= budget.limit:
                    raise RuntimeError(f"stopped before its budget was used: {exc}") from None
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


async def run(stack: Stack) -> Report:
    from datetime import UTC, datetime

    context = {"customer": {}, "now": datetime(2026, 1, 1, tzinfo=UTC)}
    timings = {name: _budget_ms(source, context) for name, source in CASES.items()}
    baseline = timings.pop("plain loop (baseline)")
    worst_name, worst = max(timings.items(), key=lambda item: item[1])
    rows = [Row("expression budget, slowest case (ms per full budget)", f"{worst:.0f} ms ({worst_name})",
                f"≤ {TARGET_MS:.0f} ms", at_most(worst, TARGET_MS)),
            Row("expression budget, plain loop (ms per full budget)", f"{baseline:.0f} ms", "", None)]
    notes = ["expression cost: " + ", ".join(f"{name} {ms:.0f} ms ({ms / baseline:.1f}× the plain loop)"
                                             for name, ms in sorted(timings.items(), key=lambda i: -i[1]))]
    return Report("expressions", rows, notes)
