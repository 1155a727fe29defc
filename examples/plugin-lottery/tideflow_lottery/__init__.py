"""Tideflow example plugin: ``plugin.lottery``, a weighted lottery draw with a prize budget.

The entry point ``tideflow_lottery:Lottery`` (see pyproject.toml) is what Tideflow's registry loads.
"""

from tideflow_lottery.lottery import TYPE, Lottery, LotteryConfig, Prize, pick, prizes_won, ticket

__all__ = ["TYPE", "Lottery", "LotteryConfig", "Prize", "pick", "prizes_won", "ticket"]
__version__ = "1.0.0"
