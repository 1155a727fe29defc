"""Generated reference docs: ``python -m tideflow.docs > docs/nodes.md`` (a test keeps it current)."""

from __future__ import annotations

import sys
from typing import Any

from engine.registry import load_registry

ORDER = ["trigger", "wait", "logic", "end", "action", "plugin"]


def _kind(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "one of " + ", ".join(map(str, prop["enum"]))
    if prop.get("format"):
        return str(prop["format"])
    if "anyOf" in prop:
        kinds = [p.get("format") or p.get("type") for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(str(k) for k in kinds if k) + " (optional)"
    return str(prop.get("type") or "object")


def node_reference() -> str:
    registry = load_registry()
    lines = ["# Node reference", "",
             "Generated from the node registry by `python -m tideflow.docs` (`GET /api/node-types` serves the same,",
             "with each config's full JSON Schema). Built-in and plugin node types are discovered the same way:",
             "the entry point group `tideflow.activities`.", ""]
    by_category: dict[str, list[Any]] = {}
    for node_type in registry:
        if node_type.origin != "builtin":
            continue
        by_category.setdefault(node_type.category, []).append(node_type)
    for category in sorted(by_category, key=lambda c: ORDER.index(c) if c in ORDER else len(ORDER)):
        lines += [f"## {category}", ""]
        for t in sorted(by_category[category], key=lambda t: t.type):
            lines += [f"### `{t.type}` — {t.label.get('zh-CN')} / {t.label.get('en')}", ""]
            if t.description:
                lines += [f"{t.description.get('en', '')} ({t.description.get('zh-CN', '')})", ""]
            if t.type in ("logic.switch", "logic.split"):
                ports = "one per case / branch" + (", default" if t.type == "logic.switch" else "")
            elif t.type == "logic.decision_table":
                ports = "one per value of `port_output`, or out; `default_port` (default) when no rule matches"
            else:
                ports = ", ".join(t.ports) if t.ports else "— (ends the path)"
            extra = f"; on failure: `{t.failure_port}`" if t.failure_port else ""
            lines.append(f"- ports: {ports}{extra}; flows: {', '.join(t.kinds)}")
            schema = t.schema()
            required = set(schema.get("required", []))
            for name, prop in schema.get("properties", {}).items():
                note = " (required)" if name in required else ""
                lines.append(f"- `{name}`{note}: {_kind(prop)}. {prop.get('description', '')}".rstrip())
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(node_reference())
