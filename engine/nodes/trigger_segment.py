from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.nodes.base import Expression, NodeConfig, NodeType


class TriggerSegmentConfig(NodeConfig):
    audience: Expression = Field(description="who enters: an expression over customer",
                                 examples=["customer.days_since_interaction >= 30"])
    tags_any: list[str] = Field(default_factory=list, description="only customers with one of these tags")
    schedule: Literal["once", "daily", "weekly", "cron"] = "once"
    at: str = Field(default="10:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local time of day")
    cron: str | None = Field(default=None, description="cron expression when schedule = cron")
    batch_size: int = Field(default=1000, ge=1, le=10_000)


class TriggerSegment(NodeType):
    type = "trigger.segment"
    category = "trigger"
    label = {"zh-CN": "人群触发", "en": "Segment trigger"}
    description = {"zh-CN": "符合条件的人群进入，一次或定期（群发）",
                   "en": "Customers matching an audience enter, once or on a schedule (broadcast)"}
    kinds = ("journey",)
    Config = TriggerSegmentConfig
    required_ports = ("out",)
