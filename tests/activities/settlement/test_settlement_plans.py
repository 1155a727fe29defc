"""Rate plans load from JSON, refuse what cannot be settled, and say how to fix it."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from activities.settlement.errors import RatePlanError
from activities.settlement.plans import (
    CompositionPlan,
    FlatPlan,
    KpiCoefficientPlan,
    SplitPlan,
    Tier,
    TieredPlan,
    dump_rate_plan,
    load_rate_plan,
    rate_plan_json_schema,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "settlement.md"

AGENT_TIERS = [{"from": 50_000_000, "rate": "3"}, {"from": 100_000_000, "rate": "5"}]


def problems(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(RatePlanError) as caught:
        load_rate_plan(data)
    return caught.value.problems


def test_loads_each_plan_type_from_json_text() -> None:
    plan = load_rate_plan(json.dumps({"type": "tiered", "mode": "retroactive", "tiers": AGENT_TIERS}))
    assert isinstance(plan, TieredPlan)
    assert plan.tiers[1] == Tier(from_fen=100_000_000, rate=Decimal(5))
    assert plan.effective_rounding == "half_up"

    flat = load_rate_plan(
        {"type": "flat", "rates": {"direct": "5", "franchise": "3"}, "rounding": "half_even"}
    )
    assert isinstance(flat, FlatPlan)
    assert flat.rate_for("franchise") == Decimal(3)
    assert flat.rate_for("agent") is None
    assert flat.effective_rounding == "half_even"


def test_dump_then_load_round_trips() -> None:
    document = {
        "type": "split",
        "rounding": "half_even",
        "of": {
            "type": "composition",
            "components": [
                {"type": "flat", "name": "base", "default_rate": "2.5"},
                {
                    "type": "kpi_coefficient",
                    "name": "bonus",
                    "inner": {"type": "tiered", "mode": "graduated", "tiers": AGENT_TIERS},
                    "rules": [{"kpi": "renewal_rate", "thresholds": [{"at": "0.9", "coefficient": "1.2"}]}],
                    "min_coefficient": "0",
                    "max_coefficient": "2",
                },
                {
                    "type": "guaranteed",
                    "guarantee_fen": 5_000_000,
                    "threshold_fen": 0,
                    "tiers": [{"from": 0, "rate": "1"}],
                },
            ],
        },
        "parties": [{"party": "anchor", "percent": "50"}, {"party": "agency", "percent": "50"}],
    }
    plan = load_rate_plan(document)
    dumped = dump_rate_plan(plan)
    assert load_rate_plan(dumped) == plan
    assert load_rate_plan(json.dumps(dumped)) == plan
    assert dumped["of"]["components"][1]["inner"]["tiers"][0] == {"from": 50_000_000, "rate": "3"}
    assert "name" not in dumped and "rounding" not in dumped["of"]
    assert json.loads(plan.model_dump_json(exclude_none=True)) == dumped


def test_tiers_must_ascend() -> None:
    found = problems({"type": "tiered", "mode": "graduated", "tiers": list(reversed(AGENT_TIERS))})
    assert found[0][0] == "tiers"
    assert "ascend by 'from'" in found[0][1] and "sort the tiers" in found[0][1]
    duplicate = [{"from": 0, "rate": "1"}, {"from": 0, "rate": "2"}]
    assert "ascend" in problems({"type": "tiered", "mode": "graduated", "tiers": duplicate})[0][1]
    assert "at least one tier" in problems({"type": "tiered", "mode": "graduated", "tiers": []})[0][1]


def test_split_must_sum_to_100() -> None:
    parties = [{"party": "anchor", "percent": "50"}, {"party": "agency", "percent": "30"}]
    [(path, message)] = problems({"type": "split", "parties": parties})
    assert path == "parties"
    assert "add up to 80, not 100" in message and "total exactly 100" in message
    twice = [{"party": "a", "percent": "50"}, {"party": "a", "percent": "50"}]
    assert "listed twice" in problems({"type": "split", "parties": twice})[0][1]
    zero = [{"party": "a", "percent": "100"}, {"party": "b", "percent": "0"}]
    assert problems({"type": "split", "parties": zero})[0][0] == "parties[1].percent"


def test_floats_are_refused_with_the_fix() -> None:
    found = problems('{"type": "flat", "default_rate": 5.5}')
    assert found == [
        ("default_rate", 'write this number as a decimal string, e.g. "5.5"; floats are not exact')
    ]
    found = problems(
        {
            "type": "guaranteed",
            "guarantee_fen": 50000.0,
            "threshold_fen": 0,
            "tiers": [{"from": 0, "rate": "1"}],
        }
    )
    assert found[0][0] == "guarantee_fen" and "whole fen" in found[0][1]
    assert (
        problems(
            {
                "type": "guaranteed",
                "guarantee_fen": "5000000",
                "threshold_fen": 0,
                "tiers": [{"from": 0, "rate": "1"}],
            }
        )[0][0]
        == "guarantee_fen"
    )


def test_rates_are_percentages() -> None:
    found = problems({"type": "tiered", "mode": "graduated", "tiers": [{"from": 0, "rate": "120"}]})
    assert found[0][0] == "tiers[0].rate"
    assert problems({"type": "flat", "rates": {"direct": "-1"}})[0][0] == "rates.direct"


def test_type_and_field_names_are_checked() -> None:
    assert 'add "type"' in problems({"default_rate": "5"})[0][1]
    assert "not a plan type" in problems({"type": "percentage"})[0][1]
    found = problems({"type": "tiered", "mode": "graduated", "tier": AGENT_TIERS})
    assert ("tier", "unknown field; remove it or check its spelling") in found
    assert ("tiers", "required field is missing; add it") in found
    assert "needs a rate" in problems({"type": "flat"})[0][1]


def test_nested_plans_name_their_path() -> None:
    document = {
        "type": "composition",
        "components": [
            {"type": "flat", "default_rate": "5"},
            {
                "type": "tiered",
                "mode": "graduated",
                "tiers": [{"from": 10, "rate": "1"}, {"from": 5, "rate": "2"}],
            },
        ],
    }
    [(path, message)] = problems(document)
    assert path == "components[1].tiers"
    assert "ascend" in message


def test_split_only_outermost_and_rounding_only_on_top() -> None:
    split = {"type": "split", "parties": [{"party": "a", "percent": "100"}]}
    [(path, message)] = problems({"type": "composition", "components": [split]})
    assert path == "components" and "components[0] is a split plan" in message and '"of"' in message
    nested_split = {"type": "split", "of": split, "parties": [{"party": "a", "percent": "100"}]}
    assert "split must be the outermost plan" in problems(nested_split)[0][1]
    rounded = {"type": "flat", "default_rate": "5", "rounding": "half_even"}
    [(path, message)] = problems({"type": "composition", "components": [rounded]})
    assert "remove it here and set it on the outermost plan" in message
    kpi = {
        "type": "kpi_coefficient",
        "inner": rounded,
        "rules": [{"kpi": "x", "thresholds": [{"at": "1", "coefficient": "1"}]}],
        "min_coefficient": "1",
        "max_coefficient": "1",
    }
    assert problems(kpi)[0][0] == "inner"


def test_kpi_rules_are_validated() -> None:
    base: dict[str, Any] = {
        "type": "kpi_coefficient",
        "inner": {"type": "flat", "default_rate": "5"},
        "min_coefficient": "1.5",
        "max_coefficient": "0.5",
        "rules": [{"kpi": "completion_rate", "thresholds": [{"at": "0.9", "coefficient": "1"}]}],
    }
    assert "swap them" in problems(base)[0][1]
    base.update(min_coefficient="0.5", max_coefficient="1.5")
    assert isinstance(load_rate_plan(base), KpiCoefficientPlan)
    unordered = [{"at": "0.9", "coefficient": "1"}, {"at": "0.8", "coefficient": "1.1"}]
    found = problems({**base, "rules": [{"kpi": "completion_rate", "thresholds": unordered}]})
    assert found[0][0] == "rules[0].thresholds" and "ascend by 'at'" in found[0][1]
    twice = [{"kpi": "x", "thresholds": [{"at": "1", "coefficient": "1"}]}] * 2
    assert "two rules" in problems({**base, "rules": twice})[0][1]


def test_kpi_rule_lookup() -> None:
    plan = load_rate_plan(
        {
            "type": "kpi_coefficient",
            "inner": {"type": "flat", "default_rate": "5"},
            "min_coefficient": "0",
            "max_coefficient": "2",
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
        }
    )
    assert isinstance(plan, KpiCoefficientPlan)
    completion, response = plan.rules
    assert completion.coefficient_for(Decimal("0.79"))[0] == Decimal("0.8")
    assert completion.coefficient_for(Decimal("0.8"))[0] == Decimal(1)
    assert completion.coefficient_for(Decimal("0.99"))[0] == Decimal(1)
    assert completion.coefficient_for(Decimal("1.3"))[0] == Decimal("1.2")
    assert response.coefficient_for(Decimal(3))[0] == Decimal("1.1")
    assert response.coefficient_for(Decimal(5))[0] == Decimal("1.1")
    assert response.coefficient_for(Decimal(6))[0] == Decimal(1)
    assert response.coefficient_for(Decimal(31))[0] == Decimal("0.9")
    assert plan.clamp(Decimal(3)) == Decimal(2)


def test_python_construction_works_too() -> None:
    plan = SplitPlan(
        of=CompositionPlan(components=[FlatPlan(default_rate=Decimal(20))]),
        parties=[{"party": "anchor", "percent": "60"}, {"party": "platform", "percent": "40"}],
    )
    assert plan.parties[0].percent == Decimal(60)


def test_json_schema_is_a_discriminated_union() -> None:
    schema = rate_plan_json_schema()
    assert set(schema["discriminator"]["mapping"]) == {
        "flat",
        "tiered",
        "guaranteed",
        "kpi_coefficient",
        "split",
        "composition",
    }
    assert "from" in schema["$defs"]["Tier"]["properties"]


def json_blocks(markdown: str) -> list[str]:
    return re.findall(r"```json\n(.*?)```", markdown, flags=re.DOTALL)


def test_every_json_example_in_the_docs_is_a_valid_plan() -> None:
    blocks = json_blocks(DOCS.read_text(encoding="utf-8"))
    assert len(blocks) >= 6
    types = set()
    for block in blocks:
        if "rate_plan" in block:  # a settlement plan wraps a rate plan
            from activities.settlement.settlement_plan import load_settlement_plan

            types.add(load_settlement_plan(block).rate_plan.type)
            continue
        plan = load_rate_plan(block)
        types.add(plan.type)
    assert types == {"flat", "tiered", "guaranteed", "kpi_coefficient", "split", "composition"}
