"""The editor's routes over HTTP: the page and who may use it, live expression/template/duration checks,
versions and their diff, the funnel, auto-layout and the preview (real time-skipping Temporal)."""

from __future__ import annotations

import copy
import html
import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from designer.flows.editor import SAMPLE_CUSTOMER, _step_text, human_duration
from designer.i18n import language
from engine.db import models
from engine.db.session import transaction
from tests.designer.editor_kit import Session, editor_app, login

__all__ = ["editor_app", "login"]  # fixtures used by this module
WELCOME: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "flows" / "welcome-new-contact.json").read_text(encoding="utf-8"))
EDIT = "/flows/welcome-new-contact/edit"


def _page_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="tf-data">(.*?)</script>', html, re.S)
    assert found is not None
    return dict(json.loads(found.group(1)))


# -- the page and permissions ---------------------------------------------------------------------------
def test_a_marketer_edits_a_journey_on_the_page(login: Callable[..., Session]) -> None:
    r = login("marketer").get(EDIT)
    assert r.status_code == 200
    html = r.text
    assert 'id="tf-canvas"' in html and "/static/editor/editor.js" in html and "drawflow.min.js" in html
    assert 'id="tf-save"' in html and 'id="tf-publish"' in html and "只读" not in html
    assert '<h3>触发</h3>' in html and 'data-type="trigger.event"' in html and ">事件触发<" in html  # palette, zh-CN
    assert 'data-type="trigger.schedule"' in html  # every kind-compatible type, plugins included
    data = _page_data(html)
    assert data["canEdit"] is True and data["document"] == WELCOME and data["problems"] == []
    assert data["ports"]["bought"] == ["yes", "no"] and data["types"]["logic.switch"]["category"] == "logic"
    assert "drawflow" not in json.dumps(data["document"])
    english = login("marketer", "en").get(EDIT).text
    assert "<h3>Triggers</h3>" in english and "Save draft" in english and _page_data(english)["lang"] == "en"


def test_the_canvas_labels_ports_in_the_readers_language(login: Callable[..., Session]) -> None:
    """Each port of ours the canvas draws has its label in the page's language (``port.<id>`` in the page's texts,
    which editor.js draws as the output's label and title); the port ids stay the data the edges use."""
    zh, en = _page_data(login("marketer").get(EDIT).text), _page_data(login("marketer", "en").get(EDIT).text)
    assert zh["ports"] == en["ports"] and zh["ports"]["bought"] == ["yes", "no"]  # ids, in both languages
    drawn = sorted({port for ports in zh["ports"].values() for port in ports})
    assert {port: zh["text"][f"port.{port}"] for port in drawn} == {
        "event": "事件到达", "no": "否", "out": "下一步", "out_of_stock": "无券可发", "skipped": "已跳过",
        "timeout": "超时", "yes": "是"}
    assert {port: en["text"][f"port.{port}"] for port in drawn} == {
        "event": "event", "no": "no", "out": "out", "out_of_stock": "out of stock", "skipped": "skipped",
        "timeout": "timeout", "yes": "yes"}
    script = (Path(__file__).resolve().parents[2] / "designer/static/editor/editor.js").read_text(encoding="utf-8")
    assert "output.dataset.label = stats ? `${label} ${left ?? 0}` : label;" in script  # the label drawn, not the id


def test_other_readers_see_the_editor_read_only(login: Callable[..., Session]) -> None:
    for role in ("finance", "ops", "developer"):  # finance cannot edit a journey flow
        reader = login(role)
        r = reader.get(EDIT)
        assert r.status_code == 200
        assert 'id="tf-save"' not in r.text and "只读" in r.text and _page_data(r.text)["canEdit"] is False
        form = reader.get("/flows/welcome-new-contact/nodes/hello/form", params={"type": "action.send_message"})
        assert 'fieldset class="tf-form-body" disabled' in form.text and 'type="submit"' not in form.text
    finance = login("finance")
    assert finance.post_json("/api/flows/welcome-new-contact/publish", {}).status_code == 403
    ops_flow = {**WELCOME, "id": "ops-flow", "kind": "ticket",
                "nodes": [{"id": "start", "type": "trigger.api", "config": {}}], "edges": []}
    assert login("ops").post_json("/api/flows", ops_flow).status_code == 201
    assert _page_data(login("ops").get("/flows/ops-flow/edit").text)["canEdit"] is True
    assert _page_data(login("marketer").get("/flows/ops-flow/edit").text)["canEdit"] is False


