"""A decision requirement graph laid out for drawing: boxes for decisions, input data, business
knowledge models and decision services, arrows for their requirements (pure; the designer draws it).

Layout, as DMN diagrams are usually drawn: information flows **upwards**. An element's *rank* is the
length of the longest chain of elements that require it: the decisions nothing requires are rank 0, the
top row, and every element sits below everything that requires it — so input data and knowledge models
end up under the decisions that use them, and a decision that needs nothing (a constant) sits next to
its siblings rather than among the inputs. Within a row, elements are ordered by the mean position of
what they are connected to in the rows already placed (a few sweeps down and up, which untangles most
crossings), starting from document order, so the same model always gives the same picture. A row holds
at most :data:`MAX_PER_ROW` boxes; a rank with more wraps onto extra rows.

Arrows (DMN 1.5 §6.2.3): an *information requirement* is a solid line with a filled head, from the
required decision or input data to the decision that requires it; a *knowledge requirement* is a dashed
line with an open head, from a BKM or decision service to the decision or BKM that invokes it. Each
arrow leaves the top of its source and enters the bottom of its target; several arrows at one side are
spread along it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from decisions import drg

BOX_WIDTH = 184
BOX_HEIGHT = 72
INPUT_HEIGHT = 48
GAP_X = 40
GAP_Y = 76
PADDING = 24
MAX_PER_ROW = 6
SWEEPS = 4

#: the logic of a decision or BKM, by boxed expression
LOGIC = {drg.TableBoxed: "table", drg.LiteralBoxed: "literal", drg.ContextBoxed: "context",
         drg.InvocationBoxed: "invocation", drg.FunctionBoxed: "function", drg.RelationBoxed: "relation",
         drg.ListBoxed: "list", drg.ConditionalBoxed: "conditional", drg.FilterBoxed: "filter",
         drg.IteratorBoxed: "iterator"}
KINDS = {drg.Decision: "decision", drg.InputData: "input", drg.BusinessKnowledgeModel: "bkm",
         drg.DecisionService: "service"}


@dataclass
class Box:
    """One element: ``key`` is unique in the graph (an imported element's key starts with its import
    name and a dot, like its name)."""

    key: str
    id: str
    name: str
    kind: str  # decision, input, bkm, service
    logic: str  # table, literal, context, … ("" for input data and services, "none" for no logic)
    type_ref: str
    rank: int
    x: int = 0
    y: int = 0
    width: int = BOX_WIDTH
    height: int = BOX_HEIGHT
    expression: drg.Boxed | None = None

    @property
    def centre_x(self) -> float:
        return self.x + self.width / 2


@dataclass
class Arrow:
    source: str  # the required element's key
    target: str  # the requiring element's key
    kind: str  # information or knowledge
    start: tuple[float, float] = (0.0, 0.0)
    end: tuple[float, float] = (0.0, 0.0)

    @property
    def path(self) -> str:
        """An SVG path: a curve leaving the source vertically and entering the target vertically."""
        (x1, y1), (x2, y2) = self.start, self.end
        middle = (y1 + y2) / 2
        return f"M{x1:.1f},{y1:.1f} C{x1:.1f},{middle:.1f} {x2:.1f},{middle:.1f} {x2:.1f},{y2:.1f}"


@dataclass
class Diagram:
    boxes: list[Box] = field(default_factory=list)
    arrows: list[Arrow] = field(default_factory=list)
    width: int = 0
    height: int = 0

    def box(self, key: str) -> Box:
        return next(b for b in self.boxes if b.key == key)


def _logic(element: drg.Element) -> tuple[str, drg.Boxed | None]:
    if isinstance(element, drg.Decision):
        expression = element.expression
    elif isinstance(element, drg.BusinessKnowledgeModel):
        expression = element.logic.body if element.logic is not None else None
    else:
        return "", None
    return (LOGIC.get(type(expression), "none") if expression is not None else "none"), expression


def _ranks(keys: list[str], above: dict[str, list[str]]) -> dict[str, int]:
    """The longest chain of elements above each element (``above``: the elements that require it; cycles,
    which BKMs may form by calling each other, are cut where they close)."""
    rank: dict[str, int] = {}
    for start in keys:
        if start in rank:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        on_path: set[str] = set()
        while stack:
            key, index = stack.pop()
            if index == 0:
                on_path.add(key)
            children = [c for c in above.get(key, []) if c not in on_path]
            pending = next((i for i in range(index, len(children)) if children[i] not in rank), None)
            if pending is not None:
                stack.append((key, pending + 1))
                stack.append((children[pending], 0))
                continue
            rank[key] = 1 + max((rank[c] for c in children if c in rank), default=-1)
            on_path.discard(key)
    return rank


def _rows(boxes: list[Box], neighbours: dict[str, list[str]]) -> list[list[Box]]:
    """Boxes in rows, top row (rank 0) first, each row ordered to keep arrows short."""
    by_rank: dict[int, list[Box]] = {}
    for box in boxes:
        by_rank.setdefault(box.rank, []).append(box)
    ranks = sorted(by_rank)
    order = {b.key: float(i) for rank in ranks for i, b in enumerate(by_rank[rank])}
    for sweep in range(SWEEPS):
        for rank in (ranks if sweep % 2 == 0 else list(reversed(ranks))):
            row = by_rank[rank]

            def mean(box: Box) -> float:
                linked = [order[n] for n in neighbours.get(box.key, []) if n in order]
                return sum(linked) / len(linked) if linked else order[box.key]

            row.sort(key=lambda b: (mean(b), order[b.key]))
            for index, box in enumerate(row):
                order[box.key] = float(index)
    rows: list[list[Box]] = []
    for rank in ranks:
        row = by_rank[rank]
        rows.extend(row[i:i + MAX_PER_ROW] for i in range(0, len(row), MAX_PER_ROW))
    return rows


def layout(graph: drg.Graph) -> Diagram:
    """The graph's elements placed in rows and its requirements as arrows."""
    boxes: list[Box] = []
    above: dict[str, list[str]] = {}
    arrows: list[Arrow] = []
    for node in graph.nodes.values():
        element = node.element
        kind = KINDS.get(type(element))
        if kind is None:
            continue
        key = node.prefix + element.id
        logic, expression = _logic(element)
        boxes.append(Box(key, element.id, node.name, kind, logic, element.type_ref, 0,
                         height=INPUT_HEIGHT if kind == "input" else BOX_HEIGHT, expression=expression))
        required = [(r, "information") for r in node.information] + [(r, "knowledge") for r in node.knowledge]
        for other, arrow_kind in required:
            source = other.prefix + other.element.id
            if source == key:
                continue  # a BKM that calls itself: recursion needs no arrow
            above.setdefault(source, []).append(key)
            arrows.append(Arrow(source, key, arrow_kind))
    keys = [b.key for b in boxes]
    ranks = _ranks(keys, above)
    for box in boxes:
        box.rank = ranks[box.key]
    neighbours: dict[str, list[str]] = {}
    for arrow in arrows:
        neighbours.setdefault(arrow.source, []).append(arrow.target)
        neighbours.setdefault(arrow.target, []).append(arrow.source)
    rows = _rows(boxes, neighbours)
    widest = max((len(row) for row in rows), default=0)
    width = 2 * PADDING + widest * BOX_WIDTH + max(0, widest - 1) * GAP_X
    y = PADDING
    for row in rows:
        row_width = len(row) * BOX_WIDTH + (len(row) - 1) * GAP_X
        x = (width - row_width) // 2
        tallest = max(b.height for b in row)
        for box in row:
            box.x, box.y = x, y + (tallest - box.height) // 2
            x += BOX_WIDTH + GAP_X
        y += tallest + GAP_Y
    diagram = Diagram(boxes, arrows, width, max(y - GAP_Y + PADDING, 2 * PADDING))
    _attach(diagram)
    return diagram


