"""The settlement plan: a rate plan plus who the parties are, how often, and in which timezone.

A settlement plan is the JSON document finance writes (``tideflow settle --plan PLAN.json``, the
``settlement.collect`` node's ``plan``). Its *version* is a hash of its canonical JSON: a period is
settled once per (``key``, version). See docs/settlement.md, "Settlement plans".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from activities.settlement.errors import RatePlanError
from activities.settlement.periods import Cycle
from activities.settlement.plans import (
    CompositionPlan,
    FlatPlan,
    KpiCoefficientPlan,
    KpiNumber,
    RatePlan,
    SplitPlan,
    dump_rate_plan,
)
from connectors.canonical import CHANNELS as CANONICAL_CHANNELS
from engine.text import Msg
from engine.zones import check_zone

PartyRef = str
"""``"shop"`` or ``"attribution.<role>"``: where an order's party is read from."""

PARTY_REF_PATTERN: Final = r"^(shop|attribution\.[A-Za-z0-9_]{1,40})$"
COUNTED_STATUSES: Final = ("paid", "shipped", "delivered", "completed", "refunded")
RATE_ATTRIBUTES: Final = ("party_type", "channel", "party")
SCHEMA: Final = "tideflow/settlement-plan@1"


def is_party_ref(value: str) -> bool:
    return value == "shop" or value.startswith("attribution.")


class SettlementPlan(BaseModel):
    """A rate plan and the facts a run needs around it."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    schema_: Literal["tideflow/settlement-plan@1"] = Field(default=SCHEMA, alias="schema")
    key: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$",
                     description="Stable id of the plan; a period is settled once per key and version.")
    name: str = Field(default="", max_length=200, description="What finance calls the plan (月度门店结算).")
    cycle: Cycle = Field(default="monthly", description="daily (T+1), weekly, semi_monthly, monthly, quarterly.")
    timezone: str = Field(default="Asia/Shanghai", description="Periods start at local midnight here.")
    party: PartyRef = Field(default="shop", pattern=PARTY_REF_PATTERN,
                            description='Who earns on an order: "shop" or "attribution.<role>" (e.g. '
                                        '"attribution.agent").')
    party_types: dict[str, str] = Field(default_factory=dict,
                                        description='Party directory: party id → type, e.g. {"S001": "direct"}.')
    default_party_type: str | None = Field(default=None, description="Type of a party not in party_types.")
    channels: list[str] | None = Field(default=None, description="Only orders of these channels (default: every "
                                       "channel, csv included): youzan, taobao, tmall, jd, douyin, shopify, api, csv.")
    statuses: list[str] = Field(default_factory=lambda: list(COUNTED_STATUSES),
                                description="Order statuses that count as sales.")
    split_parties: dict[str, str] = Field(
        default_factory=dict,
        description='For a split rate plan: split party → "attribution.<role>", "shop" or a fixed party id '
                    '(e.g. {"anchor": "attribution.anchor", "platform": "platform"}).')
    kpis: dict[str, dict[str, KpiNumber]] = Field(
        default_factory=dict, description='KPIs per party for kpi_coefficient plans: {"A01": {"completion_rate": '
                                          '"0.95"}}.')
    rate_plan: RatePlan = Field(description="The rate plan (docs/settlement.md).",
                                json_schema_extra={"format": "rate-plan"})

    @field_validator("statuses")
    @classmethod
    def _known_statuses(cls, statuses: list[str]) -> list[str]:
        from connectors.canonical import ORDER_STATUSES

        unknown = [status for status in statuses if status not in ORDER_STATUSES]
        if unknown:
            raise ValueError(Msg("order status '%(status)s' is unknown; use some of %(statuses)s",
                                 status=unknown[0], statuses=', '.join(ORDER_STATUSES)))
        if not statuses:
            raise ValueError(Msg("list at least one order status, e.g. %(example)s",
                                 example=list(COUNTED_STATUSES)))
        return statuses

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, channels: list[str] | None) -> list[str] | None:
        if channels is None:
            return None
        known = [*CANONICAL_CHANNELS, "csv"]
        unknown = [channel for channel in channels if channel not in known]
        if unknown:
            raise ValueError(Msg("channel '%(channel)s' is unknown; use some of %(channels)s (csv: orders "
                                 "loaded from a file), or leave channels out to count every channel",
                                 channel=unknown[0], channels=', '.join(known)))
        if not channels:
            raise ValueError(Msg("an empty channel list counts no order; leave channels out to count "
                                 "every channel"))
        return channels

    @model_validator(mode="after")
    def _fits(self) -> SettlementPlan:
        check_zone(self.timezone)
        for flat in flat_plans(self.rate_plan):
            if flat.rates_by not in RATE_ATTRIBUTES:
                raise ValueError(Msg("rate_plan: rates_by '%(rates_by)s' cannot be read from orders; use "
                                     "one of %(attributes)s",
                                     rates_by=flat.rates_by, attributes=', '.join(RATE_ATTRIBUTES)))
        plan = self.rate_plan
        if isinstance(plan, SplitPlan):
            named = {party.party for party in plan.parties}
            missing = sorted(named - set(self.split_parties))
            if missing:
                raise ValueError(Msg("split_parties: say who the split party '%(party)s' is, e.g. "
                                     '{"%(party)s": "attribution.%(party)s"} or a fixed party id',
                                     party=missing[0]))
            extra = sorted(set(self.split_parties) - named)
            if extra:
                raise ValueError(Msg("split_parties: '%(party)s' is not a party of the split; remove it",
                                     party=extra[0]))
        elif self.split_parties:
            raise ValueError(Msg("split_parties is only for a split rate plan; remove it"))
        return self

    @property
    def version(self) -> str:
        return plan_version(self)

    @property
    def by_channel(self) -> bool:
        """True when a rate depends on the channel: then each channel's sales are computed apart."""
        return any(flat.rates_by == "channel" for flat in flat_plans(self.rate_plan))

    def party_type(self, party: str) -> str:
        return self.party_types.get(party, self.default_party_type or "")


