from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from engine.durations import parse_duration
from engine.nodes.base import Context, Duration, EventWait, Expression, NodeConfig, NodeType, WaitPlan


class WaitEventConfig(NodeConfig):
    event: str = Field(min_length=1, description="event type to wait for", examples=["order.paid"])
    filter: Expression | None = Field(default=None, description="only events for which this is true")
    timeout: Duration = Field(default="P7D", description="give up after this long")


class WaitEvent(NodeType):
    type = "wait.event"
    category = "wait"
    label = {"zh-CN": "等待事件", "en": "Wait for event"}
    description = {"zh-CN": "等待某事件，最多等待一段时间", "en": "Wait for an event for at most a duration"}
    Config = WaitEventConfig
    ports = ("event", "timeout")

    @classmethod
    def wait_plan(cls, config: Any, ctx: Context, now: datetime, timezone: str) -> WaitPlan:
        return WaitPlan(
            timeout=parse_duration(config.timeout),
            timeout_port="timeout",
            events=(EventWait(config.event, config.filter, "event"),),
        )
