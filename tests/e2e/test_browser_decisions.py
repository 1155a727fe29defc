"""The decision-table grid in real Chromium: an ops lead opens a ticket-routing flow, edits a cell and
adds a rule in the grid (the node's config follows), imports a Camunda Modeler DMN file (choosing one
of its two decisions), tests the table on an input, and sees the result. Saves
docs/screenshots/decision_table.png (1280×800)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from playwright.sync_api import Dialog, Page, expect

from designer.flows import editor
from engine import flows as flowsvc
from engine.db.session import transaction
from tests.e2e import browser as kit

pytestmark = pytest.mark.browser
DMN = Path(__file__).resolve().parents[1] / "decisions" / "data" / "refund_routing.dmn"
TABLE: dict[str, Any] = {
    "name": "退款路由", "hit_policy": "FIRST",
    "inputs": [{"id": "amount", "label": "退款金额", "expression": "ticket.refund_amount", "type_ref": "number"}],
    "outputs": [{"id": "queue", "name": "queue", "type_ref": "string"}],
    "rules": [{"id": "big", "input_entries": [">= 5000"], "output_entries": ['"risk"']},
              {"id": "rest", "input_entries": ["-"], "output_entries": ['"standard"']}],
}
FLOW = {
    "schema": "tideflow/flow@1", "id": "refund-routing", "name": "退款工单路由", "kind": "ticket",
    "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": "ticket.created"},
               "ui": {"x": 60, "y": 120}},
              {"id": "route", "type": "logic.decision_table", "config": {"table": TABLE, "port_output": "queue"},
               "ui": {"x": 320, "y": 120}}],
    "edges": [{"from": "start", "to": "route"}],
}


@pytest.fixture
def live_routers() -> list[APIRouter]:
    return [editor.router]


def _table(page: Page) -> dict[str, Any]:
    nodes = page.evaluate("() => window.tideflowEditor.document.nodes")
    return dict(next(n for n in nodes if n["id"] == "route")["config"]["table"])


def test_ops_edits_imports_and_tests_a_decision_table(live_server: kit.LiveServer, page: Page) -> None:
    with transaction(live_server.database_url) as db:
        flowsvc.save_draft(db, FLOW, "test")
    kit.add_user(live_server.database_url, "olive", "ops")
    kit.login(page, live_server.url, "olive", next_path="/flows/refund-routing/edit")
    page.locator('.drawflow-node[data-tf="route"]').click()
    form = page.locator('form.tf-form[data-node="route"]')
    grid = form.locator("table.tf-dmn-grid")
    # the side panel says what the table is; the grid itself opens full width, like Camunda's DMN editor
    expect(form.locator("[data-dmn-summary]")).to_have_text("2 条规则 · FIRST · 输入：退款金额 · 输出：queue")
    expect(grid).to_be_hidden()
    form.locator("[data-dmn-open]").click()
    expect(grid).to_be_visible()
    grid_box, viewport = grid.bounding_box(), page.viewport_size
    assert grid_box is not None and viewport is not None
    overlay = form.locator(".tf-field.tf-dmn-full").bounding_box()
    assert overlay is not None and overlay["width"] > viewport["width"] * 0.9  # full width, not the side panel
    expect(grid.locator("tbody tr")).to_have_count(2)

    # like a spreadsheet: type, arrows move between cells, Enter on the last rule adds one, Alt+↑ moves it up
    first = grid.locator('input[data-k="rules.0.input_entries.0"]')
    first.click()
    first.press("ArrowDown")
    expect(grid.locator('input[data-k="rules.1.input_entries.0"]')).to_be_focused()
    page.keyboard.press("Enter")  # on the last rule: a new rule, the cursor in it
    expect(grid.locator("tbody tr")).to_have_count(3)
    expect(grid.locator('input[data-k="rules.2.input_entries.0"]')).to_be_focused()
    page.keyboard.type("[1000..5000)")
    page.keyboard.press("ArrowRight")  # at the end of the text: the next cell (the output)
    expect(grid.locator('input[data-k="rules.2.output_entries.0"]')).to_be_focused()
    page.keyboard.press("Control+a")
    page.keyboard.type('"senior"')
    page.keyboard.press("ArrowRight")  # the annotation column
    page.keyboard.type("中等金额由高级坐席处理")
    page.keyboard.press("Alt+ArrowUp")  # the new rule moves above the catch-all rule (FIRST goes by order)
    expect(grid.locator('input[data-k="rules.1.input_entries.0"]')).to_have_value("[1000..5000)")
    expect(grid.locator('input[data-k="rules.1.description"]')).to_be_focused()
    expect(grid.locator('tbody tr').nth(1).locator(".tf-dmn-n")).to_have_text("2")
    form.locator('select[data-k="hit_policy"]').select_option("PRIORITY")
    form.locator('select[data-k="hit_policy"]').select_option("FIRST")
    kit.screenshot(page, "decision_table_full")
    page.keyboard.press("Escape")  # back to the canvas: the node's config has the edited table
    expect(grid).to_be_hidden()
    # the grid applies its edits as it goes (each keystroke schedules a submit): on a slow machine an answer
    # with the rule half typed comes first, so wait for the table as it was left, not for any third rule
    page.wait_for_function("() => { const rules = window.tideflowEditor.document.nodes[1].config.table.rules;"
                           " return rules.length === 3 && rules[1].input_entries[0] === '[1000..5000)'"
                           " && rules[1].description === '中等金额由高级坐席处理'; }")
    rules = _table(page)["rules"]
    assert [r["input_entries"] for r in rules] == [[">= 5000"], ["[1000..5000)"], ["-"]]
    assert rules[1]["output_entries"] == ['"senior"'] and rules[1]["description"] == "中等金额由高级坐席处理"
    expect(form.locator("[data-dmn-summary]")).to_contain_text("3 条规则")
    form.locator("[data-dmn-open]").click()
    page.locator('[data-act="del-rule"][data-i="1"]').click()
    expect(grid.locator("tbody tr")).to_have_count(2)

    # edit a cell: the node's config follows once the form is applied
    cell = grid.locator('input[data-k="rules.1.output_entries.0"]')
    cell.fill('"normal"')
    cell.press("Tab")
    page.wait_for_function("() => window.tideflowEditor.document.nodes[1].config.table.rules[1]"
                           ".output_entries[0] === '\"normal\"'")
    expect(form.locator(".tf-form-status")).to_have_text("已应用")
    assert [r["id"] for r in _table(page)["rules"]] == ["big", "rest"]

    # add a rule with the button: a new row of '-' cells
    form.locator('[data-act="add-rule"]').click()
    expect(grid.locator("tbody tr")).to_have_count(3)
    page.wait_for_function("() => window.tideflowEditor.document.nodes[1].config.table.rules.length === 3")
    assert _table(page)["rules"][2]["input_entries"] == ["-"]

    # import a Camunda Modeler file holding two decision tables: the editor asks which one
    def choose(dialog: Dialog) -> None:
        assert "refund_routing" in dialog.message
        dialog.accept("refund_routing")

    page.once("dialog", choose)
    form.locator("[data-dmn-import]").set_input_files(str(DMN))
    status = form.locator("[data-dmn-status]")
    expect(status).to_contain_text("已导入")
    expect(grid.locator("tbody tr")).to_have_count(7)
    expect(form.locator('select[data-k="hit_policy"]')).to_have_value("UNIQUE")
    page.wait_for_function("() => window.tideflowEditor.document.nodes[1].config.table.rules.length === 7")
    assert _table(page)["id"] == "refund_routing"

    # test it on an input
    form.locator(".tf-dmn-test summary").click()
    form.locator("[data-dmn-input]").fill('{"ticket": {"refund_amount": 6000}, "customer": {"vip_level": "gold"}}')
    form.locator("[data-dmn-test]").click()
    expect(status).to_contain_text('"queue":"refund_senior"')
    expect(status).to_contain_text("DecisionRule_large")
    kit.screenshot(page, "decision_table")
