"""The errors of the layers below the engine (``decisions/``, ``connectors/``) are translatable too.

They import ``wording`` (the bottom layer), so their exceptions carry a :class:`wording.Msg` like the engine's
and the designer shows them in the reader's language (docs/i18n.md). Two halves, as in
``test_api_errors_i18n.py``:

* a static walk (``ast``): no ``raise`` there builds its exception from a plain string literal or an f-string
  (nor notes a FEEL null's reason, nor the reason of a message a connector keeps unmapped, with one): it is
  ``Msg("… %(name)s …", name=value)`` — an unmapped message's reason is stored and shown later, translated
  (``wording.stored``);
* real HTTP calls: a FEEL error and a hit-policy violation answer in Chinese with ``?lang=zh-CN`` and in English
  by default.
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

from connectors.errors import SignatureVerificationError
from connectors.webhook.signing import sign_payload, verify_signature
from connectors.wecom.api_errors import wecom_error
from decisions.dmn_xml import load_decision_table
from designer.app import create_app
from designer.decisions import api as api_decisions
from designer.i18n import translate
from tests.designer.pages_kit import role_tokens
from tests.e2e.browser import include_once
from wording import Msg, message_of

ROOT = Path(__file__).resolve().parents[2]
#: the packages below the engine whose raises are checked
CHECKED = ("decisions", "connectors")
CJK = re.compile(r"[\u4e00-\u9fff]")

#: exceptions (and the helpers that make them) whose first argument is not a text: ``WorkbenchError(field, message,
#: fix)``, ``wecom_error(api, errcode, errmsg)`` …
FIELD_FIRST = {"WorkbenchError", "wecom_error", "oa_error", "top_error", "jos_error", "sdk_error", "_wrap", "error_for"}
#: calls that make a Msg: their arguments are templates and values
MSG_MAKERS = {"Msg", "N_", "message_of", "verbatim", "joined"}
#: not a text people read: a bug's own assertion
NOT_READ = {"AssertionError"}
#: calls that note a reason people read: ``fi.null(scope, reason)``, ``budget.note(reason)``, a connector's
#: ``unmapped_record(reason, raw)`` / ``_unmapped(message, reason)`` (kept, and shown later in the reader's language)
NOTES = {"null": 1, "_null": 0, "note": 0, "unmapped_record": 0, "_unmapped": 1}
#: calls whose ``reason=`` keyword is a reason people read: ``Unmapped(reason=…, raw=…)``
REASON_KEYWORD = {"Unmapped", "unmapped_record"}


def _name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _texts(function: ast.AST) -> set[str]:
    """Names assigned a plain text somewhere in ``function`` (``message = f"…"``)."""
    found: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and _is_text(node.value, set()):
            found.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return found


def _is_text(node: ast.expr, texts: set[str]) -> bool:
    """A plain English text: a string literal, an f-string, their concatenation or %-/format() filling."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and bool(node.value)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        return _is_text(node.left, texts) or (isinstance(node.op, ast.Add) and _is_text(node.right, texts))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _is_text(node.func.value, texts)
    if isinstance(node, ast.Call) and _name(node) not in MSG_MAKERS:  # clean(f"…"): still English (a plain "key"
        return any(isinstance(arg, ast.JoinedStr | ast.BinOp) and _is_text(arg, texts)  # argument is not a text)
                   for arg in node.args)
    if isinstance(node, ast.IfExp):
        return _is_text(node.body, texts) or _is_text(node.orelse, texts)
    return isinstance(node, ast.Name) and node.id in texts


def english_texts(source: str, filename: str = "<source>") -> list[str]:
    """Every ``raise X("…")`` / ``raise X(f"…")`` (and null reason noted as a plain text) in ``source``."""
    tree = ast.parse(source, filename)
    found: list[str] = []
    scopes: list[ast.AST] = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.Lambda))]
    for scope in scopes:
        texts = _texts(scope) if not isinstance(scope, ast.Module) else set()
        body = scope.body if isinstance(scope, ast.Module | ast.FunctionDef) else [scope.body]
        for statement in body:
            for node in ast.walk(statement):
                args: list[ast.expr] = []
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and _name(node.exc) not in NOT_READ:
                    call = node.exc
                    args = call.args[1:] if _name(call) in FIELD_FIRST else list(call.args)
                    args += [k.value for k in call.keywords if k.arg in ("message", "fix")]
                elif isinstance(node, ast.Call) and _name(node) in NOTES and len(node.args) > NOTES[_name(node)]:
                    args = [node.args[NOTES[_name(node)]]]
                if isinstance(node, ast.Call) and _name(node) in REASON_KEYWORD:
                    args += [k.value for k in node.keywords if k.arg == "reason"]
                if any(_is_text(arg, texts) for arg in args):
                    found.append(f"{filename}:{node.lineno}: {ast.unparse(node)[:100]}")
    return sorted(set(found))


