"""Commission, splits and clawbacks: pure functions over rate plans, exact to the fen.

How an amount is computed, in one paragraph: the plan is evaluated into statement lines, each with an
*exact* ``Decimal`` amount in fen (3 % of ¥12,345.67 is 37037.01 fen). The exact total is rounded **once**,
with the outermost plan's ``rounding``; the whole-fen total is then handed out to the lines by the largest
remainder method, so the lines on a statement always add up to its total. A split plan hands the rounded
total out to its parties the same way. Nothing is ever a float, and no fen is created or lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from activities.settlement.errors import SettlementInputError
from activities.settlement.line_text import stored
from activities.settlement.money import (
    Rounding,
    exact_arithmetic,
    exact_decimal,
    floor_fen,
    format_exact_yuan,
    format_yuan,
    percent_of,
    require_fen,
    round_fen,
)
from activities.settlement.plans import (
    CompositionPlan,
    FlatPlan,
    GuaranteedPlan,
    KpiCoefficientPlan,
    RatePlan,
    SplitParty,
    SplitPlan,
    Tier,
    TieredPlan,
    check_split_parties,
    describe_percent,
    describe_tier_band,
)
from engine.text import Msg, joined, verbatim

KpiValue = Decimal | int | str
"""A KPI value: a ``Decimal``, an int or a decimal string (``"0.95"``); never a float."""

LineKind = Literal["flat", "tier", "guarantee", "kpi_adjustment", "sales"]

_FROZEN = ConfigDict(frozen=True)


class StatementLine(BaseModel):
    """One traceable part of a commission: what was multiplied by what, and what it came to.

    ``exact_fen`` is the unrounded amount; ``amount_fen`` is its whole-fen share of the rounded total.
    """

    model_config = _FROZEN

    component: str
    """Which (sub-)plan produced the line: its name, or its type / position, joined with " / "."""
    kind: LineKind
    description: str
    """How the amount came about, in English."""
    text: str | None = None
    """The description's template and values (:mod:`activities.settlement.line_text`), for a page in Chinese."""
    base_fen: Decimal | None = None
    """What the rate or coefficient applied to: sales, the portion in a tier, the excess, an inner total."""
    rate_percent: Decimal | None = None
    coefficient: Decimal | None = None
    tier: int | None = None
    """1-based number of the tier in the plan's list."""
    tier_from_fen: int | None = None
    tier_to_fen: int | None = None
    exact_fen: Decimal
    amount_fen: int


class KpiFactor(BaseModel):
    """How one KPI rule contributed to a coefficient."""

    model_config = _FROZEN

    component: str
    kpi: str
    value: Decimal | None
    coefficient: Decimal
    reason: str


class Share(BaseModel):
    """One party's part of a split."""

    model_config = _FROZEN

    party: str
    percent: Decimal
    exact_fen: Decimal
    amount_fen: int


class CommissionResult(BaseModel):
    """The commission for one party and period, with lines that explain it."""

    model_config = _FROZEN

    sales_fen: int
    rounding: Rounding
    exact_fen: Decimal
    """The total before rounding (the sum of the lines' exact amounts)."""
    total_fen: int
    """The total in whole fen; equals the sum of ``lines[*].amount_fen`` (and of the shares, if any)."""
    lines: list[StatementLine]
    kpi_factors: list[KpiFactor] = []
    shares: list[Share] = []
    """For a split plan: each party's whole-fen part of ``total_fen``, in declared order."""

    @property
    def shares_by_party(self) -> dict[str, int]:
        """``{"anchor": 61729, ...}`` for a split plan, ``{}`` otherwise."""
        return {share.party: share.amount_fen for share in self.shares}


class ClawbackResult(BaseModel):
    """What to take back for refunds against a period that was already settled."""

    model_config = _FROZEN

    settled_sales_fen: int
    previously_refunded_fen: int
    refunded_fen: int
    earned: CommissionResult
    """The commission as it stood: on settled sales less refunds already clawed back."""
    recomputed: CommissionResult
    """The commission the period would have earned without the refunded sales."""
    clawback_fen: int
    """``earned.total_fen - recomputed.total_fen``; negative only for plans that pay less on more sales."""
    shares_clawback: dict[str, int] = {}
    """For a split plan, each party's part of the clawback; they add up to ``clawback_fen``."""


