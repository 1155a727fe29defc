from __future__ import annotations

from typing import Any

from pydantic import Field

from engine.nodes.base import Expression, NodeConfig, NodeType


class TriggerEventConfig(NodeConfig):
    event: str = Field(min_length=1, description="event type, e.g. wecom.contact_added", examples=["order.paid"])
    filter: Expression | None = Field(default=None, description="only events for which this is true")


class TriggerEvent(NodeType):
    type = "trigger.event"
    category = "trigger"
    label = {"zh-CN": "事件触发", "en": "Event trigger"}
    description = {"zh-CN": "客户发生某个事件时进入旅程", "en": "A customer enters when an event happens"}
    Config = TriggerEventConfig
    required_ports = ("out",)

    @classmethod
    def entry_event(cls, config: Any) -> tuple[str, str | None] | None:
        return config.event, config.filter
