"""trigger.referral: a participant of a referral campaign enters when their progress changes (裂变进度)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field

from engine.nodes.base import NodeConfig, NodeType

Change = Literal["pending", "counted", "review", "rejected", "revoked", "left", "goal_reached"]
DEFAULT_ON: tuple[Change, ...] = ("counted", "goal_reached")


class TriggerReferralConfig(NodeConfig):
    campaign: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$",
                          description="id of the referral campaign (裂变活动)", examples=["laodaixin-2026"])
    on: list[Change] = Field(default_factory=lambda: list(DEFAULT_ON), min_length=1,
                             description="which changes start the flow: counted (a valid invite), goal_reached "
                                         "(once per participant), pending, review, rejected, revoked, left")


class TriggerReferral(NodeType):
    type = "trigger.referral"
    category = "trigger"
    label = {"zh-CN": "裂变进度触发", "en": "Referral progress trigger"}
    description = {"zh-CN": "裂变活动的参与者邀请进度变化时进入（有效邀请、达成目标、撤销…）；"
                            "event.payload 含 valid、goal、remaining（还差几位）",
                   "en": "A campaign participant enters when their invite progress changes (counted, goal reached, "
                         "revoked …); event.payload has valid, goal and remaining"}
    kinds = ("journey",)
    Config = TriggerReferralConfig
    required_ports = ("out",)

    @classmethod
    def entry_event(cls, config: Any) -> tuple[str, str | None] | None:
        changes = ", ".join(json.dumps(c) for c in config.on)
        return "referral.progress", (f"event.payload.campaign == {json.dumps(config.campaign)} "
                                     f"and event.payload.change in [{changes}]")
