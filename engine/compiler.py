"""The compiler: a valid flow document → an immutable, content-hashed program for the interpreter.

The compiled form is plain JSON (it travels in the journey workflow's input, so
replay never depends on what the database says later). It keeps only what runs:
node types, validated configs (defaults filled in), and for each node its port →
next-node table. The hash covers exactly that, so republishing an unchanged
flow does not create a new version.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from engine.registry import Registry
from engine.validate import Validation, validate

COMPILED_SCHEMA = "tideflow/compiled@1"


class FlowInvalid(ValueError):
    """Raised when compiling a flow that has problems; ``problems`` lists them."""

    def __init__(self, validation: Validation) -> None:
        self.problems = validation.problems
        first = validation.problems[0]
        where = f"node '{first.node}'" if first.node else "the flow"
        super().__init__(f"{len(self.problems)} problem(s); first: {where}, {first.field}: {first.message}")


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def compile_flow(document: Any, registry: Registry | None = None) -> dict[str, Any]:
    """Validate and compile; raise :class:`FlowInvalid` with every problem when invalid."""
    checked = validate(document, registry)
    if not checked.ok or checked.flow is None:
        raise FlowInvalid(checked)
    flow = checked.flow
    nexts: dict[str, dict[str, str]] = {n: {} for n in checked.nodes}
    for edge in flow.edges:
        nexts[edge.source][edge.port] = edge.target
    trigger = next(c for c in checked.nodes.values() if c.node_type.is_trigger())
    body = {
        "kind": flow.kind,
        "settings": flow.settings.model_dump(mode="json"),
        "trigger": trigger.node.id,
        "nodes": {
            node_id: {
                "type": c.node.type,
                "category": c.node_type.category,
                "config": c.config.model_dump(mode="json"),
                "next": nexts[node_id],
            }
            for node_id, c in checked.nodes.items()
        },
    }
    digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
    return {"schema": COMPILED_SCHEMA, "flow_id": flow.id, "name": flow.name, "version": 0,
            "hash": digest, **body}


def has_waits(compiled: dict[str, Any]) -> bool:
    """True when some node makes a customer wait (then a broadcast needs a journey per customer)."""
    return any(n["category"] == "wait" for n in compiled["nodes"].values())
