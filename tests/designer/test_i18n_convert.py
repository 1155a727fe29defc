"""tools/i18n_convert.py turns an area written with the old keyed catalogue (text.py + ``t.key`` templates)
into gettext, and tools/msg_convert.py turns error messages into translatable ``Msg`` templates: the
rewritten code runs and says the same in both languages."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from babel.messages.pofile import read_po
from jinja2 import Environment, FileSystemLoader

from designer import display, i18n

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def _tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_an_old_style_area_converts_to_gettext(tmp_path: Path) -> None:
    convert = _tool("i18n_convert")
    area = tmp_path / "designer" / "growth"
    templates = tmp_path / "designer" / "templates" / "growth"
    area.mkdir(parents=True)
    templates.mkdir(parents=True)
    (area / "text.py").write_text('''from designer import i18n

_STRINGS = (("gr.title", "渠道活码", "Channel QR codes"), ("gr.count", "共 {n} 个活码", "{n} codes"))
i18n.add({"zh-CN": {k: zh for k, zh, _ in _STRINGS}, "en": {k: en for k, _, en in _STRINGS}})
i18n.add({"zh-CN": {"gr.none": "还没有活码。", "gr.open": "打开"},
          "en": {"gr.none": "No codes yet.", "gr.open": "Open"}})
''', encoding="utf-8")
    (area / "pages.py").write_text('''from __future__ import annotations

from designer.i18n import text_for


def heading(t, n):
    return t["gr.title"] + " " + t["gr.count"].format(n=n)


def empty(request):
    _, t = text_for(request)
    return t["gr.none"]
''', encoding="utf-8")
    (templates / "list.html").write_text(
        "<h1>{{ t['gr.title'] }}</h1><p>{{ t['gr.count'].format(n=codes|length) }}</p>"
        "<p>{{ t.get('gr.none') if not codes else '' }}</p><a>{{ t['gr.open'] }}</a><b>{{ t['pg.search'] }}</b>"
        "<i>{{ t['gr.st.' ~ status] }}</i>", encoding="utf-8")
    po = tmp_path / "messages.po"
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
                  'msgid "Open"\nmsgstr "待处理"\n', encoding="utf-8")  # the same English, another meaning

    report = convert.convert([area], po=po)

    page = (templates / "list.html").read_text(encoding="utf-8")
    assert "_(\"Channel QR codes\")" in page and '_("%(n)s codes", n=codes|length)' in page
    assert 'pgettext("gr.open", "Open")' in page and '_("Search")' in page  # a key of main's old catalogue
    assert any("gr.st." in todo for todo in report.todo)  # a computed key is left for a person
    code = (area / "pages.py").read_text(encoding="utf-8")
    assert "from designer.i18n import _" in code and '_("%(n)s codes") % {"n": n}' in code
    with po.open("rb") as handle:
        catalog = read_po(handle, locale="zh_CN")
    assert catalog.get("Channel QR codes").string == "渠道活码"
    assert catalog.get("%(n)s codes").string == "共 %(n)s 个活码"
    assert catalog.get("Open").string == "待处理" and catalog.get("Open", "gr.open").string == "打开"

    namespace: dict[str, object] = {}
    exec(compile(code, "pages.py", "exec"), namespace)  # noqa: S102  (the rewritten Python runs)
    with i18n.language("en"):
        assert namespace["heading"](None, 3) == "Channel QR codes 3 codes"  # type: ignore[operator]
        # ``_, t = text_for(request)`` goes: kept as ``_ = ...`` it would hide gettext
        assert "text_for" not in code and namespace["empty"](None) == "No codes yet."  # type: ignore[operator]

    env = Environment(loader=FileSystemLoader(str(templates)), autoescape=True)
    i18n.install(env)
    display.install(env)
    env.globals["t"] = {}
    with i18n.language("en"):
        html = env.get_template("list.html").render(codes=[1, 2], status="x")
    assert "<h1>Channel QR codes</h1><p>2 codes</p><p></p><a>Open</a><b>Search</b>" in html
    with i18n.language("en"):
        assert "<p>No codes yet.</p>" in env.get_template("list.html").render(codes=[], status="x")


def test_error_messages_become_msg_templates(tmp_path: Path) -> None:
    msg_convert = _tool("msg_convert")
    source = tmp_path / "api.py"
    source.write_text('''from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status, message, fix="", field=None):
        super().__init__(message)
        self.message, self.fix, self.field = message, fix, field


def find(flows, flow_id):
    if flow_id not in flows:
        raise ApiError(404, f"there is no flow '{flow_id}' (¥{len(flows)} …)", "GET /api/flows lists them", "id")
    return flows[flow_id]
''', encoding="utf-8")
    assert msg_convert.convert(source) == 2
    code = source.read_text(encoding="utf-8")
    assert "from engine.text import Msg" in code
    assert "Msg(\"there is no flow '%(flow_id)s' (¥%(value)s …)\", flow_id=flow_id, value=len(flows))" in code
    namespace: dict[str, object] = {}
    exec(compile(code, "api.py", "exec"), namespace)  # noqa: S102
    try:
        namespace["find"]({}, "x")  # type: ignore[operator]
    except Exception as exc:
        assert str(exc) == "there is no flow 'x' (¥0 …)" and exc.field == "id"  # type: ignore[attr-defined]
        assert exc.args[0].template == "there is no flow '%(flow_id)s' (¥%(value)s …)"
