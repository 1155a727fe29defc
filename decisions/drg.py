"""Decision requirements graphs (DRGs): decisions, input data, business knowledge models (BKMs),
decision services and item definitions, checked when imported and evaluated in dependency order.

A :class:`Definitions` is what :func:`decisions.dmn_xml.load_definitions` reads from a DMN 1.1–1.5
file. :meth:`Definitions.compile` checks it — every requirement points at an element that
exists, decisions do not require each other in a cycle, every FEEL text parses — and gives a
:class:`Graph`, whose :meth:`Graph.evaluate` computes the requested decisions (and what they
require, each once) from the input values.

Scopes (DMN 1.5 §6.3): a decision sees the values of the decisions and input data it requires
(``informationRequirement``) by name, and the BKMs and decision services it requires
(``knowledgeRequirement``) as functions. Variables the caller passes that the model does not
declare as input data are visible too — Camunda's tables read process variables that way — but a
decision never sees another decision it does not require. Results are converted to the
decision's type (its ``variable typeRef``): a value that does not conform becomes null, as DMN
prescribes, with a note in the report.

Boxed expressions: literal expressions, decision tables, contexts, invocations, function
definitions, relations, lists and DMN 1.4's conditional, filter and iterators (``for``,
``some``, ``every``). Functions of kind Java or PMML are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from decisions.feel import FeelSyntaxError, compile_expression, compile_unary_tests
from decisions.feel import interpreter as fi
from decisions.feel import syntax as fs
from decisions.feel.limits import Budget, FeelLimitError, metered
from decisions.feel.types import ANY, FeelType, coerce, resolve
from decisions.feel.values import FeelError, FeelFunction, to_feel
from decisions.table import (
    SINGLE_HIT_POLICIES,
    Aggregation,
    DecisionTable,
    DecisionTableError,
)
from decisions.table import evaluate as evaluate_table
from wording import Msg, message_of


class DrgError(ValueError):
    """The graph is not usable: a missing requirement, a cycle, FEEL that does not parse …; the
    message names the element."""


# --------------------------------------------------------------------------------------------- model


@dataclass
class ItemDefinition:
    name: str
    type_ref: str = ""
    is_collection: bool = False
    components: list[ItemDefinition] = field(default_factory=list)
    allowed_values: str = ""
    type_constraint: str = ""
    function_parameters: list[tuple[str, str]] | None = None
    function_output: str = ""


@dataclass
class Boxed:
    """A boxed expression (the logic of a decision, BKM or context entry)."""

    id: str = ""
    type_ref: str = ""


@dataclass
class LiteralBoxed(Boxed):
    text: str = ""


@dataclass
class TableBoxed(Boxed):
    table: DecisionTable | None = None
    output_type_refs: list[str] = field(default_factory=list)
    single_output: bool = True


@dataclass
class ContextBoxed(Boxed):
    #: (name, type ref, expression); the entry without a name is the context's result
    entries: list[tuple[str | None, str, Boxed | None]] = field(default_factory=list)


@dataclass
class InvocationBoxed(Boxed):
    callee: str = ""
    bindings: list[tuple[str, Boxed | None]] = field(default_factory=list)


@dataclass
class FunctionBoxed(Boxed):
    parameters: list[tuple[str, str]] = field(default_factory=list)
    body: Boxed | None = None
    kind: str = "FEEL"


@dataclass
class RelationBoxed(Boxed):
    columns: list[str] = field(default_factory=list)
    rows: list[list[Boxed | None]] = field(default_factory=list)


@dataclass
class ListBoxed(Boxed):
    items: list[Boxed | None] = field(default_factory=list)


@dataclass
class ConditionalBoxed(Boxed):
    condition: Boxed | None = None
    then: Boxed | None = None
    otherwise: Boxed | None = None


@dataclass
class FilterBoxed(Boxed):
    source: Boxed | None = None
    match: Boxed | None = None


@dataclass
class IteratorBoxed(Boxed):
    kind: str = "for"  # for, some, every
    variable: str = ""
    source: Boxed | None = None
    body: Boxed | None = None


@dataclass
class Element:
    id: str
    name: str
    type_ref: str = ""

    @property
    def kind(self) -> str:
        return type(self).__name__

    def describe(self) -> str:
        name = f" name='{self.name}'" if self.name and self.name != self.id else ""
        return f"<{_TAGS.get(type(self).__name__, 'element')} id='{self.id}'{name}>"


@dataclass
class InputData(Element):
    pass


@dataclass
class Decision(Element):
    expression: Boxed | None = None
    #: ids (``#id`` or ``namespace#id`` hrefs) of the decisions and input data required
    information: list[str] = field(default_factory=list)
    #: hrefs of the BKMs and decision services required
    knowledge: list[str] = field(default_factory=list)
    question: str = ""


@dataclass
class BusinessKnowledgeModel(Element):
    logic: FunctionBoxed | None = None
    knowledge: list[str] = field(default_factory=list)


@dataclass
class DecisionService(Element):
    outputs: list[str] = field(default_factory=list)
    encapsulated: list[str] = field(default_factory=list)
    input_decisions: list[str] = field(default_factory=list)
    input_data: list[str] = field(default_factory=list)


_TAGS = {"InputData": "inputData", "Decision": "decision", "BusinessKnowledgeModel": "businessKnowledgeModel",
         "DecisionService": "decisionService"}


@dataclass
class Import:
    name: str
    namespace: str
    location: str = ""


@dataclass
class Definitions:
    """A DMN model: its DRG elements by id, item definitions by name, and the models it imports."""

    name: str
    namespace: str
    version: str = "1.5"
    id: str = ""
    elements: dict[str, Element] = field(default_factory=dict)
    item_definitions: dict[str, ItemDefinition] = field(default_factory=dict)
    imports: list[Import] = field(default_factory=list)
    imported: dict[str, Definitions] = field(default_factory=dict)  # by import name

    def decisions(self) -> list[Decision]:
        return [element for element in self.elements.values() if isinstance(element, Decision)]

    def by_name(self, name: str) -> Element | None:
        return next((element for element in self.elements.values() if element.name == name), None)

    def compile(self, *, lenient: bool = False) -> Graph:
        """Check the graph and compile every expression. ``lenient`` turns FEEL syntax errors into
        expressions that evaluate to null (with a note) instead of refusing the model; the TCK is
        run that way, since some of its tests expect a null result for such expressions."""
        return Graph(self, lenient)


# --------------------------------------------------------------------------------------------- compiling


Compiled = Callable[[fi.Scope], Any]


def _local_id(href: str) -> tuple[str, str]:
    """``namespace#id`` → (namespace, id); ``#id`` → ("", id)."""
    namespace, _, local = href.partition("#")
    if not _:
        return "", href
    return namespace, local


