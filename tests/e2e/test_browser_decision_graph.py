"""The decision-graph page in real Chromium, with a model somebody else made: the DMN TCK's vacation-days
model (tests/decisions/tck, compliance level 3). A marketer imports the file, sees the graph (decisions
over input data, requirement arrows), opens a required decision's table in the grid editor, changes a
cell, and evaluates the whole graph on the TCK's first test case: every decision's result by name, in the
list and in the graph. The same table exports as DMN 1.3. Saves docs/screenshots/decision_graph.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import browser as kit

pytestmark = pytest.mark.browser
MODEL = (Path(__file__).resolve().parents[1] / "decisions" / "tck" / "compliance-level-3" / "0020-vacation-days"
         / "0020-vacation-days.dmn")


def result_row(page: Page, name: str) -> str:
    return page.locator("[data-drg-results] tbody tr").filter(
        has=page.locator("th", has_text=name)).locator("td code").inner_text()


def test_marketer_imports_a_drg_opens_a_table_and_evaluates_the_whole_graph(live_server: kit.LiveServer,
                                                                             page: Page) -> None:
    kit.add_user(live_server.database_url, "mia", "marketer")
    kit.login(page, live_server.url, "mia", next_path="/decisions")
    page.locator("#drg-file").set_input_files(str(MODEL))
    with page.expect_navigation():
        page.locator(".tf-drg-upload button[type=submit]").click()

    # the graph: five decisions above two input data, ten requirement arrows
    svg = page.locator("svg.tf-drg-svg")
    expect(svg).to_be_visible()
    expect(svg.locator("g.tf-drg-decision")).to_have_count(5)
    expect(svg.locator("g.tf-drg-input")).to_have_count(2)
    expect(svg.locator("path.tf-drg-arrow.tf-drg-information")).to_have_count(10)
    total = svg.locator('g.tf-drg-box[data-name="Total Vacation Days"]')
    age = svg.locator('g.tf-drg-box[data-name="Age"]')
    assert total.bounding_box()["y"] < age.bounding_box()["y"]  # type: ignore[index]

    # open "Extra days case 1", which Total Vacation Days requires: its table in the grid editor
    svg.locator('g.tf-drg-box[data-name="Extra days case 1"]').click()
    panel = page.locator('details.tf-drg-panel[data-panel="d_Extra_days_case_1"]')
    expect(panel).to_have_attribute("open", "")
    grid = panel.locator("table.tf-dmn-grid")
    expect(grid).to_be_visible()
    expect(grid.locator("tbody tr")).to_have_count(2)
    expect(panel.locator('select[data-k="hit_policy"]')).to_have_value("COLLECT")
    expect(panel.locator('select[data-k="aggregation"]')).to_have_value("MAX")

    # evaluate the whole graph on TCK case 001 (Age 16, Years of Service 1 → Total Vacation Days 27)
    page.locator('[data-input="Age"]').fill("16")
    page.locator('[data-input="Years of Service"]').fill("1")
    page.locator("[data-drg-evaluate]").click()
    expect(page.locator("[data-drg-results]")).to_be_visible()
    expect(page.locator("[data-drg-results] tbody tr")).to_have_count(5)
    assert result_row(page, "Total Vacation Days") == "27"
    assert result_row(page, "Base Vacation Days") == "22"
    assert result_row(page, "Extra days case 1") == "5"
    assert result_row(page, "Extra days case 2") == "0"
    assert result_row(page, "Extra days case 3") == "0"
    expect(svg.locator('[data-result-for="d_Total_Vacation_Days"]')).to_have_text("= 27")
    kit.screenshot(page, "decision_graph")

    # an edited cell is what the graph evaluates: under-18s get 10 extra days → 22 + 10 + 0 = 32
    cell = grid.locator('input[data-k="rules.0.output_entries.0"]')
    cell.fill("10")
    cell.press("Tab")
    page.locator("[data-drg-evaluate]").click()
    expect(svg.locator('[data-result-for="d_Total_Vacation_Days"]')).to_have_text("= 32")
    assert result_row(page, "Extra days case 1") == "10"

    # the table exports as DMN 1.3 (the existing export), edit included
    with page.expect_download() as download:
        panel.locator("[data-dmn-export]").click()
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    assert 'xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/"' in exported
    assert "<text>10</text>" in exported

    # a bad input says which and why, where the user looks
    page.locator('[data-input="Age"]').fill("")
    page.locator('[data-input="Years of Service"]').fill("1")
    page.evaluate("() => { const f = document.querySelector('[data-input=\"Age\"]');"
                  " f.type = 'text'; f.value = 'sixteen'; }")
    page.locator("[data-drg-evaluate]").click()
    expect(page.locator("[data-drg-status]")).to_contain_text("inputs.Age")
