"""The canvas editor in real Chromium: a marketer draws the 新客欢迎 journey from an empty flow by
dragging nodes from the palette and connecting ports, fills the generated forms, sees a validation
error on a node and fixes it, previews the journey (time travel), saves and publishes it. Then the
editing basics (keyboard add, multi-select, delete, undo/redo), the live statistics overlay and
read-only access. Saves docs/screenshots/editor.png and docs/screenshots/preview.png (1280×800)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from playwright.sync_api import Locator, Page, expect

from designer.flows import editor
from engine.db import models
from engine.db.session import transaction
from tests.e2e import browser as kit
from tideflow.demo import seed

pytestmark = pytest.mark.browser

FLOW_ID = "welcome-drawn"


@pytest.fixture
def live_routers() -> list[APIRouter]:
    return [editor.router]


def _document(page: Page) -> dict[str, Any]:
    """The flow@1 document the editor holds right now."""
    return dict(page.evaluate("() => window.tideflowEditor.document"))


def _edges(page: Page) -> set[tuple[str, str, str]]:
    edges = page.evaluate("() => window.tideflowEditor.document.edges")
    return {(e["from"], e.get("port", "out"), e["to"]) for e in edges}


def node(page: Page, node_id: str) -> Locator:
    return page.locator(f'.drawflow-node[data-tf="{node_id}"]')


def drop(page: Page, node_type: str, x: int, y: int) -> None:
    """Drag a palette item onto the canvas at (x, y) relative to the canvas."""
    before = len(_document(page)["nodes"])
    page.drag_and_drop(f'.tf-pal-item[data-type="{node_type}"]', "#tf-canvas", target_position={"x": x, "y": y})
    expect(page.locator(".drawflow-node")).to_have_count(before + 1)


def connect(page: Page, source: str, port: str, target: str) -> None:
    """Drag from an output port of ``source`` to the input of ``target``."""
    out = node(page, source).locator(f'.output[data-port="{port}"]').bounding_box()
    into = node(page, target).locator(".input").bounding_box()
    assert out is not None and into is not None
    page.mouse.move(out["x"] + out["width"] / 2, out["y"] + out["height"] / 2)
    page.mouse.down()
    page.mouse.move(into["x"] + into["width"] / 2, into["y"] + into["height"] / 2, steps=8)
    page.mouse.up()
    assert (source, port, target) in _edges(page), f"{source}.{port} → {target} was not connected"


def open_form(page: Page, node_id: str) -> Locator:
    node(page, node_id).click()
    form = page.locator(f'form.tf-form[data-node="{node_id}"]')
    expect(form).to_be_visible()
    return form


#: what a property form's status line says once the server has answered its submit: accepted, or refused
#: (never "正在应用…", which the submit itself writes there, nor the answer to an earlier submit)
APPLIED = "已应用"
REFUSED = re.compile(r"^(有字段需要修改|未应用：)")


def apply(page: Page, form: Locator, expect_ok: bool = True) -> None:
    form.locator("button[type=submit]").click()
    expect(form.locator(".tf-form-status")).to_have_text(APPLIED if expect_ok else REFUSED)


def config_of(page: Page, node_id: str) -> dict[str, Any]:
    nodes = page.evaluate("() => window.tideflowEditor.document.nodes")
    return dict(next(n for n in nodes if n["id"] == node_id)["config"])


def test_marketer_draws_previews_and_publishes_the_welcome_journey(live_server: kit.LiveServer, page: Page) -> None:
    seed(live_server.database_url)  # demo customers: the template preview may use one of them (李雷)
    kit.add_user(live_server.database_url, "mia", "marketer", display_name="运营 Mia")
    with transaction(live_server.database_url) as db:
        from engine import flows as flowsvc

        flowsvc.save_draft(db, {"schema": "tideflow/flow@1", "id": FLOW_ID, "name": "新客欢迎", "kind": "journey",
                                "nodes": [], "edges": []}, "mia")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    kit.login(page, live_server.url, "mia", next_path=f"/flows/{FLOW_ID}/edit")
    expect(page.locator("#tf-canvas .drawflow")).to_be_visible()
    expect(page.locator("#tf-problems")).to_contain_text("流程中没有节点")  # an empty flow cannot be published

    # palette: grouped, labelled in Chinese, searchable
    expect(page.locator('.tf-pal-group[data-category="trigger"] h3')).to_have_text("触发")
    page.locator("#tf-palette-search").fill("等待")
    expect(page.locator('.tf-pal-item[data-type="wait.delay"]')).to_be_visible()
    expect(page.locator('.tf-pal-item[data-type="action.tag"]')).to_be_hidden()
    page.locator("#tf-palette-search").fill("")

    # draw: nine nodes dragged from the palette
    for node_type, x, y in [("trigger.event", 100, 70), ("action.send_message", 320, 70), ("wait.delay", 540, 70),
                            ("logic.condition", 100, 250), ("action.tag", 320, 200),
                            ("action.send_message", 320, 330), ("wait.event", 540, 330),
                            ("logic.goal", 320, 470), ("logic.exit", 540, 470)]:
        drop(page, node_type, x, y)
    ids = [n["id"] for n in _document(page)["nodes"]]
    assert ids == ["event", "send_message", "delay", "condition", "tag", "send_message_2", "event_2", "goal", "exit"]
    # the port's label in the page's language (zh-CN); its id stays data-port, the data edges use
    expect(node(page, "condition").locator('.output[data-port="yes"]')).to_have_attribute("data-label", "是")
    expect(node(page, "condition").locator('.output[data-port="no"]')).to_have_attribute("title", "否")

    # connect ports
    for source, port, target in [("event", "out", "send_message"), ("send_message", "out", "delay"),
                                 ("send_message", "skipped", "delay"), ("delay", "out", "condition"),
                                 ("condition", "yes", "tag"), ("condition", "no", "send_message_2"),
                                 ("send_message_2", "out", "event_2"), ("event_2", "event", "goal"),
                                 ("event_2", "timeout", "exit")]:
        connect(page, source, port, target)
    assert len(_edges(page)) == 9

    # forms generated from the config schemas
    form = open_form(page, "event")
    form.locator('[name="_name"]').fill("添加企微好友")
    picker = form.locator('[name="event"]')  # the event type: picked from the catalogue, by its Chinese name
    picker.click()
    picker.press_sequentially("好友")
    listbox = page.locator(f'#{picker.get_attribute("aria-controls")}')
    expect(listbox.locator('[role="group"]').first).to_have_attribute("aria-label", "企业微信")
    first = listbox.locator('[role="option"]').first
    expect(first.locator(".tf-combo-label")).to_have_text("添加企微好友")
    expect(first.locator("code")).to_have_text("wecom.contact_added")
    picker.press("Enter")
    expect(picker).to_have_value("wecom.contact_added")
    expect(listbox).to_be_hidden()
    apply(page, form)
    assert config_of(page, "event") == {"event": "wecom.contact_added"}

    form = open_form(page, "send_message")
    form.locator('[name="_name"]').fill("欢迎语")
    form.locator('select[name="channel"]').select_option("wecom")
    form.locator('[name="template"]').fill("你好 {{ customer.name }}，我是你的专属顾问小潮")
    # live template preview: the made-up sample customer first; then a real one, picked by name, masked
    expect(form.locator(".tf-bubble")).to_contain_text("你好 林小溪，我是你的专属顾问小潮")
    form.locator('[name="_pv_q"]').fill("李雷")
    who = form.locator('select[name="_pv_customer"]')
    expect(who.locator("option")).to_have_count(2)
    who.select_option(index=1)
    # a marketer reads customers' personal data masked (engine/read_policy.py): the name too
    expect(form.locator(".tf-bubble")).to_contain_text("你好 李*，我是你的专属顾问小潮")
    expect(form.locator(".tf-tpl-preview small")).to_contain_text("真实客户「李*」")
    apply(page, form)
    assert config_of(page, "send_message")["channel"] == "wecom"

    form = open_form(page, "delay")  # durations: a number and a unit, ISO 8601 in the JSON
    expect(form.locator('[name="duration.amount"]')).to_have_value("1")
    expect(form.locator('[name="duration.unit"]')).to_have_value("days")
    form.locator('[name="_name"]').fill("等待 1 天")
    apply(page, form)

    # a mistake: the condition is cut short — the field says so, the node gets a red badge, publishing is off
    form = open_form(page, "condition")
    form.locator('[name="_name"]').fill("已下单？")
    form.locator('[name="expr"]').fill("customer.orders_count >")
    expect(form.locator("#f-expr-check")).to_contain_text("语法错误")  # live expression check, in the page's language
    apply(page, form, expect_ok=False)
    expect(form.locator('[data-error-for="expr"]')).to_contain_text("语法错误")
    expect(node(page, "condition").locator(".tf-badge")).to_be_visible()
    expect(node(page, "condition")).to_have_class(re.compile(r"\btf-invalid\b"))
    expect(page.locator("#tf-problems")).to_contain_text("condition")
    expect(page.locator("#tf-publish")).to_be_disabled()
    # … and its fix
    form.locator('[name="expr"]').fill("customer.orders_count > 0")
    expect(form.locator("#f-expr-check")).to_contain_text("✓")
    apply(page, form)
    expect(node(page, "condition").locator(".tf-badge")).to_be_hidden()

    form = open_form(page, "tag")
    form.locator('[name="_name"]').fill("打标签：尝鲜客")
    form.locator('[name="add"]').fill("尝鲜客")
    apply(page, form)
    assert config_of(page, "tag") == {"add": ["尝鲜客"]}

    form = open_form(page, "send_message_2")
    form.locator('[name="_name"]').fill("发新人券")
    form.locator('[name="template"]').fill("{{ customer.name }}，送你一张新人专享 20 元无门槛券")
    apply(page, form)

    form = open_form(page, "event_2")
    form.locator('[name="_name"]').fill("等待首单（7 天）")
    form.locator('[name="event"]').fill("order.paid")
    form.locator('[name="timeout.amount"]').fill("36")
    form.locator('[name="timeout.unit"]').select_option("hours")
    expect(form.locator("#f-timeout-check")).to_contain_text("1 天 12 小时（P1DT12H）")
    apply(page, form)
    assert config_of(page, "event_2")["timeout"] == "P1DT12H"  # ISO 8601 in the document
    form.locator('[name="timeout.amount"]').fill("7")
    form.locator('[name="timeout.unit"]').select_option("days")
    expect(form.locator("#f-timeout-check")).to_contain_text("7 天（P7D）")
    apply(page, form)
    assert config_of(page, "event_2")["timeout"] == "P7D"

    expect(page.locator("#tf-problem-count")).to_have_text("✓")
    expect(page.locator("#tf-publish")).to_be_enabled()
    page.locator("#tf-layout").click()  # auto-layout: layered left → right
    page.wait_for_function("() => { const n = window.tideflowEditor.document.nodes;"
                           " return n.find(x => x.id === 'goal').ui.x > n.find(x => x.id === 'event_2').ui.x; }")

    # preview: 韩梅梅 has not bought yet; she pays on day 3
    page.locator("#tf-tab-preview").click()
    preview = page.locator("#tf-preview-form")
    preview.locator('[name="name"]').fill("韩梅梅")
    preview.locator('[name="attributes"]').fill('{"orders_count": 0}')
    preview.locator("[data-add-row]").click()
    preview.locator('[name="events.0.at"]').fill("day 3")
    preview.locator('[name="events.0.type"]').fill("order.paid")
    preview.locator('[name="events.0.payload"]').fill('{"amount_fen": 12900}')
    preview.locator("button[type=submit]").click()
    timeline = page.locator("#tf-timeline .tf-timeline")
    expect(timeline).to_contain_text("你好 韩梅梅，我是你的专属顾问小潮", timeout=60_000)
    expect(timeline).to_contain_text("达成目标")  # the goal node, by its type's label
    # when: a day and a clock, never a fraction of days ("第 3 天 00:00", not "day 3.00")
    expect(page.locator('#tf-timeline li[data-node="goal"] .tf-day')).to_have_text("第 3 天 00:00")
    expect(page.locator('#tf-timeline li[data-node="delay"] .tf-day').first).to_have_text("第 1 天 00:00")
    expect(page.locator("#tf-timeline .tf-preview-status")).to_have_text("已转化")  # the status, in words
    expect(page.locator("#tf-timeline .tf-preview-status")).to_have_attribute("data-status", "converted")
    page.locator("#tf-timeline [data-play]").click()  # steps through the timeline, node by node
    expect(page.locator("#tf-timeline li.tf-current")).to_have_count(1)
    page.locator('#tf-timeline li[data-node="send_message_2"]').first.click()
    expect(node(page, "send_message_2")).to_have_class(re.compile(r"\btf-highlight\b"))
    kit.screenshot(page, "preview")

    # save and publish
    page.locator("#tf-publish").click()
    expect(page.locator("#tf-status")).to_have_text("已发布为 v1")
    r = httpx.get(f"{live_server.url}/api/flows/{FLOW_ID}", cookies=dict(
        (c["name"], c["value"]) for c in page.context.cookies()))
    saved = r.json()
    assert saved["flow"]["current_version"] == 1 and saved["problems"] == []
    stored = saved["document"]
    assert "drawflow" not in json.dumps(stored) and stored["schema"] == "tideflow/flow@1"
    assert {(e["from"], e.get("port", "out"), e["to"]) for e in stored["edges"]} == _edges(page)
    assert all(set(n["ui"]) == {"x", "y"} for n in stored["nodes"])

    page.locator("#tf-tab-versions").click()
    expect(page.locator("#tf-versions table")).to_contain_text("v1")
    page.locator("#tf-tab-props").click()
    node(page, "send_message").click()
    expect(page.locator('form.tf-form[data-node="send_message"] .tf-bubble')).to_be_visible()
    page.locator(".tf-palette").evaluate("el => el.scrollTo(0, 0)")
    kit.screenshot(page, "editor")
    assert errors == []


def test_keyboard_multiselect_undo_redo_and_live_stats(live_server: kit.LiveServer, page: Page) -> None:
    seed(live_server.database_url)  # publishes welcome-new-contact v1
    kit.add_user(live_server.database_url, "mia", "marketer")
    kit.login(page, live_server.url, "mia", next_path="/flows/welcome-new-contact/edit?lang=en")
    expect(page.locator(".drawflow-node")).to_have_count(len(_document(page)["nodes"]))
    count = page.locator(".drawflow-node").count()

    # keyboard: a focused palette item adds its node with Enter
    page.locator('.tf-pal-item[data-type="wait.delay"]').focus()
    page.keyboard.press("Enter")
    expect(page.locator(".drawflow-node")).to_have_count(count + 1)
    assert "delay" in {n["id"] for n in _document(page)["nodes"]}
    expect(node(page, "delay")).to_be_in_viewport()  # added off to the right: the canvas pans to it

    # multi-select with shift-click, delete both with the Delete key (the whole flow in view first)
    page.locator("#tf-fit").click()
    node(page, "delay").click()
    node(page, "wait1").click(modifiers=["Shift"])
    expect(page.locator("#tf-panel-props")).to_contain_text("Nodes selected: 2")
    page.keyboard.press("Delete")
    expect(page.locator(".drawflow-node")).to_have_count(count - 1)
    assert not {"delay", "wait1"} & {n["id"] for n in _document(page)["nodes"]}
    assert not any("wait1" in (e["from"], e["to"]) for e in _document(page)["edges"])

    # undo brings both back with their edges; redo deletes them again; undo once more
    page.locator("#tf-canvas").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+z")
    expect(page.locator(".drawflow-node")).to_have_count(count + 1)
    assert ("wait1", "out", "bought") in _edges(page)
    page.keyboard.press("Control+Shift+z")
    expect(page.locator(".drawflow-node")).to_have_count(count - 1)
    page.locator("#tf-undo").click()
    expect(page.locator(".drawflow-node")).to_have_count(count + 1)

    # moving a multi-selection moves all its nodes by the same offset
    before = {n["id"]: dict(n["ui"]) for n in _document(page)["nodes"]}
    node(page, "start").click()
    node(page, "hello").click(modifiers=["Shift"])
    box = node(page, "start").bounding_box()
    assert box is not None
    grab_x, grab_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(grab_x, grab_y)
    page.mouse.down()
    page.mouse.move(grab_x, grab_y + 100, steps=5)
    page.mouse.up()
    after = {n["id"]: dict(n["ui"]) for n in _document(page)["nodes"]}
    moved = after["start"]["y"] - before["start"]["y"]
    assert moved > 50 and after["hello"]["y"] - before["hello"]["y"] == pytest.approx(moved, abs=1)
    assert after["wait1"] == before["wait1"]

    # a switch gets one output port per case, named in its form (rows added in the browser)
    page.locator('.tf-pal-item[data-type="logic.switch"]').focus()
    page.keyboard.press("Enter")
    form = page.locator('form.tf-form[data-node="switch"]')
    expect(form).to_be_visible()
    for i, (port, expr) in enumerate([("svip", "customer.vip_level >= 3"), ("vip", "customer.vip_level >= 1")]):
        form.locator("[data-add-row]").click()
        form.locator(f'[name="cases.{i}.port"]').fill(port)
        form.locator(f'[name="cases.{i}.expr"]').fill(expr)
    expect(form.locator("#f-cases-1-expr-check")).to_contain_text("✓")
    form.locator("button[type=submit]").click()
    expect(node(page, "switch").locator(".output")).to_have_count(3)
    labels = node(page, "switch").locator(".output").evaluate_all("els => els.map(e => e.dataset.port)")
    assert labels == ["svip", "vip", "default"]

    # flow settings come from FlowSettings' schema, like node forms
    page.locator("#tf-settings").click()
    settings = page.locator('form.tf-form[data-kind="settings"]')
    settings.locator('[name="settings.goal.within.amount"]').fill("30")
    settings.locator('[name="settings.goal.within.unit"]').select_option("days")
    settings.locator("button[type=submit]").click()
    page.wait_for_function("() => window.tideflowEditor.document.settings.goal.within === 'P30D'")

    # live statistics: counters of the published version appear and refresh without a reload
    page.locator("#tf-stats").click()
    expect(node(page, "hello").locator(".tf-node-stats")).to_contain_text("in 0")
    with transaction(live_server.database_url) as db:
        db.add_all([models.NodeStat(flow_id="welcome-new-contact", version=1, node_id="hello", metric="entered",
                                    port="", count=12),
                    models.NodeStat(flow_id="welcome-new-contact", version=1, node_id="bought", metric="left",
                                    port="yes", count=5)])
    expect(node(page, "hello").locator(".tf-node-stats")).to_contain_text("in 12", timeout=10_000)
    expect(node(page, "bought").locator('.output[data-port="yes"]')).to_have_attribute("data-label", "yes 5")
    page.locator("#tf-tab-funnel").click()
    expect(page.locator("#tf-funnel .tf-funnel")).to_contain_text("12")


def test_read_only_and_forbidden(live_server: kit.LiveServer, page: Page) -> None:
    seed(live_server.database_url)
    kit.add_user(live_server.database_url, "fay", "finance")
    kit.add_user(live_server.database_url, "ada", "agent")
    kit.login(page, live_server.url, "fay", next_path="/flows/welcome-new-contact/edit")
    expect(page.locator(".tf-readonly-note")).to_be_visible()
    expect(page.locator("#tf-save")).to_have_count(0)
    expect(page.locator(".tf-pal-item").first).to_be_disabled()
    node(page, "hello").click()
    expect(page.locator('form.tf-form[data-node="hello"] [name="template"]')).to_be_disabled()
    # the agent in a browser of their own (the editor page above keeps polling with fay's session)
    agent = kit.new_page(page.context.browser)  # type: ignore[arg-type]
    try:
        kit.login(agent, live_server.url, "ada")
        response = agent.goto(f"{live_server.url}/flows/welcome-new-contact/edit")
        assert response is not None and response.status == 403
        expect(agent.locator("h1")).to_contain_text("坐席")  # the agent role, named
    finally:
        agent.context.close()


def test_roll_back_from_the_versions_drawer(live_server: kit.LiveServer, page: Page) -> None:
    seed(live_server.database_url)  # welcome-new-contact v1
    kit.add_user(live_server.database_url, "mia", "marketer")
    kit.login(page, live_server.url, "mia", next_path="/flows/welcome-new-contact/edit")
    page.evaluate("() => { window.tideflowEditor.document.nodes.find(n => n.id === 'hello').config.template ="
                  " '新的欢迎语 {{ customer.name }}'; }")
    page.evaluate("() => window.tideflowEditor.publish()")
    expect(page.locator("#tf-status")).to_have_text("已发布为 v2")
    page.locator("#tf-tab-versions").click()
    expect(page.locator("#tf-versions")).to_contain_text("v2")
    page.locator("#tf-versions .tf-compare button[type=submit]").click()
    expect(page.locator("#tf-diff")).to_contain_text("新的欢迎语")  # v1 → v2: the welcome text changed
    page.on("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.locator('#tf-versions [data-rollback="1"]').click()
    expect(page.locator("#tf-flow-state")).to_contain_text("v3")  # rolled back by publishing v1 again as v3
    hello = page.evaluate("() => window.tideflowEditor.document.nodes.find(n => n.id === 'hello').config.template")
    assert "新的欢迎语" not in hello


def _centre(locator: Locator) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _inside(locator: Locator, frame: Locator) -> bool:
    a, b = locator.bounding_box(), frame.bounding_box()
    assert a is not None and b is not None
    return a["x"] >= b["x"] and a["y"] >= b["y"] and a["x"] + a["width"] <= b["x"] + b["width"] \
        and a["y"] + a["height"] <= b["y"] + b["height"]


def test_the_canvas_opens_readable_zooms_at_the_cursor_and_copies_pastes_duplicates_with_undo(
        live_server: kit.LiveServer, page: Page) -> None:
    """The canvas as a marketer meets it: readable on opening (never below 80 %), the whole flow one key away,
    zoom at the mouse pointer, a minimap to move around, a box to select, copy/paste/duplicate of nodes with
    the edges between them, a right-click menu, undo and redo across all of it, and the shortcuts listed."""
    seed(live_server.database_url)
    kit.add_user(live_server.database_url, "mia", "marketer")
    kit.login(page, live_server.url, "mia", next_path="/flows/welcome-new-contact/edit")
    canvas = page.locator("#tf-canvas")
    expect(page.locator(".drawflow-node")).to_have_count(len(_document(page)["nodes"]))
    count = len(_document(page)["nodes"])

    # readable: at least 80 %, node names at least 12 px on screen, the trigger in view, the rest on the minimap
    zoom = page.evaluate("() => window.tideflowEditor.view.zoom")
    assert zoom >= 0.8 and page.locator("#tf-zoom-label").inner_text() == f"{round(zoom * 100)}%"
    name_px = node(page, "start").locator(".tf-node-name").evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    assert name_px * zoom >= 12
    assert _inside(node(page, "start"), canvas)
    expect(page.locator("#tf-minimap .tf-mini-node")).to_have_count(count)
    # zoom at the cursor: the node under the mouse pointer stays under it
    target = node(page, "hello")
    x, y = _centre(target)
    page.mouse.move(x, y)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -400)
    page.keyboard.up("Control")
    page.wait_for_function(f"() => window.tideflowEditor.view.zoom > {zoom} * 1.5")
    nx, ny = _centre(target)
    assert abs(nx - x) < 3 and abs(ny - y) < 3, ((x, y), (nx, ny))

    # "fit" (0) shows every node
    page.locator("#tf-fit").click()
    assert all(_inside(node(page, n["id"]), canvas) for n in _document(page)["nodes"])
    page.keyboard.press("1")  # back to 100 %
    expect(page.locator("#tf-zoom-label")).to_have_text("100%")

    # the minimap moves the view: a click centres that point
    before = page.evaluate("() => window.tideflowEditor.view")
    mini = page.locator("#tf-minimap").bounding_box()
    assert mini is not None
    page.mouse.click(mini["x"] + mini["width"] * 0.8, mini["y"] + mini["height"] * 0.5)
    assert page.evaluate("() => window.tideflowEditor.view")["x"] < before["x"]  # moved right along the flow
    page.locator("#tf-fit").click()

    # select with a box (shift-drag on the empty canvas): hello and wait1
    hello, wait1 = node(page, "hello").bounding_box(), node(page, "wait1").bounding_box()
    assert hello is not None and wait1 is not None
    page.keyboard.down("Shift")
    page.mouse.move(hello["x"] - 10, min(hello["y"], wait1["y"]) - 10)
    page.mouse.down()
    bottom = max(hello["y"] + hello["height"], wait1["y"] + wait1["height"])
    page.mouse.move(wait1["x"] + wait1["width"] + 4, bottom + 10, steps=6)
    page.mouse.up()
    page.keyboard.up("Shift")
    assert set(page.evaluate("() => window.tideflowEditor.selected")) == {"hello", "wait1"}
    expect(page.locator("#tf-panel-props")).to_contain_text("2")

    # copy, then paste at the mouse pointer: two new nodes with fresh ids, the edge between them copied too
    page.keyboard.press("Control+c")
    expect(page.locator("#tf-status")).to_contain_text("2")
    box = canvas.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 120, box["y"] + box["height"] - 60)
    page.keyboard.press("Control+v")
    expect(page.locator(".drawflow-node")).to_have_count(count + 2)
    ids = {n["id"] for n in _document(page)["nodes"]}
    assert {"send_message", "delay"} <= ids
    assert ("send_message", "out", "delay") in _edges(page) and ("hello", "out", "wait1") in _edges(page)
    assert set(page.evaluate("() => window.tideflowEditor.selected")) == {"send_message", "delay"}
    pasted = next(n for n in _document(page)["nodes"] if n["id"] == "send_message")
    assert pasted["config"] == next(n for n in _document(page)["nodes"] if n["id"] == "hello")["config"]
    # duplicate (Ctrl+D) the pasted pair
    page.keyboard.press("Control+d")
    expect(page.locator(".drawflow-node")).to_have_count(count + 4)
    assert ("send_message_2", "out", "delay_2") in _edges(page)

    # undo and redo walk back and forth over nodes and edges alike
    page.keyboard.press("Control+z")
    expect(page.locator(".drawflow-node")).to_have_count(count + 2)
    assert ("send_message_2", "out", "delay_2") not in _edges(page)
    page.keyboard.press("Control+z")
    expect(page.locator(".drawflow-node")).to_have_count(count)
    assert ("send_message", "out", "delay") not in _edges(page)
    page.keyboard.press("Control+Shift+z")
    expect(page.locator(".drawflow-node")).to_have_count(count + 2)
    assert ("send_message", "out", "delay") in _edges(page)

    # the right-click menu: delete the pasted pair's first node (with its edge), then undo it
    node(page, "send_message").click(button="right")
    menu = page.locator("#tf-menu")
    expect(menu.locator('[data-act="paste"]')).to_be_enabled()
    menu.locator('[data-act="delete"]').click()
    expect(page.locator(".drawflow-node")).to_have_count(count + 1)
    assert ("send_message", "out", "delay") not in _edges(page)
    page.locator("#tf-undo").click()
    assert ("send_message", "out", "delay") in _edges(page)

    # the shortcuts, listed in a help overlay (?), closed with Escape
    page.locator("#tf-canvas").click(position={"x": 5, "y": 5})
    page.keyboard.press("Shift+?")
    help_box = page.locator("#tf-help")
    expect(help_box).to_be_visible()
    expect(help_box).to_contain_text("Ctrl+D")
    expect(help_box).to_contain_text("创建副本")
    kit.screenshot(page, "editor-shortcuts")
    page.keyboard.press("Escape")
    expect(help_box).to_be_hidden()
