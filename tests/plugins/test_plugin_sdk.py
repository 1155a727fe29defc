"""engine.sdk: the @action decorator turns a function into a node type, and says clearly what is wrong."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel, Field

from engine import sdk
from engine.actions import ActionContext as EngineActionContext
from engine.actions import ActionFailed as EngineActionFailed
from engine.db.session import transaction
from engine.nodes.base import NodeType
from engine.registry import load_registry
from engine.sdk import ActionContext, ActionDefinitionError, ActionFailed, ActionResult, NodeConfig, Template, action
from engine.validate import validate

LABEL = {"zh-CN": "积分", "en": "Points"}


class PointsConfig(NodeConfig):
    points: int = Field(ge=1, description="how many points")
    note: Template = "{{ customer.name }} +{{ vars.n }}"


def award(ctx: ActionContext, config: PointsConfig) -> ActionResult:
    """Award points.

    Longer text that is not part of the palette description."""
    return ActionResult(port="out", variables={"points": config.points})


def declare(**overrides: Any) -> type[NodeType]:
    kwargs: dict[str, Any] = {"label": LABEL, "config": PointsConfig, **overrides}
    return action(str(kwargs.pop("type", "acme.points")), **kwargs)(award)


def test_the_sdk_re_exports_the_engine_classes() -> None:
    assert sdk.ActionContext is EngineActionContext and sdk.ActionFailed is EngineActionFailed
    assert sdk.NodeType is NodeType
    for name in sdk.__all__:
        assert hasattr(sdk, name), name


def test_the_decorator_makes_a_node_type() -> None:
    points = declare(ports=("out", "failed"), failure_port="failed", max_attempts=3,
                     timeout=timedelta(seconds=5), kinds=("journey",))
    assert isinstance(points, type) and issubclass(points, NodeType)
    assert points.__name__ == "Award" and points.__module__ == __name__
    assert points.type == "acme.points" and points.category == "plugin"
    assert points.label == LABEL and points.description == {"zh-CN": "Award points.", "en": "Award points."}
    assert points.ports == ("out", "failed") and points.failure_port == "failed"
    assert points.max_attempts == 3 and points.timeout == timedelta(seconds=5) and points.kinds == ("journey",)
    assert points.Config is PointsConfig
    assert points.is_action() and points.activity_name() == "node:acme.points"
    described = points.describe()
    assert described["config_schema"]["properties"]["note"]["format"] == "template"
    assert described["config_schema"]["additionalProperties"] is False
    assert points.__wrapped__ is award  # type: ignore[attr-defined]


def test_run_calls_the_function_for_unit_tests() -> None:
    points = declare()
    result = points.run(sdk.make_context(customer={"name": "张三"}), PointsConfig(points=5))
    assert result == ActionResult(port="out", variables={"points": 5})


def test_run_checks_what_the_function_returns() -> None:
    def wrong_port(ctx: ActionContext, config: PointsConfig) -> ActionResult:
        return ActionResult(port="nope")

    def not_a_result(ctx: ActionContext, config: PointsConfig) -> ActionResult:
        return {"port": "out"}  # type: ignore[return-value]

    ctx, config = sdk.make_context(), PointsConfig(points=1)
    with pytest.raises(ActionFailed, match=r"returned port 'nope', which is not one of its ports \('out',\)"):
        action("acme.wrong", label=LABEL, config=PointsConfig)(wrong_port).run(ctx, config)
    with pytest.raises(ActionFailed, match="returned dict, not an ActionResult"):
        action("acme.wrong", label=LABEL, config=PointsConfig)(not_a_result).run(ctx, config)


def test_a_decorated_node_type_validates_in_a_flow() -> None:
    points = declare()
    registry = load_registry(extra=[points])
    document: dict[str, Any] = {
        "schema": "tideflow/flow@1", "id": "points", "name": "points", "kind": "journey",
        "nodes": [{"id": "start", "type": "trigger.api", "config": {}},
                  {"id": "award", "type": "acme.points", "config": {"points": 0, "pionts": 1}}],
        "edges": [{"from": "start", "to": "award"}],
    }
    problems = {(p.node, p.field) for p in validate(document, registry).problems}
    assert ("award", "config.points") in problems and ("award", "config.pionts") in problems
    document["nodes"][1]["config"] = {"points": 10}
    assert validate(document, registry).ok


@pytest.mark.parametrize(("overrides", "message"), [
    ({"type": "Acme.Points"}, r"type name 'Acme.Points' is not valid; use lower-case dotted words"),
    ({"type": "points"}, r"type name 'points' is not valid"),
    ({"type": "acme..points"}, r"type name 'acme..points' is not valid"),
    ({"type": "wait.points"}, r"under the reserved built-in prefix 'wait.'; use 'plugin.points'"),
    ({"type": "trigger.points"}, r"reserved built-in prefix 'trigger.'"),
    ({"type": "logic.points"}, r"reserved built-in prefix 'logic.'"),
    ({"label": {"en": "Points"}}, r"label needs a non-empty text for 'zh-CN'"),
    ({"label": {"zh-CN": "积分", "en": " "}}, r"label needs a non-empty text for 'en'"),
    ({"label": "Points"}, r"label must be a dict with 'zh-CN' and 'en' texts"),
    ({"description": {"en": "x"}}, r"description needs a non-empty text for 'zh-CN'"),
    ({"ports": ("won", "lost"), "failure_port": "failed"}, r"failure_port 'failed' is not one of the ports"),
    ({"ports": ()}, r"ports must name at least one output port"),
    ({"ports": "out"}, r"ports must be a tuple of port names"),
    ({"ports": ("out", "Out")}, r"port 'Out' is not valid"),
    ({"ports": ("out", "out")}, r"name a port twice"),
    ({"config": dict}, r"config must be a pydantic model class"),
    ({"config": PointsConfig(points=1)}, r"config must be a pydantic model class"),
    ({"category": "logic"}, r"category 'logic' is not allowed for an action"),
    ({"kinds": ("journey", "crm")}, r"kinds must be taken from"),
    ({"kinds": ()}, r"kinds must be taken from"),
    ({"timeout": 30}, r"timeout must be a positive timedelta"),
    ({"timeout": timedelta(0)}, r"timeout must be a positive timedelta"),
    ({"max_attempts": 0}, r"max_attempts must be an integer ≥ 1"),
])
def test_declaration_errors_say_what_to_change(overrides: dict[str, Any], message: str) -> None:
    name = overrides.get("type", "acme.points")
    with pytest.raises(ActionDefinitionError, match=rf"^@action\({re.escape(repr(name))}\): .*{message}"):
        declare(**overrides)


def test_the_function_must_take_ctx_and_config() -> None:
    def one(ctx: ActionContext) -> ActionResult:
        return ActionResult()

    with pytest.raises(ActionDefinitionError, match=r"exactly two arguments: \(ctx: ActionContext, config"):
        action("acme.one", label=LABEL, config=PointsConfig)(one)  # type: ignore[arg-type]


def test_a_config_that_ignores_unknown_fields_is_warned_about() -> None:
    class Loose(BaseModel):
        points: int = 1

    def lenient(ctx: ActionContext, config: Loose) -> ActionResult:
        return ActionResult()

    with pytest.warns(UserWarning, match="ignores unknown fields; subclass engine.sdk.NodeConfig"):
        loose = action("acme.loose", label=LABEL, config=Loose)(lenient)
    assert loose.Config is Loose


def test_a_config_without_json_schema_is_refused() -> None:
    class Opaque(NodeConfig):
        model_config = {"arbitrary_types_allowed": True, "extra": "forbid"}
        lock: Any = Field(default_factory=threading.Lock)
        when: threading.Event | None = None

    def opaque(ctx: ActionContext, config: Opaque) -> ActionResult:
        return ActionResult()

    with pytest.raises(ActionDefinitionError, match="config Opaque has no JSON Schema"):
        action("acme.opaque", label=LABEL, config=Opaque)(opaque)


def test_render_and_evaluate_turn_errors_into_action_failed() -> None:
    ctx = sdk.make_context(customer={"name": "李四"}, variables={"n": 3}, node_id="award")
    assert sdk.render("{{ customer.name }} +{{ vars.n }}", ctx) == "李四 +3"
    assert sdk.evaluate("vars.n * 2", ctx) == 6
    with pytest.raises(ActionFailed, match="node 'award'"):
        sdk.render("{{ customer.name", ctx)
    with pytest.raises(ActionFailed, match="node 'award'"):
        sdk.evaluate("vars.n / 0", ctx)


def test_make_context_for_unit_tests() -> None:
    ctx = sdk.make_context(key="journey/f1/c9/draw/2", customer={"name": "王五"}, flow_id="f1", node_id="draw")
    assert ctx.key == "journey/f1/c9/draw/2" and ctx.workflow_id == "journey/f1/c9"
    assert ctx.flow_id == "f1" and ctx.node_id == "draw" and ctx.customer == {"name": "王五"}
    assert ctx.expression_context()["customer"] == {"name": "王五"}


def test_hold_lock_serialises_transactions_on_sqlite(db_url: str) -> None:
    """Two transactions holding the same lock never overlap (on SQLite: the database write lock)."""
    inside: list[int] = []
    overlaps: list[bool] = []

    def worker(n: int) -> None:
        with transaction(db_url) as db:
            sdk.hold_lock(db, "acme:budget")
            inside.append(n)
            overlaps.append(len(inside) > 1)
            time.sleep(0.05)
            inside.remove(n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [False] * 4


def test_lock_ids_are_stable_signed_64_bit() -> None:
    assert sdk.lock_id("plugin.lottery:f/n") == sdk.lock_id("plugin.lottery:f/n")
    assert sdk.lock_id("a") != sdk.lock_id("b")
    assert all(-(2**63) <= sdk.lock_id(str(i)) < 2**63 for i in range(200))
