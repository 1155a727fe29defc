"""Properties that hold for every amount and plan: no fen created or lost, tiers ordered, clawbacks exact."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from activities.settlement.compute import clawback, commission, split
from activities.settlement.money import floor_fen, percent_of
from activities.settlement.plans import dump_rate_plan, load_rate_plan

PROPERTY = settings(max_examples=60, deadline=None, database=None)

KPIS = {"completion_rate": "0.93"}

sales_amounts = st.integers(min_value=0, max_value=10**11)  # up to ¥1,000,000,000.00
percents = st.integers(min_value=0, max_value=10_000).map(
    lambda basis_points: str(Decimal(basis_points).scaleb(-2))
)
roundings = st.sampled_from(["half_up", "half_even"])


@st.composite
def tier_lists(draw: st.DrawFn, rising_rates: bool = False) -> list[dict[str, Any]]:
    starts = draw(st.lists(st.integers(0, 10**10), min_size=1, max_size=5, unique=True))
    rates = draw(st.lists(st.integers(0, 10_000), min_size=len(starts), max_size=len(starts)))
    if rising_rates:
        rates.sort()
    return [
        {"from": start, "rate": str(Decimal(rate).scaleb(-2))}
        for start, rate in zip(sorted(starts), rates, strict=True)
    ]


@st.composite
def party_percents(draw: st.DrawFn) -> dict[str, str]:
    """1–8 parties whose percentages (4 decimals) add up to exactly 100."""
    cuts = sorted(draw(st.lists(st.integers(1, 999_999), max_size=7, unique=True)))
    bounds = [0, *cuts, 1_000_000]
    return {
        f"party{index}": str(Decimal(upper - lower).scaleb(-4))
        for index, (lower, upper) in enumerate(pairwise(bounds))
    }


flat_plans = st.builds(lambda rate: {"type": "flat", "default_rate": rate}, percents)
graduated_plans = st.builds(
    lambda tiers: {"type": "tiered", "mode": "graduated", "tiers": tiers}, tier_lists()
)
retroactive_plans = st.builds(
    lambda tiers: {"type": "tiered", "mode": "retroactive", "tiers": tiers}, tier_lists()
)
guaranteed_plans = st.builds(
    lambda guarantee, threshold, tiers: {
        "type": "guaranteed",
        "guarantee_fen": guarantee,
        "threshold_fen": threshold,
        "tiers": tiers,
    },
    st.integers(0, 10**9),
    st.integers(0, 10**10),
    tier_lists(),
)
leaf_plans = st.one_of(flat_plans, graduated_plans, retroactive_plans, guaranteed_plans)
kpi_plans = st.builds(
    lambda inner, low, high: {
        "type": "kpi_coefficient",
        "inner": inner,
        "rules": [
            {
                "kpi": "completion_rate",
                "thresholds": [{"at": "0.8", "coefficient": "1"}, {"at": "0.9", "coefficient": "1.137"}],
                "otherwise": "0.613",
            }
        ],
        "min_coefficient": str(min(low, high)),
        "max_coefficient": str(max(low, high)),
    },
    leaf_plans,
    st.decimals(min_value=0, max_value=2, places=3),
    st.decimals(min_value=0, max_value=2, places=3),
)
composition_plans = st.builds(
    lambda components: {"type": "composition", "components": components},
    st.lists(st.one_of(leaf_plans, kpi_plans), min_size=1, max_size=3),
)
split_plans = st.builds(
    lambda of, parties: {
        "type": "split",
        **({"of": of} if of is not None else {}),
        "parties": [{"party": party, "percent": percent} for party, percent in parties.items()],
    },
    st.one_of(st.none(), leaf_plans, composition_plans),
    party_percents(),
)
any_plans = st.builds(
    lambda plan, rounding: {**plan, "rounding": rounding},
    st.one_of(leaf_plans, kpi_plans, composition_plans, split_plans),
    roundings,
)


@PROPERTY
@given(st.integers(min_value=-(10**12), max_value=10**12), party_percents(), roundings)
def test_split_parts_always_add_up_to_the_whole(amount: int, parties: dict[str, str], rounding: str) -> None:
    shares = split(amount, parties, rounding)  # type: ignore[arg-type]
    assert list(shares) == list(parties)
    assert sum(shares.values()) == amount
    for party, percent in parties.items():
        exact = percent_of(amount, Decimal(percent))
        assert shares[party] in (floor_fen(exact), floor_fen(exact) + 1)
        assert abs(shares[party] - exact) < 1


@PROPERTY
@given(st.decimals(min_value=-(10**9), max_value=10**9, places=4), party_percents(), roundings)
def test_split_of_an_exact_amount_adds_up_to_its_rounding(
    amount: Decimal, parties: dict[str, str], rounding: str
) -> None:
    shares = split(amount, parties, rounding)  # type: ignore[arg-type]
    assert abs(sum(shares.values()) - amount) <= Decimal("0.5")


@PROPERTY
@given(any_plans, sales_amounts, st.decimals(min_value=0, max_value=2, places=3))
def test_lines_and_shares_add_up_to_the_rounded_total(
    plan_data: dict[str, Any], sales: int, kpi: Decimal
) -> None:
    plan = load_rate_plan(plan_data)
    result = commission(plan, sales, {"completion_rate": kpi})
    assert abs(result.total_fen - result.exact_fen) <= Decimal("0.5")
    assert sum(line.amount_fen for line in result.lines) == result.total_fen
    assert sum(line.exact_fen for line in result.lines) == result.exact_fen
    for line in result.lines:
        assert abs(line.amount_fen - line.exact_fen) < 1
    if plan.type == "split":
        assert sum(result.shares_by_party.values()) == result.total_fen
    assert load_rate_plan(dump_rate_plan(plan)) == plan


@PROPERTY
@given(tier_lists(rising_rates=True), sales_amounts, roundings)
def test_graduated_never_pays_more_than_retroactive(
    tiers: list[dict[str, Any]], sales: int, rounding: str
) -> None:
    graduated = load_rate_plan({"type": "tiered", "mode": "graduated", "tiers": tiers, "rounding": rounding})
    retroactive = load_rate_plan(
        {"type": "tiered", "mode": "retroactive", "tiers": tiers, "rounding": rounding}
    )
    assert commission(graduated, sales).total_fen <= commission(retroactive, sales).total_fen


@PROPERTY
@given(st.one_of(flat_plans, graduated_plans, guaranteed_plans), sales_amounts, sales_amounts, roundings)
def test_commission_never_falls_as_sales_rise(
    plan_data: dict[str, Any], first: int, second: int, rounding: str
) -> None:
    plan = load_rate_plan({**plan_data, "rounding": rounding})
    low, high = sorted((first, second))
    assert commission(plan, low).total_fen <= commission(plan, high).total_fen


@PROPERTY
@given(tier_lists(rising_rates=True), sales_amounts, sales_amounts)
def test_retroactive_with_rising_rates_never_falls(
    tiers: list[dict[str, Any]], first: int, second: int
) -> None:
    plan = load_rate_plan({"type": "tiered", "mode": "retroactive", "tiers": tiers})
    low, high = sorted((first, second))
    assert commission(plan, low).total_fen <= commission(plan, high).total_fen


@PROPERTY
@given(percents, sales_amounts, st.sampled_from(["graduated", "retroactive"]))
def test_one_tier_from_zero_is_a_flat_rate(rate: str, sales: int, mode: str) -> None:
    tiered = load_rate_plan({"type": "tiered", "mode": mode, "tiers": [{"from": 0, "rate": rate}]})
    flat = load_rate_plan({"type": "flat", "default_rate": rate})
    assert commission(tiered, sales).total_fen == commission(flat, sales).total_fen


@PROPERTY
@given(guaranteed_plans, sales_amounts)
def test_guaranteed_is_never_below_the_guarantee(plan_data: dict[str, Any], sales: int) -> None:
    result = commission(load_rate_plan(plan_data), sales)
    assert result.total_fen >= plan_data["guarantee_fen"]
    if sales <= plan_data["threshold_fen"]:
        assert result.total_fen == plan_data["guarantee_fen"]


@PROPERTY
@given(any_plans, sales_amounts, sales_amounts)
def test_full_refund_of_later_orders_restores_the_earlier_total(
    plan_data: dict[str, Any], kept: int, refunded: int
) -> None:
    plan = load_rate_plan(plan_data)
    result = clawback(plan, kept + refunded, refunded, KPIS)
    assert result.earned.total_fen == commission(plan, kept + refunded, KPIS).total_fen
    assert result.earned.total_fen - result.clawback_fen == commission(plan, kept, KPIS).total_fen
    if plan.type == "split":
        assert sum(result.shares_clawback.values()) == result.clawback_fen
        recomputed = commission(plan, kept, KPIS).shares_by_party
        assert {
            party: earned - result.shares_clawback[party]
            for party, earned in result.earned.shares_by_party.items()
        } == recomputed
    else:
        assert result.shares_clawback == {}


@PROPERTY
@given(any_plans, sales_amounts, st.lists(st.integers(0, 10**4), min_size=1, max_size=4))
def test_successive_clawbacks_add_up_to_one(
    plan_data: dict[str, Any], sales: int, weights: list[int]
) -> None:
    """Refunds against one period, clawed back one by one, leave exactly the commission on what is left."""
    plan = load_rate_plan(plan_data)
    total_weight = sum(weights) or 1
    refunds = [sales * weight // total_weight for weight in weights]
    earned = commission(plan, sales, KPIS).total_fen
    clawed, previously = 0, 0
    for refund in refunds:
        clawed += clawback(plan, sales, refund, KPIS, previously_refunded_fen=previously).clawback_fen
        previously += refund
    assert earned - clawed == commission(plan, sales - previously, KPIS).total_fen
    if previously == sales:
        assert earned - clawed == commission(plan, 0, KPIS).total_fen
