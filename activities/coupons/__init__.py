"""Coupons activities: campaigns with stock and budgets, issuing (发券) and redemption (核销)."""

from activities.coupons.issue_coupon import IssueCoupon
from engine.nodes.base import NodeType

NODE_TYPES: list[type[NodeType]] = [IssueCoupon]