def flat_plans(plan: RatePlan) -> Iterator[FlatPlan]:
    """Every flat plan inside ``plan``."""
    if isinstance(plan, FlatPlan):
        yield plan
    elif isinstance(plan, CompositionPlan):
        for component in plan.components:
            yield from flat_plans(component)
    elif isinstance(plan, KpiCoefficientPlan):
        yield from flat_plans(plan.inner)
    elif isinstance(plan, SplitPlan) and plan.of is not None:
        yield from flat_plans(plan.of)


_ADAPTER: Final[TypeAdapter[SettlementPlan]] = TypeAdapter(SettlementPlan)


def load_settlement_plan(data: str | bytes | Mapping[str, Any]) -> SettlementPlan:
    """A settlement plan from JSON text or an object; ``RatePlanError`` lists every problem with its fix."""
    from activities.settlement.plans import _problem

    try:
        if isinstance(data, str | bytes):
            return _ADAPTER.validate_json(data)
        return _ADAPTER.validate_python(dict(data))
    except ValidationError as error:
        raise RatePlanError([_problem(detail) for detail in error.errors()]) from error


def dump_settlement_plan(plan: SettlementPlan) -> dict[str, Any]:
    """The plan as JSON-ready data (decimal strings); ``load_settlement_plan`` reads it back unchanged."""
    data: dict[str, Any] = plan.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["rate_plan"] = dump_rate_plan(plan.rate_plan)
    return data


def plan_version(plan: SettlementPlan) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON: any change to the plan is a new version."""
    canonical = json.dumps(dump_settlement_plan(plan), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def settlement_plan_json_schema() -> dict[str, Any]:
    return _ADAPTER.json_schema(by_alias=True)
