"""Rate plans as data: pydantic models loaded from JSON and discriminated by ``"type"``.

=================  =========================================================================
``flat``           a percentage per party type or channel (``rates``), with a ``default_rate``
``tiered``         tiers ``[{"from": fen, "rate": "3"}]``, ``graduated`` (marginal) or ``retroactive``
``guaranteed``     ``guarantee_fen`` plus graduated tiers on the excess over ``threshold_fen``
``kpi_coefficient`` an ``inner`` plan × a coefficient looked up from KPI ``rules``, clamped to bounds
``split``          the total of ``of`` (or the sales) shared among ``parties`` by percentages summing to 100
``composition``    the sum of its ``components`` (e.g. flat + bonus)
=================  =========================================================================

Percentages, coefficients and KPI thresholds are decimal strings (``"5"``, ``"0.95"``); amounts are
integer fen. Floats are refused. ``rounding`` may be set on the outermost plan only: the exact total is
rounded once. A split must be the outermost plan. docs/settlement.md documents the format with examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from itertools import pairwise
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from activities.settlement.errors import RatePlanError
from activities.settlement.money import DEFAULT_ROUNDING, Rounding, exact_arithmetic, format_yuan
from engine.text import Msg, verbatim
from engine.validate import pydantic_message


def _refuse_float(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError(Msg('\'%(number)s\' is not a number; write a decimal string such as "5"',
                             number=value))
    if isinstance(value, float):
        raise ValueError(Msg('write this number as a decimal string, e.g. "%(number)s"; floats are '
                             "not exact",
                             number=value))
    return value


def _whole_fen(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(Msg("amounts are whole fen (分) integers, e.g. 5000000 for ¥50,000.00; got "
                             "'%(got)s'",
                             got=value))
    return value


Fen = Annotated[int, BeforeValidator(_whole_fen), Field(ge=0)]
"""A non-negative integer number of fen."""

Percent = Annotated[Decimal, BeforeValidator(_refuse_float), Field(ge=0, le=100)]
"""A percentage from 0 to 100 as a decimal string: ``"3"`` is 3 %, ``"2.5"`` is 2.5 %."""

Coefficient = Annotated[Decimal, BeforeValidator(_refuse_float), Field(ge=0)]
"""A non-negative multiplier as a decimal string: ``"1.1"`` pays 110 %."""

KpiNumber = Annotated[Decimal, BeforeValidator(_refuse_float)]
"""A KPI value or threshold as a decimal string: ``"0.95"``, ``"30"``."""

_MODEL_CONFIG: Final = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)


def _percent_text(percent: Decimal) -> str:
    return f"{percent.normalize():f}%"


class Tier(BaseModel):
    """One tier: from ``from`` fen (inclusive) up to the next tier's ``from``, at ``rate`` %."""

    # written out (not _MODEL_CONFIG) so the pydantic mypy plugin accepts Tier(from_fen=...)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    from_fen: Fen = Field(
        alias="from",
        description="Where the tier starts, in fen; an amount of at least this much reaches the tier.",
    )
    rate: Percent = Field(description='Percentage for this tier as a decimal string: "3" is 3 %.')


def _check_tiers(tiers: list[Tier]) -> list[Tier]:
    if not tiers:
        raise ValueError(Msg('add at least one tier, e.g. [{"from": 0, "rate": "3"}]'))
    for number, (lower, upper) in enumerate(pairwise(tiers), start=2):
        if upper.from_fen <= lower.from_fen:
            raise ValueError(
                Msg("tiers must ascend by 'from': tier %(number)s starts at %(from_fen)s "
                    "fen, which is not above tier %(previous)s's %(previous_from_fen)s fen; sort the "
                    "tiers by 'from' and remove duplicates",
                    number=number, from_fen=upper.from_fen, previous=number - 1, previous_from_fen=lower.from_fen)
            )
    return tiers


class PlanFields(BaseModel):
    """Fields every plan type has."""

    model_config = _MODEL_CONFIG

    name: str | None = Field(
        default=None,
        max_length=100,
        description='A label for statement lines, e.g. "base" or "bonus".',
    )
    rounding: Rounding | None = Field(
        default=None,
        description="How the exact total becomes whole fen: half_up (the default) or half_even. "
        "Set it on the outermost plan only: the total is rounded once.",
    )

    @property
    def effective_rounding(self) -> Rounding:
        """The rounding mode used for this plan's total when it is the outermost plan."""
        return self.rounding or DEFAULT_ROUNDING


