"""The decision-graph page (/decisions) and POST /api/decisions/graph/evaluate: a DMN TCK model
uploaded through the real form, its graph drawn, bad files explained, the whole graph evaluated."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from designer.decisions.pages import box_lines
from engine import auth
from tests.dbtemplate import migrated_sqlite
from tests.designer.pages_kit import Browser, add_users, build_app

TCK = Path(__file__).resolve().parents[1] / "decisions" / "tck" / "compliance-level-3"
LENDING = (TCK / "0004-lending" / "0004-lending.dmn").read_bytes()
VACATION = (TCK / "0020-vacation-days" / "0020-vacation-days.dmn").read_bytes()
IMPORTING = (TCK / "0086-import" / "0086-import.dmn").read_bytes()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    url = f"sqlite:///{tmp_path_factory.mktemp('drg') / 'tideflow.db'}"
    migrated_sqlite(url)
    # cheap_passwords' hasher, set by hand: a module-scoped fixture cannot ask for that function-scoped fixture
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        add_users(url)
        yield build_app(url)


@pytest.fixture(scope="module")
def ops(app: FastAPI) -> Browser:
    return Browser(app, "ops")


def upload(browser: Browser, content: bytes, name: str = "model.dmn") -> tuple[int, str]:
    r = browser.client.post("/decisions", data={"csrf_token": browser.csrf},
                            files={"dmn": (name, content, "application/xml")}, follow_redirects=False)
    return r.status_code, r.text


def test_the_lending_model_is_drawn_with_every_element_and_its_tables_open_in_the_grid(ops: Browser) -> None:
    assert "type=\"file\"" in ops.get("/decisions").text
    status, page = upload(ops, LENDING)
    assert status == 200, page
    assert len(re.findall(r'<g class="tf-drg-box tf-drg-decision"', page)) == 11
    assert len(re.findall(r'<g class="tf-drg-box tf-drg-input"', page)) == 4
    assert len(re.findall(r'<g class="tf-drg-box tf-drg-bkm"', page)) == 9
    assert page.count("<polygon") == 9  # knowledge models have clipped corners
    assert 'class="tf-drg-arrow tf-drg-knowledge"' in page and 'class="tf-drg-arrow tf-drg-information"' in page
    assert 'data-key="Strategy"' not in page  # boxes are keyed by element id, not name
    assert re.search(r'data-key="[^"]+" data-name="Strategy"', page)
    # each table has the grid editor with its JSON and the DMN 1.3 export; literal FEEL is shown
    assert page.count("data-dmn data-source=") == page.count("data-table-key=") > 0
    assert page.count("data-dmn-export") == page.count("data-table-key=")
    # the input form: one field per input data, structured ones typed as FEEL
    assert 'data-input="ApplicantData" data-widget="feel"' in page


def test_the_model_travels_with_the_page_escaped(ops: Browser) -> None:
    status, page = upload(ops, VACATION)
    assert status == 200
    assert "&lt;definitions" in page and 'data-input="Age" data-widget="number"' in page
    assert "<text class=\"tf-drg-name\"" in page and ">Base Vacation Days<" in page


@pytest.mark.parametrize(("content", "says", "name"), [
    (b"", "请选择一个 DMN 文件", "empty.dmn"),
    (b"<definitions", "XML 格式不正确", "cut.dmn"),  # the importer's sentence, in the page's language
    (b"\xff\xfe<x/>", "UTF-8", "utf16.dmn"),
    (b"<html><body>hello</body></html>", "无法读取此模型", "page.html"),
    (IMPORTING, "import", "0086-import.dmn"),  # it needs another model: said, not crashed
])
def test_a_file_that_is_no_model_is_explained(ops: Browser, content: bytes, says: str, name: str) -> None:
    status, page = upload(ops, content, name)
    assert status == 400
    assert says in page and 'role="alert"' in page


def test_names_from_the_file_are_text_never_markup(ops: Browser) -> None:
    hostile = VACATION.replace(b'name="Base Vacation Days"', b'name="&lt;img src=x onerror=alert(1)&gt;"')
    hostile = hostile.replace(b"Base Vacation Days +", b"22 +")
    status, page = upload(ops, hostile)
    assert status == 200, page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_file_over_the_limit_is_refused_before_it_is_parsed(ops: Browser) -> None:
    status, page = upload(ops, b"<!--" + b"x" * 5_000_000 + b"-->")
    assert status == 400 and "5 MB" in page


def test_only_flow_editors_see_the_page(app: FastAPI) -> None:
    agent = Browser(app, "agent")
    r = agent.get("/decisions")
    assert r.status_code == 403 and "没有权限" in r.text
    status, _ = upload(agent, VACATION)
    assert status == 403
    r = agent.client.post("/api/decisions/graph/evaluate", json={"xml": VACATION.decode()},
                          headers={"X-CSRF-Token": agent.csrf})
    assert r.status_code == 403


def test_the_api_evaluates_the_whole_graph_by_name(ops: Browser) -> None:
    r = ops.client.post("/api/decisions/graph/evaluate", headers={"X-CSRF-Token": ops.csrf},
                        json={"xml": VACATION.decode(), "inputs": {"Age": "16", "Years of Service": "1"}})
    assert r.status_code == 200, r.text
    values = {d["name"]: d["value"] for d in r.json()["decisions"]}
    # TCK 0020 case 001: 27 = 22 + max(5, 0) + 0
    assert values == {"Base Vacation Days": 22, "Extra days case 1": 5, "Extra days case 2": 0,
                      "Extra days case 3": 0, "Total Vacation Days": 27}


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"xml": "<definitions", "inputs": {}}, 400, "xml"),
    ({"xml": VACATION.decode(), "inputs": {"Age": "sixteen"}}, 422, "inputs.Age"),
    ({"xml": VACATION.decode(), "inputs": {"Salary": "1"}}, 422, "inputs.Salary"),
    ({"xml": VACATION.decode(), "tables": {"d_Base_Vacation_Days": {}}}, 422, "tables.d_Base_Vacation_Days"),
    ({"xml": VACATION.decode(), "surprise": 1}, 422, "surprise"),
])
def test_api_problems_name_the_field(ops: Browser, body: dict[str, object], status: int, field: str) -> None:
    r = ops.client.post("/api/decisions/graph/evaluate", headers={"X-CSRF-Token": ops.csrf}, json=body)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert field in str(detail.get("field")) and detail["message"]


def test_names_fit_their_box() -> None:
    assert box_lines("Total Vacation Days") == ["Total Vacation Days"]
    assert box_lines("Post-bureau risk category") == ["Post-bureau risk", "category"]
    assert box_lines("申请人风险评分模型（信用局调用前）") == ["申请人风险评分模型（", "信用局调用前）"]
    assert box_lines("RequiredMonthlyInstallment") == ["RequiredMonthly", "Installment"]
    assert box_lines("Pre-bureauRiskCategoryTable") == ["Pre-bureauRisk", "CategoryTable"]
    cut = box_lines("a very long decision name that goes on and on and on and on")
    assert len(cut) == 2 and cut[1].endswith("…")
