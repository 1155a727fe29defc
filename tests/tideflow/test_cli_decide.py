"""``tideflow decide``: DMN or JSON tables from a file, the result as JSON, one-line errors with exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from decisions.dmn_xml import load_decision_table
from tideflow.cli import main

DMN = Path(__file__).resolve().parents[1] / "decisions" / "data" / "refund_routing.dmn"
SMALL = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="defs" name="d" namespace="urn:x">
  <decision id="discount" name="折扣">
    <decisionTable id="t" hitPolicy="{policy}">
      <input id="i1" label="金额"><inputExpression typeRef="number"><text>amount</text></inputExpression></input>
      <input id="i2" label="会员"><inputExpression typeRef="string"><text>vip</text></inputExpression></input>
      <output id="o1" name="rate" typeRef="number"/>
      <rule id="big"><inputEntry><text>&gt;= 5000</text></inputEntry><inputEntry><text>-</text></inputEntry>
        <outputEntry><text>0.1</text></outputEntry></rule>
      <rule id="gold"><inputEntry><text>-</text></inputEntry><inputEntry><text>"gold"</text></inputEntry>
        <outputEntry><text>0.15</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(["decide", *argv])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else out, err


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "discount.dmn"
    path.write_text(SMALL.format(policy="FIRST"), encoding="utf-8")
    return path


def test_dmn_file_prints_the_result_as_json(capsys: pytest.CaptureFixture[str], small: Path) -> None:
    code, out, _ = run(capsys, str(small), "--input", '{"amount": 6000, "vip": "gold"}')
    assert code == 0
    assert out == {"decision": "折扣", "result": {"rate": "0.1"}, "hit_policy": "FIRST",
                   "matched_rules": ["big", "gold"], "selected_rules": ["big"],
                   "decisions": {"折扣": "0.1"}}  # the graph's view: a one-output table's value
    code, out, _ = run(capsys, str(DMN), "--decision", "refund_risk_score", "--input",
                       '{"ticket.refund_amount": "6000", "customer": {"refunds_30d": 3, "is_new": true}}')
    assert code == 0 and out["result"] == 90 and out["hit_policy"] == "COLLECT"


def test_json_table_and_node_config_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    table = load_decision_table(DMN.read_bytes(), "refund_routing").model_dump(mode="json")
    for name, content in (("table.json", table), ("node.json", {"table": table, "port_output": "queue"})):
        path = tmp_path / name
        path.write_text(json.dumps(table if name == "table.json" else content, ensure_ascii=False))
        input_file = tmp_path / "input.json"
        input_file.write_text('{"ticket": {"refund_amount": 150}, "customer": {"vip_level": "gold"}}')
        code, out, _ = run(capsys, str(path), "--input", f"@{input_file}")
        assert code == 0, out
        assert out["result"] == {"queue": "refund_vip", "priority": "high", "review_levels": 0}


def test_unique_violation_is_one_line_naming_the_rules(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "unique.dmn"
    path.write_text(SMALL.format(policy="UNIQUE"), encoding="utf-8")
    code, _, err = run(capsys, str(path), "--input", '{"amount": 6000, "vip": "gold"}')
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("tideflow: ")
    assert "UNIQUE" in err and "'big', 'gold'" in err


@pytest.mark.parametrize(("content", "argv", "needle"), [
    (None, ["--input", '{"amount": 1}'], "--input lacks 'vip' (会员); add it, e.g. {\"vip\": \"…\"}"),
    (None, ["--input", '{"amount": "lots", "vip": null}'], "input '金额' (amount) is a number"),
    (None, ["--input", "[1]"], "--input must be a JSON object"),
    (None, ["--input", "{oops"], "--input is not valid JSON: Expecting property name"),
    (SMALL.format(policy="FIRST").replace("</decision>", "</decisio>"), ["--input", "{}"],
     "not well-formed XML: mismatched tag: line 13"),
    (SMALL.format(policy="BEST"), ["--input", "{}"], "hitPolicy 'BEST' is not one of"),
])
def test_errors_name_what_is_wrong(capsys: pytest.CaptureFixture[str], tmp_path: Path, small: Path,
                                   content: str | None, argv: list[str], needle: str) -> None:
    path = small
    if content is not None:
        path = tmp_path / "broken.dmn"
        path.write_text(content, encoding="utf-8")
    code, _, err = run(capsys, str(path), *argv)
    assert code == 1 and err.count("\n") == 1
    assert needle in err, err


def test_file_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad_json = tmp_path / "t.json"
    bad_json.write_text('{"name": "x",\n "outputs": [}')
    code, _, err = run(capsys, str(bad_json), "--input", "{}")
    assert code == 1 and "t.json is not valid JSON" in err and "line 2" in err
    invalid = tmp_path / "v.json"
    invalid.write_text('{"name": "x", "outputs": [], "hit_policy": "UNIQUE"}')
    code, _, err = run(capsys, str(invalid), "--input", "{}")
    assert code == 1 and "v.json: outputs:" in err
    code, _, err = run(capsys, str(tmp_path / "nope.dmn"), "--input", "{}")
    assert code == 1 and "cannot read" in err and "nope.dmn" in err
    code, _, err = run(capsys, str(DMN), "--input", "{}")
    assert code == 1 and "several decisions ('refund_risk_score', 'refund_summary')" in err
    assert "pass --decision ID" in err


def test_allow_missing_treats_absent_inputs_as_null(capsys: pytest.CaptureFixture[str], small: Path) -> None:
    code, out, _ = run(capsys, str(small), "--allow-missing", "--input", '{"vip": "gold"}')
    assert code == 0 and out["result"] == {"rate": "0.15"}


def test_the_installed_command(small: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tideflow.cli", "decide", str(small), "--input",
                           '{"amount": 100, "vip": "silver"}'], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] is None
