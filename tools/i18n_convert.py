"""Convert an area's old keyed page text (``text.py`` with ``i18n.add({"zh-CN": {...}, "en": {...}})`` and
templates using ``t.key`` / ``t['key']``) to gettext: English msgids, the Chinese in the zh_CN catalogue.

    .venv/bin/python tools/i18n_convert.py designer/growth            # rewrite files, add the translations
    .venv/bin/python tools/i18n_convert.py --dry-run designer/growth  # only say what it would do
    make i18n                                                          # then extract and check

What it does, for every directory given (an area package ``designer/<area>``; its templates are
``designer/templates/<area>``, found from the package name, or pass the templates directory too):

* reads the old catalogues from the area's Python files (any ``i18n.add(...)`` call; module-level
  literal tables it uses are understood) and from ``tools/i18n_legacy_keys.json`` (every key main had when
  the catalogues moved to gettext, so ``t['pg.search']`` still resolves);
* rewrites templates: ``t.key``, ``t['key']`` → ``_("English")``; ``t['key'].format(n=x)`` →
  ``_("English %(n)s", n=x)``;
* rewrites Python: ``t["key"]`` / ``t.get("key", …)`` → ``_("English")``; ``t["key"].format(n=x)`` and
  ``_fmt(t, "key", n=x)`` → ``_("English %(n)s") % {"n": x}``; adds ``from designer.i18n import _``;
* adds each (English → 中文) pair to ``designer/locale/zh_CN/LC_MESSAGES/messages.po``. An English text that
  already has another Chinese translation gets a context (``pgettext``/``{{ pgettext(...) }}``), named after
  the old key — rename it to something meaningful if you like ("ticket status").

It leaves alone, and lists for you to finish by hand: keys built at run time (``t['tk.st.' ~ s]``,
``t[f"role.{r}"]``: use the ``label`` filter / ``display.label`` for statuses and other enums),
``t.get(key)`` with a computed key, and keys it cannot find. Delete ``text.py`` and its imports afterwards.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

sys.path.insert(0, str(Path(__file__).resolve().parent))
from msg_convert import wrap

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "designer" / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
LEGACY = Path(__file__).resolve().parent / "i18n_legacy_keys.json"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass
class Entry:
    en: str
    zh: str


@dataclass
class Report:
    changed: list[Path] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)
    added: list[tuple[str, str | None, str]] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)


# --- reading the old catalogues ------------------------------------------------------------------


def _literal_names(tree: ast.Module) -> dict[str, object]:
    names: dict[str, object] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if value is None:
            continue
        try:
            literal = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                names[target.id] = literal
    return names


def old_catalogue(path: Path) -> dict[str, Entry]:
    """Every key added by ``i18n.add(...)`` in one Python file."""
    source = path.read_text(encoding="utf-8")
    if "i18n.add(" not in source:
        return {}
    tree = ast.parse(source)
    names = _literal_names(tree)
    out: dict[str, Entry] = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "i18n" and node.args):
            expr = ast.Expression(node.args[0])
            value = eval(compile(expr, str(path), "eval"), {"__builtins__": {}}, dict(names))  # noqa: S307
            zh, en = value.get("zh-CN", {}), value.get("en", {})
            for key in en:
                out[key] = Entry(en[key], zh.get(key, ""))
    return out


def legacy_catalogue() -> dict[str, Entry]:
    if not LEGACY.is_file():
        return {}
    data = json.loads(LEGACY.read_text(encoding="utf-8"))
    return {k: Entry(v["en"], v["zh-CN"]) for k, v in data.items()}


# --- the msgids ----------------------------------------------------------------------------------


def to_gettext(text: str, template: bool) -> str:
    """``{n}`` placeholders become ``%(n)s``; a literal ``%`` is doubled where the string is %-formatted
    (always in templates; in Python when it has placeholders)."""
    formatted = template or bool(PLACEHOLDER.search(text))
    if formatted:
        text = text.replace("%", "%%")
    return PLACEHOLDER.sub(r"%(\1)s", text)


class Catalogue:
    """The zh_CN catalogue being extended: (msgid, context) → Chinese."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_file():
            with path.open("rb") as handle:
                self.catalog = read_po(handle, locale="zh_CN")
        else:
            self.catalog = Catalog(locale="zh_CN", project="Tideflow", domain="messages")
        self.added: list[tuple[str, str | None, str]] = []

    def context_for(self, key: str, msgid: str, zh: str) -> str | None:
        """None if ``msgid`` can stand alone with this translation; else a context for it."""
        existing = self.catalog.get(msgid)
        if existing is None or not existing.string or existing.string == zh or existing.fuzzy:
            return None
        return key

    def add(self, msgid: str, zh: str, context: str | None) -> None:
        existing = self.catalog.get(msgid, context)
        if existing is not None and existing.string and not existing.fuzzy:
            return
        if existing is not None:
            existing.string, existing.flags = zh, {f for f in existing.flags if f != "fuzzy"}
        else:
            flags = ["python-format"] if "%" in msgid else []
            self.catalog.add(msgid, zh, context=context, flags=flags)
        self.added.append((msgid, context, zh))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("wb") as handle:
            write_po(handle, self.catalog, width=0, sort_output=False)


