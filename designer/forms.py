"""JSON Schema ⇄ HTML form: the one place a config model becomes form controls and a submitted form
becomes config data again.

:func:`build_form` turns an object schema (a node type's ``Config.model_json_schema()``, the flow's
settings) and its current values into :class:`FormField` controls — text, number, checkbox, select,
tags, expression / template / duration inputs, JSON, rows of objects, key/value pairs, groups —
which ``templates/editor/_fields.html`` draws. :func:`parse_form` reads the posted form back into a
config typed by the same schema, leaving untouched defaults out, and reports per-field errors from
the config model and from compiling expressions and templates. Pure: no database, no request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from designer.i18n import NC_, error_text, gettext, pgettext, translate
from engine.durations import DurationError, from_amount, parse_duration, to_amount
from engine.text import Msg
from engine.validate import check_expression, pydantic_message

#: the label of a config field, by its key (one label per key across all node types and the flow settings)
FIELD_LABELS: dict[str, str] = {
    "action": NC_("config field", "Points action"), "add": NC_("config field", "Add tags"),
    "aggregation": NC_("config field", "Aggregation"), "allow_gaps": NC_("config field", "Allow gaps"),
    "allowed_values": NC_("config field", "Allowed values"), "approver": NC_("config field", "Approver"),
    "at": NC_("config field", "At"), "attachments": NC_("config field", "Attachments"),
    "attribute": NC_("config field", "Date attribute"), "audience": NC_("config field", "Audience"),
    "batch_size": NC_("config field", "Batch size"), "better": NC_("config field", "Better when"),
    "birthday_gifts": NC_("config field", "Birthday gifts"), "body": NC_("config field", "Body"),
    "boundary": NC_("config field", "Tier boundary"), "branches": NC_("config field", "Branches"),
    "calendar": NC_("config field", "Business calendar"), "campaign": NC_("config field", "Coupon campaign"),
    "cases": NC_("config field", "Cases"), "category": NC_("config field", "Message category"),
    "channel": NC_("config field", "Channel"), "channels": NC_("config field", "Channels"),
    "connector_id": NC_("config field", "Connector"), "at_limit": NC_("config field", "At the receiving limit"),
    "deadline_hours": NC_("config field", "Staff confirm within (hours)"),
    "coefficient": NC_("config field", "Coefficient"), "components": NC_("config field", "Components"),
    "config": NC_("config field", "Node settings"), "cron": NC_("config field", "Cron expression"),
    "cycle": NC_("config field", "Settlement cycle"), "date_attribute": NC_("config field", "Date attribute"),
    "default": NC_("config field", "Default output"), "default_group": NC_("config field", "Default queue"),
    "default_party_type": NC_("config field", "Default party type"),
    "default_port": NC_("config field", "Port when no rule matches"),
    "default_rate": NC_("config field", "Default rate (%)"), "description": NC_("config field", "Description"),
    "duration": NC_("config field", "Duration"), "end": NC_("config field", "End"),
    "entry": NC_("config field", "Re-entry"), "escalation": NC_("config field", "On breach"),
    "event": NC_("config field", "Event type"), "every": NC_("config field", "Every"),
    "exit_on": NC_("config field", "Exit on events"), "expire": NC_("config field", "Expire lapsed points"),
    "expr": NC_("config field", "Condition"), "expression": NC_("config field", "Expression"),
    "fallback_channel": NC_("config field", "Fallback channel"), "fields": NC_("config field", "Custom fields"),
    "filter": NC_("config field", "Filter"), "first_response": NC_("config field", "First response"),
    "flow": NC_("config field", "Target flow"), "frequency_capped": NC_("config field", "Frequency capped"),
    "from": NC_("config field", "From (fen)"), "goal": NC_("config field", "Goal"),
    "group": NC_("config field", "Queue"), "group_from": NC_("config field", "Queue from expression"),
    "guarantee_fen": NC_("config field", "Guarantee (fen)"), "headers": NC_("config field", "Headers"),
    "hit_policy": NC_("config field", "Hit policy"), "id": NC_("config field", "ID"),
    "if_missing": NC_("config field", "If the KPI is missing"),
    "increment": NC_("config field", "Increment attributes"), "inner": NC_("config field", "Inner plan"),
    "input_entries": NC_("config field", "Input cells"), "input_variable": NC_("config field", "Input variable"),
    "inputs": NC_("config field", "Inputs"), "instructions": NC_("config field", "Instructions"),
    "key": NC_("config field", "Key"), "kpi": NC_("config field", "KPI"), "kpis": NC_("config field", "KPIs"),
    "label": NC_("config field", "Label"), "max_coefficient": NC_("config field", "Maximum coefficient"),
    "method": NC_("config field", "Method"), "min_coefficient": NC_("config field", "Minimum coefficient"),
    "mode": NC_("config field", "Tier mode"), "name": NC_("config field", "Name"),
    "needs": NC_("config field", "Skills needed"), "next_response": NC_("config field", "Next response"),
    "note": NC_("config field", "Internal note"), "notify_expiring": NC_("config field", "Notify expiring points"),
    "of": NC_("config field", "Split the total of"), "offset_days": NC_("config field", "Offset (days)"),
    "on": NC_("config field", "Start on"), "on_timeout": NC_("config field", "On timeout"),
    "otherwise": NC_("config field", "Otherwise"), "outcomes": NC_("config field", "Outcomes"),
    "output_entries": NC_("config field", "Output cells"), "outputs": NC_("config field", "Outputs"),
    "parties": NC_("config field", "Parties"), "party": NC_("config field", "Party"),
    "party_types": NC_("config field", "Party types"), "percent": NC_("config field", "Percentage"),
    "plan": NC_("config field", "Settlement plan"), "points": NC_("config field", "Points"),
    "poll": NC_("config field", "Check every"), "port": NC_("config field", "Port name"),
    "port_output": NC_("config field", "Output that picks the port"), "priority": NC_("config field", "Priority"),
    "quiet_hours": NC_("config field", "Quiet hours"), "rate": NC_("config field", "Rate (%)"),
    "rate_plan": NC_("config field", "Rate plan"), "rates": NC_("config field", "Rates (%)"),
    "rates_by": NC_("config field", "Rate by"), "reason": NC_("config field", "Reason"),
    "reentry": NC_("config field", "Re-entry"), "reentry_after": NC_("config field", "After"),
    "remove": NC_("config field", "Remove tags"), "reply": NC_("config field", "Reply to the customer"),
    "resolution": NC_("config field", "Resolution"), "response_map": NC_("config field", "Save from the response"),
    "result_variable": NC_("config field", "Result variable"),
    "retry_on_status": NC_("config field", "Retry on statuses"), "review_tiers": NC_("config field", "Review tiers"),
    "reward": NC_("config field", "Reward"), "rounding": NC_("config field", "Rounding"),
    "rules": NC_("config field", "Rules"), "schedule": NC_("config field", "Schedule"),
    "schema": NC_("config field", "Schema"),
    "secret_env": NC_("config field", "Signing secret (environment variable)"),
    "set": NC_("config field", "Set attributes"), "settings": NC_("config field", "Settings"),
    "split_parties": NC_("config field", "Split parties"), "start": NC_("config field", "Start"),
    "status": NC_("config field", "Status"), "statuses": NC_("config field", "Order statuses"),
    "steps": NC_("config field", "Review levels"), "subject": NC_("config field", "Subject"),
    "table": NC_("config field", "Decision table"), "tag_in_wecom": NC_("config field", "Tag in WeCom"),
    "tags_any": NC_("config field", "Any of these tags"), "targets": NC_("config field", "Targets"),
    "tasks": NC_("config field", "Sub-tasks"), "template": NC_("config field", "Message template"),
    "text": NC_("config field", "Message text"),
    "threshold_fen": NC_("config field", "Threshold (fen)"), "thresholds": NC_("config field", "Thresholds"),
    "ticket_type": NC_("config field", "Ticket type"), "tiers": NC_("config field", "Tiers"),
    "time": NC_("config field", "Local time"), "timeout": NC_("config field", "Wait at most"),
    "timeout_seconds": NC_("config field", "Timeout (seconds)"), "timezone": NC_("config field", "Timezone"),
    "type": NC_("config field", "Type"), "type_ref": NC_("config field", "Type"),
    "unset": NC_("config field", "Remove attributes"), "url": NC_("config field", "URL"),
    "value": NC_("config field", "Value"), "variables": NC_("config field", "Variables"),
    "wait": NC_("config field", "Wait for all"), "warn_before": NC_("config field", "Warn before"),
    "webhook_url": NC_("config field", "Webhook URL"), "weekdays": NC_("config field", "Weekdays (1–7)"),
    "weight": NC_("config field", "Weight"), "when": NC_("config field", "When"),
    "within": NC_("config field", "Within"), "yearly": NC_("config field", "Every year"),
}


# -- JSON Schema → form fields ------------------------------------------------------------------------------
@dataclass
class FormField:
    """One control of a generated form. ``name`` is the dotted path the browser posts back."""

    name: str
    key: str
    widget: str  # text number checkbox select tags numbers expression template duration json rows pairs group
    label: str
    help: str = ""
    value: Any = ""
    required: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    datalist: str | None = None
    children: list[FormField] = field(default_factory=list)  # group
    rows: list[list[FormField]] = field(default_factory=list)  # rows / pairs: one list per item
    blank: list[FormField] = field(default_factory=list)  # rows / pairs: a new row, index "__i__"


@dataclass
class Pickers:
    """Choices for fields that name something in the database (coupon campaigns, flows)."""

    campaigns: list[tuple[str, str]] = field(default_factory=list)
    flows: list[tuple[str, str]] = field(default_factory=list)


_MISSING: Any = object()
_SCALARS = ("string", "integer", "number", "boolean")
_NULL = {"type": "null"}


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` (local ``#/$defs/...`` only), keeping the referring schema's own keywords."""
    out = dict(schema)
    seen = 0
    while "$ref" in out and seen < 20:
        ref = str(out.pop("$ref"))
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        out = {**target, **out}
        seen += 1
    return _keyed(out)


