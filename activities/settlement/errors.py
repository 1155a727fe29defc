"""The errors settlement maths raises; each message names the field and says how to fix it."""

from __future__ import annotations

from engine.text import Msg, MsgError, joined


class SettlementError(MsgError):
    """Base class: something in a rate plan, an amount or a settlement input cannot be settled."""


class MoneyError(SettlementError):
    """An amount is not an exact number of fen: a float, more than two decimals, not a number."""


class RatePlanError(SettlementError):
    """A rate plan document is invalid. ``problems`` lists (field path, message with the fix)."""

    def __init__(self, problems: list[tuple[str, Msg]]) -> None:
        self.problems = problems
        lines = [Msg("  - %(path)s: %(message)s", path=path or "(plan)", message=message) for path, message in problems]
        super().__init__(Msg("invalid rate plan:\n%(problems)s", problems=joined(lines)))


class SettlementInputError(SettlementError):
    """The inputs to a computation do not fit the plan: a missing KPI, attribute, or a bad amount."""
