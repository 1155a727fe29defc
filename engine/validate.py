"""The flow validator: every problem of a flow document, each with node, field and fix.

It never stops at the first error: a marketer fixing a canvas wants the whole
list. A draft may be saved with problems; publishing requires none.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from engine import expressions
from engine.durations import DurationError, parse_duration
from engine.event_types import explain_unknown, is_known
from engine.flow import Edge, Flow, FlowSettings, Node
from engine.nodes.base import EXPRESSION, TEMPLATE, NodeType, Problem
from engine.registry import Registry, default_registry
from engine.text import N_, Msg, verbatim
from engine.zones import known_zone, zone_problem


@dataclass
class CheckedNode:
    node: Node
    node_type: type[NodeType]
    config: BaseModel
    ports: list[str]


@dataclass
class Validation:
    """The result: problems (empty means publishable) and what could be understood of the flow."""

    problems: list[Problem] = field(default_factory=list)
    flow: Flow | None = None
    nodes: dict[str, CheckedNode] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, node: str | None, fld: str | None, message: str, fix: str, code: str = "invalid") -> None:
        self.problems.append(Problem(node, fld, message, fix, code))


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(document)"


#: pydantic's error types people meet in forms, said as sentences the catalogue can translate (the values
#: come from the error's ``ctx``); any other type keeps pydantic's own English message
_PYDANTIC: dict[str, str] = {
    "string_too_short": N_("should have at least %(min_length)s characters"),
    "string_too_long": N_("should have at most %(max_length)s characters"),
    "too_short": N_("should have at least %(min_length)s items"),
    "too_long": N_("should have at most %(max_length)s items"),
    "greater_than_equal": N_("should be at least %(ge)s"), "greater_than": N_("should be greater than %(gt)s"),
    "less_than_equal": N_("should be at most %(le)s"), "less_than": N_("should be less than %(lt)s"),
    "int_parsing": N_("should be a whole number"), "int_type": N_("should be a whole number"),
    "int_from_float": N_("should be a whole number"), "float_parsing": N_("should be a number"),
    "float_type": N_("should be a number"), "decimal_parsing": N_("should be a number"),
    "bool_parsing": N_("should be true or false"), "bool_type": N_("should be true or false"),
    "string_type": N_("should be text"), "list_type": N_("should be a list"), "dict_type": N_("should be an object"),
    "model_type": N_("should be an object"), "literal_error": N_("should be one of: %(expected)s"),
    "enum": N_("should be one of: %(expected)s"),
    "string_pattern_mismatch": N_("does not match the pattern %(pattern)s"),
}


def pydantic_message(error: Any) -> Msg:
    """One pydantic error as a sentence: a :class:`Msg` for the common types, else pydantic's own words."""
    template = _PYDANTIC.get(error.get("type", ""))
    ctx = error.get("ctx") or {}
    cause = ctx.get("error")
    if error.get("type") == "value_error" and isinstance(cause, Exception) and cause.args and isinstance(
            cause.args[0], Msg):  # a validator that raised ValueError(Msg(...)): its words, translatable
        return cause.args[0]
    if template is not None:
        try:
            return Msg(template, **{k: str(v) for k, v in ctx.items()})
        except (KeyError, TypeError, ValueError):
            pass
    return verbatim(str(error.get("msg", "invalid")).removeprefix("Value error, "))  # pydantic's words, as they are


def _pydantic_problems(err: ValidationError, node: str | None, prefix: str, out: Validation) -> None:
    for e in err.errors(include_url=False):
        where = _loc(tuple(e["loc"]))
        fld = (f"{prefix}{where}" if e["loc"] else prefix.rstrip(".")) if prefix else where
        if e["type"] == "extra_forbidden":
            out.add(node, fld, Msg("unknown field '%(name)s'", name=where.split(".")[-1]),
                    Msg("remove it or check its spelling"), "unknown_field")
        elif e["type"] == "missing":
            out.add(node, fld, Msg("is required"), Msg("set '%(field)s'", field=where), "missing_field")
        else:
            out.add(node, fld, pydantic_message(e), Msg("give '%(field)s' a valid value", field=where), "bad_value")


