"""Settlement maths: rate plans, commissions, splits and clawbacks — pure functions, exact to the fen.

Money is integer fen (分) or ``decimal.Decimal``, never float. The settlement activities and workflow are
thin shells around these functions; see docs/settlement.md for the rate plan format.
"""

from activities.settlement.compute import (
    ClawbackResult,
    CommissionResult,
    KpiFactor,
    KpiValue,
    Share,
    StatementLine,
    clawback,
    commission,
    largest_remainder,
    split,
)
from activities.settlement.errors import MoneyError, RatePlanError, SettlementError, SettlementInputError
from activities.settlement.money import Rounding, format_yuan, parse_yuan, round_fen
from activities.settlement.plans import (
    CompositionPlan,
    FlatPlan,
    GuaranteedPlan,
    KpiCoefficientPlan,
    KpiRule,
    KpiThreshold,
    RatePlan,
    SplitParty,
    SplitPlan,
    Tier,
    TieredPlan,
    dump_rate_plan,
    load_rate_plan,
    rate_plan_json_schema,
)

__all__ = [
    "ClawbackResult",
    "CommissionResult",
    "CompositionPlan",
    "FlatPlan",
    "GuaranteedPlan",
    "KpiCoefficientPlan",
    "KpiFactor",
    "KpiRule",
    "KpiThreshold",
    "KpiValue",
    "MoneyError",
    "RatePlan",
    "RatePlanError",
    "Rounding",
    "SettlementError",
    "SettlementInputError",
    "Share",
    "SplitParty",
    "SplitPlan",
    "StatementLine",
    "Tier",
    "TieredPlan",
    "clawback",
    "commission",
    "dump_rate_plan",
    "format_yuan",
    "largest_remainder",
    "load_rate_plan",
    "parse_yuan",
    "rate_plan_json_schema",
    "round_fen",
    "split",
]
