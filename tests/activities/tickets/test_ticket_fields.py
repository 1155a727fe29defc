"""Custom fields of ticket types: every type, required, partial updates, the field named."""

from __future__ import annotations

import pytest

from activities.tickets.fields import FieldProblem, validate_fields

SPECS = [{"key": "reason", "type": "text", "required": True}, {"key": "amount_fen", "type": "number"},
         {"key": "kind", "type": "choice", "choices": ["退货", "换货"]}, {"key": "due", "type": "date"}]


def test_values_are_checked_and_normalised() -> None:
    assert validate_fields(SPECS, {"reason": "坏了", "amount_fen": "520000", "kind": "换货", "due": "2026-12-01"}) == {
        "reason": "坏了", "amount_fen": 520000, "kind": "换货", "due": "2026-12-01"}


@pytest.mark.parametrize(("values", "field"), [
    ({}, "fields.reason"), ({"reason": "x", "amount_fen": 12.5}, "fields.amount_fen"),
    ({"reason": "x", "kind": "维修"}, "fields.kind"), ({"reason": "x", "due": "12/01"}, "fields.due"),
    ({"reason": "x", "colour": "red"}, "fields.colour"), ({"reason": 3}, "fields.reason")])
def test_problems_name_the_field(values: dict[str, object], field: str) -> None:
    with pytest.raises(FieldProblem) as problem:
        validate_fields(SPECS, values)
    assert problem.value.field == field and problem.value.fix


def test_partial_updates_may_omit_but_not_empty_required_fields() -> None:
    assert validate_fields(SPECS, {"kind": "退货"}, partial=True) == {"kind": "退货"}
    with pytest.raises(FieldProblem):
        validate_fields(SPECS, {"reason": ""}, partial=True)


def test_a_choice_field_needs_choices() -> None:
    with pytest.raises(ValueError, match="choices"):
        validate_fields([{"key": "k", "type": "choice"}], {})