@dataclass(frozen=True)
class _DraftLine:
    component: str
    kind: LineKind
    description: str
    exact_fen: Decimal
    base_fen: Decimal | None = None
    rate_percent: Decimal | None = None
    coefficient: Decimal | None = None
    tier: int | None = None
    tier_from_fen: int | None = None
    tier_to_fen: int | None = None

    def finish(self, amount_fen: int) -> StatementLine:
        return StatementLine(
            component=self.component,
            kind=self.kind,
            description=self.description,
            text=stored(self.description),
            base_fen=self.base_fen,
            rate_percent=self.rate_percent,
            coefficient=self.coefficient,
            tier=self.tier,
            tier_from_fen=self.tier_from_fen,
            tier_to_fen=self.tier_to_fen,
            exact_fen=self.exact_fen,
            amount_fen=amount_fen,
        )


@dataclass
class _Evaluation:
    lines: list[_DraftLine] = field(default_factory=list)
    kpi_factors: list[KpiFactor] = field(default_factory=list)

    @property
    def exact_fen(self) -> Decimal:
        with exact_arithmetic():
            return sum((line.exact_fen for line in self.lines), Decimal(0))


def _yuan(fen: int) -> str:
    return format_yuan(fen, grouping=True, symbol=True)


def _band(lower_fen: int, upper_fen: int | None) -> Msg:
    """A tier's band in words: ``¥500,000.00–¥1,000,000.00``, ``from ¥1,000,000.00``."""
    if upper_fen is None:
        return Msg("from %(amount)s", amount=_yuan(lower_fen))
    return verbatim(describe_tier_band(lower_fen, upper_fen))


#: what a tier's rate applies to (graduated tiers of a guarantee apply to the excess)
_SALES = Msg("sales")


def _graduated(tiers: Sequence[Tier], amount_fen: int, component: str, what: Msg) -> list[_DraftLine]:
    """Each band of ``amount_fen`` at its tier's rate; one line per band reached."""
    lines: list[_DraftLine] = []
    for index, tier in enumerate(tiers):
        if amount_fen <= tier.from_fen:
            break
        upper = tiers[index + 1].from_fen if index + 1 < len(tiers) else None
        portion = (amount_fen if upper is None else min(amount_fen, upper)) - tier.from_fen
        lines.append(
            _DraftLine(
                component=component,
                kind="tier",
                description=Msg("tier %(number)s (%(band)s of %(what)s): %(rate)s of %(amount)s", number=index + 1,
                                band=_band(tier.from_fen, upper), what=what, rate=describe_percent(tier.rate),
                                amount=_yuan(portion)),
                exact_fen=percent_of(portion, tier.rate),
                base_fen=Decimal(portion),
                rate_percent=tier.rate,
                tier=index + 1,
                tier_from_fen=tier.from_fen,
                tier_to_fen=upper,
            )
        )
    if not lines:
        lines.append(_below_first_tier(tiers, amount_fen, component, what))
    return lines


def _below_first_tier(tiers: Sequence[Tier], amount_fen: int, component: str, what: Msg) -> _DraftLine:
    return _DraftLine(
        component=component,
        kind="tier",
        description=Msg("%(what)s of %(amount)s does not pass the first tier (%(first)s): nothing earned",
                        what=what, amount=_yuan(amount_fen), first=_yuan(tiers[0].from_fen)),
        exact_fen=Decimal(0),
        base_fen=Decimal(amount_fen),
        rate_percent=Decimal(0),
    )


def _retroactive(tiers: Sequence[Tier], sales_fen: int, component: str, above: bool = False) -> list[_DraftLine]:
    """All of the sales at the rate of the highest tier reached: sales ≥ its ``from`` (至少, the default), or
    with ``above`` (超过) sales > its ``from``."""
    reached = [index for index, tier in enumerate(tiers)
               if (sales_fen > tier.from_fen if above else sales_fen >= tier.from_fen)]
    if not reached:
        return [_below_first_tier(tiers, sales_fen, component, _SALES)]
    index = reached[-1]
    tier = tiers[index]
    upper = tiers[index + 1].from_fen if index + 1 < len(tiers) else None
    return [
        _DraftLine(
            component=component,
            kind="tier",
            description=Msg("tier %(number)s reached (%(band)s): %(rate)s of all sales, %(amount)s",
                            number=index + 1, band=_band(tier.from_fen, upper), rate=describe_percent(tier.rate),
                            amount=_yuan(sales_fen)),
            exact_fen=percent_of(sales_fen, tier.rate),
            base_fen=Decimal(sales_fen),
            rate_percent=tier.rate,
            tier=index + 1,
            tier_from_fen=tier.from_fen,
            tier_to_fen=upper,
        )
    ]