def test_an_agent_gets_a_403_page_and_strangers_the_login(login: Callable[..., Session],
                                                          editor_app: FastAPI) -> None:
    agent = login("agent")
    r = agent.get(EDIT)
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    assert "agent" in r.text and "tf-canvas" not in r.text
    assert agent.get("/flows/welcome-new-contact/versions").status_code == 403
    assert agent.post("/flows/expression/check", data={"_field": "e", "e": "1"}).status_code == 403
    stranger = TestClient(editor_app)
    r = stranger.get(EDIT, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert login("marketer").get("/flows/no-such-flow/edit").status_code == 404


def test_archived_flows_open_read_only(login: Callable[..., Session], db_url: str) -> None:
    with transaction(db_url) as db:
        record = db.get(models.FlowRecord, "welcome-new-contact")
        assert record is not None
        record.status = "archived"
    html = login("marketer").get(EDIT).text
    assert _page_data(html)["canEdit"] is False and "已归档" in html


def test_writes_need_the_csrf_token(login: Callable[..., Session]) -> None:
    marketer = login("marketer")
    r = marketer.client.post("/flows/expression/check", data={"_field": "e", "e": "1"})
    assert r.status_code == 403
    r = marketer.client.post("/flows/expression/check", data={"_field": "e", "e": "1", "csrf_token": marketer.csrf})
    assert r.status_code == 200


# -- live checks ----------------------------------------------------------------------------------------
def test_expression_check(login: Callable[..., Session]) -> None:
    marketer = login("marketer")
    ok = marketer.post("/flows/expression/check",
                       data={"_field": "cases.0.expr", "cases.0.expr": "customer.vip_level > 2", "other": "x"})
    assert 'class="ok"' in ok.text and "✓" in ok.text
    bad = marketer.post("/flows/expression/check", data={"_field": "expr", "expr": "customer.orders_count >"})
    assert 'class="error"' in bad.text and "语法错误" in bad.text  # in the page's language (zh-CN here)
    unknown = marketer.post("/flows/expression/check", data={"_field": "expr", "expr": "cusomer.x == 1"})
    assert "未知名称" in unknown.text and "cusomer" in unknown.text
    english = marketer.post("/flows/expression/check?lang=en", data={"_field": "expr", "expr": "cusomer.x == 1"})
    assert "unknown name" in english.text
    assert marketer.post("/flows/expression/check", data={"_field": "expr", "expr": " "}).text == ""
    template = marketer.post("/flows/expression/check", data={"_field": "t", "_kind": "template", "t": "{{ x"})
    assert 'class="error"' in template.text


def test_duration_check_in_the_ui_language(login: Callable[..., Session]) -> None:
    marketer = login("marketer")
    ok = marketer.post("/flows/expression/check", data={"_field": "timeout", "_kind": "duration", "timeout": "P7D"})
    assert "✓ 7 天" in ok.text
    en = login("marketer", "en").post("/flows/expression/check?lang=en",
                                      data={"_field": "d", "_kind": "duration", "d": "PT1H30M"})
    assert "✓ 1 hour 30 minutes" in en.text
    bad = marketer.post("/flows/expression/check", data={"_field": "d", "_kind": "duration", "d": "1 day"})
    assert 'class="error"' in bad.text


def test_template_preview_uses_the_sample_or_a_chosen_real_customer_masked(login: Callable[..., Session],
                                                                          db_url: str) -> None:
    marketer = login("marketer")
    source = "你好 {{ customer.name }}，你有 {{ customer.orders_count }} 单"
    r = marketer.post("/flows/template/preview", data={"_field": "template", "template": source})
    assert f"你好 {SAMPLE_CUSTOMER['name']}，你有 0 单" in r.text and "示例客户" in r.text  # nobody's data by default
    with transaction(db_url) as db:
        lei = db.scalar(select(models.Customer.id).where(models.Customer.name == "李雷"))
        db.get(models.Customer, lei).attributes = {"orders_count": 3, "phone": "13912345678",  # type: ignore[union-attr]
                                                   "note": "卡号 6222 0212 3456 7890 128"}
    text = "{{ customer.name }} {{ customer.orders_count }} 单 {{ customer.phone }} {{ customer.note }}"
    real = marketer.post("/flows/template/preview", data={"_field": "t", "t": text, "_pv_customer": lei})
    # a marketer reads customers' personal data masked (the read policy, engine/read_policy.py): the name too
    assert "李* 3 单 139****5678 卡号 **** **** **** 0128" in real.text and "真实客户" in real.text
    assert "13912345678" not in real.text and "6222" not in real.text and "李雷" not in real.text
    picker = marketer.get("/flows/preview-customers", params={"_pv_q": "李雷"})
    assert f'value="{lei}"' in picker.text and 'value="sample"' in picker.text and "李雷" not in picker.text
    ops = login("ops")  # ops read customers in clear; numbers in previews stay masked for everyone
    clear = ops.post("/flows/template/preview", data={"_field": "t", "t": text, "_pv_customer": lei})
    assert "李雷 3 单 139****5678 卡号 **** **** **** 0128" in clear.text and "13912345678" not in clear.text
    escaped = marketer.post("/flows/template/preview", data={"_field": "t", "t": "<b>{{ customer.name }}</b>"})
    assert f"&lt;b&gt;{SAMPLE_CUSTOMER['name']}&lt;/b&gt;" in escaped.text  # shown as text, never as HTML
    broken = marketer.post("/flows/template/preview", data={"_field": "t", "t": "{{ customer.name "})
    assert 'class="error"' in broken.text
    # a role that may not read customers gets the sample customer only
    finance = login("finance")
    refused = finance.post("/flows/template/preview", data={"_field": "t", "t": "{{ customer.name }}",
                                                           "_pv_customer": lei})
    assert "李雷" not in refused.text and "示例客户" in refused.text
    assert f'value="{lei}"' not in finance.get("/flows/preview-customers", params={"_pv_q": "李雷"}).text


# -- versions, diff, funnel, layout ---------------------------------------------------------------------
def test_versions_diff_and_rollback_buttons(login: Callable[..., Session]) -> None:
    marketer = login("marketer")
    changed = copy.deepcopy(WELCOME)
    changed["nodes"] = [n for n in changed["nodes"] if n["id"] != "tag_trial"]
    changed["edges"] = [e for e in changed["edges"] if e["to"] != "tag_trial"]
    changed["edges"].append({"from": "bought", "port": "yes", "to": "converted"})
    next(n for n in changed["nodes"] if n["id"] == "hello")["config"]["template"] = "新的欢迎语 {{ customer.name }}"
    assert marketer.client.put("/api/flows/welcome-new-contact", json=changed,
                               headers={"X-CSRF-Token": marketer.csrf}).status_code == 200
    assert marketer.post_json("/api/flows/welcome-new-contact/publish", {}).status_code == 201
    panel = marketer.get("/flows/welcome-new-contact/versions").text
    assert "v2" in panel and "v1" in panel and 'data-rollback="1"' in panel and 'data-rollback="2"' not in panel
    assert 'hx-get="/flows/welcome-new-contact/diff?a=1&amp;b=2"' in panel
    diff = marketer.get("/flows/welcome-new-contact/diff", params={"a": 1, "b": 2}).text
    assert "删除节点" in diff and "tag_trial" in diff and "新增连线" in diff and "converted" in diff
    assert "config.template" in diff and "新的欢迎语" in diff
    same = marketer.get("/flows/welcome-new-contact/diff", params={"a": 2, "b": "draft"}).text
    assert "没有区别" in same
    assert marketer.get("/flows/welcome-new-contact/diff", params={"a": 9}).status_code == 404
    assert 'data-rollback' not in login("finance").get("/flows/welcome-new-contact/versions").text


def test_funnel_counts_along_the_main_path(login: Callable[..., Session], db_url: str) -> None:
    marketer = login("marketer")
    with transaction(db_url) as db:
        for node, count in (("start", 200), ("hello", 180), ("converted", 30)):
            db.add(models.NodeStat(flow_id="welcome-new-contact", version=1, node_id=node, metric="entered",
                                   port="", count=count))
    html = marketer.get("/flows/welcome-new-contact/funnel").text
    assert "v1" in html and "添加企微好友" in html and "进入 200" in html and "进入 180 · 90%" in html
    assert "首单转化" in html and "进入 30 · 15%" in html
    assert html.index("添加企微好友") < html.index("欢迎语") < html.index("首单转化")
    draft = {**WELCOME, "id": "unpublished"}
    marketer.post_json("/api/flows", draft)
    assert "尚未发布" in marketer.get("/flows/unpublished/funnel").text


def test_layout_endpoint(login: Callable[..., Session]) -> None:
    r = login("marketer").post_json("/flows/layout", WELCOME)
    assert r.status_code == 200
    positions = r.json()
    assert positions["start"]["x"] < positions["hello"]["x"] and set(positions) == {n["id"] for n in WELCOME["nodes"]}


# -- preview --------------------------------------------------------------------------------------------
def test_preview_runs_the_canvas_document_and_answers_the_timeline(login: Callable[..., Session]) -> None:
    marketer = login("marketer")
    document = copy.deepcopy(WELCOME)
    hello = next(n for n in document["nodes"] if n["id"] == "hello")
    hello["config"]["template"] = "画布上的欢迎语 {{ customer.name }}"
    r = marketer.post("/flows/welcome-new-contact/preview", data={
        "document": json.dumps(document, ensure_ascii=False), "name": "韩梅梅", "attributes": '{"orders_count": 0}',
        "tags": "新客", "days": "10", "events.0.at": "day 3", "events.0.type": "order.paid",
        "events.0.payload": '{"amount_fen": 100}', "events.2.at": "", "events.2.type": "",
    })
    assert r.status_code == 200, r.text
    html = r.text
    assert "画布上的欢迎语 韩梅梅" in html  # the canvas document, not the stored draft
    assert 'data-node="hello"' in html and 'data-node="wait_order"' in html and "第 3 天 00:00" in html
    assert "converted" in html and "data-play" in html


def test_preview_explains_problems_and_bad_input(login: Callable[..., Session]) -> None:
    marketer = login("marketer")
    broken = copy.deepcopy(WELCOME)
    next(n for n in broken["nodes"] if n["id"] == "bought")["config"]["expr"] = "customer.orders_count >"
    r = marketer.post("/flows/welcome-new-contact/preview", data={"document": json.dumps(broken), "days": "5"})
    assert "无法预览" in r.text and 'data-node="bought"' in r.text and "语法错误" in r.text
    bad = marketer.post("/flows/welcome-new-contact/preview",
                        data={"document": json.dumps(WELCOME), "attributes": "[1, 2]", "days": "5"})
    assert "输入有误" in bad.text and "客户属性" in bad.text
    too_long = marketer.post("/flows/welcome-new-contact/preview",
                             data={"document": json.dumps(WELCOME), "days": "400"})
    assert "输入有误" in too_long.text
    bad_at = marketer.post("/flows/welcome-new-contact/preview", data={
        "document": json.dumps(WELCOME), "days": "5", "events.0.at": "next tuesday", "events.0.type": "order.paid"})
    assert "输入有误" in bad_at.text


def test_preview_says_why_a_step_failed_in_the_readers_language(login: Callable[..., Session]) -> None:
    """A step that fails shows its reason as each reader reads it, the "error:" before it too: an action the
    activity refused (its Msg crossed Temporal) and a condition that cannot be evaluated (the workflow fails)."""
    refused = copy.deepcopy(WELCOME)
    next(n for n in refused["nodes"] if n["id"] == "hello")["config"]["template"] = "每袋 {{ 100 // customer.bags }} 元"
    broken = copy.deepcopy(WELCOME)
    next(n for n in broken["nodes"] if n["id"] == "bought")["config"]["expr"] = "100 // customer.bags > 10"
    division = "integer division or modulo by zero"
    cases = [
        (refused, "hello", f"错误：节点「hello」：节点「hello」的模板：无法渲染模板：{division}",
         f"error: node 'hello': template of node 'hello': cannot render template: {division}"),
        (broken, "bought", f"错误：节点「bought」：无法计算「100 // customer.bags > 10」：{division}",
         f"error: node 'bought': cannot evaluate '100 // customer.bags > 10': {division}"),
    ]
    for document, node, chinese, english in cases:
        form = {"document": json.dumps(document, ensure_ascii=False), "attributes": '{"bags": 0}', "days": "3"}
        zh = login("marketer").post("/flows/welcome-new-contact/preview", data=form)
        en = login("marketer", "en").post("/flows/welcome-new-contact/preview", data=form)
        assert zh.status_code == en.status_code == 200
        failed = re.search(r'<li tabindex="0" data-node="(\w+)" class="tf-what-failed">(.*?)</li>', zh.text, re.S)
        assert failed is not None and failed.group(1) == node, zh.text
        assert chinese in html.unescape(failed.group(2)) and "error:" not in zh.text
        assert "node &#39;" not in zh.text
        assert english in html.unescape(en.text) and "错误" not in en.text
        assert 'data-status="failed"' in zh.text and "tideflow-msg" not in zh.text + en.text


def test_preview_step_details_are_in_the_readers_language(login: Callable[..., Session]) -> None:
    """The event that ended a journey (its goal) is named after a prefix in the reader's language, the event's type
    as the identifier it is."""
    form = {"document": json.dumps(WELCOME, ensure_ascii=False), "days": "5", "events.0.at": "day 1",
            "events.0.type": "order.paid", "events.0.payload": "{}"}
    zh = login("marketer").post("/flows/welcome-new-contact/preview", data=form)
    en = login("marketer", "en").post("/flows/welcome-new-contact/preview", data=form)
    assert zh.status_code == en.status_code == 200, zh.text
    texts = [html.unescape(t) for t in re.findall(r'<span class="tf-step-text">(.*?)</span>', zh.text, re.S)]
    assert "事件：order.paid" in texts, texts
    assert not re.search(r"\b(event|reason|until):", zh.text)
    assert "event: order.paid" in [html.unescape(t) for t in re.findall(
        r'<span class="tf-step-text">(.*?)</span>', en.text, re.S)]


def test_a_steps_status_is_said_in_the_readers_language(login: Callable[..., Session]) -> None:
    """What an action did in the preview (its ``detail.status``, a code) is a label in the reader's language: a
    WeCom mass send's "preview: not sent"; the English as it was."""
    document = copy.deepcopy(WELCOME)
    hello = next(n for n in document["nodes"] if n["id"] == "hello")
    hello["type"], hello["config"] = "action.wecom_mass_send", {"text": "双十二 {{ customer.name }}"}
    form = {"document": json.dumps(document, ensure_ascii=False), "name": "韩梅梅", "days": "3"}
    zh = login("marketer").post("/flows/welcome-new-contact/preview", data=form)
    en = login("marketer", "en").post("/flows/welcome-new-contact/preview", data=form)
    assert zh.status_code == en.status_code == 200, zh.text

    def texts(page: str) -> list[str]:
        return [html.unescape(t) for t in re.findall(r'<span class="tf-step-text">(.*?)</span>', page, re.S)]

    assert any("(预览：未发送)" in t for t in texts(zh.text)), texts(zh.text)
    assert "preview: not sent" not in zh.text and "[dry-run]" not in zh.text  # the message node's channel too
    assert any(t.startswith("[演练") for t in texts(zh.text)), texts(zh.text)
    assert any("(preview: not sent)" in t for t in texts(en.text)), texts(en.text)
    with language("zh-CN"):  # codes: a label; a status we do not know (a plugin's): as it is
        assert [_step_text({"detail": {"status": s}}) for s in ("no_customer", "dry-run", "acme: queued")] == [
            "(没有客户)", "(演练（未实际发送）)", "(acme: queued)"]


def test_a_deferred_steps_time_and_a_cancels_reason_are_said_in_the_readers_language() -> None:
    """``until:`` (a deferred action's next try) in the reader's language and the workspace's display zone; a
    cancel's reason: its default in words, a person's as they are."""
    step = {"what": "deferred", "until": "2026-12-08T01:30:00+00:00"}
    cancelled, by_whom = {"what": "cancel", "reason": "cancelled"}, {"what": "cancel", "reason": "by 韩梅梅"}
    with language("zh-CN"):
        assert _step_text(step) == "直到：2026-12-08 09:30"
        assert (_step_text(cancelled), _step_text(by_whom)) == ("原因：已取消", "原因：by 韩梅梅")  # their words
    with language("en"):
        assert _step_text(step) == "until: 2026-12-08 09:30"
        assert (_step_text(cancelled), _step_text(by_whom)) == ("reason: cancelled", "reason: by 韩梅梅")


def test_human_duration() -> None:
    assert human_duration(timedelta(days=7)) == "7 天"  # zh-CN unless a request asks for English
    with language("en"):
        assert human_duration(timedelta(days=1, hours=2, minutes=30)) == "1 day 2 hours 30 minutes"
        assert human_duration(timedelta(days=1, seconds=1)) == "1 day 1 second"
        assert human_duration(timedelta(0)) == "0 seconds"
