from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from engine.flow import ID_PATTERN
from engine.nodes.base import ActionResult, NodeConfig, NodeType

if TYPE_CHECKING:
    from engine.action_context import ActionContext


class EnrollConfig(NodeConfig):
    flow: str = Field(pattern=ID_PATTERN, description="id of the flow to enroll the customer into")


class Enroll(NodeType):
    type = "action.enroll"
    category = "action"
    label = {"zh-CN": "加入其他旅程", "en": "Enroll in flow"}
    description = {"zh-CN": "把客户加入另一个旅程", "en": "Enroll the customer into another flow"}
    kinds = ("journey",)
    Config = EnrollConfig
    transactional = False  # starts a workflow; idempotent by the derived journey id

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        if ctx.customer_id is None:
            return ActionResult(port="out", detail={"skipped": "no customer"})
        ctx.enroll(config.flow, ctx.customer_id, {"enrolled_by": ctx.workflow_id})
        return ActionResult(port="out", detail={"enrolled": config.flow})
