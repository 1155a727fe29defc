"""Every error a person reads from the API is translatable (issue 16).

Two halves:

* a static walk of ``designer/`` (``ast``): every ``ApiError(...)`` and every ``HTTPException`` detail passes its
  ``message`` and ``fix`` as :class:`engine.text.Msg` — a ``Msg(...)`` call, ``message_of``/``verbatim``, a
  domain error's ``.message``/``.fix`` (typed ``Msg``, mypy checks them), or a name bound only to such values;
* real HTTP calls through the app, one refusal per area: ``?lang=zh-CN`` answers in Chinese (message *and*
  fix), no language stated answers in English, and ``Accept-Language`` alone changes nothing.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.designer.pages_kit import build_app, role_tokens

ROOT = Path(__file__).resolve().parents[2]
DESIGNER = ROOT / "designer"
CJK = re.compile(r"[\u4e00-\u9fff]")

#: calls that hand back a Msg (engine.text, designer.i18n) — anything else must prove it is one
MSG_MAKERS = {"Msg", "message_of", "verbatim"}
#: attributes that are Msg on every domain error (``engine.text.MsgError`` and its kin; mypy checks them)
MSG_ATTRIBUTES = {"message", "fix"}


# --- the static half ------------------------------------------------------------------------------------


class _Scope:
    """The names bound in a function (or a module): name → the expressions assigned to it, and annotations."""

    def __init__(self, node: ast.AST, outer: _Scope | None = None) -> None:
        self.outer = outer
        self.values: dict[str, list[ast.expr]] = {}
        self.typed: set[str] = set()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for arg in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
                if arg.annotation is not None and _is_msg_annotation(arg.annotation):
                    self.typed.add(arg.arg)
        for child in _own_nodes(node):
            if isinstance(child, ast.Assign):
                for target in child.targets:
                    self._bind(target, child.value)
            elif isinstance(child, ast.AnnAssign) and isinstance(child.target, ast.Name):
                if _is_msg_annotation(child.annotation):
                    self.typed.add(child.target.id)
                elif child.value is not None:
                    self.values.setdefault(child.target.id, []).append(child.value)

    def _bind(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.values.setdefault(target.id, []).append(value)
        elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            for t, v in zip(target.elts, value.elts, strict=True):
                self._bind(t, v)
        elif isinstance(target, ast.Tuple):  # unpacked from something we cannot see into: unknown
            for t in target.elts:
                if isinstance(t, ast.Name):
                    self.values.setdefault(t.id, []).append(ast.Constant(value=None))

    def is_msg(self, name: str, seen: frozenset[str] = frozenset()) -> bool:
        if name in self.typed:
            return True
        if name in self.values:
            return all(is_msg(v, self, seen | {name}) for v in self.values[name])
        return self.outer.is_msg(name, seen) if self.outer is not None else False


def _is_msg_annotation(annotation: ast.expr) -> bool:
    return "Msg" in ast.unparse(annotation) and "str" not in ast.unparse(annotation)


def _own_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``node`` outside nested functions and classes."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        yield child
        yield from _own_nodes(child)


def is_msg(node: ast.expr, scope: _Scope, seen: frozenset[str] = frozenset()) -> bool:
    """Whether ``node`` is certainly a Msg (as far as the source shows)."""
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name in MSG_MAKERS:
            return True
        if name == "get" and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Dict):
            return all(v is not None and is_msg(v, scope, seen) for v in func.value.values) and \
                all(is_msg(a, scope, seen) for a in node.args[1:])
        return False
    if isinstance(node, ast.IfExp):
        return is_msg(node.body, scope, seen) and is_msg(node.orelse, scope, seen)
    if isinstance(node, ast.Attribute):
        return node.attr in MSG_ATTRIBUTES
    if isinstance(node, ast.Name):
        return node.id not in seen and scope.is_msg(node.id, seen)
    return False


def _detail_ok(node: ast.expr, scope: _Scope) -> bool:
    """An ``HTTPException``'s ``detail``: ``errors.detail(...)`` (typed), or a dict whose texts are Msg."""
    if isinstance(node, ast.Call):
        func = node.func
        return (func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")) == "detail"
    if isinstance(node, ast.Dict):
        return all(is_msg(v, scope) for k, v in zip(node.keys, node.values, strict=True)
                   if isinstance(k, ast.Constant) and k.value in ("message", "fix"))
    if isinstance(node, ast.Name):
        return (scope.values.get(node.id) is not None and all(_detail_ok(v, scope) for v in scope.values[node.id])) \
            or node.id in scope.typed
    return False


def untranslatable(source: str, filename: str = "<source>") -> list[str]:
    """Every ``ApiError(...)`` / ``HTTPException(detail=...)`` in ``source`` whose text is not a Msg."""
    tree = ast.parse(source, filename)
    found: list[str] = []

    def visit(node: ast.AST, scope: _Scope) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, _Scope(child, scope))
                continue
            if isinstance(child, ast.Call):
                check(child, scope)
            visit(child, scope)

    def check(call: ast.Call, scope: _Scope) -> None:
        func = call.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        where = f"{filename}:{call.lineno}: {ast.unparse(call)[:100]}"
        if name == "ApiError":
            texts = [*call.args[1:3], *(k.value for k in call.keywords if k.arg in ("message", "fix"))]
            if len(call.args) < 2 and not any(k.arg == "message" for k in call.keywords):
                found.append(where + "  (no message)")
            found.extend(where for t in texts if not is_msg(t, scope))
        elif name in ("HTTPException", "RoleRequired", "LoginRequired", "StarletteHTTPException"):
            for k in call.keywords:
                if k.arg == "detail" and not _detail_ok(k.value, scope):
                    found.append(where)
            if name == "LoginRequired" and len(call.args) > 1 and not is_msg(call.args[1], scope):
                found.append(where)

    visit(tree, _Scope(tree))
    return found


