from __future__ import annotations

from pydantic import Field, model_validator

from engine.nodes.base import Duration, NodeConfig, NodeType
from engine.text import Msg


class TriggerScheduleConfig(NodeConfig):
    cron: str | None = Field(default=None, description="cron expression in the flow's timezone",
                             examples=["0 2 * * *"])
    every: Duration | None = Field(default=None, description="an interval instead of cron, e.g. P1D")

    @model_validator(mode="after")
    def _one_of(self) -> TriggerScheduleConfig:
        if bool(self.cron) == bool(self.every):
            raise ValueError(Msg("set exactly one of 'cron' or 'every'"))
        if self.cron and len(self.cron.split()) != 5:
            raise ValueError(Msg("cron needs 5 fields: minute hour day-of-month month day-of-week"))
        return self


class TriggerSchedule(NodeType):
    type = "trigger.schedule"
    category = "trigger"
    label = {"zh-CN": "定时触发", "en": "Schedule trigger"}
    description = {"zh-CN": "按周期运行（结算周期、报表）", "en": "Runs on a schedule (settlement cycles, reports)"}
    Config = TriggerScheduleConfig
    required_ports = ("out",)
