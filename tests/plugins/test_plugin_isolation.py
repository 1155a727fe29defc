"""Plugin errors are isolated: a crashing plugin fails its node (retried by its policy, visible in the
timeline and the node's statistics) and never the worker; a plugin that cannot be imported is listed in
Registry.broken and the rest of the registry loads."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine import flows as flowsvc
from engine import registry as registry_module
from engine.customers import resolve
from engine.db import models
from engine.db.session import session_factory, transaction
from engine.registry import GROUP, Registry, load_registry
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.sdk import ActionContext, ActionFailed, ActionResult, NodeConfig, action
from engine.worker import build_worker
from tests.engine.flowkit import flow

ATTEMPTS: Counter[str] = Counter()
_lock = threading.Lock()
LABEL = {"zh-CN": "测试", "en": "Test"}


class NoConfig(NodeConfig):
    pass


def _attempt(ctx: ActionContext) -> int:
    with _lock:
        ATTEMPTS[ctx.key] += 1
        return ATTEMPTS[ctx.key]


@action("test_plugin.crash", label=LABEL, config=NoConfig, max_attempts=3)
def Crash(ctx: ActionContext, config: NoConfig) -> ActionResult:
    _attempt(ctx)
    raise RuntimeError("the plugin has a bug")


@action("test_plugin.crash_soft", label=LABEL, config=NoConfig, ports=("out", "failed"), failure_port="failed",
        max_attempts=2)
def CrashSoft(ctx: ActionContext, config: NoConfig) -> ActionResult:
    _attempt(ctx)
    raise ConnectionError("the partner API is down")


@action("test_plugin.refuse", label=LABEL, config=NoConfig, max_attempts=5)
def Refuse(ctx: ActionContext, config: NoConfig) -> ActionResult:
    _attempt(ctx)
    raise ActionFailed("refused by the platform: no retry can help")


@action("test_plugin.flaky", label=LABEL, config=NoConfig, max_attempts=3)
def Flaky(ctx: ActionContext, config: NoConfig) -> ActionResult:
    """Fails its first attempt after writing (rolled back), succeeds on the retry: the effect happens once."""
    ctx.db.add(models.Message(idempotency_key=ctx.key, customer_id=ctx.customer_id or "-", channel="dry-run",
                              content="flaky effect", status="sent", flow_id=ctx.flow_id, node_id=ctx.node_id,
                              workflow_id=ctx.workflow_id))
    if _attempt(ctx) == 1:
        raise TimeoutError("first attempt lost")
    return ActionResult()


@action("test_plugin.wrong_port", label=LABEL, config=NoConfig, max_attempts=4)
def WrongPort(ctx: ActionContext, config: NoConfig) -> ActionResult:
    _attempt(ctx)
    return ActionResult(port="elsewhere")


TEST_TYPES = [Crash, CrashSoft, Refuse, Flaky, WrongPort]

BROKEN_MODULES = {
    "acme_missing_dep": "import acme_no_such_dependency_xyz\n",
    "acme_raises": "raise RuntimeError('config file /etc/acme.toml not found')\n",
    "acme_bad_declaration": (
        "from engine.sdk import ActionResult, NodeConfig, action\n"
        "class C(NodeConfig):\n    pass\n"
        "@action('wait.forever', label={'zh-CN': '等', 'en': 'Wait'}, config=C)\n"
        "def Forever(ctx, config):\n    return ActionResult()\n"
    ),
}


@pytest.fixture
def broken_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[EntryPoint]:
    """Three installed-looking plugins that fail to import, beside every real entry point."""
    for name, source in BROKEN_MODULES.items():
        (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    fake = [EntryPoint(name, f"{name}:Node", GROUP) for name in BROKEN_MODULES]
    real = list(entry_points(group=GROUP))
    origin = registry_module._origin
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [*real, *fake])
    monkeypatch.setattr(registry_module, "_origin",
                        lambda ep: f"{ep.name.replace('_', '-')}-plugin" if ep.name in BROKEN_MODULES else origin(ep))
    return fake


@pytest.fixture
def registry(broken_plugins: list[EntryPoint], monkeypatch: pytest.MonkeyPatch) -> Registry:
    """The registry the worker and the interpreter use: real plugins, broken ones, and the crashing test types."""
    loaded = load_registry(extra=TEST_TYPES)
    monkeypatch.setattr(registry_module, "_default", loaded)
    return loaded


def test_a_plugin_that_fails_to_import_is_listed_not_raised(broken_plugins: list[EntryPoint]) -> None:
    registry = load_registry()
    assert set(registry.broken) == set(BROKEN_MODULES)
    assert registry.broken["acme_missing_dep"] == "ModuleNotFoundError: No module named 'acme_no_such_dependency_xyz'"
    assert registry.broken["acme_raises"] == "RuntimeError: config file /etc/acme.toml not found"
    assert registry.broken["acme_bad_declaration"].startswith(
        "ActionDefinitionError: @action('wait.forever'): type name 'wait.forever' is under the reserved")
    assert "wait.forever" not in registry
    # everything else loaded: built-ins and the installed example plugin
    assert {"trigger.api", "wait.delay", "action.send_message", "plugin.lottery"} <= set(registry.types)
    assert registry.get("plugin.lottery") is not None
    assert registry.get("plugin.lottery").origin == "tideflow-plugin-lottery"  # type: ignore[union-attr]


# -- crashing plugins in journeys --------------------------------------------------------------------------
def _flow(flow_id: str, node_type: str, ports: tuple[str, ...] = ("out",)) -> dict[str, Any]:
    nodes = [("start", "trigger.api", {}), ("plugin", node_type, {}),
             ("after", "action.send_message", {"template": "继续"})]
    edges = [("start", "out", "plugin"), ("plugin", "out", "after")]
    if "failed" in ports:
        nodes.append(("fallback", "action.send_message", {"template": "稍后再试"}))
        edges.append(("plugin", "failed", "fallback"))
    return flow(flow_id, nodes, edges)


def _publish(db_url: str, document: dict[str, Any]) -> dict[str, Any]:
    with transaction(db_url) as db:
        flowsvc.save_draft(db, document, "test")
        return dict(flowsvc.publish(db, document["id"], "test").compiled)


def _customer(db_url: str) -> str:
    with transaction(db_url) as db:
        return resolve(db, {"external_id": uuid.uuid4().hex}, "张三", {})


def _messages(db_url: str, customer_id: str) -> list[str]:
    with session_factory(db_url)() as db:
        return list(db.scalars(select(models.Message.content).where(models.Message.customer_id == customer_id)
                               .order_by(models.Message.id)))


async def _run(env: Any, queue: str, compiled: dict[str, Any], cid: str) -> dict[str, Any]:
    handle = await env.client.start_workflow(JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid),
                                             id=f"journey/{compiled['flow_id']}/{cid}", task_queue=queue)
    result: dict[str, Any] = await handle.result()
    return result


def _failure(result: dict[str, Any]) -> str:
    return str(next(s["error"] for s in result["timeline"] if s["what"] == "failed" and s["node"] == "plugin"))


async def test_crashing_plugins_fail_their_node_and_the_worker_keeps_serving(
        time_env: Any, db_url: str, registry: Registry) -> None:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    lottery = flow("lucky", [("start", "trigger.api", {}),
                             ("draw", "plugin.lottery", {"prizes": [{"name": "券", "weight": 1, "budget": 99}]}),
                             ("congrats", "action.send_message", {"template": "恭喜 {{ vars.prize_name }}"})],
                   [("start", "out", "draw"), ("draw", "won", "congrats")])
    compiled = {name: _publish(db_url, doc) for name, doc in [
        ("crash", _flow("crash", "test_plugin.crash")),
        ("soft", _flow("soft", "test_plugin.crash_soft", ("out", "failed"))),
        ("refuse", _flow("refuse", "test_plugin.refuse")),
        ("flaky", _flow("flaky", "test_plugin.flaky")),
        ("wrong", _flow("wrong", "test_plugin.wrong_port")),
        ("lucky", lottery)]}
    people = {name: _customer(db_url) for name in [*compiled, "lucky2"]}
    async with build_worker(time_env.client, queue, db_url):
        # one after the other: the time-skipping server jumps over retry back-offs, which would also
        # push a slow activity of a concurrent journey past its own timeout
        lucky = await _run(time_env, queue, compiled["lucky"], people["lucky"])
        crash, soft, refuse, flaky, wrong = [await _run(time_env, queue, compiled[name], people[name])
                                             for name in ("crash", "soft", "refuse", "flaky", "wrong")]
        # the same worker, after all that, still runs journeys
        lucky2 = await _run(time_env, queue, compiled["lucky"], people["lucky2"])

    def attempts(name: str) -> int:
        return ATTEMPTS[f"journey/{name}/{people[name]}/plugin/1"]

    # an uncaught exception: retried max_attempts times, then the journey fails at that node (visibly)
    assert crash["status"] == "failed" and crash["node"] == "plugin"
    assert attempts("crash") == 3
    assert "RuntimeError: the plugin has a bug" in _failure(crash)
    assert _messages(db_url, people["crash"]) == []
    # with a failure_port the journey goes on by it
    assert soft["status"] == "completed" and attempts("soft") == 2
    assert "ConnectionError: the partner API is down" in _failure(soft)
    assert _messages(db_url, people["soft"]) == ["稍后再试"]
    # ActionFailed is permanent: one attempt, no retry
    assert refuse["status"] == "failed" and attempts("refuse") == 1
    assert "refused by the platform" in _failure(refuse)
    # a transient failure is retried; the rolled-back first attempt left nothing behind
    assert flaky["status"] == "completed" and attempts("flaky") == 2
    assert _messages(db_url, people["flaky"]) == ["flaky effect", "继续"]
    # returning a port the node does not declare is a bug in the plugin: permanent, said plainly
    assert wrong["status"] == "failed" and attempts("wrong") == 1
    assert "returned port 'elsewhere', which is not one of its ports ('out',)" in _failure(wrong)
    # the other journeys on the worker were not disturbed
    assert lucky["status"] == lucky2["status"] == "completed"
    assert _messages(db_url, people["lucky"]) == ["恭喜 券"] and _messages(db_url, people["lucky2"]) == ["恭喜 券"]
    with session_factory(db_url)() as db:
        assert flowsvc.stats(db, "crash")["nodes"]["plugin"]["failed"] == 1
        assert flowsvc.stats(db, "soft")["nodes"]["plugin"]["left"] == {"failed": 1}
        journey = db.get(models.Journey, f"journey/crash/{people['crash']}")
    assert journey is not None and journey.status == "failed"
    assert registry.broken.keys() == BROKEN_MODULES.keys()  # the broken plugins stayed out of the way
