"""The decisions API: DMN import (XML or JSON body) with analysis, test-evaluation, export, roles, 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from decisions.dmn_xml import load_decision_table
from designer.app import create_app
from designer.decisions import api as api_decisions
from tests.designer.pages_kit import role_tokens
from tests.e2e.browser import include_once

DMN = (Path(__file__).resolve().parents[1] / "decisions" / "data" / "refund_routing.dmn").read_text()
XML = {"Content-Type": "application/xml"}


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    """One app and one API token per role for the whole module: these routes store nothing."""
    url = f"sqlite:///{tmp_path_factory.mktemp('decisions') / 'tideflow.db'}"
    found = role_tokens(url)
    app = create_app(url, connect=False)
    include_once(app, api_decisions.router)
    yield app, found


def client(tokens: tuple[FastAPI, dict[str, str]], username: str) -> TestClient:
    app, found = tokens
    return TestClient(app, headers={"Authorization": f"Bearer {found[username]}"})


@pytest.fixture(scope="module")
def ops(tokens: tuple[FastAPI, dict[str, str]]) -> TestClient:
    return client(tokens, "ops")


def test_import_xml_gives_the_node_config_and_a_clean_analysis(ops: TestClient) -> None:
    r = ops.post("/api/decisions?decision_id=refund_routing", content=DMN.encode(), headers=XML)
    assert r.status_code == 200, r.text
    body = r.json()
    table = body["config"]["table"]
    assert table["id"] == "refund_routing" and table["hit_policy"] == "UNIQUE" and len(table["rules"]) == 7
    assert [i["expression"] for i in table["inputs"]] == ["ticket.refund_amount", "customer.vip_level"]
    assert body["analysis"] == {"overlaps": [], "gaps": [], "other": []}
    assert body["problems"] == []  # ticket.… and customer.… inputs work in a flow as they are


def test_import_json_reports_gaps_and_roots_bare_inputs(ops: TestClient) -> None:
    bare = DMN.replace("<text>ticket.refund_amount</text>", "<text>refund_amount</text>")
    r = ops.post("/api/decisions", json={"xml": bare, "decision_id": "refund_risk_score"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["config"]["table"]["hit_policy"] == "COLLECT" and body["config"]["table"]["aggregation"] == "SUM"
    [gap] = body["analysis"]["gaps"]
    assert gap["kind"] == "gap" and "no rule matches" in gap["message"]
    assert [p["code"] for p in body["problems"]] == ["bad_expression", "decision_gap"]
    assert "unknown name 'refund_amount'" in body["problems"][0]["message"]
    rooted = ops.post("/api/decisions", json={"xml": bare, "decision_id": "refund_risk_score",
                                              "input_prefix": "event.payload"}).json()
    assert rooted["config"]["table"]["inputs"][0]["expression"] == "event.payload.refund_amount"
    assert rooted["config"]["table"]["inputs"][1]["expression"] == "customer.refunds_30d"  # already rooted
    assert [p["code"] for p in rooted["problems"]] == ["decision_gap"]


def test_overlaps_name_the_rules(ops: TestClient) -> None:
    overlapping = DMN.replace("<text>&lt; 200</text>", "<text>&lt;= 200</text>", 1)
    body = ops.post("/api/decisions?decision_id=refund_routing", content=overlapping, headers=XML).json()
    [overlap] = body["analysis"]["overlaps"]
    assert overlap["rule_ids"][0] == "DecisionRule_small_regular"
    assert any(p["code"] == "decision_overlap" and "DecisionRule_small_regular" in p["message"]
               for p in body["problems"])


@pytest.mark.parametrize(("body", "headers", "status", "needle"), [
    ("<definitions", XML, 400, "line 1"),
    (DMN.replace("</decision>", "</decisio>", 1), XML, 400, "mismatched tag: line"),
    (DMN, XML, 400, "several decision tables"),
    (DMN.replace('<decisionTable id="DecisionTable_1kq2v9s">',
                 '<decisionTable id="DecisionTable_1kq2v9s" hitPolicy="BEST">'), XML, 400,
     "hitPolicy 'BEST'"),
    (DMN.replace("<text>customer.vip_level</text>", "<text>vip level * 2</text>"), XML, 400,
     "'vip level * 2': unexpected text at position 5"),
    ("", XML, 400, "empty"),
    ("{not json", {"Content-Type": "application/json"}, 400, "not valid JSON"),
    ('{"xml": ""}', {"Content-Type": "application/json"}, 422, "xml"),
    ('{"xml": "<a/>", "input_prefix": "orders"}', {"Content-Type": "application/json"}, 422, "input_prefix"),
    ("hello", {"Content-Type": "text/plain"}, 415, "text/plain"),
])
def test_bad_documents_are_4xx_naming_the_problem(ops: TestClient, body: str, headers: dict[str, str],
                                                  status: int, needle: str) -> None:
    r = ops.post("/api/decisions", content=body.encode(), headers=headers)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert needle in (detail["message"] + str(detail.get("field"))), detail
    assert detail["fix"]


def test_a_file_of_several_tables_names_the_decision_id_field_in_any_language(ops: TestClient) -> None:
    """The editor asks which table by the field (its words are translated, so no script may read them)."""
    for query, words in (("", "several decision tables"), ("?lang=zh-CN", "文档中有多个决策表")):
        r = ops.post(f"/api/decisions{query}", content=DMN.encode(), headers=XML)
        assert r.status_code == 400, r.text
        assert r.json()["detail"]["field"] == "decision_id" and words in r.json()["detail"]["message"]


def _table(hit_policy: str = "UNIQUE") -> dict[str, Any]:
    table = load_decision_table(DMN, "refund_routing").model_dump(mode="json")
    return {**table, "hit_policy": hit_policy}


def test_evaluate(ops: TestClient) -> None:
    r = ops.post("/api/decisions/evaluate", json={
        "table": _table(), "input": {"ticket": {"refund_amount": "6000"}, "customer.vip_level": "gold"}})
    assert r.status_code == 200, r.text
    assert r.json() == {"result": {"queue": "refund_senior", "priority": "high", "review_levels": 2},
                        "hit_policy": "UNIQUE", "matched_rules": ["DecisionRule_large"],
                        "selected_rules": ["DecisionRule_large"]}
    nothing = ops.post("/api/decisions/evaluate", json={"table": _table(), "input": {}}).json()
    assert nothing["result"] is None and nothing["matched_rules"] == []


def test_evaluate_errors_name_the_rules_and_inputs(ops: TestClient) -> None:
    table = _table()
    table["rules"].append({**table["rules"][0], "id": "again"})
    r = ops.post("/api/decisions/evaluate", json={
        "table": table, "input": {"ticket": {"refund_amount": 10}, "customer": {"vip_level": "none"}}})
    assert r.status_code == 422
    assert r.json()["detail"]["rule_ids"] == ["DecisionRule_small_regular", "again"]
    assert "UNIQUE" in r.json()["detail"]["message"]
    wrong = ops.post("/api/decisions/evaluate",
                     json={"table": _table(), "input": {"ticket": {"refund_amount": "lots"}}})
    assert wrong.status_code == 422 and "退款金额" in wrong.json()["detail"]["message"]
    invalid = ops.post("/api/decisions/evaluate", json={"table": {**_table(), "hit_policy": "BEST"}, "input": {}})
    assert invalid.status_code == 422 and invalid.json()["detail"]["field"] == "table.hit_policy"


def test_export_round_trips(ops: TestClient) -> None:
    r = ops.post("/api/decisions/export", json={"table": _table("FIRST")})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert 'filename="refund_routing.dmn"' in r.headers["content-disposition"]
    back = ops.post("/api/decisions", content=r.content, headers=XML).json()
    assert back["config"]["table"] == _table("FIRST")


def test_roles(tokens: tuple[FastAPI, dict[str, str]]) -> None:
    for username, status in (("agent", 403), ("developer", 403), ("marketer", 200), ("finance", 200),
                             ("ops", 200), ("admin", 200)):
        r = client(tokens, username).post("/api/decisions/evaluate", json={"table": _table(), "input": {}})
        assert r.status_code == status, username
    anonymous = TestClient(tokens[0])
    assert anonymous.post("/api/decisions", content=DMN.encode(), headers=XML).status_code == 401
    assert anonymous.post("/api/decisions/export", json={"table": _table()}).status_code == 401
