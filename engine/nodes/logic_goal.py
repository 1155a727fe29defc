from __future__ import annotations

from typing import ClassVar

from engine.nodes.base import NodeType


class Goal(NodeType):
    type = "logic.goal"
    category = "end"
    label = {"zh-CN": "达成目标", "en": "Goal reached"}
    description = {"zh-CN": "记为转化并结束", "en": "Count a conversion and end"}
    ports = ()
    outcome: ClassVar[str] = "converted"
