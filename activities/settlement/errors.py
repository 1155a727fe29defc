"""The errors settlement maths raises; each message names the field and says how to fix it."""

from __future__ import annotations

from engine.text import Msg, MsgError


class SettlementError(MsgError):
    """Base class: something in a rate plan, an amount or a settlement input cannot be settled."""


class MoneyError(SettlementError):
    """An amount is not an exact number of fen: a float, more than two decimals, not a number."""


class RatePlanError(SettlementError):
    """A rate plan document is invalid. ``problems`` lists (field path, message with the fix)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = [f"{path or '(plan)'}: {message}" for path, message in problems]
        super().__init__(Msg("invalid rate plan:\n%(problems)s", problems="\n".join(f"  - {line}" for line in lines)))


class SettlementInputError(SettlementError):
    """The inputs to a computation do not fit the plan: a missing KPI, attribute, or a bad amount."""
