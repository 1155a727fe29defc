"""The seed scenarios (多档位结算), exact to the fen, plus the traceability of statement lines."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from activities.settlement.compute import (
    CommissionResult,
    clawback,
    commission,
    largest_remainder,
    split,
)
from activities.settlement.errors import MoneyError, SettlementInputError
from activities.settlement.money import parse_yuan
from activities.settlement.plans import RatePlan, load_rate_plan

AGENT_TIERS = [{"from": parse_yuan("500000"), "rate": "3"}, {"from": parse_yuan("1000000"), "rate": "5"}]

STORES = load_rate_plan(
    {"type": "flat", "rates_by": "party_type", "rates": {"direct": "5", "franchise": "3"}}
)
AGENT_GRADUATED = load_rate_plan({"type": "tiered", "mode": "graduated", "tiers": AGENT_TIERS})
AGENT_RETROACTIVE = load_rate_plan({"type": "tiered", "mode": "retroactive", "tiers": AGENT_TIERS})
GUARANTEED = load_rate_plan(
    {
        "type": "guaranteed",
        "guarantee_fen": parse_yuan("50000"),
        "threshold_fen": parse_yuan("300000"),
        "tiers": [{"from": 0, "rate": "2"}, {"from": parse_yuan("200000"), "rate": "4"}],
    }
)
LIVESTREAM = load_rate_plan(
    {
        "type": "split",
        "of": {"type": "flat", "name": "commission pool", "default_rate": "20"},
        "parties": [
            {"party": "anchor", "percent": "50"},
            {"party": "agency", "percent": "30"},
            {"party": "platform", "percent": "20"},
        ],
    }
)


def assert_lines_add_up(result: CommissionResult) -> None:
    assert sum(line.amount_fen for line in result.lines) == result.total_fen
    assert sum(line.exact_fen for line in result.lines) == result.exact_fen
    if result.shares:
        assert sum(share.amount_fen for share in result.shares) == result.total_fen


# --- direct stores 5 %, franchise stores 3 % ------------------------------------------------------


def test_direct_and_franchise_stores() -> None:
    sales = parse_yuan("123456.78")
    direct = commission(STORES, sales, attributes={"party_type": "direct"})
    franchise = commission(STORES, sales, attributes={"party_type": "franchise"})
    assert direct.exact_fen == Decimal("617283.90")
    assert direct.total_fen == 617284  # ¥6,172.84
    assert franchise.exact_fen == Decimal("370370.34")
    assert franchise.total_fen == 370370  # ¥3,703.70
    [line] = direct.lines
    assert line.kind == "flat"
    assert line.rate_percent == Decimal(5)
    assert line.base_fen == Decimal(sales)
    assert line.description == "5% of sales ¥123,456.78 (party_type direct)"
    assert_lines_add_up(direct)


def test_flat_rate_lookup_needs_the_attribute() -> None:
    with pytest.raises(SettlementInputError, match=r"party_type.*was not given"):
        commission(STORES, 100)
    with pytest.raises(SettlementInputError, match=r"no rate for party_type 'agent'.*default_rate"):
        commission(STORES, 100, attributes={"party_type": "agent"})
    by_channel = load_rate_plan(
        {"type": "flat", "rates_by": "channel", "rates": {"douyin": "8"}, "default_rate": "5"}
    )
    assert commission(by_channel, 10_000, attributes={"channel": "douyin"}).total_fen == 800
    assert commission(by_channel, 10_000, attributes={"channel": "taobao"}).total_fen == 500
    assert commission(by_channel, 10_000).lines[0].description.endswith("(default rate)")


def test_rounding_modes_on_the_plan() -> None:
    half_up = load_rate_plan({"type": "flat", "default_rate": "5"})
    half_even = load_rate_plan({"type": "flat", "default_rate": "5", "rounding": "half_even"})
    # 5 % of 10, 30, 50 fen is 0.5, 1.5, 2.5 fen
    assert [commission(half_up, sales).total_fen for sales in (10, 30, 50)] == [1, 2, 3]
    assert [commission(half_even, sales).total_fen for sales in (10, 30, 50)] == [0, 2, 2]
    assert commission(half_even, 50).rounding == "half_even"


# --- agent: 3 % from ¥500,000, 5 % from ¥1,000,000 -----------------------------------------------


@pytest.mark.parametrize(
    ("sales_yuan", "graduated_yuan", "retroactive_yuan"),
    [
        ("0", "0", "0"),
        ("400000", "0", "0"),
        ("499999.99", "0", "0"),
        ("500000", "0", "15000"),
        ("800000", "9000", "24000"),
        ("999999.99", "15000", "30000"),  # 3 % of 49,999,999 fen = 1,499,999.97 → 1,500,000 fen
        ("1000000", "15000", "50000"),
        ("1200000", "25000", "60000"),
    ],
)
def test_agent_tiers(sales_yuan: str, graduated_yuan: str, retroactive_yuan: str) -> None:
    sales = parse_yuan(sales_yuan)
    graduated = commission(AGENT_GRADUATED, sales)
    retroactive = commission(AGENT_RETROACTIVE, sales)
    assert graduated.total_fen == parse_yuan(graduated_yuan)
    assert retroactive.total_fen == parse_yuan(retroactive_yuan)
    assert_lines_add_up(graduated)
    assert_lines_add_up(retroactive)


def test_graduated_lines_trace_each_tier() -> None:
    result = commission(AGENT_GRADUATED, parse_yuan("1200000"))
    first, second = result.lines
    assert (first.tier, first.tier_from_fen, first.tier_to_fen) == (1, 50_000_000, 100_000_000)
    assert (first.base_fen, first.rate_percent, first.amount_fen) == (
        Decimal(50_000_000),
        Decimal(3),
        1_500_000,
    )
    assert (second.tier, second.tier_from_fen, second.tier_to_fen) == (2, 100_000_000, None)
    assert (second.base_fen, second.rate_percent, second.amount_fen) == (
        Decimal(20_000_000),
        Decimal(5),
        1_000_000,
    )
    assert first.description == "tier 1 (¥500,000.00–¥1,000,000.00 of sales): 3% of ¥500,000.00"
    assert second.description == "tier 2 (from ¥1,000,000.00 of sales): 5% of ¥200,000.00"


def test_retroactive_line_names_the_tier_reached() -> None:
    [line] = commission(AGENT_RETROACTIVE, parse_yuan("800000")).lines
    assert (line.tier, line.rate_percent, line.base_fen) == (1, Decimal(3), Decimal(80_000_000))
    assert line.description == "tier 1 reached (¥500,000.00–¥1,000,000.00): 3% of all sales, ¥800,000.00"
    [below] = commission(AGENT_RETROACTIVE, parse_yuan("100")).lines
    assert below.amount_fen == 0 and "does not pass the first tier" in below.description


def test_line_amounts_are_allocated_by_largest_remainder() -> None:
    # 3 % of 49,999,999 fen = 1,499,999.97 and 5 % of 1 fen = 0.05: total 1,500,000.02 → 1,500,000.
    result = commission(AGENT_GRADUATED, 100_000_000 + 1)
    assert [line.exact_fen for line in result.lines] == [Decimal("1500000.00"), Decimal("0.05")]
    assert [line.amount_fen for line in result.lines] == [1_500_000, 0]
    # 1,500,000 + 5 % of 19 fen = 1,500,000.95 → 1,500,001: the extra fen goes to the fractional line
    result = commission(AGENT_GRADUATED, 100_000_019)
    assert [line.amount_fen for line in result.lines] == [1_500_000, 1]
    assert_lines_add_up(result)


# --- guaranteed ¥50,000 + graduated bonus on the excess --------------------------------------------


@pytest.mark.parametrize(
    ("sales_yuan", "total_yuan"),
    [
        ("0", "50000"),
        ("300000", "50000"),
        ("400000", "52000"),  # 2 % of ¥100,000 excess
        ("500000", "54000"),
        ("600000", "58000"),  # 2 % of ¥200,000 + 4 % of ¥100,000
    ],
)
def test_guaranteed_plus_excess_bonus(sales_yuan: str, total_yuan: str) -> None:
    result = commission(GUARANTEED, parse_yuan(sales_yuan))
    assert result.total_fen == parse_yuan(total_yuan)
    assert result.lines[0].kind == "guarantee"
    assert result.lines[0].amount_fen == parse_yuan("50000")
    assert_lines_add_up(result)


def test_guaranteed_lines_speak_of_the_excess() -> None:
    lines = commission(GUARANTEED, parse_yuan("600000")).lines
    assert [line.description for line in lines] == [
        "guaranteed ¥50,000.00",
        "tier 1 (¥0.00–¥200,000.00 of the excess over ¥300,000.00): 2% of ¥200,000.00",
        "tier 2 (from ¥200,000.00 of the excess over ¥300,000.00): 4% of ¥100,000.00",
    ]


# --- anchor–agency–platform three-way split -------------------------------------------------------


def test_three_way_split_of_a_commission_pool() -> None:
    result = commission(LIVESTREAM, parse_yuan("12345.67"))
    assert result.exact_fen == Decimal("246913.40")
    assert result.total_fen == 246913
    # exact shares 123456.5 / 74073.9 / 49382.6: floors leave 2 fen, which go to .9 and .6
    assert result.shares_by_party == {"anchor": 123456, "agency": 74074, "platform": 49383}
    assert [share.exact_fen for share in result.shares] == [
        Decimal("123456.50"),
        Decimal("74073.90"),
        Decimal("49382.60"),
    ]
    assert result.lines[0].component == "split / commission pool"
    assert_lines_add_up(result)


def test_split_function() -> None:
    parties = {"anchor": "50", "agency": "30", "platform": "20"}
    assert split(246913, parties) == {"anchor": 123456, "agency": 74074, "platform": 49383}
    assert split(100, {"a": "33.33", "b": "33.33", "c": "33.34"}) == {"a": 33, "b": 33, "c": 34}
    assert split(100, {"a": Decimal(1), "b": 99}) == {"a": 1, "b": 99}
    # ties go to the party declared first
    assert split(1, {"a": "50", "b": "50"}) == {"a": 1, "b": 0}
    assert split(1, {"b": "50", "a": "50"}) == {"b": 1, "a": 0}
    # exact 0.66666 / 0.66666 / 0.66668: the 2 fen go to z, then to x (declared before y)
    assert split(2, {"x": "33.333", "y": "33.333", "z": "33.334"}) == {"x": 1, "y": 0, "z": 1}
    # a Decimal amount is rounded with the given mode first
    assert split(Decimal("2.5"), parties) == split(3, parties)
    assert split(Decimal("2.5"), parties, "half_even") == split(2, parties)
    # negative amounts (a clawback) split too
    assert split(-5, {"a": "50", "b": "50"}) == {"a": -2, "b": -3}


def test_split_function_refuses_bad_parties() -> None:
    with pytest.raises(SettlementInputError, match="not 100"):
        split(100, {"a": "60", "b": "30"})
    with pytest.raises(SettlementInputError, match="floats are not exact"):
        split(100, {"a": 0.5, "b": "50"})  # type: ignore[dict-item]
    with pytest.raises(MoneyError, match="float"):
        split(100.0, {"a": "100"})  # type: ignore[arg-type]


def test_largest_remainder_refuses_a_total_it_cannot_reach() -> None:
    assert largest_remainder(3, [Decimal("1.5"), Decimal("1.5")]) == [2, 1]
    with pytest.raises(SettlementInputError, match="cannot hand out"):
        largest_remainder(5, [Decimal("1.5"), Decimal("1.5")])


# --- composition and KPI coefficients -------------------------------------------------------------

KPI_GUARANTEED: dict[str, Any] = {
    "type": "kpi_coefficient",
    "inner": GUARANTEED.model_dump(mode="json", exclude_none=True),
    "rules": [
        {
            "kpi": "completion_rate",
            "thresholds": [{"at": "0.8", "coefficient": "1"}, {"at": "1", "coefficient": "1.2"}],
            "otherwise": "0.8",
        },
        {
            "kpi": "response_minutes",
            "better": "lower",
            "thresholds": [{"at": "5", "coefficient": "1.1"}, {"at": "30", "coefficient": "1"}],
            "otherwise": "0.9",
        },
    ],
    "min_coefficient": "0.5",
    "max_coefficient": "1.25",
}


def test_kpi_coefficient_clamped_and_traced() -> None:
    plan = load_rate_plan(KPI_GUARANTEED)
    result = commission(plan, 60_000_001, {"completion_rate": "1.05", "response_minutes": 4})
    # inner: 5,000,000 + 400,000 + 400,000.04 = 5,800,000.04; ×1.2×1.1 = ×1.32, clamped to ×1.25
    assert result.exact_fen == Decimal("7250000.05")
    assert result.total_fen == 7_250_000
    adjustment = result.lines[-1]
    assert adjustment.kind == "kpi_adjustment"
    assert adjustment.coefficient == Decimal("1.25")
    assert adjustment.base_fen == Decimal("5800000.04")
    assert "clamped from ×1.32" in adjustment.description
    assert [(factor.kpi, factor.coefficient) for factor in result.kpi_factors] == [
        ("completion_rate", Decimal("1.2")),
        ("response_minutes", Decimal("1.1")),
    ]
    assert_lines_add_up(result)

    lower = commission(plan, parse_yuan("600000"), {"completion_rate": "0.7", "response_minutes": "45"})
    # ×0.8×0.9 = ×0.72 of ¥58,000 = ¥41,760
    assert lower.total_fen == parse_yuan("41760")
    assert_lines_add_up(lower)


def test_missing_kpi_is_an_error_unless_the_rule_says_otherwise() -> None:
    plan = load_rate_plan(KPI_GUARANTEED)
    with pytest.raises(SettlementInputError, match="KPI 'response_minutes' was not given"):
        commission(plan, 100, {"completion_rate": "1"})
    with pytest.raises(MoneyError, match="floats"):
        commission(plan, 100, {"completion_rate": 0.9, "response_minutes": "3"})  # type: ignore[dict-item]
    lenient = dict(KPI_GUARANTEED)
    lenient["rules"] = [{**rule, "if_missing": "1"} for rule in KPI_GUARANTEED["rules"]]
    result = commission(load_rate_plan(lenient), parse_yuan("600000"))
    assert result.total_fen == parse_yuan("58000")
    assert [factor.value for factor in result.kpi_factors] == [None, None]


def test_composition_flat_plus_bonus() -> None:
    plan = load_rate_plan(
        {
            "type": "composition",
            "name": "agent",
            "components": [
                {"type": "flat", "name": "base", "default_rate": "1"},
                {"type": "tiered", "name": "bonus", "mode": "graduated", "tiers": AGENT_TIERS},
            ],
        }
    )
    result = commission(plan, parse_yuan("1200000"))
    assert result.total_fen == parse_yuan("12000") + parse_yuan("25000")
    assert [line.component for line in result.lines] == ["agent / base", "agent / bonus", "agent / bonus"]
    assert_lines_add_up(result)


def test_sales_must_be_whole_non_negative_fen() -> None:
    with pytest.raises(MoneyError, match="float"):
        commission(STORES, 100.0, attributes={"party_type": "direct"})  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="negative"):
        commission(STORES, -1, attributes={"party_type": "direct"})
    with pytest.raises(MoneyError, match="integer number of fen"):
        commission(STORES, "100", attributes={"party_type": "direct"})  # type: ignore[arg-type]


# --- clawbacks ------------------------------------------------------------------------------------


def test_clawback_recomputes_with_the_tier_that_would_have_applied() -> None:
    sales, refund = parse_yuan("1200000"), parse_yuan("300000")
    graduated = clawback(AGENT_GRADUATED, sales, refund)
    assert graduated.earned.total_fen == parse_yuan("25000")
    assert graduated.recomputed.total_fen == parse_yuan("12000")  # 3 % of ¥400,000
    assert graduated.clawback_fen == parse_yuan("13000")
    retroactive = clawback(AGENT_RETROACTIVE, sales, refund)
    # the period falls back from 5 % of ¥1.2M to 3 % of ¥900k: far more than 5 % of the refund
    assert retroactive.clawback_fen == parse_yuan("60000") - parse_yuan("27000")


def test_successive_refunds_add_up_to_one_refund() -> None:
    sales = parse_yuan("1200000")
    first = clawback(AGENT_RETROACTIVE, sales, parse_yuan("100000"))
    second = clawback(
        AGENT_RETROACTIVE, sales, parse_yuan("200000"), previously_refunded_fen=parse_yuan("100000")
    )
    assert first.clawback_fen == parse_yuan("5000")
    assert second.clawback_fen == parse_yuan("28000")
    assert (
        first.clawback_fen + second.clawback_fen
        == clawback(AGENT_RETROACTIVE, sales, parse_yuan("300000")).clawback_fen
    )


def test_clawback_keeps_the_guarantee_and_splits_per_party() -> None:
    full = clawback(GUARANTEED, parse_yuan("600000"), parse_yuan("600000"))
    assert full.clawback_fen == parse_yuan("8000")
    assert full.recomputed.total_fen == parse_yuan("50000")
    split_back = clawback(LIVESTREAM, parse_yuan("12345.67"), parse_yuan("2345.67"))
    assert split_back.clawback_fen == 246913 - 200000
    assert sum(split_back.shares_clawback.values()) == split_back.clawback_fen
    assert split_back.shares_clawback == {"anchor": 23456, "agency": 14074, "platform": 9383}


def test_clawback_refuses_refunds_beyond_the_period() -> None:
    with pytest.raises(SettlementInputError, match="exceed the period's settled sales"):
        clawback(AGENT_GRADUATED, 100, 60, previously_refunded_fen=50)


PLANS: list[RatePlan] = [STORES, AGENT_GRADUATED, AGENT_RETROACTIVE, GUARANTEED, LIVESTREAM]


@pytest.mark.parametrize("plan", PLANS, ids=lambda plan: plan.type)
def test_results_serialise_for_statements(plan: RatePlan) -> None:
    result = commission(plan, parse_yuan("777777.77"), attributes={"party_type": "direct"})
    again = CommissionResult.model_validate_json(result.model_dump_json())
    assert again == result


DOCS_KPI_PLAN = load_rate_plan(
    {
        "type": "kpi_coefficient",
        "inner": {"type": "flat", "default_rate": "5"},
        "rules": [
            {
                "kpi": "completion_rate",
                "thresholds": [{"at": "0.8", "coefficient": "1"}, {"at": "1", "coefficient": "1.2"}],
                "otherwise": "0.8",
            },
            {"kpi": "renewal_rate", "thresholds": [{"at": "0.6", "coefficient": "1.1"}], "if_missing": "1"},
            {
                "kpi": "response_minutes",
                "better": "lower",
                "thresholds": [{"at": "5", "coefficient": "1.1"}, {"at": "30", "coefficient": "1"}],
                "otherwise": "0.9",
            },
        ],
        "min_coefficient": "0.7",
        "max_coefficient": "1.3",
    }
)


@pytest.mark.parametrize(
    ("kpis", "coefficient", "total_yuan"),
    [
        ({"completion_rate": "1.02", "renewal_rate": "0.65", "response_minutes": "4"}, "1.3", "13000"),
        ({"completion_rate": "0.85", "response_minutes": "12"}, "1", "10000"),
        ({"completion_rate": "0.5", "renewal_rate": "0.2", "response_minutes": "50"}, "0.72", "7200"),
    ],
)
def test_the_kpi_table_in_the_docs(kpis: dict[str, str], coefficient: str, total_yuan: str) -> None:
    result = commission(DOCS_KPI_PLAN, parse_yuan("200000"), kpis)
    assert result.lines[-1].coefficient == Decimal(coefficient)
    assert result.total_fen == parse_yuan(total_yuan)
