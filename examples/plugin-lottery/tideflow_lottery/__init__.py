"""Tideflow example plugin: ``plugin.lottery``, a weighted lottery draw with a prize budget.

The entry point ``tideflow_lottery:Lottery`` (see pyproject.toml) is what Tideflow's registry loads.
"""

from tideflow_lottery.lottery import TYPE, Lottery, LotteryConfig, Prize, pick, prizes_won, ticket

#: the event types this plugin brings (entry point group ``tideflow.event_types``): the shop or the prize desk
#: reports a claimed prize with ``POST /api/events`` and a journey can wait for it after the draw
EVENT_TYPES = {
    "lottery.prize_claimed": {"zh-CN": "领取奖品", "en": "Lottery prize claimed"},
}

__all__ = ["EVENT_TYPES", "TYPE", "Lottery", "LotteryConfig", "Prize", "pick", "prizes_won", "ticket"]
__version__ = "1.0.0"
