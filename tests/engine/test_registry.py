"""The node registry: built-ins and plugins through one entry point group (engine.registry)."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

import pytest

from activities.messaging.send_message import SendMessage
from activities.profile.tag import Tag
from engine import registry as registry_module
from engine.nodes.base import NodeConfig, NodeType
from engine.registry import GROUP, Registry, RegistryError, default_registry, load_registry

BUILT_IN = {
    "trigger.event": "trigger", "trigger.api": "trigger", "trigger.segment": "trigger", "trigger.date": "trigger",
    "trigger.schedule": "trigger", "wait.delay": "wait", "wait.until": "wait", "wait.event": "wait",
    "logic.condition": "logic", "logic.switch": "logic", "logic.split": "logic", "logic.goal": "end",
    "logic.exit": "end", "action.enroll": "action", "action.send_message": "action", "action.tag": "action",
}


class _HelloConfig(NodeConfig):
    greeting: str = "hi"


def _node_type(name: str) -> type[NodeType]:
    return type(f"Plugin_{name.replace('.', '_')}", (NodeType,),
                {"type": name, "category": "action", "Config": _HelloConfig,
                 "label": {"zh-CN": "问候", "en": "Hello"}})


def test_built_ins_are_discovered_through_entry_points() -> None:
    registry = load_registry()
    assert registry.broken == {}
    for name, category in BUILT_IN.items():
        node_type = registry.get(name)
        assert node_type is not None, name
        assert node_type.category == category
        assert node_type.origin == "builtin"
    assert registry.get("action.send_message") is SendMessage
    assert registry.get("action.tag") is Tag


def test_entry_point_group_declares_the_built_in_modules() -> None:
    from importlib.metadata import entry_points

    values = {ep.value for ep in entry_points(group=GROUP)}
    assert {"engine.nodes", "activities.messaging", "activities.profile"} <= values


def test_registry_lookups() -> None:
    registry = default_registry()
    assert registry is default_registry()
    assert "wait.delay" in registry and "wait.forever" not in registry
    assert registry.get("wait.forever") is None
    assert {t.type for t in registry} >= set(BUILT_IN)
    actions = {t.type for t in registry.actions()}
    assert {"action.send_message", "action.tag", "action.enroll"} <= actions
    assert not actions & {"trigger.event", "wait.delay", "logic.condition", "logic.exit"}


def test_extra_node_types_are_added() -> None:
    registry = load_registry(extra=[_node_type("acme.hello")])
    hello = registry.get("acme.hello")
    assert hello is not None and hello.origin == "extra"
    assert hello.is_action() and hello.activity_name() == "node:acme.hello"


def test_duplicate_type_name_names_both() -> None:
    registry = Registry()
    registry.add(_node_type("acme.hello"), "acme-crm")
    with pytest.raises(RegistryError) as exc:
        registry.add(_node_type("acme.hello"), "other-crm")
    message = str(exc.value)
    assert "'acme.hello' is declared twice" in message
    assert "by acme-crm (" in message and "by other-crm (" in message
    assert "rename one of them" in message


def test_a_plugin_cannot_shadow_a_built_in() -> None:
    with pytest.raises(RegistryError, match=r"'action.tag' is declared twice: by builtin \(activities.profile.tag\) "
                                            r"and by extra \(.*\)"):
        load_registry(extra=[_node_type("action.tag")])


def test_adding_the_same_class_twice_is_harmless() -> None:
    registry = Registry()
    hello = _node_type("acme.hello")
    registry.add(hello, "acme")
    registry.add(hello, "acme")
    assert list(registry) == [hello]


def test_a_node_type_needs_a_name() -> None:
    nameless = type("Nameless", (NodeType,), {})
    with pytest.raises(RegistryError, match="has no 'type' name"):
        Registry().add(nameless)


def test_broken_plugin_is_recorded_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    good = EntryPoint("builtin-engine", "engine.nodes", GROUP)
    broken = EntryPoint("acme", "tideflow_no_such_plugin_module:NODE", GROUP)
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [good, broken])
    monkeypatch.setattr(registry_module, "_origin", lambda ep: "builtin" if ep is good else "acme-plugin")
    registry = load_registry()
    assert "wait.delay" in registry
    assert set(registry.broken) == {"acme"}
    assert registry.broken["acme"].startswith("ModuleNotFoundError")


def test_a_broken_built_in_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = EntryPoint("builtin-x", "tideflow_no_such_module", GROUP)
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [broken])
    with pytest.raises(ModuleNotFoundError):
        load_registry()


def test_entry_point_to_something_else_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    odd = EntryPoint("acme", "engine.durations", GROUP)  # a module without NODE_TYPES
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [odd])
    with pytest.raises(RegistryError, match="has no NODE_TYPES list"):
        load_registry()


def test_entry_point_to_a_single_class(monkeypatch: pytest.MonkeyPatch) -> None:
    one = EntryPoint("acme", "activities.profile.tag:Tag", GROUP)
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [one])
    assert [t.type for t in load_registry()] == ["action.tag"]


# -- describe(): what the palette and the property form are built from --------------------------------
def _describe(name: str) -> dict[str, Any]:
    return next(d for d in default_registry().describe() if d["type"] == name)


def test_describe_shape() -> None:
    described = default_registry().describe()
    assert [(d["category"], d["type"]) for d in described] == sorted((d["category"], d["type"]) for d in described)
    for d in described:
        assert set(d) == {"type", "category", "label", "description", "kinds", "ports", "required_ports",
                          "failure_port", "origin", "config_schema"}
        assert d["label"]["zh-CN"] and d["label"]["en"], d["type"]
        assert d["config_schema"]["type"] == "object"
    send = _describe("action.send_message")
    assert send["ports"] == ["out", "skipped"]
    assert send["label"] == {"zh-CN": "发送消息", "en": "Send message"}


def test_describe_filters_by_kind() -> None:
    journey = {d["type"] for d in default_registry().describe("journey")}
    ticket = {d["type"] for d in default_registry().describe("ticket")}
    assert {"trigger.segment", "trigger.date", "action.enroll"} <= journey
    assert not {"trigger.segment", "trigger.date", "action.enroll"} & ticket
    assert {"action.tag", "trigger.event", "wait.delay"} <= ticket


def test_config_schema_has_format_markers() -> None:
    send = _describe("action.send_message")["config_schema"]
    assert send["properties"]["template"]["format"] == "template"
    assert send["required"] == ["template"]
    assert set(send["properties"]["channel"]["enum"]) >= {"dry-run", "wecom"}
    assert send["additionalProperties"] is False
    assert _describe("logic.condition")["config_schema"]["properties"]["expr"]["format"] == "expression"
    assert _describe("wait.delay")["config_schema"]["properties"]["duration"]["format"] == "duration"
    wait_event = _describe("wait.event")["config_schema"]["properties"]
    assert wait_event["timeout"]["format"] == "duration"
    assert {"format": "expression", "type": "string"} in wait_event["filter"]["anyOf"]
    trigger = _describe("trigger.event")["config_schema"]["properties"]
    assert {"format": "expression", "type": "string"} in trigger["filter"]["anyOf"]
    assert _describe("trigger.segment")["config_schema"]["properties"]["audience"]["format"] == "expression"
    switch = _describe("logic.switch")["config_schema"]
    assert switch["$defs"]["SwitchCase"]["properties"]["expr"]["format"] == "expression"


def test_config_schema_of_a_plugin() -> None:
    schema = _node_type("acme.hello").describe()["config_schema"]
    assert schema["properties"]["greeting"] == {"default": "hi", "title": "Greeting", "type": "string"}


def test_node_reference_doc_is_current() -> None:
    from pathlib import Path

    from tideflow.docs import node_reference

    doc = Path(__file__).resolve().parents[2] / "docs" / "nodes.md"
    assert doc.read_text(encoding="utf-8") == node_reference(), "regenerate: python -m tideflow.docs > docs/nodes.md"
