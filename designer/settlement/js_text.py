"""The rate-plan editor's strings (``static/settlement/rate_plan.js``, drawn inside the ``settlement.collect``
property form): the script looks them up by these keys and fills ``%(name)s`` placeholders itself; the page hands
it the texts in the reader's language (``templates/editor/_fields.html``). A literal percent sign is written
``%%`` (the catalogue checks these as Python format strings); :func:`js_text` hands the script a plain ``%``."""

from __future__ import annotations

from designer.i18n import N_, gettext

JS_TEXT: dict[str, str] = {
    "rp.title": N_("Rate plan"),
    "rp.nested": N_("Inner plan"),
    "rp.type": N_("Plan type"),
    "rp.type.flat": N_("Flat percentage"),
    "rp.type.tiered": N_("Tiered"),
    "rp.type.guaranteed": N_("Guarantee + excess bonus"),
    "rp.type.split": N_("Split among parties"),
    "rp.type.composition": N_("Composition (plans added up)"),
    "rp.type.kpi_coefficient": N_("KPI coefficient"),
    "rp.type_help.flat": N_("Sales times a rate; the rate may depend on the party type, the channel or the party."),
    "rp.type_help.tiered": N_("The tier the period's sales reach decides the rate."),
    "rp.type_help.guaranteed": N_("The guarantee is paid whatever the sales; sales above the threshold earn a "
                                  "graduated bonus."),
    "rp.type_help.split": N_("Shares the sales (or what another plan pays) among parties, exact to the fen; the shares "
                             "total 100 %%."),
    "rp.type_help.composition": N_("Adds up what several plans pay, e.g. a flat commission plus a tiered bonus."),
    "rp.type_help.kpi_coefficient": N_("What the inner plan pays times a KPI coefficient, held within the bounds."),
    "rp.rates_by": N_("Rate by"),
    "rp.by.party_type": N_("party type"),
    "rp.by.channel": N_("channel"),
    "rp.by.party": N_("party"),
    "rp.value": N_("Value"),
    "rp.rate": N_("Rate"),
    "rp.add_rate": N_("Add a rate"),
    "rp.default_rate": N_("Rate otherwise"),
    "rp.mode": N_("Mode"),
    "rp.mode.graduated": N_("graduated (each band at its own rate)"),
    "rp.mode.retroactive": N_("retroactive (all sales at the tier reached)"),
    "rp.mode_help.graduated": N_("E.g. 3 %% from 0 and 5 %% from ¥500,000: ¥800,000 pays ¥500,000×3 %% + "
                                 "¥300,000×5 %%."),
    "rp.mode_help.retroactive": N_("E.g. 3 %% from ¥500,000 and 5 %% from ¥1,000,000: ¥1,200,000 all at 5 %%."),
    "rp.boundary": N_("Tier boundary"),
    "rp.boundary.default": N_("at least (default)"),
    "rp.boundary.at_least": N_("at least: exactly ¥1,000,000 reaches that tier"),
    "rp.boundary.above": N_("above: only more than ¥1,000,000 reaches it"),
    "rp.tiers": N_("Tiers"),
    "rp.tiers_excess": N_("Tiers on the excess (counted from the threshold)"),
    "rp.tier_from": N_("From (¥)"),
    "rp.tier_rate": N_("Rate (%%)"),
    "rp.add_tier": N_("Add a tier"),
    "rp.remove": N_("Remove"),
    "rp.guarantee": N_("Guarantee"),
    "rp.threshold": N_("Threshold"),
    "rp.guarantee_help": N_("E.g. a ¥50,000 guarantee, and a bonus on sales above ¥1,000,000."),
    "rp.parties": N_("Parties"),
    "rp.party": N_("Party"),
    "rp.percent": N_("Share (%%)"),
    "rp.total": N_("Total"),
    "rp.add_party": N_("Add a party"),
    "rp.split_help": N_("Say who each party is in “Split Parties” above (e.g. attribution.anchor, or a fixed party "
                        "id)."),
    "rp.split_of": N_("Split what another plan pays (else the sales)"),
    "rp.of": N_("the plan split"),
    "rp.component": N_("Plan"),
    "rp.add_component": N_("Add a plan"),
    "rp.inner": N_("Inner plan"),
    "rp.min_coefficient": N_("Lowest coefficient"),
    "rp.max_coefficient": N_("Highest coefficient"),
    "rp.kpi_rules": N_("KPI rules (JSON)"),
    "rp.name": N_("Name (shown on statements)"),
    "rp.rounding": N_("Rounding"),
    "rp.rounding.default": N_("half up (default)"),
    "rp.rounding.half_up": N_("half up"),
    "rp.rounding.half_even": N_("half even"),
    "rp.err.no_tiers": N_("add at least one tier"),
    "rp.err.amount": N_("tier %(n)s: the start is not an amount"),
    "rp.err.rate": N_("tier %(n)s: the rate must be a number from 0 to 100"),
    "rp.err.order": N_("tier %(n)s must start above the tier before it"),
    "rp.err.split": N_("the shares add up to %(total)s %%, not exactly 100 %%"),
    "rp.err.twice": N_("a party is listed twice"),
}


def js_text() -> dict[str, str]:
    """The editor's strings in the current language."""
    return {key: gettext(text).replace("%%", "%") for key, text in JS_TEXT.items()}