@dataclass
class _Node:
    """A DRG element of the graph with what it needs resolved."""

    element: Element
    model: Definitions
    prefix: str  # import name + "." for imported elements
    information: list[_Node] = field(default_factory=list)
    knowledge: list[_Node] = field(default_factory=list)
    compiled: Compiled | None = None
    type: FeelType | None = None

    @property
    def name(self) -> str:
        return self.prefix + self.element.name


class Graph:
    """A checked, compiled DRG. Build it with :meth:`Definitions.compile`."""

    def __init__(self, definitions: Definitions, lenient: bool = False) -> None:
        self.definitions = definitions
        self.lenient = lenient
        self.nodes: dict[tuple[str, str], _Node] = {}
        self.types: dict[str, FeelType] = {}
        self._register(definitions, "")
        self.names = self._all_names()
        self._resolve_types()
        self._link()
        self._check_cycles()
        for node in list(self.nodes.values()):
            self._compile_node(node)

    # ----------------------------------------------------------------- structure

    def _register(self, model: Definitions, prefix: str) -> None:
        for element in model.elements.values():
            self.nodes[(model.namespace, element.id)] = _Node(element, model, prefix)
        for import_name, imported in model.imported.items():
            self._register(imported, f"{prefix}{import_name}.")

    def _all_names(self) -> set[str]:
        names: set[str] = set()

        def boxed_names(boxed: Boxed | None) -> None:
            if isinstance(boxed, ContextBoxed):
                for name, _, value in boxed.entries:
                    if name:
                        names.add(name)
                    boxed_names(value)
            elif isinstance(boxed, FunctionBoxed):
                names.update(name for name, _ in boxed.parameters)
                boxed_names(boxed.body)
            elif isinstance(boxed, InvocationBoxed):
                names.update(name for name, _ in boxed.bindings)
                for _, value in boxed.bindings:
                    boxed_names(value)
            elif isinstance(boxed, RelationBoxed):
                names.update(boxed.columns)
            elif isinstance(boxed, IteratorBoxed):
                names.add(boxed.variable)
                boxed_names(boxed.source)
                boxed_names(boxed.body)
            elif isinstance(boxed, TableBoxed) and boxed.table is not None:
                names.update(boxed.table.input_names())

        def item_names(item: ItemDefinition) -> None:
            names.add(item.name)
            for component in item.components:
                item_names(component)

        for node in self.nodes.values():
            element = node.element
            names.add(element.name)
            names.add(node.name)
            if isinstance(element, Decision):
                boxed_names(element.expression)
            elif isinstance(element, BusinessKnowledgeModel):
                boxed_names(element.logic)
        for model in [self.definitions, *self._imported_models()]:
            for item in model.item_definitions.values():
                item_names(item)
        for import_name in self.definitions.imported:
            names.add(import_name)
        return names

    def _imported_models(self) -> list[Definitions]:
        found: list[Definitions] = []
        stack = list(self.definitions.imported.values())
        while stack:
            model = stack.pop()
            found.append(model)
            stack.extend(model.imported.values())
        return found

    def _find(self, model: Definitions, href: str, where: Element, what: str) -> _Node:
        namespace, local = _local_id(href)
        key = (namespace or model.namespace, local)
        node = self.nodes.get(key)
        if node is None:
            node = next((n for (ns, i), n in self.nodes.items() if i == local), None)
        if node is None:
            raise DrgError(Msg("%(element)s requires %(what)s '%(href)s', which is not in the model",
                               element=where.describe(), what=what, href=href))
        return node

    def _link(self) -> None:
        for node in self.nodes.values():
            element = node.element
            if isinstance(element, Decision):
                node.information = [self._find(node.model, href, element, Msg("the decision or input data"))
                                    for href in element.information]
                for required in node.information:
                    if not isinstance(required.element, Decision | InputData):
                        raise DrgError(Msg("%(element)s has an information requirement on %(required)s, which is not "
                                           "a decision or input data", element=element.describe(),
                                           required=required.element.describe()))
                node.knowledge = [self._find(node.model, href, element, Msg("the knowledge model"))
                                  for href in element.knowledge]
            elif isinstance(element, BusinessKnowledgeModel):
                node.knowledge = [self._find(node.model, href, element, Msg("the knowledge model"))
                                  for href in element.knowledge]
            elif isinstance(element, DecisionService):
                for href in [*element.outputs, *element.encapsulated, *element.input_decisions, *element.input_data]:
                    self._find(node.model, href, element, Msg("the element"))
            for required in node.knowledge:
                if not isinstance(required.element, BusinessKnowledgeModel | DecisionService):
                    raise DrgError(Msg("%(element)s has a knowledge requirement on %(required)s, which is not a BKM "
                                       "or decision service", element=element.describe(),
                                       required=required.element.describe()))

    def _check_cycles(self) -> None:
        """Decisions must not require each other in a cycle (BKMs may recurse: the budget bounds it)."""
        state: dict[int, int] = {}
        for start in self.nodes.values():
            if not isinstance(start.element, Decision) or state.get(id(start)):
                continue
            stack: list[tuple[_Node, int]] = [(start, 0)]
            path: list[_Node] = []
            while stack:
                node, index = stack.pop()
                if index == 0:
                    if state.get(id(node)) == 2:
                        continue
                    state[id(node)] = 1
                    path.append(node)
                requirements = [r for r in node.information if isinstance(r.element, Decision)]
                if index < len(requirements):
                    stack.append((node, index + 1))
                    following = requirements[index]
                    if state.get(id(following)) == 1:
                        cycle = [*path[path.index(following):], following]
                        names = " → ".join(f"'{n.name}'" for n in cycle)
                        raise DrgError(Msg("%(element)s requires itself through %(names)s; decisions must not "
                                           "require each other in a cycle", element=following.element.describe(),
                                           names=names))
                    if state.get(id(following)) != 2:
                        stack.append((following, 0))
                else:
                    state[id(node)] = 2
                    path.pop()

    # ----------------------------------------------------------------- types

    def _resolve_types(self) -> None:
        for model, prefix in [(self.definitions, ""), *self._prefixed_imports()]:
            for name in model.item_definitions:
                self.types.setdefault(prefix + name, FeelType("Any", prefix + name))
        for model, prefix in [(self.definitions, ""), *self._prefixed_imports()]:
            for name, item in model.item_definitions.items():
                resolved = self._item_type(item, prefix)
                target = self.types[prefix + name]
                target.__dict__.update(resolved.__dict__)
        for node in self.nodes.values():
            node.type = self.type_of(node.element.type_ref, node.prefix)

    def _prefixed_imports(self) -> list[tuple[Definitions, str]]:
        found: list[tuple[Definitions, str]] = []
        stack = [(model, f"{name}.") for name, model in self.definitions.imported.items()]
        while stack:
            model, prefix = stack.pop()
            found.append((model, prefix))
            stack.extend((inner, f"{prefix}{name}.") for name, inner in model.imported.items())
        return found

    def type_of(self, type_ref: str, prefix: str = "") -> FeelType | None:
        if not type_ref:
            return None
        local = type_ref.split(":", 1)[1] if type_ref.startswith(("feel:", "FEEL:")) else type_ref
        if prefix and prefix + local in self.types:
            return self.types[prefix + local]
        return resolve(local, self.types)

    def _item_type(self, item: ItemDefinition, prefix: str) -> FeelType:
        if item.function_parameters is not None:
            base = FeelType("function", item.name,
                            parameters=[self.type_of(t, prefix) or ANY for _, t in item.function_parameters],
                            result=self.type_of(item.function_output, prefix) or ANY)
        elif item.components:
            base = FeelType("context", item.name,
                            fields={c.name: self._item_type(c, prefix) for c in item.components})
        elif item.type_ref:
            found = self.type_of(item.type_ref, prefix) or ANY
            base = FeelType(found.name, item.name, element=found.element, fields=dict(found.fields),
                            allowed=found.allowed, parameters=found.parameters, result=found.result)
        else:
            base = FeelType("Any", item.name)
        constraint = item.allowed_values or item.type_constraint
        if constraint:
            try:
                tests = compile_unary_tests(constraint, self.names if hasattr(self, "names") else ())
            except FeelSyntaxError as error:
                raise DrgError(Msg("<itemDefinition name='%(name)s'> allowed values: %(error)s", name=item.name,
                                   error=message_of(error))) from None
            base.allowed = lambda value, tests=tests: tests.run(value, fi.Scope({}))
        if item.is_collection:
            return FeelType("list", item.name, element=base)
        return base

    # ----------------------------------------------------------------- expressions

    def _feel(self, text: str, where: str) -> Compiled:
        try:
            return compile_expression(text, self.names).run
        except FeelSyntaxError as error:
            if self.lenient:
                message = Msg("%(where)s: %(error)s", where=where, error=message_of(error))
                return lambda scope: fi.null(scope, message)
            raise DrgError(Msg("%(where)s: %(error)s", where=where, error=message_of(error))) from None

    def _boxed(self, boxed: Boxed | None, where: str, prefix: str) -> Compiled:
        compiled = self._boxed_logic(boxed, where, prefix)
        if boxed is None or not boxed.type_ref or isinstance(boxed, FunctionBoxed):
            return compiled
        kind = self.type_of(boxed.type_ref, prefix)
        if kind is None or (kind.name == "Any" and kind.allowed is None):
            return compiled

        def typed(scope: fi.Scope) -> Any:
            value = compiled(scope)
            converted = coerce(value, kind)
            if converted is None and value is not None:
                fi.null(scope, Msg("%(where)s: the value does not conform to %(kind)s, so it is null", where=where,
                                   kind=kind))
            return converted

        return typed

    def _boxed_logic(self, boxed: Boxed | None, where: str, prefix: str) -> Compiled:
        if boxed is None:
            return lambda scope: None
        if isinstance(boxed, LiteralBoxed):
            if not boxed.text.strip():
                return lambda scope: None
            return self._feel(boxed.text, where)
        if isinstance(boxed, TableBoxed):
            return self._table(boxed, where, prefix)
        if isinstance(boxed, ContextBoxed):
            return self._context(boxed, where, prefix)
        if isinstance(boxed, InvocationBoxed):
            return self._invocation(boxed, where, prefix)
        if isinstance(boxed, FunctionBoxed):
            return self._function_value(boxed, where, prefix)
        if isinstance(boxed, RelationBoxed):
            cells = [[self._boxed(cell, Msg("%(where)s relation row %(row)s", where=where, row=r + 1), prefix)
                      for cell in row] for r, row in enumerate(boxed.rows)]
            columns = boxed.columns

            def relation(scope: fi.Scope) -> list[dict[str, Any]]:
                scope.budget.charge(len(cells))
                return [{column: cell(scope) for column, cell in zip(columns, row, strict=False)} for row in cells]
            return relation
        if isinstance(boxed, ListBoxed):
            items = [self._boxed(item, Msg("%(where)s list item %(item)s", where=where, item=i + 1), prefix)
                     for i, item in enumerate(boxed.items)]
            return lambda scope: [item(scope) for item in items]
        if isinstance(boxed, ConditionalBoxed):
            condition = self._boxed(boxed.condition, f"{where} if", prefix)
            then = self._boxed(boxed.then, f"{where} then", prefix)
            otherwise = self._boxed(boxed.otherwise, f"{where} else", prefix)

            def conditional(scope: fi.Scope) -> Any:
                decided = condition(scope)
                if decided is True:
                    return then(scope)
                if decided is False or decided is None:
                    return otherwise(scope)
                return fi.null(scope, Msg("%(where)s: the condition is not a boolean", where=where))
            return conditional
        if isinstance(boxed, FilterBoxed):
            return self._filter(boxed, where, prefix)
        if isinstance(boxed, IteratorBoxed):
            return self._iterator(boxed, where, prefix)
        raise DrgError(Msg("%(where)s: a %(name)s cannot be evaluated", where=where, name=type(boxed).__name__))

    def _coerce_to(self, type_ref: str, prefix: str) -> Callable[[Any], Any]:
        kind = self.type_of(type_ref, prefix)
        if kind is None or (kind.name == "Any" and kind.allowed is None):
            return lambda value: value
        return lambda value: coerce(value, kind)

    def _table(self, boxed: TableBoxed, where: str, prefix: str) -> Compiled:
        table = boxed.table
        assert table is not None
        output_coercions = [self._coerce_to(t, prefix) for t in boxed.output_type_refs]
        names = [clause.name for clause in table.outputs]
        single = boxed.single_output and len(names) == 1

        def shape(row: Any) -> Any:
            if not isinstance(row, dict):
                return row
            converted = {name: coerce_output(row.get(name)) for name, coerce_output in
                         zip(names, output_coercions or [lambda v: v] * len(names), strict=False)}
            return converted[names[0]] if single else converted

        def evaluate(scope: fi.Scope) -> Any:
            try:
                result = evaluate_table(table, {}, scope=scope, budget=scope.budget)
            except DecisionTableError as error:
                if scope.defines("@tables"):
                    scope.lookup("@tables")[table.id] = error
                return fi.null(scope, Msg("%(where)s: %(error)s", where=where, error=message_of(error)))
            if scope.defines("@tables"):
                scope.lookup("@tables")[table.id] = result  # for the report: rules matched, policy
            value = result.value
            if table.hit_policy in SINGLE_HIT_POLICIES:
                return shape(value)
            if table.aggregation is not None:
                return value if table.aggregation != Aggregation.COUNT or not isinstance(value, int) \
                    else to_feel(value)
            return [shape(row) for row in value]

        return evaluate

    def _context(self, boxed: ContextBoxed, where: str, prefix: str) -> Compiled:
        entries = [(name, self._coerce_to(type_ref, prefix),
                    self._boxed(value, Msg("%(where)s entry '%(name)s'", where=where, name=name or "result"), prefix))
                   for name, type_ref, value in boxed.entries]
        has_result = any(name is None for name, _, _ in boxed.entries)

        def evaluate(scope: fi.Scope) -> Any:
            values: dict[str, Any] = {}
            inner = scope.child(values)
            for name, coerce_entry, compiled in entries:
                value = coerce_entry(compiled(inner))
                if name is None:
                    return value
                values[name] = value
            return dict(values) if not has_result else None

        return evaluate

    def _invocation(self, boxed: InvocationBoxed, where: str, prefix: str) -> Compiled:
        callee = self._feel(boxed.callee, Msg("%(where)s invocation", where=where)) if boxed.callee.strip() else None
        bindings = [(name, self._boxed(value, Msg("%(where)s binding '%(name)s'", where=where, name=name), prefix))
                    for name, value in boxed.bindings]

        def evaluate(scope: fi.Scope) -> Any:
            function = callee(scope) if callee is not None else None
            if not isinstance(function, FeelFunction):
                return fi.null(scope, Msg("%(where)s: '%(callee)s' is not a function", where=where,
                                          callee=boxed.callee))
            scope.budget.charge()
            return function.invoke(None, {name: value(scope) for name, value in bindings})

        return evaluate

    def _function_value(self, boxed: FunctionBoxed, where: str, prefix: str) -> Compiled:
        if boxed.kind.upper() != "FEEL":
            message = Msg("%(where)s: functions of kind %(kind)s are not supported", where=where, kind=boxed.kind)
            if not self.lenient:
                raise DrgError(message)
            return lambda scope: fi.null(scope, message)
        body = self._boxed(boxed.body, Msg("%(where)s body", where=where), prefix)
        names = [name for name, _ in boxed.parameters]
        types = [fs.TypeRef(t) if t else None for _, t in boxed.parameters]
        frames = self._frames(boxed.body)
        coercions = [self._coerce_to(t, prefix) for _, t in boxed.parameters]

        def evaluate(scope: fi.Scope) -> FeelFunction:
            def run(inner: fi.Scope) -> Any:
                for name, coerce_param in zip(names, coercions, strict=True):
                    given = inner.vars.get(name)
                    converted = coerce_param(given)
                    if converted is None and given is not None:
                        raise FeelError(Msg("%(where)s: argument '%(name)s' does not conform to its type", where=where,
                                            name=name))
                    inner.vars[name] = converted
                return body(inner)
            return fi.user_function(where, names, [None] * len(types), run, frames, scope)

        return evaluate

    def _frames(self, boxed: Boxed | None) -> int:
        """Roughly the Python frames one call of a function with this body takes (see limits)."""
        if boxed is None:
            return 4
        if isinstance(boxed, LiteralBoxed):
            try:
                return 2 * compile_expression(boxed.text, self.names).tree_height() + 4 if boxed.text.strip() else 4
            except FeelSyntaxError:
                return 4
        if isinstance(boxed, TableBoxed):
            return 24
        return 6 + max((self._frames(part) for part in boxed_parts(boxed)), default=0)

    def _filter(self, boxed: FilterBoxed, where: str, prefix: str) -> Compiled:
        source = self._boxed(boxed.source, f"{where} in", prefix)
        match = self._boxed(boxed.match, f"{where} match", prefix)

        def evaluate(scope: fi.Scope) -> Any:
            items = source(scope)
            if items is None:
                return None
            values = items if isinstance(items, list) else [items]
            scope.budget.charge(len(values))
            kept = []
            for item in values:
                variables = dict(item) if isinstance(item, dict) else {}
                variables.setdefault("item", item)
                outcome = match(scope.child(variables))
                if outcome is True:
                    kept.append(item)
                elif outcome is not False and outcome is not None:
                    return fi.null(scope, Msg("%(where)s: the match is not a boolean", where=where))
            return kept

        return evaluate

    def _iterator(self, boxed: IteratorBoxed, where: str, prefix: str) -> Compiled:
        source = self._boxed(boxed.source, f"{where} in", prefix)
        body = self._boxed(boxed.body, f"{where} {'return' if boxed.kind == 'for' else 'satisfies'}", prefix)
        variable = boxed.variable
        kind = boxed.kind

        def evaluate(scope: fi.Scope) -> Any:
            items = source(scope)
            if items is None:
                return None
            values = items if isinstance(items, list) else [items]
            results: list[Any] = []
            unknown = False
            for item in values:
                scope.budget.charge()
                outcome = body(scope.child({variable: item, "partial": results}))
                if kind == "for":
                    results.append(outcome)
                elif not isinstance(outcome, bool) and outcome is not None:
                    return fi.null(scope, Msg("%(where)s: the condition is not a boolean", where=where))
                elif outcome is (kind == "some"):
                    return kind == "some"
                elif outcome is not (kind != "some"):
                    unknown = True
            if kind == "for":
                return results
            return None if unknown else kind != "some"

        return evaluate

    # ----------------------------------------------------------------- elements

    def _compile_node(self, node: _Node) -> None:
        element = node.element
        where = element.describe()
        if isinstance(element, Decision):
            node.compiled = self._boxed(element.expression, where, node.prefix)
        elif isinstance(element, BusinessKnowledgeModel):
            logic = element.logic or FunctionBoxed()
            node.compiled = self._function_value(logic, where, node.prefix)

    # ----------------------------------------------------------------- evaluation

    def _function_of(self, node: _Node, run: _Run) -> FeelFunction:
        element = node.element
        if isinstance(element, BusinessKnowledgeModel):
            cached = run.functions.get(id(node))
            if cached is None:
                scope = fi.Scope(run.base_variables())
                placeholder: dict[str, Any] = {}
                closure = fi.Scope(placeholder, scope)
                for required in node.knowledge:
                    placeholder[required.element.name] = _Deferred(self, required, run)
                    placeholder[required.name] = placeholder[required.element.name]
                assert node.compiled is not None
                cached = node.compiled(closure)
                cached.name = element.name
                run.functions[id(node)] = cached
                for key, value in list(placeholder.items()):
                    if isinstance(value, _Deferred):
                        placeholder[key] = value.resolve()
            return cached
        assert isinstance(element, DecisionService)
        return self._service_function(node, run)

    def _service_function(self, node: _Node, run: _Run) -> FeelFunction:
        element = node.element
        assert isinstance(element, DecisionService)
        model = node.model
        inputs = [self._find(model, href, element, Msg("the input")) for href in [*element.input_data,
                                                                             *element.input_decisions]]
        outputs = [self._find(model, href, element, Msg("the output decision")) for href in element.outputs]
        params = [required.element.name for required in inputs]

        def call(args: list[Any] | None, named: dict[str, Any] | None) -> Any:
            if named is not None:
                values = {name: named.get(name) for name in params}
                unknown = set(named) - set(params)
                if unknown:
                    raise FeelError(Msg("%(name)s has no parameter %(names)s", name=element.name,
                                        names=", ".join(sorted(unknown))))
            else:
                assert args is not None
                if len(args) != len(params):
                    raise FeelError(Msg("%(name)s takes %(count)s arguments, got %(given)s", name=element.name,
                                        count=len(params), given=len(args)))
                values = dict(zip(params, args, strict=True))
            inner = _Run(self, run.variables, run.now)
            for required in inputs:
                value = values[required.element.name]
                converted = coerce(value, required.type) if required.type else value
                if converted is None and value is not None:
                    raise FeelError(Msg("%(name)s: '%(required)s' must be a %(type)s", name=element.name,
                                        required=required.element.name, type=required.type))
                inner.values[id(required)] = converted
            results = [inner.value(output) for output in outputs]
            value = results[0] if len(outputs) == 1 else \
                {output.element.name: result for output, result in zip(outputs, results, strict=True)}
            declared = node.type.result if node.type is not None and node.type.name == "function" else node.type
            return coerce(value, declared) if declared is not None else value

        return FeelFunction(element.name, params, call)

    def evaluate(self, inputs: Mapping[str, Any], decisions: Iterable[str] | None = None, *,
                 now: datetime | None = None, budget: Budget | None = None) -> Evaluation:
        """Evaluate the named decisions (default: every decision of the main model) from ``inputs``
        (input data values by name; other variables pass through to the decisions' scope)."""
        with metered(budget or Budget(now=now)) as active:
            run = _Run(self, to_feel(dict(inputs)), now)
            wanted = self._wanted(decisions)
            results: dict[str, Any] = {}
            try:
                for node in wanted:
                    results[node.name] = run.value(node)
            except RecursionError:  # a safety net: the frame budget (feel.limits.MAX_FRAMES) comes first
                raise FeelLimitError(Msg("the evaluation nests too deeply")) from None
            order = [self.nodes_by_id[key].name for key in run.order]
            return Evaluation(results, {self.nodes_by_id[key].name: value for key, value in run.decided.items()},
                              order, list(active.notes), dict(run.tables))

    def invoke_service(self, name: str, inputs: Mapping[str, Any], *, now: datetime | None = None) -> Any:
        """Call a decision service by name with its inputs given by name."""
        node = next((n for n in self.nodes.values() if isinstance(n.element, DecisionService)
                     and n.name == name), None)
        if node is None:
            raise DrgError(Msg("no decision service named '%(name)s'", name=name))
        with metered(Budget(now=now)):
            run = _Run(self, to_feel(dict(inputs)), now)
            function = self._service_function(node, run)
            params = function.params or []
            return function.call(None, {param: to_feel(inputs.get(param)) for param in params})

    @property
    def nodes_by_id(self) -> dict[int, _Node]:
        return {id(node): node for node in self.nodes.values()}

    def _wanted(self, decisions: Iterable[str] | None) -> list[_Node]:
        main = [node for node in self.nodes.values() if isinstance(node.element, Decision) and not node.prefix]
        if decisions is None:
            return main
        chosen = []
        for name in decisions:
            node = next((n for n in self.nodes.values() if isinstance(n.element, Decision)
                         and (n.name == name or n.element.id == name)), None)
            if node is None:
                known = ", ".join(repr(n.name) for n in main)
                raise DrgError(Msg("no decision named '%(name)s' (decisions: %(known)s)", name=name, known=known))
            chosen.append(node)
        return chosen

    def decision_names(self) -> list[str]:
        return [node.name for node in self.nodes.values() if isinstance(node.element, Decision)]

    def input_names(self) -> list[str]:
        return [node.name for node in self.nodes.values() if isinstance(node.element, InputData)]


