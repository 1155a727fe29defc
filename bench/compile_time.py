"""Validation + compile time of a generated 200-node flow (``engine.compiler.compile_flow``).

The flow is one trigger and a chain of 199 nodes cycling through the common node types
(messages with templates, tags, conditions, switches, splits, delays, event waits) — every
branch port continues to the next node. Two numbers:

* cold: every run compiles a new document whose expressions and templates are all new texts, so
  the expression cache cannot help (a publish after editing every node — the worst case);
* warm: the same document again and again (re-publishing, or the validator running on each save).

Each is the median of ``BENCH_COMPILE_RUNS`` (20) runs, in milliseconds.
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import Report, Row, Stack, at_most, env_int, flow_document, median

TARGET_MS = 100.0
NODES = 200


def _node(kind: int, i: int, salt: str) -> tuple[str, dict[str, Any], list[str]]:
    """(type, config, ports) of the ``i``-th node; ``salt`` makes every expression text unique."""
    match kind:
        case 0:
            return ("action.send_message",
                    {"channel": "dry-run", "template": f"你好 {{{{ customer.name }}}}，第 {i} 步 {salt}"}, ["out"])
        case 1:
            return "action.tag", {"add": [f"t{i}{salt}"]}, ["out"]
        case 2:
            return ("logic.condition", {"expr": f"customer.orders_count > {i} and '{salt}' not in customer.tags"},
                    ["yes", "no"])
        case 3:
            return "wait.delay", {"duration": f"PT{i}M"}, ["out"]
        case 4:
            return ("logic.switch", {"cases": [
                {"port": "vip", "expr": f"customer.level == 'vip{salt}'"},
                {"port": "big", "expr": f"(event.payload.amount or 0) > {i * 100}"}]}, ["vip", "big", "default"])
        case 5:
            wanted = f"event.payload.amount > {i} and event.payload.shop != '{salt}'"
            return "wait.event", {"event": "order.paid", "filter": wanted, "timeout": "P7D"}, ["event", "timeout"]
        case 6:
            return "logic.split", {"branches": [{"port": "A", "weight": 50}, {"port": "B", "weight": 50}]}, ["A", "B"]
        case _:
            return ("action.send_message",
                    {"channel": "dry-run", "template": f"{{{{ customer.name }}}} 的优惠券 {i} {salt}",
                     "category": "transactional"}, ["out"])


def generate(flow_id: str = "bench-200-nodes", nodes: int = NODES, salt: str = "") -> dict[str, Any]:
    """A valid ``nodes``-node flow: a trigger, then a chain whose every port goes to the next node."""
    spec: list[tuple[str, str, dict[str, Any]]] = [("start", "trigger.event", {"event": "wecom.contact_added"})]
    edges: list[tuple[str, str, str]] = []
    previous, ports = "start", ["out"]
    for i in range(1, nodes):
        node_id = f"n{i:03d}"
        node_type, config, next_ports = _node(i % 8, i, salt)
        spec.append((node_id, node_type, config))
        edges += [(previous, port, node_id) for port in ports]
        previous, ports = node_id, next_ports
    return flow_document(flow_id, spec, edges, exit_on=[{"event": "customer.unsubscribed"}],
                         goal={"event": "order.paid", "within": "P14D"})


def _time(document: dict[str, Any]) -> float:
    from engine.compiler import compile_flow

    started = time.perf_counter()
    compiled = compile_flow(document)
    elapsed = (time.perf_counter() - started) * 1000
    if len(compiled["nodes"]) != NODES:
        raise RuntimeError(f"compiled {len(compiled['nodes'])} nodes, expected {NODES}")
    return elapsed


async def run(stack: Stack) -> Report:
    from engine.registry import default_registry

    runs = env_int("BENCH_COMPILE_RUNS", 20)
    default_registry()  # loading the plugins once is start-up, not compile time
    cold = [_time(generate(salt=f"r{r}")) for r in range(runs)]
    same = generate()
    first_warm = _time(same)
    warm = [_time(same) for _ in range(runs)]
    report = Report("compile")
    report.rows += [
        Row(f"validate + compile {NODES}-node flow, cold (median)", f"{median(cold):.1f} ms", f"≤ {TARGET_MS:.0f} ms",
            at_most(median(cold), TARGET_MS)),
        Row(f"validate + compile {NODES}-node flow, warm (median)", f"{median(warm):.1f} ms", f"≤ {TARGET_MS:.0f} ms",
            at_most(median(warm), TARGET_MS)),
    ]
    report.notes.append(
        f"compile: {runs} runs each; cold = new expression texts every run (first {cold[0]:.1f} ms, "
        f"max {max(cold):.1f} ms), warm = the same document (first {first_warm:.1f} ms, max {max(warm):.1f} ms)")
    return report