def test_every_api_error_and_http_detail_in_the_designer_is_a_msg() -> None:
    files = sorted(DESIGNER.rglob("*.py"))
    assert len(files) > 50
    found = [hit for path in files for hit in untranslatable(path.read_text(encoding="utf-8"),
                                                              str(path.relative_to(ROOT)))]
    assert found == [], "write these as Msg (engine.text):\n" + "\n".join(found)


@pytest.mark.parametrize("source", [
    'raise ApiError(404, f"flow {x} does not exist", Msg("check the id"), "id")',
    'raise ApiError(404, Msg("flow %(x)s does not exist", x=x), "check the id", "id")',
    'raise ApiError(422, str(exc), Msg("fix it"))',
    'raise ApiError(422, problems[0]["message"], problems[0]["fix"])',
    'def f(message: str) -> None:\n    raise ApiError(422, message, Msg("fix it"))',
    'text = "plain"\nraise ApiError(422, text, Msg("fix it"))',
    'raise HTTPException(status_code=403, detail={"message": "no", "fix": Msg("log in")})',
    'raise HTTPException(status_code=403, detail={"message": Msg("no"), "fix": f"send {h}"})',
])
def test_the_static_check_catches_an_english_text(source: str) -> None:
    assert untranslatable(source) != []


@pytest.mark.parametrize("source", [
    'raise ApiError(404, Msg("flow %(x)s does not exist", x=x), Msg("check the id"), "id")',
    'raise ApiError(exc.status, exc.message, exc.fix, exc.field)',
    'raise ApiError(422, message_of(exc), Msg("a") if a else Msg("b"))',
    'def f(fix: Msg) -> None:\n    raise ApiError(422, verbatim(e), fix)',
    'FIX = Msg("log in")\ndef f() -> None:\n    m = Msg("no")\n    raise ApiError(401, m, FIX)',
    'fix = {1: Msg("a")}.get(s, Msg("b"))\nraise ApiError(409, exc.message, fix)',
    'raise HTTPException(status_code=403, detail=detail(Msg("no"), Msg("log in")))',
])
def test_the_static_check_accepts_a_msg(source: str) -> None:
    assert untranslatable(source) == []


def test_reverting_a_real_conversion_fails_the_check() -> None:
    source = (DESIGNER / "growth" / "api.py").read_text(encoding="utf-8")
    converted = """raise ApiError(404, Msg("channel '%(key)s' does not exist", key=key),"""
    assert converted in source
    reverted = source.replace(converted, """raise ApiError(404, f"channel '{key}' does not exist",""")
    assert untranslatable(source) == []
    assert len(untranslatable(reverted)) == 1