def _flat(plan: FlatPlan, sales_fen: int, attributes: Mapping[str, str], component: str) -> list[_DraftLine]:
    value = attributes.get(plan.rates_by)
    rate = plan.rate_for(value)
    if rate is None:
        if value is None:
            raise SettlementInputError(
                Msg("%(component)s: the rate depends on '%(rates_by)s', which was not "
                    "given; pass attributes={'%(rates_by)s': ...} or set 'default_rate' on "
                    "the plan",
                    component=component, rates_by=plan.rates_by)
            )
        raise SettlementInputError(
            Msg("%(component)s: no rate for %(rates_by)s '%(value)s' and no "
                "default_rate; add '%(value)s' to 'rates' or set 'default_rate'",
                component=component, rates_by=plan.rates_by, value=value)
        )
    chosen = verbatim(f"{plan.rates_by} {value}") if value is not None and value in plan.rates \
        else Msg("default rate")
    return [
        _DraftLine(
            component=component,
            kind="flat",
            description=Msg("%(rate)s of sales %(amount)s (%(chosen)s)", rate=describe_percent(rate),
                            amount=_yuan(sales_fen), chosen=chosen),
            exact_fen=percent_of(sales_fen, rate),
            base_fen=Decimal(sales_fen),
            rate_percent=rate,
        )
    ]


def _guaranteed(plan: GuaranteedPlan, sales_fen: int, component: str) -> list[_DraftLine]:
    excess = max(0, sales_fen - plan.threshold_fen)
    guarantee = _DraftLine(
        component=component,
        kind="guarantee",
        description=Msg("guaranteed %(amount)s", amount=_yuan(plan.guarantee_fen)),
        exact_fen=Decimal(plan.guarantee_fen),
    )
    what = Msg("the excess over %(threshold)s", threshold=_yuan(plan.threshold_fen))
    return [guarantee, *_graduated(plan.tiers, excess, component, what)]


def _kpi_coefficient(
    plan: KpiCoefficientPlan, kpis: Mapping[str, KpiValue], component: str
) -> tuple[Decimal, list[KpiFactor], list[Msg]]:
    """The product of the rules' coefficients, each rule's factor and, one per factor, why (a ``Msg``)."""
    product = Decimal(1)
    factors: list[KpiFactor] = []
    reasons: list[Msg] = []
    for rule in plan.rules:
        raw = kpis.get(rule.kpi)
        value: Decimal | None
        if raw is None:
            if rule.if_missing is None:
                raise SettlementInputError(
                    Msg("%(component)s: KPI '%(kpi)s' was not given; pass kpis={'%(kpi)s': "
                        "...} or set 'if_missing' on its rule",
                        component=component, kpi=rule.kpi)
                )
            value, coefficient = None, rule.if_missing
            reason = Msg("%(kpi)s not given → ×%(coefficient)s (if_missing)", kpi=rule.kpi, coefficient=coefficient)
        else:
            value = exact_decimal(raw, f"KPI {rule.kpi!r}")
            coefficient, reason = rule.coefficient_for(value)
        with exact_arithmetic():
            product *= coefficient
        factors.append(
            KpiFactor(component=component, kpi=rule.kpi, value=value, coefficient=coefficient, reason=reason)
        )
        reasons.append(reason)
    return product, factors, reasons


def _label(plan: RatePlan, fallback: str) -> str:
    return plan.name or fallback


