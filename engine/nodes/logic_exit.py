from __future__ import annotations

from typing import ClassVar

from engine.nodes.base import NodeType


class Exit(NodeType):
    type = "logic.exit"
    category = "end"
    label = {"zh-CN": "退出", "en": "Exit"}
    description = {"zh-CN": "离开旅程", "en": "Leave the flow"}
    ports = ()
    outcome: ClassVar[str] = "exited"