class _Deferred:
    """A BKM's required BKM, resolved once the BKM exists (so BKMs may call each other and recurse)."""

    def __init__(self, graph: Graph, node: _Node, run: _Run) -> None:
        self.graph, self.node, self.run = graph, node, run

    def resolve(self) -> FeelFunction:
        return self.graph._function_of(self.node, self.run)


@dataclass
class Evaluation:
    """The outcome of evaluating a graph: the requested decisions' values by name, every decision
    computed on the way (in dependency order) and the notes (why something became null)."""

    results: dict[str, Any]
    decided: dict[str, Any]
    order: list[str]
    notes: list[str]
    #: the decision tables evaluated, by decision id (hit policy, matched and selected rules)
    tables: dict[str, Any] = field(default_factory=dict)


class _Run:
    """One evaluation: the values computed so far, each decision computed once."""

    def __init__(self, graph: Graph, variables: dict[str, Any], now: datetime | None) -> None:
        self.graph = graph
        self.variables = variables
        self.now = now
        self.values: dict[int, Any] = {}
        self.decided: dict[int, Any] = {}
        self.order: list[int] = []
        self.functions: dict[int, FeelFunction] = {}
        self.active: set[int] = set()
        #: the last evaluation of each decision table, by table id (decision id)
        self.tables: dict[str, Any] = {}

    def base_variables(self) -> dict[str, Any]:
        return {"@types": self.graph.types, "@tables": self.tables, **self.variables}

    def value(self, node: _Node) -> Any:
        key = id(node)
        if key in self.values:
            return self.values[key]
        element = node.element
        if isinstance(element, InputData):
            given = self.variables.get(node.name, self.variables.get(element.name))
            if given is None and "." in node.name:
                head, _, rest = node.name.partition(".")
                container = self.variables.get(head)
                if isinstance(container, dict):
                    given = container.get(rest)
            value = coerce(given, node.type) if node.type is not None else given
            self.values[key] = value
            return value
        if not isinstance(element, Decision):
            raise DrgError(Msg("%(element)s is not a decision", element=element.describe()))
        variables = self.base_variables()
        for required in node.information:
            value = self.value(required)
            if isinstance(value, dict) and isinstance(required.element, Decision) \
                    and isinstance(required.element.expression, TableBoxed):
                # as Camunda does: a required table's outputs are also variables by their own names
                for output_name, item in value.items():
                    variables.setdefault(output_name, item)
            variables[required.element.name] = value
            qualifier = _qualifier(node.model, required.model)
            if qualifier:
                _set_qualified(variables, qualifier, required.element.name, value)
        for required in node.knowledge:
            function = self.graph._function_of(required, self)
            variables[required.element.name] = function
            qualifier = _qualifier(node.model, required.model)
            if qualifier:
                _set_qualified(variables, qualifier, required.element.name, function)
        assert node.compiled is not None
        try:
            result = node.compiled(fi.Scope(variables))
        except (FeelError, DecisionTableError) as error:
            fi.current_budget().note(Msg("%(element)s: %(error)s", element=element.describe(), error=message_of(error)))
            result = None
        except FeelLimitError:
            raise
        except (ValidationError, ArithmeticError) as error:
            fi.current_budget().note(Msg("%(element)s: %(error)s", element=element.describe(), error=message_of(error)))
            result = None
        if node.type is not None:
            converted = coerce(result, node.type)
            if converted is None and result is not None:
                fi.current_budget().note(Msg("%(element)s: the result does not conform to its type %(type)s, so it is "
                                         "null", element=element.describe(), type=node.type))
            result = converted
        self.values[key] = result
        self.decided[key] = result
        self.order.append(key)
        return result


