"""The example plugin (examples/plugin-lottery), pip-installed into the test environment as a user would:
discovered through its entry point, listed by the API with its form schema, and run in real journeys."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from engine import auth
from engine import flows as flowsvc
from engine.actions import Services, perform
from engine.customers import resolve
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.nodes.base import NodeType
from engine.registry import load_registry
from engine.runtime import JOURNEY_WORKFLOW, ActionRequest, JourneyInput
from engine.sdk import make_context
from engine.worker import build_worker
from tests.engine.flowkit import flow

try:
    import tideflow_lottery
except ModuleNotFoundError:  # pragma: no cover - a set-up problem, said plainly
    pytest.fail("the example plugin is not installed: pip install -e examples/plugin-lottery (make test does it)",
                pytrace=False)

Lottery: type[NodeType] = tideflow_lottery.Lottery
ONE_IPHONE = {"prizes": [{"name": "一等奖", "label": "iPhone", "weight": 1, "budget": 1}], "lose_weight": 0}


def lottery_flow(flow_id: str, config: dict[str, Any]) -> dict[str, Any]:
    return flow(
        flow_id,
        [("start", "trigger.api", {}),
         ("draw", "plugin.lottery", config),
         ("congrats", "action.send_message", {"template": "恭喜 {{ vars.prize_name }}"}),
         ("sorry", "action.send_message", {"template": "谢谢参与"})],
        [("start", "out", "draw"), ("draw", "won", "congrats"), ("draw", "lost", "sorry")])


def publish(db_url: str, document: dict[str, Any]) -> dict[str, Any]:
    with transaction(db_url) as db:
        flowsvc.save_draft(db, document, "test")
        return dict(flowsvc.publish(db, document["id"], "test").compiled)


def new_customer(db_url: str, name: str = "张三") -> str:
    with transaction(db_url) as db:
        return resolve(db, {"external_id": uuid.uuid4().hex}, name, {})


def messages(db_url: str, customer_id: str) -> list[str]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.Message.content).where(models.Message.customer_id == customer_id)
                               .order_by(models.Message.id)))


def request(config: dict[str, Any], key: str, flow_id: str = "f", node_id: str = "draw") -> ActionRequest:
    return ActionRequest(key=key, workflow_id=key.rsplit("/", 2)[0], flow_id=flow_id, version=1, node_id=node_id,
                         node_type="plugin.lottery", config=config, customer_id=None)


def draw(url: str, config: dict[str, Any], key: str, **where: str) -> dict[str, Any]:
    return perform(Lottery, request(config, key, **where), Services(database_url=url))


@pytest.fixture
def queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


# -- discovery and the palette --------------------------------------------------------------------------------
def test_discovered_through_its_entry_point() -> None:
    registry = load_registry()
    assert registry.broken == {}
    found = registry.get("plugin.lottery")
    assert found is Lottery
    assert found.origin == "tideflow-plugin-lottery"
    assert found.is_action() and found.ports == ("won", "lost") and found.kinds == ("journey",)
    assert found.label == {"zh-CN": "抽奖", "en": "Lottery draw"}


def test_listed_by_the_api_with_its_form_schema(db_url: str, cheap_passwords: None) -> None:
    with transaction(db_url) as db:
        user = auth.create_user(db, "marketer", "a-long-password", "marketer")
        token = auth.create_token(db, user, "t")
    client = TestClient(__import__("designer.app", fromlist=["create_app"]).create_app(db_url, connect=False))
    headers = {"Authorization": f"Bearer {token}"}
    types = client.get("/api/node-types?kind=journey", headers=headers).json()
    lottery = next(t for t in types if t["type"] == "plugin.lottery")
    assert lottery["origin"] == "tideflow-plugin-lottery"
    assert lottery["category"] == "plugin" and lottery["ports"] == ["won", "lost"]
    assert lottery["label"] == {"zh-CN": "抽奖", "en": "Lottery draw"}
    assert lottery["description"]["zh-CN"].startswith("按权重抽奖")
    schema = lottery["config_schema"]
    assert schema["required"] == ["prizes"] and schema["additionalProperties"] is False
    prize = schema["$defs"]["Prize"]
    assert set(prize["required"]) == {"name", "weight", "budget"}
    assert prize["properties"]["weight"]["type"] == "integer" and prize["properties"]["budget"]["minimum"] == 0
    tickets = {t["type"] for t in client.get("/api/node-types?kind=ticket", headers=headers).json()}
    assert "plugin.lottery" not in tickets


def test_its_config_is_validated_on_the_canvas(db_url: str) -> None:
    from engine.validate import validate

    bad = lottery_flow("bad", {"prizes": [{"name": "a", "weigth": 1, "budget": 1}]})
    problems = validate(bad).problems
    assert any(p.node == "draw" and "weigth" in (p.field or "") for p in problems), problems
    assert validate(lottery_flow("ok", ONE_IPHONE)).ok


# -- in journeys -----------------------------------------------------------------------------------------------
async def test_runs_in_a_journey_and_takes_won_then_lost(time_env: Any, db_url: str, queue: str) -> None:
    compiled = publish(db_url, lottery_flow("lucky", ONE_IPHONE))
    first, second = new_customer(db_url, "张三"), new_customer(db_url, "李四")
    async with build_worker(time_env.client, queue, db_url):
        results = []
        for cid in (first, second):
            handle = await time_env.client.start_workflow(
                JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid), id=f"journey/lucky/{cid}",
                task_queue=queue)
            results.append(await handle.result())
    assert [r["status"] for r in results] == ["completed", "completed"]
    assert messages(db_url, first) == ["恭喜 iPhone"]
    assert messages(db_url, second) == ["谢谢参与"]  # the only iPhone is gone
    assert results[0]["variables"] == {"prize": "一等奖", "prize_name": "iPhone"}
    assert results[1]["variables"] == {"prize": None, "prize_name": None}
    steps = [(s["node"], s.get("port")) for s in results[1]["timeline"] if s["what"] == "step"]
    assert ("draw", "lost") in steps
    detail = next(s["detail"] for s in results[1]["timeline"] if s["what"] == "action" and s["node"] == "draw")
    assert detail["exhausted"] == ["一等奖"] and detail["scope"] == "lucky/draw"


async def test_budget_holds_over_many_concurrent_journeys(time_env: Any, db_url: str, queue: str) -> None:
    config = {"prizes": [{"name": "coupon", "label": "50 元券", "weight": 9, "budget": 3}], "lose_weight": 1}
    compiled = publish(db_url, lottery_flow("budget", config))
    customers = [new_customer(db_url, f"客户{i}") for i in range(12)]
    async with build_worker(time_env.client, queue, db_url):
        handles = [await time_env.client.start_workflow(
            JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid), id=f"journey/budget/{cid}",
            task_queue=queue) for cid in customers]
        results = [await h.result() for h in handles]
    assert all(r["status"] == "completed" for r in results)
    sent = Counter(m for cid in customers for m in messages(db_url, cid))
    assert sent["恭喜 50 元券"] == 3  # 9:1 odds for 12 customers, but only 3 coupons
    assert sent["谢谢参与"] == 9
    with session_factory(db_url)() as db:
        rows = list(db.scalars(select(models.LedgerEntry).where(models.LedgerEntry.kind == "plugin.lottery")))
    assert len(rows) == 12 and sum(1 for r in rows if r.result["port"] == "won") == 3


# -- the draw itself --------------------------------------------------------------------------------------------
def test_same_key_draws_the_same(tmp_path: Any) -> None:
    from tests.dbtemplate import migrated_sqlite

    config = {"prizes": [{"name": "a", "weight": 1, "budget": 100}, {"name": "b", "weight": 1, "budget": 100}],
              "lose_weight": 1}
    urls = []
    for n in range(2):
        urls.append(f"sqlite:///{tmp_path / f'd{n}.db'}")
        migrated_sqlite(urls[-1])
    keys = [f"journey/f/c{i}/draw/1" for i in range(30)]
    first = [draw(urls[0], config, k)["detail"] for k in keys]
    again = [draw(urls[1], config, k)["detail"] for k in keys]  # a fresh database: the same draws
    assert first == again
    assert {d["prize"] for d in first} == {"a", "b", None}  # and the keys do spread over the outcomes
    assert [draw(urls[0], config, k)["detail"] for k in keys[:5]] == first[:5]  # recorded: returned as is


def test_a_retry_after_a_rolled_back_attempt_draws_the_same(db_url: str) -> None:
    config = {"prizes": [{"name": "a", "weight": 1, "budget": 5}], "lose_weight": 1}
    parsed = Lottery.Config.model_validate(config)
    outcomes = set()
    for i in range(10):
        key = f"journey/f/c{i}/draw/1"
        with session_factory(db_url)() as db, db.begin():  # the first attempt crashes before commit
            crashed = Lottery.run(make_context(key=key, db=db, flow_id="f", node_id="draw"), parsed)
            db.rollback()
        retried = draw(db_url, config, key)
        assert retried["port"] == crashed.port and retried["variables"] == crashed.variables
        outcomes.add(crashed.port)
    assert outcomes == {"won", "lost"}


def test_exhausted_prizes_leave_the_draw_and_each_node_has_its_own_budget(db_url: str) -> None:
    config = {"prizes": [{"name": "big", "weight": 1000, "budget": 1}, {"name": "small", "weight": 1, "budget": 50}],
              "lose_weight": 0}
    prizes = [draw(db_url, config, f"journey/f/c{i}/draw/1")["variables"]["prize"] for i in range(8)]
    assert prizes.count("big") == 1 and prizes.count("small") == 7
    other_node = draw(db_url, config, "journey/f/c0/draw2/1", node_id="draw2")
    other_flow = draw(db_url, config, "journey/g/c0/draw/1", flow_id="g")
    assert other_node["variables"]["prize"] == "big" and other_flow["variables"]["prize"] == "big"


def test_concurrent_draws_never_exceed_the_budget(any_db_url: str) -> None:
    """24 draws racing on 8 threads, 100:1 odds, budget 5: exactly 5 won, on SQLite and PostgreSQL."""
    config = {"prizes": [{"name": "gold", "weight": 100, "budget": 5}], "lose_weight": 1}
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: draw(any_db_url, config, f"journey/race/c{i}/draw/1", flow_id="race"),
                                range(24)))
    assert sum(1 for r in results if r["port"] == "won") == 5
    with session_factory(any_db_url)() as db:
        assert tideflow_lottery.prizes_won(db, "race/draw") == Counter({"gold": 5})