# --- rewriting -----------------------------------------------------------------------------------


def _balanced(text: str, start: int) -> int:
    """Index just after the parenthesis group opening at ``text[start] == '('``."""
    depth, i, quote = 0, start, ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced parentheses")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


KEY = r"[\w.:\- ]+"
SUBSCRIPT = re.compile(r"(?<![\w.])t\[(['\"])(" + KEY + r")\1\]")
ATTRIBUTE = re.compile(r"(?<![\w.])t\.([a-z_]\w*(?:\.\w+)*)")
GET = re.compile(r"(?<![\w.])t\.get\((['\"])(" + KEY + r")\1(?:\s*,\s*[^()]*?)?\)")
#: ``t['tk.st.' ~ s]`` / ``t.get('ik.' ~ i.kind, i.kind)`` in a template: prefix, value expression
COMPUTED_TEMPLATE = re.compile(r"(?<![\w.])t(?:\[|\.get\()(['\"])([\w.:\- ]+\.)\1\s*~\s*([^\],()]+(?:\([^()]*\))?)"
                               r"(?:\]|\s*(?:,[^()]*)?\))")
#: ``t[f"role.{r}"]`` / ``t.get(f"tk.sla.{x}", x)`` in Python: prefix, value expression
COMPUTED_PYTHON = re.compile(r"(?<![\w.])t(?:\[f|\.get\(f)[\"']([\w.:\- ]+\.)\{([^}]+)\}[\"'](?:\]|(?:\s*,[^()]*)?\))")
#: old key prefixes whose values designer/display.py already labels
KNOWN_TABLES = {"js.": "journey_status", "fs.": "flow_status", "kind.": "flow_kind", "ss.": "statement_status",
                "tk.st.": "ticket_status", "tk.rs.": "review_status", "tk.av.": "availability", "role.": "role",
                "tk.scope.": "ticket_scope", "tk.sla.": "sla_metric", "tk.actor.": "ticket_actor",
                "tk.esc.": "escalation", "tk.review.outcome.": "review_outcome", "ik.": "identity_kind",
                "cat.": "node_category", "what.": "preview_step", "ms.": "message_status"}
FMT_CALL = re.compile(r"(?<![\w.])_fmt\(t,\s*(['\"])(" + KEY + r")\1")