def _evaluate(
    plan: RatePlan,
    sales_fen: int,
    kpis: Mapping[str, KpiValue],
    attributes: Mapping[str, str],
    component: str,
) -> _Evaluation:
    if isinstance(plan, FlatPlan):
        return _Evaluation(_flat(plan, sales_fen, attributes, component))
    if isinstance(plan, TieredPlan):
        if plan.mode == "graduated":
            return _Evaluation(_graduated(plan.tiers, sales_fen, component, _SALES))
        return _Evaluation(_retroactive(plan.tiers, sales_fen, component, plan.strictly_above))
    if isinstance(plan, GuaranteedPlan):
        return _Evaluation(_guaranteed(plan, sales_fen, component))
    if isinstance(plan, CompositionPlan):
        result = _Evaluation()
        for index, part in enumerate(plan.components):
            label = f"{component} / {_label(part, f'components[{index}]')}"
            evaluated = _evaluate(part, sales_fen, kpis, attributes, label)
            result.lines.extend(evaluated.lines)
            result.kpi_factors.extend(evaluated.kpi_factors)
        return result
    if isinstance(plan, KpiCoefficientPlan):
        inner_label = f"{component} / {_label(plan.inner, 'inner')}"
        inner = _evaluate(plan.inner, sales_fen, kpis, attributes, inner_label)
        product, factors, reasons = _kpi_coefficient(plan, kpis, component)
        coefficient = plan.clamp(product)
        inner_exact = inner.exact_fen
        clamped = "" if coefficient == product else Msg(", clamped from ×%(product)s", product=product)
        with exact_arithmetic():
            adjustment = inner_exact * (coefficient - 1)
        line = _DraftLine(
            component=component,
            kind="kpi_adjustment",
            description=Msg("KPI coefficient ×%(coefficient)s%(clamped)s on %(amount)s: %(reasons)s",
                            coefficient=coefficient, clamped=clamped, amount=format_exact_yuan(inner_exact),
                            reasons=joined(reasons, "; ")),
            exact_fen=adjustment,
            base_fen=inner_exact,
            coefficient=coefficient,
        )
        return _Evaluation([*inner.lines, line], [*inner.kpi_factors, *factors])
    if isinstance(plan, SplitPlan):
        if plan.of is not None:
            return _evaluate(plan.of, sales_fen, kpis, attributes, f"{component} / {_label(plan.of, 'of')}")
        sales = _DraftLine(
            component=component,
            kind="sales",
            description=Msg("sales %(amount)s, split among the parties", amount=_yuan(sales_fen)),
            exact_fen=Decimal(sales_fen),
            base_fen=Decimal(sales_fen),
        )
        return _Evaluation([sales])
    raise TypeError(f"not a rate plan: {type(plan).__name__}")  # pragma: no cover - the union is closed


def largest_remainder(total_fen: int, exact_parts: Sequence[Decimal]) -> list[int]:
    """Whole-fen parts of ``total_fen``, each the floor or ceiling of its exact part, summing to the total.

    Every part starts at its floor; the fen still missing go, one each, to the parts with the largest
    fractional remainders, ties going to the earlier part. ``total_fen`` must lie between the sum of the
    floors and the sum of the ceilings (true when it is the rounded sum of the parts, or when the parts
    are exact percentages of it).
    """
    require_fen(total_fen, "total_fen")
    floors = [floor_fen(part) for part in exact_parts]
    with exact_arithmetic():
        remainders = [part - floor for part, floor in zip(exact_parts, floors, strict=True)]
    missing = total_fen - sum(floors)
    fractional = sum(1 for remainder in remainders if remainder > 0)
    if not 0 <= missing <= fractional:
        raise SettlementInputError(
            Msg("cannot hand out %(total_fen)s fen over parts whose floors sum to "
                "%(floors)s (%(fractional)s of them fractional); the total must be the "
                "rounded sum of the parts",
                total_fen=total_fen, floors=sum(floors), fractional=fractional)
        )
    order = sorted(range(len(floors)), key=lambda index: (-remainders[index], index))
    amounts = list(floors)
    for index in order[:missing]:
        amounts[index] += 1
    return amounts


def _shares(total_fen: int, parties: Sequence[SplitParty]) -> list[Share]:
    exacts = [percent_of(total_fen, party.percent) for party in parties]
    amounts = largest_remainder(total_fen, exacts)
    return [
        Share(party=party.party, percent=party.percent, exact_fen=exact, amount_fen=amount)
        for party, exact, amount in zip(parties, exacts, amounts, strict=True)
    ]


def _split_parties(parties: Sequence[SplitParty] | Mapping[str, Decimal | int | str]) -> list[SplitParty]:
    try:
        if isinstance(parties, Mapping):
            parties = [
                SplitParty.model_validate({"party": party, "percent": percent})
                for party, percent in parties.items()
            ]
        return check_split_parties(parties)
    except (ValidationError, ValueError) as error:
        raise SettlementInputError(Msg("split parties: %(error)s", error=error)) from error


