"""A statement line's description keeps its template and values, so a page can show it in Chinese years later,
while ``description`` stays the English it was."""

from __future__ import annotations

import json
from decimal import Decimal

from activities.settlement import line_text
from activities.settlement.compute import commission
from activities.settlement.plans import FlatPlan, KpiCoefficientPlan
from engine.text import Msg


def test_a_description_round_trips_through_json_with_its_nested_parts() -> None:
    what = Msg("the excess over %(threshold)s", threshold="¥1.00")
    text = Msg("%(what)s of %(amount)s does not pass the first tier (%(first)s): nothing earned", what=what,
               amount="¥0.50", first="¥2.00")
    kept = json.loads(json.dumps(line_text.stored(text)))  # a JSON column and back
    back = line_text.restored(kept, str(text))
    assert isinstance(back, Msg) and back == text and back.values["what"].template == what.template
    assert line_text.stored("plain") is None


def test_what_does_not_match_the_english_kept_falls_back_to_it() -> None:
    kept = line_text.stored(Msg("guaranteed %(amount)s", amount="¥1.00"))
    assert not isinstance(line_text.restored(kept, "guaranteed ¥2.00"), Msg)  # edited since: the English wins
    assert line_text.restored('tideflow-msg:{"t":"%(missing)s","v":{}}', "old line") == "old line"
    assert line_text.restored({"t": "guaranteed %(amount)s", "v": {"amount": "¥1.00"}}, "guaranteed ¥1.00") \
        == "guaranteed ¥1.00" and not isinstance(line_text.restored({}, "x"), Msg)  # not the stored form
    assert line_text.restored(None, "written before templates were kept") == "written before templates were kept"
    assert line_text.described({"description": "x", "refs": {"text": kept}}) == "x"


def test_computed_lines_carry_their_template() -> None:
    flat = FlatPlan.model_validate({"type": "flat", "rates_by": "party_type", "rates": {"direct": "5"}})
    line = commission(flat, 12_345_678, attributes={"party_type": "direct"}).lines[0]
    assert line.description == "5% of sales ¥123,456.78 (party_type direct)"
    back = line_text.restored(line.text, line.description)
    assert isinstance(back, Msg) and back.template == "%(rate)s of sales %(amount)s (%(chosen)s)"
    kpi = KpiCoefficientPlan.model_validate({
        "type": "kpi_coefficient", "inner": flat.model_dump(mode="json"), "min_coefficient": "0.5",
        "max_coefficient": "1.5", "rules": [{"kpi": "nps", "thresholds": [{"at": "50", "coefficient": "1.2"}],
                                             "otherwise": "0.8"}]})
    adjustment = commission(kpi, 1_000_000, kpis={"nps": Decimal("10")}, attributes={"party_type": "direct"}).lines[-1]
    back = line_text.restored(adjustment.text, adjustment.description)
    assert isinstance(back, Msg) and "is below every threshold" in adjustment.description
