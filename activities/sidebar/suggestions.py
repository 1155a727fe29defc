"""Suggestions: rules that put the right scripts on top for this customer, now. Pure, no I/O.

A rule says *when* (any of its keywords in the customer's latest message; every one of its
situations; its condition) and *what* (scripts, in order). Example: keywords 收益率 / 年化 →
the approved risk-disclosure script first, whatever else the library holds.

Situations (``kind: value``):

==================  =======================================================================
open_ticket         the customer has an open ticket of this type (``refund``), or of any type (``*``)
tag                 the customer has this tag
tier                the customer's loyalty tier is this one (needs a loyalty panel, see picture.py)
campaign_running    a coupon campaign with this id is active now, or a flow with this id is active
in_journey          the customer is in a running journey of this flow
==================  =======================================================================

``condition`` is an expression of the flows' language over ``customer`` (the same view templates
see) and ``vars`` (``vars.latest_message``, ``vars.open_ticket_types``, ``vars.tier``, ``vars.facts``).

A rule matches when every part it has holds (a rule without keywords ignores the message; a rule
must have at least one of keywords, situations or condition). Matching rules are ranked by
``priority`` (higher first), then a keyword match before a situation-only match, then by rule id;
each script appears once, at its best rank, with every reason that put it there (structured, so the
page says it in the staff member's language: "问收益率: 客户提到“收益率”"). A condition that
fails to evaluate never breaks the sidebar: the rule is skipped and named in ``problems``. A condition
that costs more on sample data than a flow's may is refused when the rule is saved (:func:`check_cost`), and
the web app evaluates rules in its evaluation pool (:func:`suggest` is pure), never in the web process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from activities.sidebar.scripts import KEY, clean_keywords, normalise
from engine import expressions
from engine import validate as validation
from engine.text import Msg

SituationKind = Literal["open_ticket", "tag", "tier", "campaign_running", "in_journey"]
MAX_RULE_SCRIPTS = 20


class SituationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: SituationKind
    value: str = Field(min_length=1, max_length=80)


class RuleSpec(BaseModel):
    """A suggestion rule as ops and marketers write it."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120, examples=["问收益率 → 风险提示"])
    team: str = Field(default="", max_length=60)
    keywords: list[str] = Field(default_factory=list, max_length=50, examples=[["收益率", "年化"]])
    situations: list[SituationSpec] = Field(default_factory=list, max_length=10)
    condition: str = Field(default="", max_length=expressions.MAX_SOURCE,
                           examples=["customer.total_spent_fen > 1000000"])
    script_ids: list[int] = Field(min_length=1, max_length=MAX_RULE_SCRIPTS)
    priority: int = Field(default=0, ge=-1000, le=1000)
    enabled: bool = True

    @field_validator("team")
    @classmethod
    def _team(cls, value: str) -> str:
        if value and not re.match(KEY, value):
            raise ValueError(Msg("team must be an agent group key or empty for every team"))
        return value

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        return clean_keywords(value)

    @field_validator("condition")
    @classmethod
    def _condition(cls, value: str) -> str:
        if value.strip():
            try:
                expressions.check(value, "expression")
            except expressions.ExpressionError as exc:
                raise ValueError(Msg("condition: %(exc)s", exc=exc)) from None
        return value.strip()

    @field_validator("script_ids")
    @classmethod
    def _unique(cls, value: list[int]) -> list[int]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _says_when(self) -> RuleSpec:
        if not self.keywords and not self.situations and not self.condition:
            raise ValueError(Msg("a rule needs keywords, situations or a condition: say when its "
                                 "scripts come first"))
        return self


class RuleProblem(ValueError):
    """A rule that cannot be saved: ``field`` names where, ``fix`` says what to do."""

    def __init__(self, message: Msg, field: str, fix: Msg) -> None:
        super().__init__(message)
        self.message, self.field, self.fix = message, field, fix


def cost_sources(spec: RuleSpec) -> list[tuple[str, str]]:
    """``(source, kind)`` of what :func:`check_cost` evaluates (for the web app's evaluation pool)."""
    return [(spec.condition, "expression")] if spec.condition else []