def _marked_strings(model: BaseModel, path: str = "") -> Iterator[tuple[str, str, str]]:
    """(field path, kind, source) for every expression/template string in a config model."""
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        where = f"{path}{name}"
        metadata = list(info.metadata)
        for arg in typing.get_args(info.annotation):  # Optional[Expression] keeps its marker on the arg
            metadata += list(getattr(arg, "__metadata__", ()))
        kinds = [m.format for m in metadata if m is EXPRESSION or m is TEMPLATE]
        if kinds and isinstance(value, str):
            yield where, kinds[0], value
        elif kinds and isinstance(value, dict):  # e.g. a webhook's headers: dict[str, Template]
            for key, item in value.items():
                if isinstance(item, str):
                    yield f"{where}.{key}", kinds[0], item
        elif isinstance(value, BaseModel):
            yield from _marked_strings(value, where + ".")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _marked_strings(item, f"{where}.{i}.")


def check_expression(source: str, kind: str, spent: expressions.Budget | None = None) -> Msg | None:
    """The compile error of an expression or template, or why it costs too much on sample data, or None.

    ``spent`` is the flow's running total of sample costs: once it is used up, later expressions are
    only compiled (the flow already has its cost problem)."""
    try:
        expressions.check(source, kind)
        if spent is not None and spent.steps <= spent.limit:
            expressions.sample_cost(source, kind, spent)
    except expressions.ExpressionTooCostly as exc:
        return Msg("is too costly on sample data: %(reason)s", reason=exc.message)
    except expressions.ExpressionError as exc:
        return exc.message
    return None


def _too_costly(err: str) -> bool:
    return err.startswith("is too costly")


def _message(kind: str, err: str) -> Msg:
    if kind == "template":
        return Msg("template %(error)s", error=err)
    return Msg("expression %(error)s", error=err)


def _fix(kind: str, err: str) -> Msg:
    if _too_costly(err):
        if kind == "template":
            return Msg("make the template do less: fewer or smaller loops, no building of long texts or lists, "
                       "no searching of long texts in a loop (see docs/security.md, 'The expression sandbox')")
        return Msg("make the expression do less: fewer or smaller loops, no building of long texts or lists, "
                   "no searching of long texts in a loop (see docs/security.md, 'The expression sandbox')")
    return Msg("fix the template") if kind == "template" else Msg("fix the expression")


def _code(kind: str, err: str) -> str:
    return "too_costly" if _too_costly(err) else f"bad_{kind}"


def expression_problem(source: str, kind: str, spent: expressions.Budget | None = None
                       ) -> tuple[Msg, Msg, str] | None:
    """What is wrong with an expression or template that is not in a flow — a WeCom sidebar script, a
    suggestion rule's condition — as flow validation words it: ``(message, fix, code)``, or None. It is
    compiled and run on the same sample data under the same bound as a flow's (:data:`expressions.VALIDATION_STEPS`
    each; ``spent``, when given, is the running total of the texts saved together, bounded by
    :data:`expressions.VALIDATION_FLOW_STEPS`)."""
    err = check_expression(source, kind, spent if spent is not None
                           else expressions.Budget(expressions.VALIDATION_FLOW_STEPS))
    if err is None:
        return None
    return _message(kind, err), _fix(kind, err), _code(kind, err)