class FlatPlan(PlanFields):
    """A percentage of sales, chosen by an attribute of the party or order (party type, channel)."""

    type: Literal["flat"] = "flat"
    rates_by: str = Field(
        default="party_type",
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Which attribute picks the rate from 'rates': party_type, channel, ...",
    )
    rates: dict[str, Percent] = Field(
        default_factory=dict,
        description='Percentage per attribute value, e.g. {"direct": "5", "franchise": "3"}.',
    )
    default_rate: Percent | None = Field(
        default=None, description="Percentage when the attribute value is not in 'rates'."
    )

    @model_validator(mode="after")
    def _has_a_rate(self) -> FlatPlan:
        if not self.rates and self.default_rate is None:
            raise ValueError(
                Msg('a flat plan needs a rate: set "default_rate" (e.g. "5") and/or '
                    '"rates" (e.g. {"direct": "5", "franchise": "3"})')
            )
        return self

    def rate_for(self, value: str | None) -> Decimal | None:
        """The percentage for an attribute value, falling back to ``default_rate``; None if neither."""
        if value is not None and value in self.rates:
            return self.rates[value]
        return self.default_rate


class TieredPlan(PlanFields):
    """Tiers on the period's sales: ``graduated`` (each band at its own rate) or ``retroactive``."""

    type: Literal["tiered"] = "tiered"
    mode: Literal["graduated", "retroactive"] = Field(
        description="graduated: each band of sales at its own rate (marginal). retroactive: all sales "
        "at the rate of the highest tier reached (volume)."
    )
    tiers: list[Tier] = Field(
        description="Tiers ascending by 'from'; below the first tier nothing is earned."
    )
    boundary: Literal["at_least", "above"] | None = Field(
        default=None,
        title="tier boundary / 档位边界",
        description="When sales reach a tier: at_least (至少, the default) — sales of at least its 'from' "
        "reach it (¥1,000,000.00 exactly earns the ¥1,000,000 tier); above (超过) — only sales above its "
        "'from' do. It changes retroactive plans at the exact boundary; graduated plans pay the same "
        "either way (a band's share at its own boundary is zero).",
    )

    _tiers_ascend = field_validator("tiers")(_check_tiers)

    @property
    def strictly_above(self) -> bool:
        return self.boundary == "above"


class GuaranteedPlan(PlanFields):
    """A guaranteed amount plus a graduated share of the sales above a threshold."""

    type: Literal["guaranteed"] = "guaranteed"
    guarantee_fen: Fen = Field(description="Paid whatever the sales, in fen (5000000 = ¥50,000.00).")
    threshold_fen: Fen = Field(description="Sales above this (in fen) earn the excess bonus.")
    tiers: list[Tier] = Field(
        description="Graduated tiers on the excess over the threshold; 'from' counts from the threshold."
    )

    _tiers_ascend = field_validator("tiers")(_check_tiers)


class KpiThreshold(BaseModel):
    """A KPI value at which a coefficient applies."""

    model_config = _MODEL_CONFIG

    at: KpiNumber = Field(description='The KPI value, as a decimal string ("0.9", "30").')
    coefficient: Coefficient = Field(description='The multiplier when the threshold is met ("1.1").')


class KpiRule(BaseModel):
    """One KPI and its threshold table."""

    model_config = _MODEL_CONFIG

    kpi: str = Field(min_length=1, description="KPI name, a key of the kpis given to the computation.")
    better: Literal["higher", "lower"] = Field(
        default="higher",
        description="higher: the highest threshold the value reaches applies (completion rate). "
        "lower: the lowest threshold the value stays within applies (response time).",
    )
    thresholds: list[KpiThreshold] = Field(description="Thresholds ascending by 'at'.")
    otherwise: Coefficient = Field(default=Decimal(1), description="Coefficient when no threshold is met.")
    if_missing: Coefficient | None = Field(
        default=None,
        description="Coefficient when the KPI is not given; without it a missing KPI is an error.",
    )

    @field_validator("thresholds")
    @classmethod
    def _thresholds_ascend(cls, thresholds: list[KpiThreshold]) -> list[KpiThreshold]:
        if not thresholds:
            raise ValueError(Msg('add at least one threshold, e.g. [{"at": "0.9", "coefficient": "1.1"}]'))
        for lower, upper in pairwise(thresholds):
            if upper.at <= lower.at:
                raise ValueError(
                    Msg("thresholds must ascend by 'at': %(at)s follows %(previous)s; sort them by "
                        "'at' and remove duplicates",
                        at=upper.at, previous=lower.at)
                )
        return thresholds

    def coefficient_for(self, value: Decimal) -> tuple[Decimal, Msg]:
        """The coefficient for a KPI value and a sentence saying why."""
        if self.better == "higher":
            reached = [threshold for threshold in self.thresholds if value >= threshold.at]
            if reached:
                chosen = reached[-1]
                return chosen.coefficient, verbatim(f"{self.kpi} {value} ≥ {chosen.at} → ×{chosen.coefficient}")
            return self.otherwise, Msg("%(kpi)s %(value)s is below every threshold → ×%(coefficient)s",
                                       kpi=self.kpi, value=value, coefficient=self.otherwise)
        within = [threshold for threshold in self.thresholds if value <= threshold.at]
        if within:
            chosen = within[0]
            return chosen.coefficient, verbatim(f"{self.kpi} {value} ≤ {chosen.at} → ×{chosen.coefficient}")
        return self.otherwise, Msg("%(kpi)s %(value)s is above every threshold → ×%(coefficient)s",
                                   kpi=self.kpi, value=value, coefficient=self.otherwise)


