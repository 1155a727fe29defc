"""Custom fields of a ticket type (defined by ops) and their validation.

A field is ``{"key", "label", "type": text|number|choice|date, "required", "choices"}``. Values are
checked on create and on update: a problem names the field (``fields.<key>``) and says how to fix it.
Numbers are integers (money in fen) — never floats; dates are ``YYYY-MM-DD``.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.text import Msg, MsgError

FieldType = Literal["text", "number", "choice", "date"]


class FieldDef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$", examples=["amount_fen"])
    label: str = Field(default="", max_length=120)
    type: FieldType = "text"
    required: bool = False
    choices: list[str] = Field(default_factory=list, max_length=200)
    max_length: int = Field(default=2000, ge=1, le=20000)

    @model_validator(mode="after")
    def _choices(self) -> FieldDef:
        if self.type == "choice" and not self.choices:
            raise ValueError(Msg("choice field '%(key)s' needs its choices", key=self.key))
        return self


class FieldProblem(MsgError):
    def __init__(self, key: str, message: Msg, fix: Msg) -> None:
        super().__init__(message, fix, f"fields.{key}")


def _one(spec: FieldDef, value: Any) -> Any:
    if spec.type == "text":
        if not isinstance(value, str):
            raise FieldProblem(spec.key, Msg("'%(key)s' must be text", key=spec.key), Msg("send a string"))
        if len(value) > spec.max_length:
            raise FieldProblem(spec.key, Msg("'%(key)s' is longer than %(max_length)s characters", key=spec.key,
                                             max_length=spec.max_length), Msg("shorten it"))
        return value
    if spec.type == "number":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                return int(value)
            raise FieldProblem(spec.key, Msg("'%(key)s' must be a whole number", key=spec.key),
                               Msg("send an integer (money in fen, e.g. 520000 for ¥5,200.00)"))
        return value
    if spec.type == "choice":
        if value not in spec.choices:
            raise FieldProblem(spec.key, Msg("'%(value)s' is not a choice of '%(key)s'", value=value, key=spec.key),
                               Msg("use one of: %(value)s", value=', '.join(spec.choices)))
        return value
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise FieldProblem(spec.key, Msg("'%(key)s' must be a date", key=spec.key),
                           Msg("write it as YYYY-MM-DD, e.g. 2026-11-23")) from None


def validate_fields(specs: list[dict[str, Any]], values: dict[str, Any], partial: bool = False) -> dict[str, Any]:
    """Checked values (numbers and dates normalised). ``partial``: an update, missing fields are fine.
    Raises :class:`FieldProblem` for the first problem."""
    defs = [FieldDef.model_validate(s) for s in specs]
    known = {d.key: d for d in defs}
    for key in values:
        if key not in known:
            raise FieldProblem(key, Msg("'%(key)s' is not a field of this ticket type", key=key),
                               Msg("use one of: %(value)s",
                                   value=', '.join(known) or '(this type has no custom fields)'))
    out: dict[str, Any] = {}
    for spec in defs:
        value = values.get(spec.key)
        if value is None or value == "":
            if spec.required and not partial:
                raise FieldProblem(spec.key, Msg("'%(key)s' is required", key=spec.key),
                                   Msg("fill in '%(value)s'", value=spec.label or spec.key))
            if spec.key in values and spec.required:
                raise FieldProblem(spec.key, Msg("'%(key)s' is required", key=spec.key), Msg("it cannot be emptied"))
            continue
        out[spec.key] = _one(spec, value)
    return out