def _spread(box: Box, count: int, index: int) -> float:
    return box.x + box.width * (index + 1) / (count + 1)


def _attach(diagram: Diagram) -> None:
    """Where each arrow leaves its source and enters its target: sources' tops and targets' bottoms when
    the target is above, the other way round when not; arrows at one side spread in the order of the
    boxes at their other ends, so they do not cross there."""
    boxes = {b.key: b for b in diagram.boxes}
    ends: dict[tuple[str, str], list[tuple[float, Arrow, bool]]] = {}
    for arrow in diagram.arrows:
        source, target = boxes[arrow.source], boxes[arrow.target]
        upward = source.y >= target.y
        ends.setdefault((source.key, "top" if upward else "bottom"), []).append((target.centre_x, arrow, True))
        ends.setdefault((target.key, "bottom" if upward else "top"), []).append((source.centre_x, arrow, False))
    for (key, side), attached in ends.items():
        box = boxes[key]
        attached.sort(key=lambda item: item[0])
        y = box.y if side == "top" else box.y + box.height
        for index, (_, arrow, leaving) in enumerate(attached):
            point = (_spread(box, len(attached), index), float(y))
            if leaving:
                arrow.start = point
            else:
                arrow.end = point


def element_keys(boxes: Iterable[Box], kind: str) -> list[str]:
    return [b.key for b in boxes if b.kind == kind]
