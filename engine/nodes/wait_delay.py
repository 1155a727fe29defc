from __future__ import annotations

from datetime import datetime
from typing import Any

from engine.durations import parse_duration
from engine.nodes.base import Context, Duration, NodeConfig, NodeType, WaitPlan


class WaitDelayConfig(NodeConfig):
    duration: Duration = "P1D"


class WaitDelay(NodeType):
    type = "wait.delay"
    category = "wait"
    label = {"zh-CN": "等待", "en": "Delay"}
    description = {"zh-CN": "等待一段时间", "en": "Wait for a duration"}
    Config = WaitDelayConfig
    required_ports = ("out",)

    @classmethod
    def wait_plan(cls, config: Any, ctx: Context, now: datetime, timezone: str) -> WaitPlan:
        return WaitPlan(timeout=parse_duration(config.duration), timeout_port="out")