@pytest.mark.parametrize("package", CHECKED)
def test_every_raise_below_the_engine_is_a_msg(package: str) -> None:
    found = [hit for path in sorted((ROOT / package).rglob("*.py"))
             for hit in english_texts(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert found == [], "write these as Msg (from wording import Msg):\n" + "\n".join(found)


@pytest.mark.parametrize("source", [
    'raise FeelError("modulo by zero")',
    'raise DrgError(f"no decision named {name!r}")',
    'raise DmnImportError("the document " + what)',
    'def f() -> None:\n    message = f"{where}: bad"\n    raise DrgError(message)',
    'raise WorkbenchError(f"inputs.{name}", f"the model has no input {name}", Msg("fix"))',
    'def f(scope):\n    return fi.null(scope, f"{where}: the condition is not a boolean")',
    'budget.note("no variable")',
    'raise SmsDeliveryError(clean(f"{where} failed: {exc}; will retry"), retryable=True)',
    'unmapped_record(f"order: {why}", order, order_id)',
    'Unmapped(reason=f"tag {m.tag} gives no event", raw=text)',
    'def f(message):\n    return _unmapped(message, "the message content is not a JSON object")',
])
def test_the_static_check_catches_an_english_text(source: str) -> None:
    assert len(english_texts(source)) == 1


@pytest.mark.parametrize("source", [
    'raise FeelError(Msg("modulo by zero"))',
    'raise DrgError(Msg("no decision named \'%(name)s\'", name=name))',
    'raise DmnImportError(message_of(error)) from None',
    'raise WorkbenchError(f"inputs.{name}", Msg("no input"), Msg("fix"))',
    'raise KeyError(rule_id)',
    'def f(scope):\n    return fi.null(scope, message_of(error))',
    'unmapped_record(Msg("order: %(why)s", why=why), order, order_id, f"order:{state}")',
    'Unmapped(reason=Msg("tag %(tag)s gives no event", tag=m.tag), raw=text, kind=f"{m.tag}")',
])
def test_the_static_check_accepts_a_msg(source: str) -> None:
    assert english_texts(source) == []


def test_reverting_a_real_conversion_fails_the_check() -> None:
    source = (ROOT / "decisions" / "feel" / "library.py").read_text(encoding="utf-8")
    converted = 'raise FeelError(Msg("modulo by zero"))'
    assert converted in source
    assert english_texts(source) == []
    assert len(english_texts(source.replace(converted, 'raise FeelError("modulo by zero")'))) == 1


def counted_values(source: str, filename: str = "<source>") -> list[str]:
    """Every ``Msg`` whose placeholder named ``value`` (``values``, ``value2`` …) is filled with a count — ``len(…)``,
    or arithmetic on one: the translator reads ``%(value)s`` and cannot tell it is a number (``%(count)s`` says so;
    a duration is ``%(seconds)s``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call) and _name(node) == "Msg":
            found += [f"{filename}:{node.lineno}: {ast.unparse(node)[:100]}" for k in node.keywords
                      if k.arg and re.fullmatch(r"values?\d*", k.arg) and _is_count(k.value)]
    return found


def _is_count(node: ast.expr) -> bool:
    if isinstance(node, ast.BinOp):
        return _is_count(node.left) or _is_count(node.right)
    return isinstance(node, ast.Call) and _name(node) == "len"


@pytest.mark.parametrize("package", CHECKED)
def test_a_count_is_never_a_placeholder_named_value(package: str) -> None:
    found = [hit for path in sorted((ROOT / package).rglob("*.py"))
             for hit in counted_values(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert found == [], "name the placeholder %(count)s (and carry the Chinese over in messages.po):\n" + \
        "\n".join(found)


@pytest.mark.parametrize(("source", "hits"), [
    ('Msg("the push has %(value)s messages", value=len(data))', 1),
    ('Msg("only %(value)s follow", value=len(block) - header)', 1),
    ('Msg("the push has %(count)s messages", count=len(data))', 0),
    ('Msg("time %(value)s is not ISO 8601", value=repr(text[:40]))', 0),  # a value, shown as it came
])
def test_the_count_check_tells_a_count_from_a_value(source: str, hits: int) -> None:
    assert len(counted_values(source)) == hits


# --- the HTTP half: FEEL and decision-table errors through the designer's API ---------------------------------

DMN = (ROOT / "tests" / "decisions" / "data" / "refund_routing.dmn").read_text()
VACATION = (ROOT / "tests" / "decisions" / "tck" / "compliance-level-3" / "0020-vacation-days"
            / "0020-vacation-days.dmn").read_text()


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path_factory.mktemp('lower') / 'tideflow.db'}"
    found = role_tokens(url)
    app: FastAPI = create_app(url, connect=False)
    include_once(app, api_decisions.router)
    yield TestClient(app, headers={"Authorization": f"Bearer {found['ops']}"})


def _refused(client: TestClient, path: str, body: dict[str, Any], status: int = 422) -> dict[str, Any]:
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, dict)
    return detail


def test_a_feel_syntax_error_answers_in_the_chosen_language(ops: TestClient) -> None:
    body = {"xml": VACATION, "inputs": {"Age": "16 +", "Years of Service": "1"}}
    english = _refused(ops, "/api/decisions/graph/evaluate", body)
    assert english["message"] == "not a FEEL value: '16 +': expected an expression at the end"
    assert english["fix"].startswith("write text in quotes")
    assert not CJK.search(english["message"] + english["fix"])
    chinese = _refused(ops, "/api/decisions/graph/evaluate?lang=zh-CN", body)
    assert chinese["message"] == "不是 FEEL 值：'16 +'：末尾处缺少表达式"
    assert chinese["fix"].startswith("文本要加引号")
    assert chinese["field"] == english["field"] == "inputs.Age"  # programs read the field: it never changes
    unasked = ops.post("/api/decisions/graph/evaluate", json=body, headers={"Accept-Language": "zh-CN"})
    assert unasked.json()["detail"] == english  # a header nobody chose leaves the API in English


def test_a_feel_error_inside_a_table_cell_is_translated_through_the_validation_problem(ops: TestClient) -> None:
    table = load_decision_table(DMN, "refund_routing").model_dump(mode="json")
    table["rules"][0]["input_entries"][0] = "> (1"
    english = _refused(ops, "/api/decisions/evaluate", {"table": table, "input": {}})
    chinese = _refused(ops, "/api/decisions/evaluate?lang=zh-CN", {"table": table, "input": {}})
    assert english["message"].endswith("'> (1': expected ')' at the end"), english  # the column title is data
    assert english["message"].startswith("rule '")
    assert chinese["message"].startswith("规则「") and chinese["message"].endswith("'> (1'：末尾处缺少「)」"), chinese


def test_a_hit_policy_violation_answers_in_the_chosen_language(ops: TestClient) -> None:
    table = load_decision_table(DMN, "refund_routing").model_dump(mode="json")
    table["rules"].append({**table["rules"][0], "id": "again"})
    body = {"table": table, "input": {"ticket": {"refund_amount": 10}, "customer": {"vip_level": "none"}}}
    english = _refused(ops, "/api/decisions/evaluate", body)
    assert english["message"].startswith("more than one rule matches: decision '")
    assert "has hit policy UNIQUE but rules" in english["message"]
    chinese = _refused(ops, "/api/decisions/evaluate?lang=zh-CN", body)
    assert chinese["message"].startswith("有多条规则同时匹配：决策「")
    assert "的命中策略是 UNIQUE，但规则" in chinese["message"]
    assert "'again'" in chinese["message"]  # the rule ids are values: as they are


# --- connectors: a refused signature and a platform's refusal, as the designer words them ----------------------


def test_a_refused_signature_reads_in_chinese_around_the_values() -> None:
    body = b'{"id": "e1"}'
    with pytest.raises(SignatureVerificationError) as caught:
        verify_signature("the-secret", body, sign_payload("another-secret", body, 1_790_000_000), 1_790_000_000)
    answer = Msg("signature check failed: %(exc)s", exc=message_of(caught.value))  # as designer/events/hooks.py
    english, chinese = translate(answer, "en"), translate(answer, "zh-CN")
    assert english == str(answer) and english.startswith("signature check failed: no v1 signature in ")
    assert not CJK.search(english)
    assert chinese.startswith("签名校验失败：") and "的 HMAC-SHA256 相符的 v1 签名" in chinese, chinese


def test_a_platform_errmsg_stays_verbatim_inside_our_chinese_sentence() -> None:
    refusal = wecom_error("externalcontact/add_contact_way", 40001, "invalid secret, hint: [1790000000]")
    english, chinese = translate(message_of(refusal), "en"), translate(message_of(refusal), "zh-CN")
    assert english.startswith("WeCom externalcontact/add_contact_way answered errcode 40001: the secret is wrong")
    assert english.endswith(" (invalid secret, hint: [1790000000])")
    assert chinese.startswith("企业微信 externalcontact/add_contact_way 返回 errcode 40001：Secret 错误")
    assert chinese.endswith(" (invalid secret, hint: [1790000000])")  # WeCom's own words, untranslated