def check_cost(spec: RuleSpec) -> None:
    """:class:`RuleProblem` (field ``condition``) when the condition costs more on sample data than a flow's
    condition may — the check flow validation makes, on the same sample (it has the sidebar's ``vars``)."""
    if spec.condition:
        problem = validation.expression_problem(spec.condition, "expression")
        if problem is not None:
            raise RuleProblem(problem[0], "condition", problem[1])


@dataclass(frozen=True)
class Rule:
    """A stored rule, as :func:`suggest` reads it."""

    id: int
    name: str
    script_ids: Sequence[int]
    keywords: Sequence[str] = ()
    situations: Sequence[Mapping[str, str]] = ()
    condition: str = ""
    priority: int = 0


@dataclass(frozen=True)
class Situation:
    """What is true of the customer right now."""

    customer: Mapping[str, Any] = field(default_factory=dict)
    latest_message: str = ""
    open_ticket_types: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    tier: str | None = None
    running_campaigns: frozenset[str] = frozenset()
    journeys: frozenset[str] = frozenset()
    #: facts of extension panels (``{"loyalty": {"tier": "VIP", "points": 1200}}``)
    facts: Mapping[str, Any] = field(default_factory=dict)

    def variables(self) -> dict[str, Any]:
        return {"latest_message": self.latest_message, "open_ticket_types": sorted(self.open_ticket_types),
                "tier": self.tier, "facts": dict(self.facts)}


#: why a script is on top, for the page to say in the staff member's language:
#: {"rule": rule name, "kind": "keyword" | a situation kind | "condition", "value": the word / value / expression}
Reason = dict[str, str]


@dataclass
class Suggestion:
    script_id: int
    rank: tuple[int, int, int]
    reasons: list[Reason] = field(default_factory=list)


@dataclass
class Suggestions:
    scripts: list[Suggestion]
    #: rules skipped because their condition failed: "<rule name>: <why>"
    problems: list[str]


def _situation_value(kind: str, value: str, now: Situation) -> str | None:
    """What makes the situation true (shown as its reason), or None when it is not."""
    if kind == "open_ticket":
        if value == "*":
            return ", ".join(sorted(now.open_ticket_types)) or None
        return value if value in now.open_ticket_types else None
    if kind == "tag":
        return value if value in now.tags else None
    if kind == "tier":
        return value if now.tier is not None and now.tier == value else None
    if kind == "campaign_running":
        return value if value in now.running_campaigns else None
    if kind == "in_journey":
        return value if value in now.journeys else None
    return None


def match(rule: Rule, now: Situation) -> list[Reason] | None:
    """The reasons ``rule`` applies now, or None when it does not. Raises ExpressionError from the condition."""
    reasons: list[Reason] = []
    if rule.keywords:
        message = normalise(now.latest_message)
        hit = next((k for k in rule.keywords if k and k in message), None)
        if hit is None:
            return None
        reasons.append({"rule": rule.name, "kind": "keyword", "value": hit})
    for situation in rule.situations:
        kind = str(situation.get("kind"))
        value = _situation_value(kind, str(situation.get("value")), now)
        if value is None:
            return None
        reasons.append({"rule": rule.name, "kind": kind, "value": value})
    if rule.condition:
        if not expressions.test(rule.condition, {"customer": now.customer, "vars": now.variables()}):
            return None
        reasons.append({"rule": rule.name, "kind": "condition", "value": rule.condition})
    return reasons


def suggest(rules: Iterable[Rule], now: Situation, usable: Iterable[int]) -> Suggestions:
    """The scripts the matching rules put on top, best first (only ``usable`` ones: published, visible)."""
    allowed = set(usable)
    found: dict[int, Suggestion] = {}
    problems: list[str] = []
    for rule in rules:
        try:
            reasons = match(rule, now)
        except expressions.ExpressionError as exc:
            problems.append(f"{rule.name}: {exc}")
            continue
        if reasons is None:
            continue
        for position, script_id in enumerate(rule.script_ids):
            if script_id not in allowed:
                continue
            rank = (-rule.priority, 0 if rule.keywords else 1, rule.id * 100 + position)
            have = found.get(script_id)
            if have is None:
                found[script_id] = Suggestion(script_id, rank, list(reasons))
            else:
                have.rank = min(have.rank, rank)
                have.reasons.extend(r for r in reasons if r not in have.reasons)
    return Suggestions(sorted(found.values(), key=lambda s: s.rank), problems)