def _keyed(s: dict[str, Any]) -> dict[str, Any]:
    """An object whose keys come from an enum (``dict[Literal["P1", "P2"], Targets]``) is edited like an
    object with one optional property per key."""
    names = s.get("propertyNames", {}).get("enum") if isinstance(s.get("propertyNames"), Mapping) else None
    value = s.get("additionalProperties")
    if s.get("type") == "object" and not s.get("properties") and isinstance(names, list) and isinstance(value, Mapping):
        rest = {k: v for k, v in s.items() if k not in ("additionalProperties", "propertyNames")}
        return {**rest, "properties": {str(n): dict(value, title=str(n)) for n in names}}
    return s


def _unwrap(schema: Mapping[str, Any], root: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """``anyOf: [X, null]`` → (X with the outer title/description/default, True); else (schema, False)."""
    s = _resolve(schema, root)
    options = s.get("anyOf")
    if isinstance(options, list) and _NULL in options:
        rest = [o for o in options if o != _NULL]
        if len(rest) == 1:
            inner = _resolve(rest[0], root)
            outer = {k: v for k, v in s.items() if k != "anyOf"}
            return {**inner, **outer}, True
        return {**{k: v for k, v in s.items() if k != "anyOf"}, "anyOf": rest}, True
    return s, False


def _choices(s: Mapping[str, Any]) -> list[Any] | None:
    """The allowed values of an enum (``Literal[...]``; a single literal is a ``const``)."""
    if isinstance(s.get("enum"), list):
        return list(s["enum"])
    return [s["const"]] if "const" in s else None


def widget_of(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    """Which control edits a value of this (resolved, unwrapped) schema."""
    s = _resolve(schema, root)
    if _choices(s) is not None:
        return "select"
    fmt = s.get("format")
    kind = s.get("type")
    if fmt == "decision-table":  # logic.decision_table: a grid editor over the table's JSON
        return "decision_table"
    if fmt == "rate-plan":  # settlement plans: a form over the rate plan's JSON (static/settlement/rate_plan.js)
        return "rate_plan"
    if kind == "string" and fmt in ("expression", "template", "duration"):
        return str(fmt)
    if kind == "string":
        return "text"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "checkbox"
    if kind == "array":
        items, _ = _unwrap(s.get("items", {}), root)
        if items.get("type") == "string" and _choices(items) is None:
            return "tags"
        if items.get("type") in ("integer", "number"):
            return "numbers"
        if items.get("type") == "object" and items.get("properties"):
            return "rows"
        return "json"
    if kind == "object":
        extra = s.get("additionalProperties")
        if s.get("properties"):
            return "group"
        if isinstance(extra, Mapping):
            value, optional = _unwrap(extra, root)
            if not optional and value.get("type") in _SCALARS and "anyOf" not in value:
                return "pairs"
        return "json"
    return "json"


def field_label(key: str, schema: Mapping[str, Any]) -> str:
    """A field's label in the reader's language: from :data:`FIELD_LABELS`, else the schema's title."""
    found = FIELD_LABELS.get(key)
    return pgettext("config field", found) if found else gettext(str(schema.get("title") or key))


def field_help(schema: Mapping[str, Any]) -> str:
    """A field's help: its schema description (the config model's ``Field(description=...)``), translated."""
    return gettext(str(schema.get("description") or ""))


def _text_of(value: Any, widget: str) -> Any:
    if value is None or value is _MISSING:
        return ""
    if widget == "checkbox":
        return bool(value)
    if widget in ("tags", "numbers"):
        return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if widget in ("json", "decision_table", "rate_plan"):
        return json.dumps(value, ensure_ascii=False, indent=1)
    return str(value)


def _amount(text: Any) -> tuple[str, str]:
    """The duration widget's (number, unit) for a stored ISO 8601 duration; a text that is not one is
    shown as it is (with the unit "days"), so the user sees and fixes it."""
    if not text:
        return "", "days"
    try:
        return to_amount(str(text))
    except DurationError:
        return str(text), "days"


def _picker(key: str, schema: Mapping[str, Any], pickers: Pickers) -> tuple[str | None, list[tuple[str, str]]]:
    """(datalist id, select options) for fields that name database things; (None, []) for others."""
    if schema.get("type") != "string" or _choices(schema) is not None:
        return None, []
    if key == "campaign" and pickers.campaigns:
        return None, pickers.campaigns
    if key == "flow":
        return "tf-flows", []
    if key == "event" or key.endswith("_event"):
        return "tf-event-types", []
    return None, []


def _field(key: str, name: str, schema: Mapping[str, Any], root: Mapping[str, Any], value: Any,
           required: bool, pickers: Pickers) -> FormField:
    s, optional = _unwrap(schema, root)
    widget = widget_of(s, root)
    shown = value if value is not _MISSING and value is not None else s.get("default", _MISSING)
    f = FormField(name=name, key=key, widget=widget, label=field_label(key, s), help=field_help(s),
                  required=required and not optional, value=_text_of(shown, widget))
    examples = s.get("examples")
    if isinstance(examples, list) and examples and not isinstance(examples[0], dict | list):
        f.attrs["placeholder"] = str(examples[0])
    for source, target in (("minLength", "minlength"), ("maxLength", "maxlength"), ("minimum", "min"),
                           ("maximum", "max"), ("pattern", "pattern")):
        if source in s:
            f.attrs[target] = s[source]
    if widget == "number":
        f.attrs["step"] = "1" if s.get("type") == "integer" else "any"
    if widget == "duration":
        f.attrs["amount"], f.attrs["unit"] = _amount(f.value)
    if widget == "select":
        f.options = [(str(v), str(v)) for v in _choices(s) or []]
        if optional or (not f.required and "default" not in s):
            f.options.insert(0, ("", "—"))
    elif widget == "text":
        f.datalist, options = _picker(key, s, pickers)
        if options:
            f.widget = "select"
            f.options = [("", "—"), *options]
            if f.value and f.value not in {o[0] for o in options}:
                f.options.append((str(f.value), str(f.value)))
    elif widget == "group":
        current = value if isinstance(value, Mapping) else {}
        needed = set(s.get("required", []))
        f.children = [_field(k, f"{name}.{k}", p, root, current.get(k, _MISSING), k in needed, pickers)
                      for k, p in s["properties"].items()]
    elif widget == "rows":
        items, _ = _unwrap(s["items"], root)
        needed = set(items.get("required", []))
        current_rows = value if isinstance(value, list) else []
        for i, row in enumerate(current_rows):
            row_map = row if isinstance(row, Mapping) else {}
            f.rows.append([_field(k, f"{name}.{i}.{k}", p, root, row_map.get(k, _MISSING), k in needed, pickers)
                           for k, p in items["properties"].items()])
        f.blank = [_field(k, f"{name}.__i__.{k}", p, root, _MISSING, k in needed, pickers)
                   for k, p in items["properties"].items()]
    elif widget == "pairs":
        value_schema, _ = _unwrap(s["additionalProperties"], root)
        current_map = value if isinstance(value, Mapping) else {}
        for i, (k, v) in enumerate(current_map.items()):
            f.rows.append(_pair(f"{name}.{i}", k, value_schema, root, v, pickers))
        f.blank = _pair(f"{name}.__i__", "", value_schema, root, _MISSING, pickers)
    return f


def _pair(prefix: str, key: str, value_schema: Mapping[str, Any], root: Mapping[str, Any], value: Any,
          pickers: Pickers) -> list[FormField]:
    key_field = FormField(name=f"{prefix}.key", key="key", widget="text", label=gettext("Key"), value=key)
    value_field = _field("value", f"{prefix}.value", value_schema, root, value, False, pickers)
    value_field.label = gettext("Value")
    return [key_field, value_field]


def build_form(schema: Mapping[str, Any], config: Mapping[str, Any], pickers: Pickers | None = None,
               prefix: str = "") -> list[FormField]:
    """The controls for an object schema (a node type's config), filled with ``config``."""
    root = schema
    s = _resolve(schema, root)
    needed = set(s.get("required", []))
    return [_field(k, f"{prefix}{k}", p, root, config.get(k, _MISSING), k in needed, pickers or Pickers())
            for k, p in s.get("properties", {}).items()]


# -- form → config ------------------------------------------------------------------------------------------
@dataclass
class Parsed:
    """What a submitted form means: the config, per-field errors, and list index → form index names."""

    config: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def form_name(self, path: str) -> str:
        """The form control name for a config path (rows may have been renumbered)."""
        parts = path.split(".")
        for cut in range(len(parts), 0, -1):
            head = ".".join(parts[:cut])
            if head in self.names:
                return ".".join([self.names[head], *parts[cut:]])
        return path


_SPLIT = re.compile(r"[,，、\n]+")


def split_list(text: str) -> list[str]:
    """``a, b，c、d`` (commas of both widths, 、 or new lines) → ``["a", "b", "c", "d"]``."""
    return [p.strip() for p in _SPLIT.split(text) if p.strip()]


def row_indices(prefix: str, keys: Iterable[str]) -> list[str]:
    """The row indices posted under ``prefix`` (``cases.0.expr``, ``cases.3.port`` → ``["0", "3"]``), in
    form order; the blank template row ``__i__`` is not one."""
    found: list[str] = []
    start = prefix + "."
    for key in keys:
        if key.startswith(start):
            index = key[len(start):].split(".", 1)[0]
            if index not in found and index != "__i__":
                found.append(index)
    return found


def _number(text: str, integer: bool) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text  # the model rejects it with a message naming the field
    if integer or (number.is_integer() and "." not in text and "e" not in text.lower()):
        return int(number) if number.is_integer() else text
    return number


class _Reader:
    def __init__(self, form: Mapping[str, Any], keys: list[str], root: Mapping[str, Any], out: Parsed) -> None:
        self.form, self.keys, self.root, self.out = form, keys, root, out

    def text(self, name: str) -> str:
        value = self.form.get(name)
        return value if isinstance(value, str) else ""

    def value(self, name: str, schema: Mapping[str, Any], prev: Any) -> Any:
        s, optional = _unwrap(schema, self.root)
        widget = widget_of(s, self.root)
        raw = self.text(name)
        if widget == "checkbox":
            return name in self.form
        if widget == "duration":
            return self.duration(name, raw, prev)
        if widget in ("text", "expression"):
            return raw.strip() or _MISSING
        if widget == "template":
            return raw if raw.strip() else _MISSING
        if widget == "number":
            return _number(raw.strip(), s.get("type") == "integer") if raw.strip() else _MISSING
        if widget == "select":
            if not raw:
                return _MISSING
            return next((v for v in _choices(s) or [] if str(v) == raw), raw)
        if widget in ("tags", "numbers"):
            items = split_list(raw)
            if widget == "numbers":
                items_schema, _ = _unwrap(s.get("items", {}), self.root)
                return [_number(p, items_schema.get("type") == "integer") for p in items]
            return items
        if widget in ("json", "decision_table", "rate_plan"):
            if not raw.strip():
                return _MISSING
            try:
                return json.loads(raw)
            except json.JSONDecodeError as exc:
                self.out.errors[name] = translate(Msg("not valid JSON: %(error)s (line %(line)s, column %(column)s)",
                                                      error=exc.msg, line=exc.lineno, column=exc.colno))
                return prev if prev is not None else _MISSING
        if widget == "group":
            return self.group(name, s, prev if isinstance(prev, Mapping) else {}, optional)
        if widget == "rows":
            item_schema, _ = _unwrap(s["items"], self.root)
            prev_rows = prev if isinstance(prev, list) else []
            rows: list[Any] = []
            for index in row_indices(name, self.keys):
                old = prev_rows[int(index)] if index.isdigit() and int(index) < len(prev_rows) else {}
                row = self.object(f"{name}.{index}", item_schema, old if isinstance(old, Mapping) else {})
                if row:
                    self.out.names[f"{name}.{len(rows)}"] = f"{name}.{index}"
                    rows.append(row)
            return rows
        if widget == "pairs":
            value_schema = s["additionalProperties"]
            pairs: dict[str, Any] = {}
            for index in row_indices(name, self.keys):
                key = self.text(f"{name}.{index}.key").strip()
                value = self.value(f"{name}.{index}.value", value_schema, None)
                if key and value is not _MISSING:
                    pairs[key] = value
                    self.out.names[f"{name}.{key}"] = f"{name}.{index}.value"
            return pairs
        return raw or _MISSING

    def duration(self, name: str, raw: str, prev: Any) -> Any:
        """The widget posts ``<name>.amount`` and ``<name>.unit``; an API client may post ISO text as
        ``<name>``. An unchanged amount keeps the stored text (``P1W`` stays ``P1W``)."""
        if f"{name}.amount" not in self.form:
            return raw.strip() or _MISSING
        amount = self.text(f"{name}.amount").strip()
        if not amount:
            return _MISSING
        try:
            text = from_amount(amount, self.text(f"{name}.unit") or "days")
        except DurationError as exc:
            self.out.errors[name] = error_text(exc)
            return prev if isinstance(prev, str) else _MISSING
        if isinstance(prev, str):
            try:
                if parse_duration(prev) == parse_duration(text):
                    return prev
            except DurationError:
                pass
        return text

    def group(self, name: str, s: Mapping[str, Any], prev: Mapping[str, Any], optional: bool) -> Any:
        found = self.object(name, s, prev)
        if optional and not found:
            return _MISSING
        return found

    def object(self, prefix: str, schema: Mapping[str, Any], prev: Mapping[str, Any]) -> dict[str, Any]:
        s = _resolve(schema, self.root)
        needed = set(s.get("required", []))
        out: dict[str, Any] = {}
        for key, prop in s.get("properties", {}).items():
            name = f"{prefix}.{key}" if prefix else key
            value = self.value(name, prop, prev.get(key))
            if value is _MISSING:
                continue
            p, _ = _unwrap(prop, self.root)
            if key not in prev and key not in needed:
                if "default" in p and value == p["default"]:
                    continue
                if value in ([], {}) or (value is False and "default" not in p):
                    continue
            out[key] = value
            fmt = p.get("format")
            if isinstance(value, str) and fmt in ("expression", "template") and (err := check_expression(value, fmt)):
                self.out.errors[name] = translate(Msg("template %(error)s", error=err) if fmt == "template"
                                                  else Msg("expression %(error)s", error=err))
        return out


def parse_form(schema: Mapping[str, Any], form: Mapping[str, Any], prev: Mapping[str, Any] | None = None,
               keys: Iterable[str] | None = None, model: type[BaseModel] | None = None, prefix: str = "") -> Parsed:
    """Turn a submitted form back into a config: values typed by the schema, empty optional fields and
    untouched defaults left out (so opening and applying a form does not rewrite the document).

    Per-field errors come from the config model (when given) and from compiling expressions and
    templates; they name the form control (``cases.2.expr``). The config is returned even when
    there are errors: a draft may be invalid, and the canvas shows its problems.
    """
    out = Parsed(config={})
    reader = _Reader(form, list(keys if keys is not None else form.keys()), schema, out)
    out.config = reader.object(prefix.rstrip("."), schema, prev or {})
    if model is not None:
        try:
            model.model_validate(out.config)
        except ValidationError as exc:
            for e in exc.errors(include_url=False):
                path = ".".join(str(p) for p in e["loc"])
                name = out.form_name(path) if path else "_form"
                message = translate(Msg("is required") if e["type"] == "missing" else pydantic_message(e))
                out.errors.setdefault(prefix + name if path else name, message)
    return out
