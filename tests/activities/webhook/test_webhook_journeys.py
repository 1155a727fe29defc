"""action.webhook inside journeys on Temporal's time-skipping server, against a real HTTP server."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from activities.webhook.call import CallWebhook
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.worker import build_worker
from tests.activities.webhook.webhook_kit import (
    SECRET,
    SECRET_ENV,
    Receiver,
    Reply,
    customer,
    messages,
    publish,
    receiver,
    secret,
)
from tests.engine.flowkit import flow

__all__ = ["receiver", "secret"]  # fixtures


@pytest.fixture
def queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


def hook_flow(flow_id: str, hook: dict[str, Any], ok: str = "好的", failed: str = "失败") -> dict[str, Any]:
    """trigger.api → hook → send_message(ok) on out, send_message(failed) on failed."""
    return flow(
        flow_id,
        [("start", "trigger.api", {}),
         ("hook", "action.webhook", hook),
         ("ok", "action.send_message", {"template": ok, "category": "transactional"}),
         ("bad", "action.send_message", {"template": failed, "category": "transactional"})],
        [("start", "out", "hook"), ("hook", "out", "ok"), ("hook", "failed", "bad")])


async def run_journey(env: Any, queue: str, db_url: str, compiled: dict[str, Any], cid: str,
                      variables: dict[str, Any] | None = None) -> tuple[dict[str, Any], WorkflowHandle[Any, Any]]:
    async with build_worker(env.client, queue, db_url):
        handle = await env.client.start_workflow(
            JOURNEY_WORKFLOW,
            JourneyInput(flow=compiled, customer_id=cid, variables=variables or {},
                         entry_event={"id": f"t:{cid}", "type": "order.paid", "payload": {"amount": 9900}}),
            id=f"journey/{compiled['flow_id']}/{cid}", task_queue=queue)
        return await handle.result(), handle


def hook_steps(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in result["timeline"] if s.get("node") == "hook"]


async def test_response_is_mapped_into_variables_and_used_by_the_next_message(
        time_env: Any, db_url: str, queue: str, receiver: Receiver, secret: str) -> None:
    receiver.secret = secret
    receiver.reply(Reply(200, {"data": {"points": 120, "tier": "金卡", "items": [{"sku": "A1"}]}}))
    compiled = publish(db_url, hook_flow("hook-ok", {
        "url": receiver.url + "/members/{{ customer.id }}/sync",
        "secret_env": SECRET_ENV,
        "headers": {"X-Shop": "{{ customer.shop }}"},
        "response_map": {"points": "data.points", "tier": "data.tier", "sku": "data.items.0.sku",
                         "nothing": "data.absent"},
    }, ok="{{ customer.name }}，你有 {{ vars.points }} 积分（{{ vars.tier }}，{{ vars.sku }}）{{ vars.nothing }}"))
    cid = customer(db_url, "张三", shop="hz-01")

    result, handle = await run_journey(time_env, queue, db_url, compiled, cid, {"campaign": "618"})

    assert result["status"] == "completed"
    assert messages(db_url, cid) == ["张三，你有 120 积分（金卡，A1）"]
    assert result["variables"] == {"campaign": "618", "points": 120, "tier": "金卡", "sku": "A1"}
    [seen] = receiver.requests
    assert seen.signature == "ok"  # verified by the receiver with verify_signature
    assert seen.method == "POST" and seen.path == f"/members/{cid}/sync"
    assert seen.headers["idempotency-key"] == f"journey/hook-ok/{cid}/hook/1"
    assert seen.headers["user-agent"] == "Tideflow/0.1"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-shop"] == "hz-01"
    assert seen.json() == {
        "customer": {"id": cid, "name": "张三"},
        "event": {"id": f"t:{cid}", "type": "order.paid", "payload": {"amount": 9900}},
        "vars": {"campaign": "618"},
        "journey": {"id": f"journey/hook-ok/{cid}", "flow": "hook-ok", "version": 1, "node": "hook"},
    }
    [action] = [s for s in hook_steps(result) if s["what"] == "action"]
    detail = action["detail"]
    assert detail["status"] == 200 and isinstance(detail["elapsed_ms"], int)
    assert detail["mapped"] == ["points", "sku", "tier"] and detail["missing"] == ["nothing"]
    history = (await handle.fetch_history()).to_json()
    assert SECRET not in history and SECRET not in json.dumps(result)


async def test_500_twice_then_200_succeeds_after_retries_with_one_idempotency_key(
        time_env: Any, db_url: str, queue: str, receiver: Receiver) -> None:
    receiver.reply(Reply(500, {"error": "busy"}), Reply(500, b"oops", "text/plain"),
                   Reply(200, {"ok": True, "points": 7}))
    compiled = publish(db_url, hook_flow("hook-retry", {"url": receiver.url + "/hook",
                                                        "response_map": {"points": "points"}},
                                         ok="{{ vars.points }} 分"))
    cid = customer(db_url)

    started = time.monotonic()
    result, _ = await run_journey(time_env, queue, db_url, compiled, cid)
    took = time.monotonic() - started

    assert result["status"] == "completed"
    assert messages(db_url, cid) == ["7 分"]
    assert receiver.count == 3
    keys = {r.headers["idempotency-key"] for r in receiver.requests}
    assert keys == {f"journey/hook-retry/{cid}/hook/1"}
    assert took < 10, f"retries took {took:.1f} s"


async def test_persistent_500_takes_the_failed_port_after_max_attempts(
        time_env: Any, db_url: str, queue: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CallWebhook, "max_attempts", 3)
    receiver.default = Reply(503, {"error": "down"})
    compiled = publish(db_url, hook_flow("hook-down", {"url": receiver.url + "/hook"}))
    cid = customer(db_url)

    result, _ = await run_journey(time_env, queue, db_url, compiled, cid)

    assert result["status"] == "completed"
    assert messages(db_url, cid) == ["失败"]
    assert receiver.count == 3
    [failed] = [s for s in hook_steps(result) if s["what"] == "failed"]
    assert "HTTP 503" in failed["error"]
    assert [s["port"] for s in hook_steps(result) if s["what"] == "step"] == ["failed"]


async def test_404_fails_at_once_without_retries(time_env: Any, db_url: str, queue: str, receiver: Receiver) -> None:
    receiver.default = Reply(404, {"error": "no such member"})
    compiled = publish(db_url, hook_flow("hook-404", {"url": receiver.url + "/nope"}))
    cid = customer(db_url)

    result, _ = await run_journey(time_env, queue, db_url, compiled, cid)

    assert messages(db_url, cid) == ["失败"]
    assert receiver.count == 1
    [failed] = [s for s in hook_steps(result) if s["what"] == "failed"]
    assert "HTTP 404" in failed["error"] and "no such member" in failed["error"]


async def test_a_timeout_is_retried(time_env: Any, db_url: str, queue: str, receiver: Receiver) -> None:
    receiver.reply(Reply(200, {"late": True}, delay=2.0), Reply(200, {"late": False}))
    compiled = publish(db_url, hook_flow("hook-slow", {"url": receiver.url + "/slow", "timeout_seconds": 1,
                                                       "response_map": {"late": "late"}},
                                         ok="late={{ vars.late }}"))
    cid = customer(db_url)

    result, _ = await run_journey(time_env, queue, db_url, compiled, cid)

    assert result["status"] == "completed" and messages(db_url, cid) == ["late=False"]
    assert receiver.count == 2
    assert len({r.headers["idempotency-key"] for r in receiver.requests}) == 1


async def test_a_missing_secret_fails_the_node_naming_the_variable(
        time_env: Any, db_url: str, queue: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDEFLOW_WEBHOOK_UNSET", raising=False)
    compiled = publish(db_url, hook_flow("hook-nosecret", {"url": receiver.url + "/hook",
                                                           "secret_env": "TIDEFLOW_WEBHOOK_UNSET"}))
    cid = customer(db_url)

    result, _ = await run_journey(time_env, queue, db_url, compiled, cid)

    assert messages(db_url, cid) == ["失败"]
    assert receiver.count == 0
    [failed] = [s for s in hook_steps(result) if s["what"] == "failed"]
    assert "TIDEFLOW_WEBHOOK_UNSET" in failed["error"]

