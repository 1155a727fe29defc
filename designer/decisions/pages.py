"""The decision-graph page (``/decisions``): import a DMN model and see its decision requirement graph —
decisions, input data, business knowledge models and their requirements, drawn as a server-rendered SVG
(:mod:`decisions.diagram` lays it out). Each decision table opens in the grid editor
(``static/decisions/decision_table.js``, the one the canvas uses) and exports as DMN 1.3; literal
expressions and BKMs show their FEEL. "Evaluate" runs the whole graph on the inputs given
(``POST /api/decisions/graph/evaluate``, with the edited tables) and shows every decision's result by
name, in the list and in the graph (``static/decisions/drg.js``).

Nothing is stored (as for tables: a table lives in its flow node): the model's XML travels with the page.
Without JavaScript the graph, the tables' JSON and the FEEL are still shown.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile

from decisions import diagram, drg, workbench
from decisions.dmn_xml import MAX_DOCUMENT_BYTES, DmnImportError, load_graph
from designer.decisions import labels as _labels  # noqa: F401  (its status labels)
from designer.decisions.js_text import js_text as dmn_js_text
from designer.i18n import _, translate
from designer.pages import PageRoute, page_user, render
from designer.permissions import FLOW_EDITORS
from engine.db.models import User
from engine.text import message_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Editor = Annotated[User, Depends(page_user(*FLOW_EDITORS))]

#: a box's name is written on at most two lines of about this many columns (a CJK character is two)
LINE_COLUMNS = 21
#: the FEEL shown for a literal expression or BKM body is cut after this many characters
MAX_SHOWN_FEEL = 4000
#: the input widgets by FEEL type (anything else is typed as FEEL)
WIDGETS = {"number": "number", "string": "string", "boolean": "boolean", "date": "date"}


def _columns(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def box_lines(name: str, columns: int = LINE_COLUMNS) -> list[str]:
    """A name on at most two lines, broken at spaces where possible, the rest cut with an ellipsis."""
    lines: list[str] = []
    current = ""
    width = 0
    for word in name.split(" "):
        word_width = sum(_columns(c) for c in word)
        if current and width + 1 + word_width <= columns:
            current, width = f"{current} {word}", width + 1 + word_width
            continue
        if current:
            lines.append(current)
        current, width = word, word_width
        while width > columns:  # a long word breaks where camelCase or a hyphen allows, else anywhere
            cut, used = 0, 0
            while cut < len(current) and used + _columns(current[cut]) <= columns:
                used += _columns(current[cut])
                cut += 1
            joints = [i for i in range(columns // 3, cut) if current[i - 1] in "-_/"
                      or (current[i - 1].islower() and current[i].isupper())]
            cut = joints[-1] if joints else cut
            lines.append(current[:cut])
            current = current[cut:]
            width = sum(_columns(c) for c in current)
    if current:
        lines.append(current)
    if len(lines) > 2:
        second = lines[1]
        while second and sum(_columns(c) for c in second) > columns - 1:
            second = second[:-1]
        lines = [lines[0], second.rstrip() + "…"]
    return lines or [""]


@dataclass
class Element:
    """What the page shows about one element besides its box."""

    key: str
    name: str
    kind: str
    logic: str
    type_ref: str
    table_json: str = ""
    feel: str = ""
    parameters: list[tuple[str, str]] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)


@dataclass
class Model:
    name: str
    namespace: str
    version: str
    xml: str
    picture: diagram.Diagram
    lines: dict[str, list[str]]
    elements: list[Element]
    inputs: list[dict[str, str]]


def _feel(boxed: drg.Boxed | None) -> str:
    if isinstance(boxed, drg.LiteralBoxed):
        return boxed.text.strip()[:MAX_SHOWN_FEEL]
    return "\n".join(t.strip() for t in drg.boxed_texts(boxed) if t.strip())[:MAX_SHOWN_FEEL]


def model_view(xml: str, graph: drg.Graph) -> Model:
    picture = diagram.layout(graph)
    nodes = {workbench.element_key(n): n for n in graph.nodes.values()}
    names = {b.key: b.name for b in picture.boxes}
    requires: dict[str, list[str]] = {}
    for arrow in picture.arrows:
        requires.setdefault(arrow.target, []).append(names[arrow.source])
    elements: list[Element] = []
    inputs: list[dict[str, str]] = []
    for box in picture.boxes:
        node = nodes[box.key]
        element = node.element
        shown = Element(box.key, box.name, box.kind, box.logic, element.type_ref, requires=requires.get(box.key, []))
        boxed = workbench.table_boxed(element)
        if boxed is not None and boxed.table is not None:
            shown.table_json = json.dumps(boxed.table.model_dump(mode="json"), ensure_ascii=False, indent=1)
        elif box.kind in ("decision", "bkm"):
            shown.feel = _feel(box.expression)
        if isinstance(element, drg.BusinessKnowledgeModel) and element.logic is not None:
            shown.parameters = list(element.logic.parameters)
        if box.kind == "input":
            kind = node.type.name if node.type is not None else ""
            inputs.append({"name": box.name, "key": box.key, "type": str(node.type or element.type_ref or ""),
                           "widget": WIDGETS.get(kind, "feel")})
        elements.append(shown)
    definitions = graph.definitions
    return Model(definitions.name, definitions.namespace, definitions.version, xml, picture,
                 {b.key: box_lines(b.name) for b in picture.boxes}, elements, inputs)


def _dmn_text() -> str:
    return json.dumps(dmn_js_text(), ensure_ascii=False)


def _page(request: Request, user: User, model: Model | None = None, problem: str = "",
          status_code: int = 200) -> HTMLResponse:
    return render(request, user, "decisions/graph.html", status_code=status_code, model=model, problem=problem,
                  dmn_text=_dmn_text(), max_mb=MAX_DOCUMENT_BYTES // 1_000_000)


@router.get("/decisions", response_class=HTMLResponse)
def graph_page(request: Request, user: Editor) -> HTMLResponse:
    """The import form."""
    return _page(request, user)


async def _uploaded(request: Request) -> tuple[str, str]:
    """(the document's text, a problem) from the form's file."""
    form = await request.form()
    upload = form.get("dmn")
    raw = await upload.read(MAX_DOCUMENT_BYTES + 1) if isinstance(upload, UploadFile) else b""
    if not raw.strip():
        return "", _("Choose a DMN file.")
    if len(raw) > MAX_DOCUMENT_BYTES:
        return "", _("The file is larger than %(mb)s MB.") % {"mb": MAX_DOCUMENT_BYTES // 1000000}
    try:
        return raw.decode("utf-8"), ""
    except UnicodeDecodeError:
        return "", _("The file is not UTF-8: save it as UTF-8 in your DMN tool.")


@router.post("/decisions", response_class=HTMLResponse)
async def import_model(request: Request, user: Editor) -> HTMLResponse:
    """Read the uploaded DMN model and draw its graph; a model that does not load says why."""
    xml, problem = await _uploaded(request)
    if problem:
        return _page(request, user, problem=problem, status_code=400)
    try:
        graph = load_graph(xml, resolve_import=lambda imported: None)
    except DmnImportError as exc:
        reason = translate(message_of(exc))
        return _page(request, user, problem=_("This model cannot be read: %(reason)s") % {"reason": reason},
                     status_code=400)
    except (ValueError, SyntaxError) as exc:
        return _page(request, user, problem=_("Not a complete XML document: %(reason)s") % {"reason": exc},
                     status_code=400)
    return _page(request, user, model_view(xml, graph))
