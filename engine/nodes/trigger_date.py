from __future__ import annotations

from pydantic import Field

from engine.nodes.base import NodeConfig, NodeType


class TriggerDateConfig(NodeConfig):
    attribute: str = Field(min_length=1, description="a date attribute of the customer (YYYY-MM-DD)",
                           examples=["birthday"])
    offset_days: int = Field(default=0, ge=-365, le=365, description="days before (-) or after (+) the date")
    at: str = Field(default="10:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local time of day")
    yearly: bool = Field(default=True, description="match month and day every year (birthdays)")


class TriggerDate(NodeType):
    type = "trigger.date"
    category = "trigger"
    label = {"zh-CN": "日期触发", "en": "Date trigger"}
    description = {"zh-CN": "按客户日期属性（生日、会员到期）触发", "en": "On a customer's date attribute ± offset"}
    kinds = ("journey",)
    Config = TriggerDateConfig
    required_ports = ("out",)
