from __future__ import annotations

from typing import Any

from pydantic import Field

from engine import expressions
from engine.nodes.base import Context, Expression, NodeConfig, NodeType


class ConditionConfig(NodeConfig):
    expr: Expression = Field(description="true → yes, false → no", examples=["customer.orders_count > 0"])


class Condition(NodeType):
    type = "logic.condition"
    category = "logic"
    label = {"zh-CN": "条件判断", "en": "Condition"}
    description = {"zh-CN": "按表达式分为是/否", "en": "Yes or no by an expression"}
    Config = ConditionConfig
    ports = ("yes", "no")

    @classmethod
    def decide(cls, config: Any, ctx: Context, instance_id: str, node_id: str) -> str:
        return "yes" if expressions.test(config.expr, ctx.as_mapping()) else "no"
