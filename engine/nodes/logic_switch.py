from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from engine import expressions
from engine.flow import ID_PATTERN
from engine.nodes.base import Context, Expression, NodeConfig, NodeType, Problem
from engine.text import Msg


class SwitchCase(NodeConfig):
    port: str = Field(pattern=ID_PATTERN, description="name of the output port for this case")
    expr: Expression


class SwitchConfig(NodeConfig):
    cases: list[SwitchCase] = Field(min_length=1)


class Switch(NodeType):
    type = "logic.switch"
    category = "logic"
    label = {"zh-CN": "多路分支", "en": "Switch"}
    description = {"zh-CN": "第一个成立的条件决定去向", "en": "The first matching case decides"}
    Config = SwitchConfig
    ports = ("default",)

    @classmethod
    def output_ports(cls, config: BaseModel) -> list[str]:
        assert isinstance(config, SwitchConfig)
        return [c.port for c in config.cases] + ["default"]

    @classmethod
    def check(cls, config: Any) -> list[Problem]:
        names = [c.port for c in config.cases]
        dupes = sorted({n for n in names if names.count(n) > 1 or n == "default"})
        if dupes:
            return [Problem(None, "cases", Msg("case port names repeat or use 'default': %(ports)s", ports=str(dupes)),
                            Msg("give every case its own port name"))]
        return []

    @classmethod
    def decide(cls, config: Any, ctx: Context, instance_id: str, node_id: str) -> str:
        mapping = ctx.as_mapping()
        for case in config.cases:
            if expressions.test(case.expr, mapping):
                return str(case.port)
        return "default"
