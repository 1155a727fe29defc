"""logic.decision_table in real journeys on Temporal's time-skipping server: routing by an output's
value, outputs in variables for later nodes, validation at publish time, runtime hit-policy errors,
and a replay of the recorded history (the node issues no commands of its own)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from engine.compiler import FlowInvalid
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.validate import validate
from engine.worker import PASSTHROUGH, build_worker, workflows
from tests.engine.flowkit import customer, flow, messages, publish
from tests.engine.historykit import HISTORIES, keep

ROUTING: dict[str, Any] = {
    "name": "退款路由", "hit_policy": "UNIQUE",
    "inputs": [{"id": "amount", "label": "退款金额", "expression": "event.payload.amount", "type_ref": "number"},
               {"id": "vip", "label": "会员等级", "expression": "customer.vip", "type_ref": "string"}],
    "outputs": [{"id": "queue", "name": "queue", "type_ref": "string", "allowed_values": ["risk", "vip", "standard"]},
                {"id": "priority", "name": "priority", "type_ref": "string"}],
    "rules": [
        {"id": "big", "input_entries": [">= 5000", "-"], "output_entries": ['"risk"', '"urgent"']},
        {"id": "gold", "input_entries": ["< 5000", '"gold","platinum"'], "output_entries": ['"vip"', '"high"']},
        {"id": "plain", "input_entries": ["< 5000", 'not("gold","platinum")'],
         "output_entries": ['"standard"', '"normal"']},
    ],
}


def routing_flow(table: dict[str, Any], flow_id: str = "refund-route", **node: Any) -> dict[str, Any]:
    return flow(
        flow_id,
        [("start", "trigger.event", {"event": "refund.requested"}),
         ("route", "logic.decision_table", {"table": table, "port_output": "queue", **node}),
         ("risk", "action.send_message", {"template": "风控 {{ vars.priority }}"}),
         ("vip", "action.send_message", {"template": "VIP {{ vars.queue }}/{{ vars.priority }}"}),
         ("standard", "logic.condition", {"expr": "vars.priority == 'normal'"}),
         ("normal", "action.send_message", {"template": "普通"}),
         ("nomatch", "action.send_message", {"template": "未匹配 {{ vars.queue is none }}"})],
        [("start", "out", "route"), ("route", "risk", "risk"), ("route", "vip", "vip"),
         ("route", "standard", "standard"), ("standard", "yes", "normal"), ("route", "default", "nomatch")])


@pytest.fixture
def queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


async def run(env: Any, queue: str, compiled: dict[str, Any], cid: str, payload: dict[str, Any]) -> Any:
    handle = await env.client.start_workflow(
        JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid, entry_event={
            "id": f"e:{cid}", "type": "refund.requested", "payload": payload}),
        id=f"journey/{compiled['flow_id']}/{cid}", task_queue=queue)
    return handle


async def test_routes_by_output_value_and_sets_variables(time_env: Any, db_url: str, queue: str) -> None:
    compiled = publish(db_url, routing_flow(ROUTING, allow_gaps=True))
    gold, plain, big, unknown = (customer(db_url, vip="gold"), customer(db_url, vip="none"),
                                 customer(db_url, vip="gold"), customer(db_url))
    async with build_worker(time_env.client, queue, db_url):
        results = {}
        for cid, payload in ((gold, {"amount": 1999}), (plain, {"amount": "300.50"}), (big, {"amount": 8000}),
                             (unknown, {})):
            handle = await run(time_env, queue, compiled, cid, payload)
            results[cid] = await handle.result()
            if cid == gold:
                history = await handle.fetch_history()
    assert messages(db_url, gold) == ["VIP vip/high"]
    assert messages(db_url, plain) == ["普通"]
    assert messages(db_url, big) == ["风控 urgent"]
    assert messages(db_url, unknown) == ["未匹配 True"]  # a missing amount matches no rule: default port
    assert results[gold]["variables"] == {"queue": "vip", "priority": "high"}
    assert results[unknown]["variables"] == {"queue": None, "priority": None}
    steps = [(s["node"], s.get("port")) for s in results[big]["timeline"] if s["what"] == "step"]
    assert ("route", "risk") in steps

    # the node is pure workflow code: its history replays on today's interpreter
    replayer = Replayer(workflows=workflows(), workflow_runner=SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)))
    await replayer.replay_workflow(history)
    keep(history, "decision_table_route")
    recorded = HISTORIES / "decision_table_route.json"
    assert recorded.exists(), "record it with TIDEFLOW_RECORD_HISTORIES=1 (the replay test then guards it)"
    await replayer.replay_workflow(WorkflowHistory.from_json("recorded", recorded.read_text()))


async def test_collect_sum_and_result_variable_leave_by_out(time_env: Any, db_url: str, queue: str) -> None:
    points = {
        "name": "风险分", "hit_policy": "COLLECT", "aggregation": "SUM",
        "inputs": [{"id": "amount", "expression": "event.payload.amount", "type_ref": "number"},
                   {"id": "new", "expression": "customer.first_order", "type_ref": "boolean"}],
        "outputs": [{"id": "score", "name": "score", "type_ref": "number"}],
        "rules": [{"id": "big", "input_entries": ["> 1000", "-"], "output_entries": ["40"]},
                  {"id": "new", "input_entries": ["-", "true"], "output_entries": ["2.5"]}],
    }
    document = flow(
        "risk-score",
        [("start", "trigger.event", {"event": "refund.requested"}),
         ("score", "logic.decision_table", {"table": points, "result_variable": "risk", "allow_gaps": True}),
         ("say", "action.send_message", {"template": "分数 {{ vars.risk.score }}"})],
        [("start", "out", "score"), ("score", "out", "say")])
    compiled = publish(db_url, document)
    assert compiled["nodes"]["score"]["next"] == {"out": "say"}
    cid = customer(db_url, first_order=True)
    async with build_worker(time_env.client, queue, db_url):
        result = await (await run(time_env, queue, compiled, cid, {"amount": 2000})).result()
    assert result["variables"] == {"risk": {"score": "42.5"}}  # not whole: a decimal string, never a float
    assert messages(db_url, cid) == ["分数 42.5"]


async def test_a_unique_violation_at_run_time_fails_the_journey_naming_the_rules(
        time_env: Any, db_url: str, queue: str) -> None:
    # string ranges are not analysed, so this overlap is only "possible" at publish time
    letters = {
        "name": "姓名分组", "hit_policy": "UNIQUE",
        "inputs": [{"id": "name", "expression": "customer.name", "type_ref": "string"}],
        "outputs": [{"id": "queue", "name": "queue", "type_ref": "string"}],
        "rules": [{"id": "early", "input_entries": ['< "m"'], "output_entries": ['"a"']},
                  {"id": "any", "input_entries": ["-"], "output_entries": ['"b"']}],
    }
    document = flow("letters", [("start", "trigger.event", {"event": "refund.requested"}),
                                ("route", "logic.decision_table", {"table": letters}),
                                ("say", "action.send_message", {"template": "{{ vars.queue }}"})],
                    [("start", "out", "route"), ("route", "out", "say")])
    compiled = publish(db_url, document)
    cid = customer(db_url, name="amy")
    async with build_worker(time_env.client, queue, db_url):
        handle = await run(time_env, queue, compiled, cid, {})
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
    cause = str(caught.value.cause)
    assert "node 'route'" in cause and "'early', 'any'" in cause and "UNIQUE" in cause
    assert messages(db_url, cid) == []


def _problems(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [p.as_dict() for p in validate(document).problems]


def test_publishing_refuses_overlaps_gaps_and_bad_inputs(db_url: str) -> None:
    overlapping = {**ROUTING, "rules": [
        *ROUTING["rules"], {"id": "gold_too", "input_entries": ["-", '"gold"'],
                            "output_entries": ['"vip"', '"high"']}]}
    found = _problems(routing_flow(overlapping))
    overlap = [p for p in found if p["code"] == "decision_overlap"]
    assert overlap and overlap[0]["node"] == "route" and overlap[0]["field"] == "config.table.rules"
    assert "'big' and 'gold_too'" in overlap[0]["message"] or "'gold' and 'gold_too'" in overlap[0]["message"]

    gappy = {**ROUTING, "rules": ROUTING["rules"][:2]}
    gaps = [p for p in _problems(routing_flow(gappy)) if p["code"] == "decision_gap"]
    assert len(gaps) == 1 and "no rule matches" in gaps[0]["message"] and "allow_gaps" in gaps[0]["fix"]
    assert not [p for p in _problems(routing_flow(gappy, allow_gaps=True)) if p["code"] == "decision_gap"]

    typo = {**ROUTING, "inputs": [{**ROUTING["inputs"][0], "expression": "amount"}, ROUTING["inputs"][1]]}
    bad = [p for p in _problems(routing_flow(typo)) if p["code"] == "bad_expression"]
    assert bad[0]["field"] == "config.table.inputs.0.expression" and "unknown name 'amount'" in bad[0]["message"]

    wrong_port = _problems(routing_flow(ROUTING, port_output="prio"))
    assert any(p["field"] == "config.port_output" and "not an output" in p["message"] for p in wrong_port)

    with pytest.raises(FlowInvalid):
        publish(db_url, routing_flow(overlapping, "refund-overlap"))


def test_ports_follow_the_port_output(db_url: str) -> None:
    chinese = {**ROUTING, "outputs": [{"id": "queue", "name": "queue", "type_ref": "string",
                                       "allowed_values": ["风控组", "vip", "standard"]},
                                      ROUTING["outputs"][1]],
               "rules": [{**ROUTING["rules"][0], "output_entries": ['"风控组"', '"urgent"']}, *ROUTING["rules"][1:]]}
    found = _problems(routing_flow(chinese))
    assert any("'风控组' cannot be a port name" in p["message"] for p in found)
    clash = _problems(routing_flow(ROUTING, default_port="vip"))
    assert any(p["field"] == "config.default_port" for p in clash)
    multi = _problems(routing_flow({**ROUTING, "hit_policy": "RULE ORDER"}))
    assert any(p["field"] == "config.port_output" and "several results" in p["message"] for p in multi)
    # an edge from a port the node does not have is a problem naming the ports it has
    unported = routing_flow(ROUTING, port_output=None, allow_gaps=True)
    bad_port = [p for p in _problems(unported) if p["code"] == "bad_port"]
    assert bad_port and "out, default" in bad_port[0]["fix"]