# --- the HTTP half: one refusal per area, through the app ------------------------------------------------


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    """One app and one API token per role (these calls are all refused: nothing is stored)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('errors') / 'tideflow.db'}"
    found = role_tokens(url)
    yield build_app(url), found


#: area → (role, method, path, request keywords, status, the English message the API gives)
REFUSALS: dict[str, tuple[str, str, str, dict[str, Any], int, str]] = {
    "flows": ("admin", "GET", "/api/flows/no-such-flow/stats", {}, 404, "flow 'no-such-flow' does not exist"),
    "events": ("admin", "POST", "/api/events", {"json": {"type": "order.paid"}}, 422, "is required"),
    "event time": ("admin", "POST", "/api/events",
                   {"json": {"id": "e-naive", "type": "order.paid", "customer": {"phone": "13800138000"},
                             "occurred_at": "2026-11-23T10:00:00"}}, 422,
                   "needs a timezone, e.g. 2026-11-23T10:00:00+08:00"),
    "tickets": ("admin", "GET", "/api/tickets/987654", {}, 404, "ticket 987654 does not exist"),
    "settlement": ("finance", "POST", "/api/settlement/statements/1/adjustments",
                   {"json": {"amount": "1.234", "reason": "typo"}}, 422,
                   "amount '1.234' has 3 decimal places; yuan amounts have at most 2 (fen), round it explicitly first"),
    "growth": ("admin", "GET", "/api/growth/channels/no-such-code", {}, 404, "channel 'no-such-code' does not exist"),
    "loyalty": ("admin", "GET", "/api/loyalty/balance", {}, 422, "give exactly one identity, e.g. ?phone=13800138000"),
    "workforce": ("admin", "GET", "/api/workforce/handovers/987654", {}, 404, "handover 987654 does not exist"),
    "sidebar": ("agent", "POST", "/api/sidebar/signatures", {"json": {"url": "https://elsewhere.example/page"}}, 422,
                "only pages of this site are signed"),
    "decisions": ("ops", "POST", "/api/decisions", {"content": b"<not-dmn/>",
                                                   "headers": {"Content-Type": "application/xml"}}, 400, ""),
    "connectors": ("admin", "POST", "/api/connectors/no-such-connector/resync", {"json": {}}, 404,
                   "no connector 'no-such-connector'"),
    "users": ("marketer", "GET", "/api/users", {}, 403, "this needs the admin role; you are marketer"),
    # a body validator's own refusal (a ValueError(Msg) in the model), the value kept as data
    "customer tags": ("admin", "POST", "/api/customers/c_nope/tags", {"json": {"add": ["x" * 81]}}, 422,
                      f"tag '{'x' * 81}' must be 1–80 characters"),
    "ticket fields": ("admin", "POST", "/api/ticket-types",
                      {"json": {"key": "dup", "name": "重复", "fields": [{"key": "a"}, {"key": "b"}, {"key": "a"}]}},
                      422, "field keys repeat: a"),
}


def _call(app: FastAPI, token: str | None, case: tuple[str, str, str, dict[str, Any], int, str], query: str = "",
          headers: dict[str, str] | None = None) -> dict[str, Any]:
    _role, method, path, kwargs, status, _english = case
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"} if token else {})
    sent = {**kwargs, "headers": {**kwargs.get("headers", {}), **(headers or {})}}
    r = client.request(method, path + query, **sent)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, dict) and detail["message"] and detail["fix"], detail
    return detail


@pytest.mark.parametrize("area", sorted(REFUSALS))
def test_a_refusal_speaks_chinese_when_asked_and_english_otherwise(
        tokens: tuple[FastAPI, dict[str, str]], area: str) -> None:
    app, found = tokens
    case = REFUSALS[area]
    token = found[case[0]]
    english = _call(app, token, case)
    assert not CJK.search(english["message"] + english["fix"]), english
    if case[5]:
        assert english["message"] == case[5]
    chinese = _call(app, token, case, "?lang=zh-CN")
    assert CJK.search(chinese["message"]) and CJK.search(chinese["fix"]), chinese
    assert chinese.get("field") == english.get("field")  # programs read the field: it never changes
    unasked = _call(app, token, case, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert unasked == english  # a header nobody chose leaves the API in English (docs/i18n.md)


def test_the_login_answer_speaks_the_chosen_language(tokens: tuple[FastAPI, dict[str, str]]) -> None:
    app, _found = tokens
    case = ("", "GET", "/api/flows", {}, 401, "you are not logged in")
    english = _call(app, None, case)
    assert english == {"message": "you are not logged in", "fix": "log in or send Authorization: Bearer <token>"}
    assert _call(app, None, case, "?lang=zh-CN") == {"message": "你尚未登录",
                                                    "fix": "请登录，或发送 Authorization: Bearer <token>"}
    wrong = ("", "GET", "/api/flows", {"headers": {"Authorization": "Basic x"}}, 401, "")
    assert "Bearer" in _call(app, None, wrong)["message"]
    assert CJK.search(_call(app, None, wrong, "?lang=zh-CN")["message"])


def test_a_foreign_detail_stays_verbatim_inside_the_chinese_sentence(tokens: tuple[FastAPI, dict[str, str]]) -> None:
    app, found = tokens
    role, method, path, _kwargs, status, english_text = REFUSALS["decisions"]
    case = (role, method, path, {"content": b"<definitions", "headers": {"Content-Type": "application/xml"}}, status,
            english_text)
    english = _call(app, found["ops"], case)
    chinese = _call(app, found["ops"], case, "?lang=zh-CN")
    prefix = "the DMN document cannot be imported: not well-formed XML: "
    assert english["message"].startswith(prefix)
    detail = english["message"].removeprefix(prefix)  # the XML parser's own words
    assert detail and not CJK.search(detail)
    assert chinese["message"] == f"无法导入该 DMN 文档：XML 格式不正确：{detail}"  # ours translated, the parser's not
