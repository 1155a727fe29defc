"""Loyalty: an append-only points ledger with lots and expiry, and member tiers (会员积分/等级)."""

from activities.loyalty.action_loyalty_points import LoyaltyPoints
from activities.loyalty.action_loyalty_upkeep import LoyaltyUpkeep
from engine.nodes.base import NodeType

NODE_TYPES: list[type[NodeType]] = [LoyaltyPoints, LoyaltyUpkeep]
