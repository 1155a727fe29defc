"""Graph algorithms over a flow document (``tideflow/flow@1``): the output ports of a node, a layered
auto-layout, the main path a funnel shows, and the diff between two versions.

Pure functions over the JSON document (no database, no web): the designer's editor calls them for
its layout button, funnel and version diff; they are tested on their own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from engine.nodes.base import NodeType
from engine.registry import Registry, default_registry


# -- node shape and edges ------------------------------------------------------------------------------------
def ports_of(node_type: type[NodeType] | None, config: Mapping[str, Any]) -> list[str]:
    """The output ports of a node with this config (switch/split: from the config), or the static ones
    while the config is invalid."""
    if node_type is None:
        return []
    try:
        model = node_type.Config.model_validate(dict(config))
    except ValidationError:
        return list(node_type.ports)
    return list(node_type.output_ports(model))


def _is_trigger(node: Mapping[str, Any], registry: Registry) -> bool:
    node_type = registry.get(str(node.get("type")))
    return node_type.is_trigger() if node_type is not None else str(node.get("type", "")).startswith("trigger.")


def flow_edges(document: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The document's edges as ``(from, port, to)``, skipping malformed ones (a draft may be anything)."""
    out = []
    for e in document.get("edges") or []:
        if isinstance(e, Mapping) and isinstance(e.get("from"), str) and isinstance(e.get("to"), str):
            out.append((str(e["from"]), str(e.get("port") or "out"), str(e["to"])))
    return out