def _qualifier(model: Definitions, required: Definitions) -> str:
    """The name ``model`` imports ``required`` under (empty for the same model)."""
    if required is model or required.namespace == model.namespace:
        return ""
    return next((i.name for i in model.imports if i.namespace == required.namespace), "")


def _set_qualified(variables: dict[str, Any], qualifier: str, name: str, value: Any) -> None:
    """Make an imported element visible as ``import.Name`` (a context under the import's name)."""
    current = variables.get(qualifier)
    if not isinstance(current, dict):
        current = {}
        variables[qualifier] = current
    current[name] = value


def boxed_texts(boxed: Boxed | None) -> list[str]:
    """Every FEEL text inside a boxed expression (for reports and checks)."""
    if boxed is None:
        return []
    if isinstance(boxed, LiteralBoxed):
        return [boxed.text]
    if isinstance(boxed, TableBoxed) and boxed.table is not None:
        table = boxed.table
        cells = [entry for rule in table.rules for entry in rule.input_entries + rule.output_entries]
        return [clause.expression for clause in table.inputs] + cells
    texts = [boxed.callee] if isinstance(boxed, InvocationBoxed) else []
    return texts + [text for part in boxed_parts(boxed) for text in boxed_texts(part)]


def boxed_parts(boxed: Boxed) -> list[Boxed | None]:
    """The boxed expressions directly inside ``boxed`` (none in a literal or a decision table)."""
    if isinstance(boxed, ContextBoxed):
        return [value for _, _, value in boxed.entries]
    if isinstance(boxed, InvocationBoxed):
        return [value for _, value in boxed.bindings]
    if isinstance(boxed, ListBoxed):
        return list(boxed.items)
    if isinstance(boxed, RelationBoxed):
        return [cell for row in boxed.rows for cell in row]
    if isinstance(boxed, ConditionalBoxed):
        return [boxed.condition, boxed.then, boxed.otherwise]
    if isinstance(boxed, FilterBoxed):
        return [boxed.source, boxed.match]
    if isinstance(boxed, IteratorBoxed):
        return [boxed.source, boxed.body]
    if isinstance(boxed, FunctionBoxed):
        return [boxed.body]
    return []
