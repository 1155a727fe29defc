from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from engine.flow import ID_PATTERN
from engine.nodes.base import Context, NodeConfig, NodeType, Problem, stable_fraction
from engine.text import Msg


class SplitBranch(NodeConfig):
    port: str = Field(pattern=ID_PATTERN, description="name of the output port, e.g. A, B, control")
    weight: int = Field(ge=0, le=10_000, description="relative weight")


class SplitConfig(NodeConfig):
    branches: list[SplitBranch] = Field(min_length=2)


def pick_branch(branches: list[SplitBranch], fraction: float) -> str:
    """The branch whose weight interval holds ``fraction`` (0 ≤ fraction < 1)."""
    total = sum(b.weight for b in branches)
    point = fraction * total
    upto = 0
    for branch in branches:
        upto += branch.weight
        if point < upto:
            return branch.port
    return branches[-1].port


class Split(NodeType):
    type = "logic.split"
    category = "logic"
    label = {"zh-CN": "随机分流", "en": "Split (A/B)"}
    description = {"zh-CN": "按权重随机分流（A/B/对照组），同一实例结果固定",
                   "en": "Weighted random split (A/B/n, control), fixed per instance"}
    Config = SplitConfig
    ports = ()

    @classmethod
    def output_ports(cls, config: BaseModel) -> list[str]:
        assert isinstance(config, SplitConfig)
        return [b.port for b in config.branches]

    @classmethod
    def check(cls, config: Any) -> list[Problem]:
        names = [b.port for b in config.branches]
        problems = []
        if len(set(names)) != len(names):
            problems.append(Problem(None, "branches", Msg("branch port names repeat"), Msg("name each branch once")))
        if sum(b.weight for b in config.branches) <= 0:
            problems.append(Problem(None, "branches", Msg("all weights are zero"),
                                    Msg("give a branch a weight above 0")))
        return problems

    @classmethod
    def decide(cls, config: Any, ctx: Context, instance_id: str, node_id: str) -> str:
        return pick_branch(config.branches, stable_fraction(instance_id, node_id))