class KpiCoefficientPlan(PlanFields):
    """An inner plan multiplied by the product of its KPI rules' coefficients, clamped to bounds."""

    type: Literal["kpi_coefficient"] = "kpi_coefficient"
    inner: RatePlan = Field(description="The plan whose result the coefficient multiplies.")
    rules: list[KpiRule] = Field(description="One rule per KPI; their coefficients are multiplied.")
    min_coefficient: Coefficient = Field(description='Lower bound of the combined coefficient ("0.5").')
    max_coefficient: Coefficient = Field(description='Upper bound of the combined coefficient ("1.5").')

    @field_validator("inner")
    @classmethod
    def _inner_nests(cls, inner: RatePlan) -> RatePlan:
        _check_nested(inner, "the inner plan")
        return inner

    @field_validator("rules")
    @classmethod
    def _one_rule_per_kpi(cls, rules: list[KpiRule]) -> list[KpiRule]:
        if not rules:
            raise ValueError(
                Msg('add at least one KPI rule, e.g. {"kpi": "completion_rate", '
                    '"thresholds": [...]}')
            )
        seen: set[str] = set()
        for rule in rules:
            if rule.kpi in seen:
                raise ValueError(Msg("KPI '%(kpi)s' has two rules; merge their thresholds into one rule",
                                     kpi=rule.kpi))
            seen.add(rule.kpi)
        return rules

    @model_validator(mode="after")
    def _bounds_ordered(self) -> KpiCoefficientPlan:
        if self.min_coefficient > self.max_coefficient:
            raise ValueError(
                Msg("min_coefficient %(min_coefficient)s is above max_coefficient "
                    "%(max_coefficient)s; swap them",
                    min_coefficient=self.min_coefficient, max_coefficient=self.max_coefficient)
            )
        return self

    def clamp(self, coefficient: Decimal) -> Decimal:
        """The coefficient held within [min_coefficient, max_coefficient]."""
        return min(max(coefficient, self.min_coefficient), self.max_coefficient)


class SplitParty(BaseModel):
    """A party of a split and its percentage."""

    model_config = _MODEL_CONFIG

    party: str = Field(min_length=1, description='Who receives the share: "anchor", "agency", ...')
    percent: Annotated[Percent, Field(gt=0)] = Field(description='Share of the whole, e.g. "50".')


def check_split_parties(parties: Sequence[SplitParty]) -> list[SplitParty]:
    """Parties must be named once each, and their percentages must add up to exactly 100."""
    if not parties:
        raise ValueError(Msg('add the parties, e.g. [{"party": "anchor", "percent": "50"}, ...]'))
    names = [party.party for party in parties]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(Msg("party '%(party)s' is listed twice; list each party once",
                             party=duplicates[0]))
    with exact_arithmetic():
        total = sum((party.percent for party in parties), Decimal(0))
    if total != 100:
        raise ValueError(
            Msg("the percentages add up to %(total)s, not 100; adjust them so they "
                "total exactly 100",
                total=format(total.normalize(), "f"))
        )
    return list(parties)


class SplitPlan(PlanFields):
    """The total of ``of`` (or the sales themselves) shared among parties, exact to the fen."""

    type: Literal["split"] = "split"
    of: RatePlan | None = Field(
        default=None, description="The plan whose total is split; without it the sales amount is split."
    )
    parties: list[SplitParty] = Field(
        description="Parties in declared order (which breaks ties); percentages must sum to 100."
    )

    @field_validator("of")
    @classmethod
    def _of_nests(cls, of: RatePlan | None) -> RatePlan | None:
        if of is not None:
            _check_nested(of, 'the "of" plan')
        return of

    _parties_sum_to_100 = field_validator("parties")(check_split_parties)