def _settings_problems(settings: FlowSettings, out: Validation, spent: expressions.Budget) -> None:
    if not known_zone(settings.timezone):
        out.add(None, "settings.timezone", zone_problem(settings.timezone),
                Msg("use an IANA name such as 'Asia/Shanghai'"))
    entry = settings.entry
    if entry.reentry == "after" and not entry.reentry_after:
        out.add(None, "settings.entry.reentry_after", Msg("is required when reentry is 'after'"),
                Msg("set a duration such as 'P30D'"))
    durations = [("settings.entry.reentry_after", entry.reentry_after)]
    if settings.goal:
        durations.append(("settings.goal.within", settings.goal.within))
    for where, text in durations:
        if text:
            try:
                parse_duration(text)
            except DurationError as exc:
                out.add(None, where, exc.args[0] if exc.args else str(exc),
                        Msg("write an ISO 8601 duration such as 'P7D' or 'PT30M'"))
    named = [(f"settings.exit_on.{i}.event", m.event) for i, m in enumerate(settings.exit_on)]
    if settings.goal:
        named.append(("settings.goal.event", settings.goal.event))
    for where, event_type in named:
        if not is_known(event_type):
            out.add(None, where, explain_unknown(event_type), Msg("pick an event type from the list"), "unknown_event")
    matches = [(f"settings.exit_on.{i}.filter", m.filter) for i, m in enumerate(settings.exit_on)]
    if settings.goal:
        matches.append(("settings.goal.filter", settings.goal.filter))
    for where, source in matches:
        if source and (err := check_expression(source, "expression", spent)):
            out.add(None, where, _message("expression", err), _fix("expression", err), _code("expression", err))


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (a 200-node flow must not hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(graph[node])):
                nxt = graph[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                result.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return result


def validate(document: Any, registry: Registry | None = None) -> Validation:
    """Check a flow document (a dict or a :class:`Flow`); return every problem found."""
    reg = registry or default_registry()
    out = Validation()
    spent = expressions.Budget(expressions.VALIDATION_FLOW_STEPS)  # sample costs of the whole flow
    if isinstance(document, Flow):
        document = document.dump()
    if not isinstance(document, dict):
        out.add(None, None, Msg("a flow must be a JSON object"),
                Msg("send an object with schema, id, name, nodes, edges"))
        return out

    envelope = {k: v for k, v in document.items() if k not in ("nodes", "edges")}
    raw_nodes = document.get("nodes", [])
    raw_edges = document.get("edges", [])
    if not isinstance(raw_nodes, list):
        out.add(None, "nodes", Msg("must be a list"), Msg("send nodes as a JSON array"))
        raw_nodes = []
    if not isinstance(raw_edges, list):
        out.add(None, "edges", Msg("must be a list"), Msg("send edges as a JSON array"))
        raw_edges = []
    try:
        flow = Flow.model_validate({**envelope, "nodes": [], "edges": []})
    except ValidationError as exc:
        _pydantic_problems(exc, None, "", out)
        flow = None

    nodes: list[Node] = []
    for i, raw in enumerate(raw_nodes):
        node_id = raw.get("id") if isinstance(raw, dict) else None
        try:
            nodes.append(Node.model_validate(raw))
        except ValidationError as exc:
            _pydantic_problems(exc, node_id if isinstance(node_id, str) else None, f"nodes.{i}.", out)
    edges: list[Edge] = []
    for i, raw in enumerate(raw_edges):
        try:
            edges.append(Edge.model_validate(raw))
        except ValidationError as exc:
            _pydantic_problems(exc, None, f"edges.{i}.", out)
    if flow is not None:
        flow = flow.model_copy(update={"nodes": nodes, "edges": edges})
        out.flow = flow
        _settings_problems(flow.settings, out, spent)
    kind = flow.kind if flow else str(document.get("kind", "journey"))

    # nodes: unique ids, known types, valid config, compiling expressions
    seen: set[str] = set()
    known_types: dict[str, type[NodeType]] = {}
    for node in nodes:
        if node.id in seen:
            out.add(node.id, "id", Msg("node id '%(id)s' is used twice", id=node.id), Msg("give every node its own id"),
                    "duplicate_id")
            continue
        seen.add(node.id)
        node_type = reg.get(node.type)
        if node_type is None:
            close = difflib.get_close_matches(node.type, list(reg.types), n=1)
            hint = (Msg("did you mean '%(type)s'?", type=close[0]) if close
                    else Msg("pick a type from GET /api/node-types"))
            out.add(node.id, "type", Msg("unknown node type '%(type)s'", type=node.type), hint, "unknown_type")
            continue
        known_types[node.id] = node_type
        if kind not in node_type.kinds:
            out.add(node.id, "type", Msg("'%(type)s' cannot be used in a %(kind)s flow", type=node.type, kind=kind),
                    Msg("use it in a %(kinds)s flow", kinds=" or ".join(node_type.kinds)), "wrong_kind")
        try:
            config = node_type.Config.model_validate(node.config)
        except ValidationError as exc:
            _pydantic_problems(exc, node.id, "config.", out)
            continue
        for p in node_type.check(config):
            out.add(node.id, f"config.{p.field}" if p.field else "config", p.message, p.fix, p.code)
        for where, fmt, source in _marked_strings(config):
            if err := check_expression(source, fmt, spent):
                out.add(node.id, f"config.{where}", _message(fmt, err), _fix(fmt, err), _code(fmt, err))
        event_type = getattr(config, "event", None)
        if isinstance(event_type, str) and not is_known(event_type):
            out.add(node.id, "config.event", explain_unknown(event_type), Msg("pick an event type from the list"),
                    "unknown_event")
        out.nodes[node.id] = CheckedNode(node, node_type, config, node_type.output_ports(config))

    node_ids = {n.id for n in nodes}
    graph: dict[str, list[str]] = {n: [] for n in node_ids}
    used: dict[tuple[str, str], str] = {}
    for i, edge in enumerate(edges):
        where = f"edges.{i}"
        if edge.source not in node_ids:
            out.add(None, where, Msg("edge starts at '%(node)s', which is not a node", node=edge.source),
                    Msg("connect it to an existing node or delete it"), "dangling_edge")
            continue
        if edge.target not in node_ids:
            out.add(edge.source, where, Msg("edge goes to '%(node)s', which is not a node", node=edge.target),
                    Msg("connect it to an existing node or delete it"), "dangling_edge")
            continue
        checked = out.nodes.get(edge.source)
        if checked is not None and edge.port not in checked.ports:
            out.add(edge.source, where,
                    Msg("'%(type)s' has no port '%(port)s'", type=checked.node.type, port=edge.port),
                    Msg("use one of: %(ports)s", ports=", ".join(checked.ports)) if checked.ports
                    else Msg("use one of: (none: this node ends the path)"), "bad_port")
            continue
        key = (edge.source, edge.port)
        if key in used:
            if used[key] == edge.target:
                out.add(edge.source, where, Msg("edge %(source)s.%(port)s → %(target)s is there twice",
                                                source=edge.source, port=edge.port, target=edge.target),
                        Msg("delete the duplicate"), "duplicate_edge")
            else:
                out.add(edge.source, where,
                        Msg("port '%(port)s' already leads to '%(node)s'; a port leads to one node", port=edge.port,
                            node=used[key]),
                        Msg("use logic.split or logic.switch to branch"), "duplicate_edge")
            continue
        target = out.nodes.get(edge.target)
        if target is not None and target.node_type.is_trigger():
            out.add(edge.target, where, Msg("an edge leads into a trigger"),
                    Msg("triggers only start a flow; connect the edge to another node"), "edge_into_trigger")
            continue
        used[key] = edge.target
        graph[edge.source].append(edge.target)

    triggers = [n for n in nodes if n.id in known_types and known_types[n.id].is_trigger()]
    if not nodes:
        out.add(None, "nodes", Msg("the flow has no nodes"), Msg("add a trigger node to start with"), "no_trigger")
    elif not triggers:
        out.add(None, "nodes", Msg("the flow has no trigger"), Msg("add one trigger node (e.g. trigger.event)"),
                "no_trigger")
    elif len(triggers) > 1:
        for extra in triggers[1:]:
            out.add(extra.id, "type", Msg("more than one trigger (first is '%(node)s')", node=triggers[0].id),
                    Msg("keep one trigger per flow; make another flow for another entry"), "many_triggers")

    for checked in out.nodes.values():
        for port in checked.node_type.required_ports:
            if port in checked.ports and (checked.node.id, port) not in used:
                out.add(checked.node.id, f"ports.{port}", Msg("port '%(port)s' is not connected", port=port),
                        Msg("connect it to the next step"), "unconnected_port")

    if triggers:
        start = triggers[0].id
        reached = {start}
        todo = [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in reached:
                    reached.add(nxt)
                    todo.append(nxt)
        for node in nodes:
            if (node.id not in reached and node.id in out.nodes
                    and not out.nodes[node.id].node_type.is_trigger()):  # extra triggers are reported above
                out.add(node.id, None, Msg("no path from the trigger reaches this node"),
                        Msg("connect it or delete it"), "unreachable")

    for comp in _strongly_connected(graph):
        looped = len(comp) > 1 or comp[0] in graph[comp[0]]
        if not looped:
            continue
        if not any(out.nodes[n].node_type.is_wait() for n in comp if n in out.nodes):
            first = sorted(comp)[0]
            out.add(first, None, Msg("the loop %(nodes)s has no wait in it and would spin forever",
                                     nodes=" → ".join(sorted(comp))),
                    Msg("put a wait.delay, wait.until or wait.event inside the loop"), "loop_without_wait")
    return out


def sample_costs(document: Any) -> list[tuple[str, str, int | str]]:
    """Validate ``document`` and return every sample cost measured on the way (source, kind, steps or
    the limit's message): what the web app has its evaluation pool compute, then remembers
    (:func:`engine.expressions.remember_sample_costs`) so its own validation evaluates nothing."""
    with expressions.recording_sample_costs() as found:
        validate(document)
    return found