def split(
    amount_fen: int | Decimal,
    parties: Sequence[SplitParty] | Mapping[str, Decimal | int | str],
    rounding: Rounding = "half_up",
) -> dict[str, int]:
    """Share an amount among parties by percentages (summing to 100) with the largest remainder method.

    ``split(246913, {"anchor": "50", "agency": "30", "platform": "20"})``
    → ``{"anchor": 123456, "agency": 74074, "platform": 49383}``: the parts always add up to the whole,
    each is within one fen of its exact share, and ties go to the party declared first. A ``Decimal``
    amount (an exact, unrounded total) is first rounded to whole fen with ``rounding``. Negative amounts
    (a clawback) split the same way.
    """
    checked = _split_parties(parties)
    if isinstance(amount_fen, Decimal):
        whole = round_fen(amount_fen, rounding)
    else:
        whole = require_fen(amount_fen, "amount_fen")
    return {share.party: share.amount_fen for share in _shares(whole, checked)}


def commission(
    plan: RatePlan,
    sales_fen: int,
    kpis: Mapping[str, KpiValue] | None = None,
    *,
    attributes: Mapping[str, str] | None = None,
) -> CommissionResult:
    """The commission a plan pays on one party's sales for one period.

    ``kpis`` feed ``kpi_coefficient`` plans (``{"completion_rate": "0.95"}``); ``attributes`` pick a flat
    plan's rate (``{"party_type": "franchise"}`` or ``{"channel": "douyin"}``). For a split plan the
    result's ``shares`` divide ``total_fen`` among the parties. Raises ``SettlementInputError`` when a KPI
    or attribute the plan needs is missing, ``MoneyError`` when ``sales_fen`` is not a whole number of fen.
    """
    require_fen(sales_fen, "sales_fen", allow_negative=False)
    rounding = plan.effective_rounding
    evaluation = _evaluate(plan, sales_fen, kpis or {}, attributes or {}, _label(plan, plan.type))
    exact = evaluation.exact_fen
    total = round_fen(exact, rounding)
    amounts = largest_remainder(total, [line.exact_fen for line in evaluation.lines])
    shares = _shares(total, plan.parties) if isinstance(plan, SplitPlan) else []
    return CommissionResult(
        sales_fen=sales_fen,
        rounding=rounding,
        exact_fen=exact,
        total_fen=total,
        lines=[line.finish(amount) for line, amount in zip(evaluation.lines, amounts, strict=True)],
        kpi_factors=evaluation.kpi_factors,
        shares=shares,
    )


def clawback(
    plan: RatePlan,
    settled_sales_fen: int,
    refunded_fen: int,
    kpis: Mapping[str, KpiValue] | None = None,
    *,
    attributes: Mapping[str, str] | None = None,
    previously_refunded_fen: int = 0,
) -> ClawbackResult:
    """How much commission to take back when orders of an already-settled period are refunded later.

    The period is recomputed as if the refunded orders had never been sold, with the same plan, KPIs
    and attributes it was settled with: clawback = commission(sales) − commission(sales − refunded). The
    tier that would have applied therefore applies — a refund that drops an agent below ¥1,000,000 takes
    back the 5 % bonus, not just 5 % of the refund — and ``earned − clawback`` is exactly the commission
    on the remaining sales. For several refunds against the same period, pass the earlier ones as
    ``previously_refunded_fen``: the clawbacks then add up to commission(sales) − commission(sales − all
    refunds), whatever the order. A guaranteed amount is not clawed back (commission on no sales still
    includes it). The result can be negative only for plans that pay less on more sales (e.g. retroactive
    tiers with a falling rate): then the party is owed the difference.
    """
    settled = require_fen(settled_sales_fen, "settled_sales_fen", allow_negative=False)
    refunded = require_fen(refunded_fen, "refunded_fen", allow_negative=False)
    previously = require_fen(previously_refunded_fen, "previously_refunded_fen", allow_negative=False)
    if previously + refunded > settled:
        raise SettlementInputError(
            Msg("refunds of %(previously)s earlier and %(refunded)s now exceed the period's "
                "settled sales of %(settled)s; check that the refunds belong to this "
                "period",
                previously=_yuan(previously), refunded=_yuan(refunded), settled=_yuan(settled))
        )
    earned = commission(plan, settled - previously, kpis, attributes=attributes)
    recomputed = commission(plan, settled - previously - refunded, kpis, attributes=attributes)
    recomputed_shares = recomputed.shares_by_party
    return ClawbackResult(
        settled_sales_fen=settled,
        previously_refunded_fen=previously,
        refunded_fen=refunded,
        earned=earned,
        recomputed=recomputed,
        clawback_fen=earned.total_fen - recomputed.total_fen,
        shares_clawback={
            party: amount - recomputed_shares[party] for party, amount in earned.shares_by_party.items()
        },
    )