class Converter:
    def __init__(self, keys: dict[str, Entry], catalogue: Catalogue, report: Report) -> None:
        self.keys, self.catalogue, self.report = keys, catalogue, report
        self.used_gettext = False
        #: label tables for keys built at run time (``t['tk.st.' ~ s]``): prefix → {value: English}
        self.tables: dict[str, dict[str, str]] = {}

    def table(self, prefix: str) -> str | None:
        """The label kind for the keys under ``prefix`` (a table made from them), or None if there are none.
        Kinds main already has (statuses, roles…) are used as they are."""
        known = KNOWN_TABLES.get(prefix)
        if known is not None:
            return known
        entries = {k[len(prefix):]: e for k, e in self.keys.items() if k.startswith(prefix) and len(k) > len(prefix)}
        if not entries:
            return None
        kind = prefix.rstrip(".")
        table = self.tables.setdefault(kind, {})
        for value, entry in entries.items():
            table[value] = entry.en
            self.catalogue.add(to_gettext(entry.en, False), to_gettext(entry.zh, False), kind)
        return kind

    def msgid(self, key: str, template: bool) -> tuple[str, str | None] | None:
        entry = self.keys.get(key)
        if entry is None:
            return None
        msgid = to_gettext(entry.en, template)
        zh = to_gettext(entry.zh, template)
        context = self.catalogue.context_for(key, msgid, zh)
        self.catalogue.add(msgid, zh, context)
        return msgid, context

    # templates
    def template(self, text: str, where: Path) -> str:
        def get(match: re.Match[str]) -> str:
            found = self.msgid(match.group(2), template=True)
            if found is None:
                return match.group(0)
            msgid, context = found
            return f"pgettext({_quote(context)}, {_quote(msgid)})" if context else f"_({_quote(msgid)})"

        text = GET.sub(get, text)
        out, pos = [], 0
        for match in SUBSCRIPT.finditer(text):
            out.append(text[pos:match.start()])
            key, end = match.group(2), match.end()
            found = self.msgid(key, template=True)
            if found is None:
                self.report.todo.append(f"{where}: unknown key {key!r}")
                out.append(match.group(0))
                pos = end
                continue
            msgid, context = found
            args = ""
            if text.startswith(".format(", end):
                close = _balanced(text, end + len(".format"))
                args = ", " + text[end + len(".format("):close - 1].strip()
                end = close
            call = (f"pgettext({_quote(context)}, {_quote(msgid)}{args})" if context
                    else f"_({_quote(msgid)}{args})")
            out.append(call)
            pos = end
        out.append(text[pos:])
        text = "".join(out)

        def attribute(match: re.Match[str]) -> str:
            key = match.group(1)
            while key and key not in self.keys:  # t.status.x: the key may be a prefix of the dotted path
                if "." not in key:
                    return match.group(0)
                key = key.rsplit(".", 1)[0]
            found = self.msgid(key, template=True)
            if found is None:
                return match.group(0)
            msgid, context = found
            rest = match.group(1)[len(key):]
            call = f"pgettext({_quote(context)}, {_quote(msgid)})" if context else f"_({_quote(msgid)})"
            return call + rest

        text = ATTRIBUTE.sub(attribute, text)

        def computed(match: re.Match[str]) -> str:
            kind = self.table(match.group(2))
            if kind is None:
                return match.group(0)
            value = match.group(3).strip()
            value = f"({value})" if re.search(r"[^\w.]", value) else value
            return f"{value}|label({_quote(kind)})"

        text = COMPUTED_TEMPLATE.sub(computed, text)
        # a computed label with values: ``x|label("k").format(v=1)`` → ``(x|label("k")) % {"v": 1}``
        text = re.sub(r"([\w.()]+\|label\(\"[^\"]+\"\))\.format\(([^()]*)\)",
                      lambda m: f"({m.group(1)}) % {{" + ", ".join(
                          f'"{k.strip()}": {v.strip()}' for k, v in (kv.split("=", 1) for kv in m.group(2).split(",")))
                      + "}", text)
        for leftover in re.finditer(r"(?<![\w.])t\[[^]]*\]|(?<![\w.])t\.\w+", text):
            self.report.todo.append(f"{where}: {leftover.group(0)} (computed key: use the label filter or a table)")
        return text

    # python
    def python(self, text: str, where: Path) -> str:
        used = False
        self.used_gettext = False  # per file: PageProblem calls rewritten in this one

        def call(key: str, kwargs_src: str | None) -> str | None:
            nonlocal used
            found = self.msgid(key, template=bool(kwargs_src))
            if found is None:
                self.report.todo.append(f"{where}: unknown key {key!r}")
                return None
            used = True
            msgid, context = found
            head = (f"pgettext({_quote(context)}, {_quote(msgid)})" if context else f"_({_quote(msgid)})")
            if not kwargs_src:
                return head
            parsed = ast.parse(f"f({kwargs_src})", mode="eval").body
            assert isinstance(parsed, ast.Call)
            pairs = ", ".join(f"{_quote(k.arg or '')}: {ast.unparse(k.value)}" for k in parsed.keywords)
            return f"{head} % {{{pairs}}}"

        def subscript(match: re.Match[str], text: str) -> tuple[str | None, int]:
            end, kwargs = match.end(), None
            if text.startswith(".format(", end):
                close = _balanced(text, end + len(".format"))
                kwargs, end = text[end + len(".format("):close - 1], close
            return call(match.group(2), kwargs), end

        def fmt(match: re.Match[str], text: str) -> tuple[str | None, int]:
            close = _balanced(text, match.start() + len("_fmt"))
            inner = text[match.end():close - 1].lstrip(", ").strip()
            return call(match.group(2), inner or None), close

        def get(match: re.Match[str], text: str) -> tuple[str | None, int]:
            return call(match.group(2), None), match.end()

        for pattern, handler in ((SUBSCRIPT, subscript), (FMT_CALL, fmt), (GET, get)):
            out, pos = [], 0
            for match in pattern.finditer(text):
                if match.start() < pos:
                    continue
                out.append(text[pos:match.start()])
                replaced, end = handler(match, text)
                out.append(replaced if replaced is not None else text[match.start():end])
                pos = end
            out.append(text[pos:])
            text = "".join(out)
        labelled = False

        def computed(match: re.Match[str]) -> str:
            nonlocal labelled
            kind = self.table(match.group(1))
            if kind is None:
                return match.group(0)
            labelled = True
            return f"label({match.group(2)}, {_quote(kind)})"

        text = COMPUTED_PYTHON.sub(computed, text)
        if labelled and not re.search(r"^from designer\.display import .*\blabel\b", text, re.M):
            text = re.sub(r"^(from __future__ import annotations\n)", r"\1\nfrom designer.display import label\n", text,
                          count=1, flags=re.M)
        text = self.page_problems(text, where)
        # the language of the request, where the old code asked for it with its catalogue
        # (a name starting with "_" was never used: the line goes; "_" itself would hide gettext)
        text = re.sub(r"^\s*_\w*, _?t = (?:i18n\.)?text_for\(request\)\n", "", text, flags=re.M)
        text, asked = re.subn(r"^(\s*)(\w+), _?t = (?:i18n\.)?text_for\(request\)$", r"\1\2 = i18n.current_language()",
                              text, flags=re.M)
        text = re.sub(r"""(["'])t\1: t, """, "", text)  # {"lang": lang, "t": t, ...}: templates have _() now
        text = re.sub(r"^from designer\.i18n import text_for\n", "", text, flags=re.M)
        if asked and not re.search(r"^from designer import (.*, )?i18n\b", text, re.M):
            text = re.sub(r"^(from __future__ import annotations\n)", r"\1\nfrom designer import i18n\n", text,
                          count=1, flags=re.M)
        text = "".join(wrap(line) for line in text.splitlines(keepends=True))
        if (used or self.used_gettext) and not re.search(r"^from designer\.i18n import .*\b_\b",
                                                                             text, re.M):
            text = re.sub(r"^(from __future__ import annotations\n)", r"\1\nfrom designer.i18n import _\n", text,
                          count=1, flags=re.M)
        for leftover in re.finditer(r"(?<![\w.])t(?:\[[^]]*\]|\.get\([^)]*\))", text):
            self.report.todo.append(f"{where}: {leftover.group(0)} (computed key: use display.label or a table)")
        return text


    def page_problems(self, text: str, where: Path) -> str:
        """``PageProblem(404, user, "pg.notfound", "x.unknown", back=..., id=i)`` (catalogue keys and their
        values) → ``PageProblem(404, user, _("Not found"), _("There is no … %(id)s") % {"id": i}, back=...)``."""
        tree = ast.parse(text)
        lines = text.splitlines(keepends=True)
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line))

        def at(line: int, byte: int) -> int:
            return offsets[line - 1] + len(lines[line - 1].encode()[:byte].decode())

        edits = []
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) ==
                    "PageProblem" and len(node.args) >= 4):
                continue
            keys = [a.value for a in node.args[2:5] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if len(keys) != len(node.args[2:5]) or not all(k in self.keys for k in keys if k):
                continue
            params = {k.arg: ast.get_source_segment(text, k.value) for k in node.keywords if k.arg and k.arg != "back"}
            parts = [ast.get_source_segment(text, a) or "" for a in node.args[:2]]
            for key in keys:
                if not key:
                    parts.append('""')
                    continue
                found = self.msgid(key, template=bool(PLACEHOLDER.search(self.keys[key].en)))
                assert found is not None
                msgid, context = found
                call = f"pgettext({_quote(context)}, {_quote(msgid)})" if context else f"_({_quote(msgid)})"
                used = re.findall(r"%\((\w+)\)s", msgid)
                missing = [u for u in used if u not in params]
                if missing:
                    self.report.todo.append(f"{where}: PageProblem {key} needs {missing}")
                if used:
                    call += " % {" + ", ".join(f"{_quote(u)}: {params.get(u, 'None')}" for u in used) + "}"
                parts.append(call)
            back = next((ast.get_source_segment(text, k.value) for k in node.keywords if k.arg == "back"), None)
            if back:
                parts.append(f"back={back}")
            start = at(node.lineno, node.col_offset)
            end = at(node.end_lineno or node.lineno, node.end_col_offset or 0)
            edits.append((start, end, "PageProblem(" + ", ".join(parts) + ")"))
        for start, end, replacement in sorted(edits, reverse=True):
            text = text[:start] + replacement + text[end:]
        if edits:
            self.used_gettext = True
        return text


def area_files(path: Path) -> tuple[list[Path], list[Path]]:
    """(python files, template files) of an area directory (package or templates folder)."""
    if path.is_file():
        return ([path], []) if path.suffix == ".py" else ([], [path])
    pys = sorted(p for p in path.rglob("*.py"))
    templates = sorted(p for p in path.rglob("*.html"))
    if pys and path.parent.name == "designer":
        folder = path.parent / "templates" / path.name
        if folder.is_dir():
            templates += sorted(folder.rglob("*.html"))
    return pys, templates


def convert(paths: list[Path], dry_run: bool = False, po: Path = PO) -> Report:
    report = Report()
    keys = legacy_catalogue()
    pys: list[Path] = []
    templates: list[Path] = []
    for path in paths:
        p, t = area_files(path)
        pys += p
        templates += t
    for py in pys:  # the area's own strings win over main's old ones
        keys.update(old_catalogue(py))
    catalogue = Catalogue(po)
    converter = Converter(keys, catalogue, report)
    for file in templates + [p for p in pys if p.name != "text.py"]:
        before = file.read_text(encoding="utf-8")
        after = (converter.template(before, file) if file.suffix == ".html" else converter.python(before, file))
        if after != before:
            report.changed.append(file)
            if not dry_run:
                file.write_text(after, encoding="utf-8")
    report.added = catalogue.added
    report.tables = sorted(converter.tables)
    if converter.tables:
        areas = [p for p in paths if p.is_dir() and p.parent.name == "designer" and any(p.glob("*.py"))]
        if areas:
            module = areas[0] / "labels.py"
            report.changed.append(module)
            if not dry_run:
                module.write_text(labels_module(areas[0].name, converter.tables), encoding="utf-8")
                for py in pys:
                    code = py.read_text(encoding="utf-8")
                    swapped = re.sub(r"^from designer\.(\w+) import text as \w+.*$",
                                     r"from designer.\1 import labels as _labels  # noqa: F401  (its status labels)",
                                     code, flags=re.M)
                    if swapped != code:
                        py.write_text(swapped, encoding="utf-8")
        else:
            report.todo.append(f"label tables {sorted(converter.tables)}: convert the area package to write labels.py")
    if not dry_run and catalogue.added:
        catalogue.save()
    return report


def labels_module(area: str, tables: dict[str, dict[str, str]]) -> str:
    """``designer/<area>/labels.py``: the area's label tables (``display.add_labels``), one per old key prefix."""
    lines = [f'"""The labels of the {area} area\'s statuses and other values (``{{{{ x|label("...") }}}}``).',
             "",
             "Made by tools/i18n_convert.py from the old keyed catalogue; each table's gettext context is the old",
             'key prefix. Rename a kind to something clearer (with its uses) whenever you like."""',
             "", "from __future__ import annotations", "", "from designer.display import add_labels",
             "from designer.i18n import NC_", ""]
    for kind, entries in sorted(tables.items()):
        lines.append(f"add_labels({_quote(kind)}, {_quote(kind)}, {{")
        for value, english in sorted(entries.items()):
            lines.append(f"    {_quote(value)}: NC_({_quote(kind)}, {_quote(to_gettext(english, False))}),")
        lines.append("})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="area packages, template folders or files")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    report = convert(args.paths, args.dry_run)
    for file in report.changed:
        print(f"{'would change' if args.dry_run else 'changed'} {file}")
    print(f"{len(report.added)} translations {'to add' if args.dry_run else 'added'} to {PO.relative_to(ROOT)}")
    tables = set(report.tables)
    for msgid, context, _zh in report.added:
        if context and context not in tables:
            print(f"  context {context!r} for {msgid!r}: English already translated differently")
    for todo in dict.fromkeys(report.todo):
        print(f"TODO {todo}")
    print("then: delete the area's text.py and its imports, finish the TODOs, run `make i18n`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