def flow_nodes(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The document's nodes by id, skipping entries without an id."""
    return {str(n["id"]): dict(n) for n in document.get("nodes") or [] if isinstance(n, Mapping) and "id" in n}


# -- auto-layout --------------------------------------------------------------------------------------------
def _rank_of(port_rank: Mapping[tuple[str, str], int], source: str) -> Any:
    return lambda target: port_rank[(source, target)]


def _reachable(roots: list[str], children: Mapping[str, list[str]]) -> set[str]:
    seen = set(roots)
    todo = list(roots)
    while todo:
        for nxt in children[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _back_edges(roots: list[str], children: Mapping[str, list[str]]) -> set[tuple[str, str]]:
    """Edges that close a loop, found depth-first from the roots (iteratively: no recursion limit)."""
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in roots:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack.pop()
            if i < len(children[node]):
                stack.append((node, i + 1))
                nxt = children[node][i]
                if state.get(nxt) == 1:
                    back.add((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
    return back


def auto_layout(document: Mapping[str, Any], registry: Registry | None = None, *, x0: float = 60, y0: float = 60,
                dx: float = 225, dy: float = 120) -> dict[str, dict[str, float]]:
    """Positions for a layered left→right layout: the trigger in column 0, every other node one column
    right of its furthest predecessor (back edges of loops ignored), nodes no path reaches in a last row.
    Within a column nodes follow their parents' order and port order (yes above no). Pure."""
    reg = registry or default_registry()
    nodes = flow_nodes(document)
    edges = [e for e in flow_edges(document) if e[0] in nodes and e[2] in nodes]
    port_rank: dict[tuple[str, str], int] = {}
    children: dict[str, list[str]] = {n: [] for n in nodes}
    for source, port, target in edges:
        node_type = reg.get(str(nodes[source].get("type")))
        ports = ports_of(node_type, nodes[source].get("config") or {}) if node_type else []
        port_rank[(source, target)] = min(port_rank.get((source, target), 99),
                                          ports.index(port) if port in ports else 50)
        if target not in children[source]:
            children[source].append(target)
    for source in children:
        children[source].sort(key=_rank_of(port_rank, source))
    roots = [n for n, node in nodes.items() if _is_trigger(node, reg)]
    back = _back_edges(roots, children)
    reached = _reachable(roots, children)
    indegree = {n: 0 for n in reached}
    for source in reached:
        for target in children[source]:
            if (source, target) not in back:
                indegree[target] += 1
    layer = {n: 0 for n in reached}
    order: list[str] = []
    ready = deque(r for r in roots if indegree[r] == 0)
    while ready:
        node = ready.popleft()
        order.append(node)
        for target in children[node]:
            if (node, target) in back:
                continue
            layer[target] = max(layer[target], layer[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    parents: dict[str, list[str]] = {n: [] for n in reached}
    for source in order:
        for target in children[source]:
            if (source, target) not in back:
                parents[target].append(source)
    columns: dict[int, list[str]] = {}
    rank: dict[str, float] = {}
    for depth in sorted(set(layer[n] for n in order)):
        members = [n for n in order if layer[n] == depth]

        def placed(n: str) -> tuple[float, str]:
            above = [rank[s] + port_rank[(s, n)] / 100 for s in parents[n] if s in rank]
            return (sum(above) / len(above) if above else 0.0, n)

        members.sort(key=placed)
        columns[depth] = members
        for i, n in enumerate(members):
            rank[n] = i
    tallest = max((len(c) for c in columns.values()), default=1)
    positions: dict[str, dict[str, float]] = {}
    for depth, members in columns.items():
        offset = (tallest - len(members)) * dy / 2
        for i, n in enumerate(members):
            positions[n] = {"x": x0 + depth * dx, "y": y0 + offset + i * dy}
    rest = [n for n in nodes if n not in positions]
    bottom = y0 + tallest * dy + (dy / 2 if positions else 0)
    for i, n in enumerate(rest):
        positions[n] = {"x": x0 + i * dx, "y": bottom}
    return positions


# -- main path and funnel -----------------------------------------------------------------------------------
def main_path(document: Mapping[str, Any], registry: Registry | None = None) -> list[str]:
    """The trigger → … → goal path a funnel shows: the shortest path to a ``logic.goal`` node, else
    the path that always leaves by the node's first connected port (out, yes, event, …)."""
    reg = registry or default_registry()
    nodes = flow_nodes(document)
    trigger = next((n for n, node in nodes.items() if _is_trigger(node, reg)), None)
    if trigger is None:
        return []
    out: dict[str, list[tuple[str, str]]] = {n: [] for n in nodes}
    for source, port, target in flow_edges(document):
        if source in nodes and target in nodes:
            out[source].append((port, target))
    parent: dict[str, str | None] = {trigger: None}
    queue = deque([trigger])
    while queue:
        node = queue.popleft()
        if nodes[node].get("type") == "logic.goal":
            path = [node]
            while (up := parent[path[-1]]) is not None:
                path.append(up)
            return path[::-1]
        for _port, target in out[node]:
            if target not in parent:
                parent[target] = node
                queue.append(target)
    path = [trigger]
    while True:
        node = path[-1]
        node_type = reg.get(str(nodes[node].get("type")))
        ports = ports_of(node_type, nodes[node].get("config") or {}) if node_type else []
        leaving = sorted(out[node], key=lambda pt: ports.index(pt[0]) if pt[0] in ports else 99)
        nxt = next((target for _p, target in leaving if target not in path), None)
        if nxt is None:
            return path
        path.append(nxt)


# -- version diff -------------------------------------------------------------------------------------------
@dataclass
class NodeChange:
    id: str
    fields: list[tuple[str, Any, Any]]  # (path, before, after)


@dataclass
class FlowDiff:
    """What changed from flow document ``a`` to ``b`` (positions only in ``nodes_moved``)."""

    nodes_added: list[dict[str, Any]] = field(default_factory=list)
    nodes_removed: list[dict[str, Any]] = field(default_factory=list)
    nodes_changed: list[NodeChange] = field(default_factory=list)
    nodes_moved: list[str] = field(default_factory=list)
    edges_added: list[tuple[str, str, str]] = field(default_factory=list)
    edges_removed: list[tuple[str, str, str]] = field(default_factory=list)
    settings_changed: list[tuple[str, Any, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.nodes_added or self.nodes_removed or self.nodes_changed or self.nodes_moved
                    or self.edges_added or self.edges_removed or self.settings_changed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "nodes_added": [n["id"] for n in self.nodes_added], "nodes_removed": [n["id"] for n in self.nodes_removed],
            "nodes_changed": {c.id: [list(f) for f in c.fields] for c in self.nodes_changed},
            "nodes_moved": self.nodes_moved, "edges_added": [list(e) for e in self.edges_added],
            "edges_removed": [list(e) for e in self.edges_removed],
            "settings_changed": [list(s) for s in self.settings_changed],
        }


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}.{i}" if prefix else str(i)))
        return out
    return {prefix: value}


def _changes(a: Any, b: Any) -> list[tuple[str, Any, Any]]:
    fa, fb = _flatten(a), _flatten(b)
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def flow_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> FlowDiff:
    """Nodes and edges added, removed and changed between two flow documents. Pure."""
    diff = FlowDiff()
    na, nb = flow_nodes(a), flow_nodes(b)
    diff.nodes_added = [nb[n] for n in nb if n not in na]
    diff.nodes_removed = [na[n] for n in na if n not in nb]
    for node_id in (n for n in nb if n in na):
        before, after = na[node_id], nb[node_id]
        fields = [(k, before.get(k), after.get(k)) for k in ("type", "name") if before.get(k) != after.get(k)]
        fields += [(f"config.{k}", x, y) for k, x, y in _changes(before.get("config") or {}, after.get("config") or {})]
        if fields:
            diff.nodes_changed.append(NodeChange(node_id, fields))
        elif (before.get("ui") or {}) != (after.get("ui") or {}):
            diff.nodes_moved.append(node_id)
    ea, eb = flow_edges(a), flow_edges(b)
    diff.edges_added = [e for e in eb if e not in ea]
    diff.edges_removed = [e for e in ea if e not in eb]
    envelope = ("name", "kind", "description", "settings")
    diff.settings_changed = _changes({k: a.get(k) for k in envelope if a.get(k) is not None},
                                     {k: b.get(k) for k in envelope if b.get(k) is not None})
    return diff
