from __future__ import annotations

from engine.nodes.base import NodeType


class TriggerApi(NodeType):
    type = "trigger.api"
    category = "trigger"
    label = {"zh-CN": "API 触发", "en": "API trigger"}
    description = {"zh-CN": "通过 API 调用把客户加入", "en": "Customers are enrolled by an API call"}
    required_ports = ("out",)