class CompositionPlan(PlanFields):
    """The sum of several plans, e.g. a flat commission plus a tiered bonus."""

    type: Literal["composition"] = "composition"
    components: list[RatePlan] = Field(description="The plans whose results are added up.")

    @field_validator("components")
    @classmethod
    def _components_nest(cls, components: list[RatePlan]) -> list[RatePlan]:
        if not components:
            raise ValueError(Msg('add at least one component plan, e.g. [{"type": "flat", '
                                 '"default_rate": "5"}]'))
        for index, component in enumerate(components):
            _check_nested(component, f"components[{index}]")
        return components


RatePlan = Annotated[
    FlatPlan | TieredPlan | GuaranteedPlan | KpiCoefficientPlan | SplitPlan | CompositionPlan,
    Field(discriminator="type"),
]
"""Any rate plan; the ``type`` field says which."""

PLAN_TYPES: Final = ("flat", "tiered", "guaranteed", "kpi_coefficient", "split", "composition")


def _check_nested(plan: RatePlan, where: str) -> None:
    if isinstance(plan, SplitPlan):
        raise ValueError(
            Msg("%(where)s is a split plan; a split must be the outermost plan: move "
                'it to the top and put this plan in its "of"',
                where=where)
        )
    if plan.rounding is not None:
        raise ValueError(
            Msg('%(where)s sets "rounding"; the total is rounded once, with the '
                "outermost plan's rounding: remove it here and set it on the outermost "
                "plan",
                where=where)
        )


for _model in (KpiCoefficientPlan, SplitPlan, CompositionPlan):
    _model.model_rebuild()

_RATE_PLAN: Final[TypeAdapter[RatePlan]] = TypeAdapter(RatePlan)


def _field_path(loc: tuple[int | str, ...]) -> str:
    """('composition', 'components', 0, 'tiered', 'tiers') → 'components[0].tiers' (type tags dropped)."""
    parts: list[str] = []
    for index, item in enumerate(loc):
        previous = loc[index - 1] if index > 0 else None
        holds_plan = (
            index == 0
            or previous in ("inner", "of")
            or (isinstance(previous, int) and index >= 2 and loc[index - 2] == "components")
        )
        if isinstance(item, str) and item in PLAN_TYPES and holds_plan:
            continue
        if isinstance(item, int) and parts:
            parts[-1] = f"{parts[-1]}[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def _problem(error: ErrorDetails) -> tuple[str, Msg]:
    path = _field_path(tuple(error["loc"]))
    kind = error["type"]
    choices = ", ".join(PLAN_TYPES)
    if kind == "union_tag_not_found":
        message = Msg('say which plan this is: add "type", one of %(choices)s', choices=choices)
    elif kind == "union_tag_invalid":
        tag = (error.get("ctx") or {}).get("tag")
        message = Msg('"type" \'%(tag)s\' is not a plan type; use one of %(choices)s', tag=tag, choices=choices)
    elif kind == "extra_forbidden":
        message = Msg("unknown field; remove it or check its spelling")
    elif kind == "missing":
        message = Msg("required field is missing; add it")
    else:  # a validator's ValueError(Msg(...)) keeps its Msg; pydantic's own wording stays as it is
        message = pydantic_message(error)
    return path, message


def load_rate_plan(data: str | bytes | Mapping[str, Any]) -> RatePlan:
    """A rate plan from JSON text or a decoded JSON object; ``RatePlanError`` lists every problem."""
    try:
        if isinstance(data, str | bytes):
            return _RATE_PLAN.validate_json(data)
        return _RATE_PLAN.validate_python(data)
    except ValidationError as error:
        raise RatePlanError([_problem(detail) for detail in error.errors()]) from error


def dump_rate_plan(plan: RatePlan) -> dict[str, Any]:
    """A rate plan as a JSON-ready object (decimal strings, ``"from"`` keys, unset options left out)."""
    dumped: dict[str, Any] = _RATE_PLAN.dump_python(plan, mode="json", by_alias=True, exclude_none=True)
    return dumped


def rate_plan_json_schema() -> dict[str, Any]:
    """The JSON Schema of a rate plan document, for the designer's form and for validation elsewhere."""
    return _RATE_PLAN.json_schema(by_alias=True)


def describe_tier_band(lower_fen: int, upper_fen: int | None) -> str:
    """``¥500,000.00–¥1,000,000.00`` or ``from ¥1,000,000.00``."""
    lower = format_yuan(lower_fen, grouping=True, symbol=True)
    if upper_fen is None:
        return f"from {lower}"
    return f"{lower}–{format_yuan(upper_fen, grouping=True, symbol=True)}"


def describe_percent(percent: Decimal) -> str:
    """``Decimal("2.50")`` → ``"2.5%"``."""
    return _percent_text(percent)
