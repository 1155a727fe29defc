"""How values are shown on screen: times in the workspace's time zone, numbers and money in the reader's
locale, and a human label for every status and other enum value. The one home of the pages' display filters.

* Times are stored in UTC and shown in the workspace's display time zone (``TIDEFLOW_DISPLAY_TIMEZONE``,
  default Asia/Shanghai); pages say which zone that is (``tz_name()``, next to the times and in a
  ``<time title=...>``).
* Numbers: ``1,234,567``; money: ``¥1,234.50`` (Babel's ``format_decimal`` / ``format_currency`` with the
  request's locale). CLDR's English symbol for the yuan is ``CN¥`` (to tell it from the yen); every amount
  in Tideflow is in yuan, so both languages show ``¥``.
* Statuses and other enum values are never shown raw: :func:`label` looks the value up in its table
  (:data:`LABELS`; an area adds its own with :func:`add_labels`) and translates it with the table's
  gettext context. A value missing from its table shows as words (``timed_out`` → "timed out"), so a new
  value is readable before someone gives it a label, and the tests find it.

Jinja filters (installed on the designer's template environments by :func:`install`):
``when`` (date and time), ``day`` (date), ``number``, ``money`` (a yuan amount: Decimal or decimal string),
``money_change`` (the same, signed),
``yuan`` (integer fen), ``percent``, ``label(kind)``, ``compact`` (JSON), ``said`` (a reason saved when it
happened, in the reader's language); globals ``tz_name()`` and ``label``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, get_timezone_gmt, get_timezone_name
from babel.numbers import format_currency, format_decimal, format_percent
from jinja2 import Environment, pass_context
from jinja2.runtime import Context

from designer.i18n import NC_, _, locale, pgettext, translate
from engine.settings import get_settings
from wording.stored import read_stored

MISSING = "—"


# --- times -----------------------------------------------------------------------------------------


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def display_zone() -> ZoneInfo:
    """The workspace's display time zone (setting ``TIDEFLOW_DISPLAY_TIMEZONE``)."""
    return _zone(get_settings().display_timezone)


def tz_name() -> str:
    """The display zone as people name it, with its offset: ``中国时间 (GMT+08:00)`` / ``China Time (GMT+08:00)``."""
    zone, where = display_zone(), locale()
    offset = get_timezone_gmt(datetime.now(zone), width="long", locale=where)
    return f"{get_timezone_name(zone, locale=where)} ({offset})"


def _aware(value: datetime) -> datetime:
    # naive datetimes from the database are UTC (every column is written in UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def when(value: datetime | str | None, seconds: bool = False) -> str:
    """``2026-12-06 11:30`` in the display zone (``—`` for none); ISO strings are accepted."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, str):
        try:
            instant = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        instant = value
    pattern = "yyyy-MM-dd HH:mm:ss" if seconds else "yyyy-MM-dd HH:mm"
    return format_datetime(_aware(instant), pattern, tzinfo=display_zone(), locale=locale())


def day(value: date | datetime | str | None) -> str:
    """``2026-12-06`` (a datetime: its day in the display zone)."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, str):
        try:
            the_day = date.fromisoformat(value[:10])
        except ValueError:
            return value
    elif isinstance(value, datetime):
        the_day = _aware(value).astimezone(display_zone()).date()
    else:
        the_day = value
    return format_date(the_day, "yyyy-MM-dd", locale=locale())


def iso(value: datetime | None) -> str:
    """The machine-readable instant for ``<time datetime=...>``."""
    return _aware(value).isoformat() if value else ""


# --- numbers and money -----------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, Decimal | int):
        return Decimal(value)
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return None


def number(value: Any, digits: int | None = None) -> str:
    """``1,234,567`` (and ``1,234.5``); ``digits`` fixes the decimals. Not a number: shown as it is."""
    amount = _decimal(value)
    if amount is None:
        return MISSING if value is None or value == "" else str(value)
    if digits is not None:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(amount, format=pattern, locale=locale(), decimal_quantization=True)
    return format_decimal(amount, locale=locale(), decimal_quantization=False)


def money(value: Any) -> str:
    """A yuan amount (Decimal, int or decimal string, exact: never a float) as ``¥1,234.50``."""
    amount = _decimal(value)
    if amount is None:
        return MISSING if value is None or value == "" else str(value)
    return format_currency(amount, "CNY", locale=locale()).replace("CN¥", "¥")


def money_change(value: Any) -> str:
    """A change of a yuan amount, always signed: ``+¥1,234.50`` / ``-¥20.00`` / ``¥0.00``."""
    amount = _decimal(value)
    if amount is None:
        return money(value)
    return ("+" if amount > 0 else "") + money(amount)


def yuan(fen: int | None) -> str:
    """Integer fen as ``¥1,234.56`` (exact)."""
    return MISSING if fen is None else money(Decimal(int(fen)) / 100)


def percent(value: Any, digits: int = 0) -> str:
    """A ratio (0.25) as ``25%``."""
    amount = _decimal(value)
    if amount is None:
        return MISSING
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
    return format_percent(amount, format=pattern, locale=locale())


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


# --- labels ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Labels:
    """The labels of one enum: its gettext context and English label per value."""

    context: str
    entries: Mapping[str, str]


LABELS: dict[str, Labels] = {}


def add_labels(kind: str, context: str, entries: Mapping[str, str]) -> None:
    """Give the values of an enum their labels. Mark each label with ``NC_(context, "English")`` so it is
    extracted with its context; ``context`` says what the words are ("ticket status")."""
    known = LABELS.get(kind)
    if known is not None and known.context != context:
        raise ValueError(f"labels '{kind}' already use the context '{known.context}'")
    LABELS[kind] = Labels(context, {**(known.entries if known else {}), **entries})


def words(value: str) -> str:
    return value.replace("_", " ").replace(".", " ").strip()


def label(value: Any, kind: str) -> str:
    """The human label of ``value`` (a status, role, kind…) in the reader's language."""
    if value is None or value == "":
        return MISSING
    table = LABELS.get(kind)
    text = str(value)
    if table is None:
        raise KeyError(f"no labels for '{kind}'; add them with display.add_labels")
    english = table.entries.get(text)
    return pgettext(table.context, english) if english is not None else words(text)


add_labels("flow_kind", "flow kind", {
    "journey": NC_("flow kind", "Journey"), "ticket": NC_("flow kind", "Ticket routing"),
    "settlement": NC_("flow kind", "Settlement"),
})
add_labels("flow_status", "flow status", {
    "draft": NC_("flow status", "Draft"), "active": NC_("flow status", "Active"),
    "paused": NC_("flow status", "Paused"), "archived": NC_("flow status", "Archived"),
})
add_labels("journey_status", "journey status", {
    "running": NC_("journey status", "Running"), "waiting": NC_("journey status", "Waiting"),
    "completed": NC_("journey status", "Completed"), "converted": NC_("journey status", "Converted"),
    "exited": NC_("journey status", "Exited"), "failed": NC_("journey status", "Failed"),
    "cancelled": NC_("journey status", "Cancelled"),
})
add_labels("message_status", "message status", {
    "sent": NC_("message status", "sent"), "failed": NC_("message status", "failed"),
    "dry-run": NC_("message status", "dry run (not sent)"),
    "skipped: capped": NC_("message status", "skipped: frequency cap reached"),
    "skipped: no consent": NC_("message status", "skipped: the customer unsubscribed"),
    "skipped: no customer": NC_("message status", "skipped: customer not found"),
    "skipped: channel not configured": NC_("message status", "skipped: channel not configured"),
    "skipped: quiet hours": NC_("message status", "skipped: quiet hours"),
    "skipped: no address": NC_("message status", "skipped: no address for this channel"),
})
add_labels("event_status", "event status", {
    "received": NC_("event status", "received"), "routed": NC_("event status", "routed"),
    "quarantined": NC_("event status", "quarantined"),
})
add_labels("statement_status", "statement status", {
    "draft": NC_("statement status", "draft"), "pending": NC_("statement status", "pending approval"),
    "approved": NC_("statement status", "approved"), "rejected": NC_("statement status", "rejected"),
    "paid": NC_("statement status", "paid"),
})
add_labels("run_status", "settlement run status", {
    "open": NC_("settlement run status", "open"), "collected": NC_("settlement run status", "orders collected"),
    "computed": NC_("settlement run status", "computed"), "split": NC_("settlement run status", "split"),
    "pending_approval": NC_("settlement run status", "pending approval"),
    "decided": NC_("settlement run status", "decided"), "paid": NC_("settlement run status", "paid"),
})
add_labels("rate_plan_type", "rate plan type", {
    "flat": NC_("rate plan type", "Flat percentage"), "tiered": NC_("rate plan type", "Tiered"),
    "guaranteed": NC_("rate plan type", "Guarantee + excess bonus"),
    "split": NC_("rate plan type", "Split among parties"),
    "composition": NC_("rate plan type", "Composition (plans added up)"),
    "kpi_coefficient": NC_("rate plan type", "KPI coefficient"),
})
add_labels("payout_status", "payout status", {
    "instructed": NC_("payout status", "instructed"), "offset": NC_("payout status", "offset against a debt"),
})
add_labels("ticket_status", "ticket status", {
    "open": NC_("ticket status", "Open"), "pending": NC_("ticket status", "Waiting on customer"),
    "resolved": NC_("ticket status", "Resolved"), "closed": NC_("ticket status", "Closed"),
    "active": NC_("ticket status", "Active (open + pending)"), "all": NC_("ticket status", "All statuses"),
})
add_labels("review_status", "review status", {
    "queued": NC_("review status", "not yet"), "waiting": NC_("review status", "waiting"),
    "approved": NC_("review status", "approved"), "rejected": NC_("review status", "rejected"),
    "sent_back": NC_("review status", "sent back"), "skipped": NC_("review status", "skipped"),
    "timed_out": NC_("review status", "timed out"),
})
add_labels("review_outcome", "review outcome", {
    "approved": NC_("review outcome", "Review approved"), "rejected": NC_("review outcome", "Review rejected"),
    "sent_back": NC_("review outcome", "Sent back to the agent"),
})
add_labels("availability", "agent availability", {
    "online": NC_("agent availability", "Online"), "away": NC_("agent availability", "Away"),
    "offline": NC_("agent availability", "Offline"),
})
add_labels("ticket_scope", "ticket scope", {
    "mine": NC_("ticket scope", "Assigned to me, and unassigned in my queues"),
    "groups": NC_("ticket scope", "Everything in my queues"),
})
add_labels("csat_score", "satisfaction score", {
    "1": NC_("satisfaction score", "Very dissatisfied"), "2": NC_("satisfaction score", "Dissatisfied"),
    "3": NC_("satisfaction score", "Neutral"), "4": NC_("satisfaction score", "Satisfied"),
    "5": NC_("satisfaction score", "Very satisfied"),
})
add_labels("sla_metric", "SLA metric", {
    "first_response": NC_("SLA metric", "first response"), "next_response": NC_("SLA metric", "next response"),
    "resolution": NC_("SLA metric", "resolution"),
})
add_labels("ticket_actor", "ticket actor", {
    "api": NC_("ticket actor", "API"), "customer": NC_("ticket actor", "customer"),
    "flow": NC_("ticket actor", "flow"), "refund": NC_("ticket actor", "refund request"),
    "review": NC_("ticket actor", "review"), "sla": NC_("ticket actor", "SLA"),
    "system": NC_("ticket actor", "system"), "reoffer": NC_("ticket actor", "re-offered (an agent came online)"),
})
add_labels("ticket_source", "ticket source", {
    "api": NC_("ticket source", "API"), "flow": NC_("ticket source", "a flow"),
    "refund": NC_("ticket source", "refund request"), "subtask": NC_("ticket source", "sub-task"),
    "compliance": NC_("ticket source", "compliance alert"),
})
add_labels("audit_actor", "audit actor", {"system": NC_("audit actor", "system")})
add_labels("escalation", "escalation step", {
    "notify_supervisor": NC_("escalation step", "notify the supervisor"),
    "raise_priority": NC_("escalation step", "raise the priority"),
    "reassign": NC_("escalation step", "reassign"),
})
add_labels("role", "role", {
    "admin": NC_("role", "admin"), "marketer": NC_("role", "marketer"), "ops": NC_("role", "ops"),
    "agent": NC_("role", "agent"), "finance": NC_("role", "finance"), "developer": NC_("role", "developer"),
    "auditor": NC_("role", "auditor"),
})
add_labels("duration_unit", "duration unit", {
    "seconds": NC_("duration unit", "seconds"), "minutes": NC_("duration unit", "minutes"),
    "hours": NC_("duration unit", "hours"), "days": NC_("duration unit", "days"),
    "weeks": NC_("duration unit", "weeks"),
})
add_labels("node_category", "node category", {
    "trigger": NC_("node category", "Triggers"), "wait": NC_("node category", "Waits"),
    "logic": NC_("node category", "Logic"), "action": NC_("node category", "Actions"),
    "end": NC_("node category", "Endings"), "plugin": NC_("node category", "Plugins"),
    "ticket": NC_("node category", "Tickets"), "settlement": NC_("node category", "Settlement"),
})
add_labels("preview_step", "preview step", {
    "step": NC_("preview step", "passed"), "action": NC_("preview step", "did"),
    "deferred": NC_("preview step", "deferred"), "goal": NC_("preview step", "goal reached"),
    "exit": NC_("preview step", "exited"), "failed": NC_("preview step", "failed"),
    "cancel": NC_("preview step", "cancelled"), "event": NC_("preview step", "event"),
    "ignored": NC_("preview step", "ignored"), "end": NC_("preview step", "ended"),
})
#: the output ports of our node types, as the canvas labels them (the port id stays the data: edges, JSON, the API);
#: in English the words the ids are, in Chinese a translation. A switch's cases, a step's outcomes and a plugin's
#: ports are the flow author's or the plugin's words: shown as they are (:func:`port_label`)
add_labels("port", "flow port", {
    "out": NC_("flow port", "out"), "yes": NC_("flow port", "yes"), "no": NC_("flow port", "no"),
    "timeout": NC_("flow port", "timeout"), "event": NC_("flow port", "event"),
    "default": NC_("flow port", "default"), "failed": NC_("flow port", "failed"),
    "skipped": NC_("flow port", "skipped"), "out_of_stock": NC_("flow port", "out of stock"),
    "assigned": NC_("flow port", "assigned"), "queued": NC_("flow port", "queued"),
    "approved": NC_("flow port", "approved"), "rejected": NC_("flow port", "rejected"),
    "sent_back": NC_("flow port", "sent back"), "already_rewarded": NC_("flow port", "already rewarded"),
    "budget_exhausted": NC_("flow port", "budget exhausted"), "not_eligible": NC_("flow port", "not eligible"),
    "not_joined": NC_("flow port", "not joined"), "not_sent": NC_("flow port", "not sent"),
})


def port_label(port: str) -> str:
    """A node's output port in the reader's language: ours from the ``port`` labels, any other (a switch's case, a
    step's outcome, a plugin's port) as it is."""
    return label(port, "port") if port in LABELS["port"].entries else port


#: why a journey was cancelled, as a timeline step says it (the interpreter's ``cancel`` signal): its default; any
#: other reason is the words it was given ("by admin"), shown as they are
add_labels("preview_reason", "preview reason", {"cancelled": NC_("preview reason", "cancelled")})
#: what a preview step's action did (its result's ``detail.status``), beyond a message's own statuses
#: (``message_status``): the codes our actions answer with; a plugin's own status is shown as it is. The English is
#: the code's own words (a code written with underscores reads with spaces)
add_labels("step_status", "step status", {
    "preview: not sent": NC_("step status", "preview: not sent"),
    "skipped: no customer": NC_("step status", "skipped: no customer"),
    "simulated": NC_("step status", "simulated"),
    "no_customer": NC_("step status", "no customer"), "not_sent": NC_("step status", "not sent"),
    "not_joined": NC_("step status", "not joined"), "joined": NC_("step status", "joined"),
    "deferred: quiet hours": NC_("step status", "deferred: quiet hours"),
    "deferred: at limit": NC_("step status", "deferred: at limit"),
    "waiting for staff confirmation": NC_("step status", "waiting for staff confirmation"),
    "failed: rejected": NC_("step status", "failed: rejected"),
    "failed": NC_("step status", "failed"), "issued": NC_("step status", "issued"),
    "out_of_stock": NC_("step status", "out of stock"), "rewarded": NC_("step status", "rewarded"),
    "already_rewarded": NC_("step status", "already rewarded"),
    "budget_exhausted": NC_("step status", "reward budget used up"),
    "goal_not_reached": NC_("step status", "goal not reached"),
    "not_participant": NC_("step status", "not a participant"),
})
add_labels("channel", "channel", {
    "wecom": NC_("channel", "WeCom"), "wechat_oa": NC_("channel", "WeChat Official Account"),
    "sms": NC_("channel", "SMS"), "email": NC_("channel", "Email"), "webhook": NC_("channel", "Webhook"),
    "youzan": NC_("channel", "Youzan"), "shopify": NC_("channel", "Shopify"),
    "douyin": NC_("channel", "Douyin shop"), "taobao": NC_("channel", "Taobao"), "jd": NC_("channel", "JD"),
    "api": NC_("channel", "API"), "preview": NC_("channel", "preview"), "tmall": NC_("channel", "Tmall"),
    "dry-run": NC_("channel", "dry run (sends nothing)"), "csv": NC_("channel", "CSV import"),
    "none": NC_("channel", "none"), "unknown": NC_("channel", "unknown"),
    # the sources of the events Tideflow itself records (a customer's first event may be one of them)
    "loyalty": NC_("channel", "loyalty points"), "referral": NC_("channel", "referral campaign"),
    "tickets": NC_("channel", "satisfaction survey"),
})
add_labels("order_status", "order status", {
    "created": NC_("order status", "created"), "paid": NC_("order status", "paid"),
    "shipped": NC_("order status", "shipped"), "delivered": NC_("order status", "delivered"),
    "completed": NC_("order status", "completed"), "cancelled": NC_("order status", "cancelled"),
    "refunded": NC_("order status", "refunded"),
})
add_labels("refund_status", "refund status", {
    "requested": NC_("refund status", "requested"), "completed": NC_("refund status", "refunded"),
    "rejected": NC_("refund status", "rejected or withdrawn"),
})
add_labels("connector_state", "connector state", {
    "enabled": NC_("connector state", "enabled"), "disabled": NC_("connector state", "disabled"),
})
add_labels("boolean", "yes or no", {"True": NC_("yes or no", "yes"), "False": NC_("yes or no", "no")})
add_labels("identity_kind", "identity kind", {
    "phone": NC_("identity kind", "Phone"), "email": NC_("identity kind", "Email"),
    "wecom_external_userid": NC_("identity kind", "WeCom external contact"),
    "wechat_openid": NC_("identity kind", "WeChat OA openid"), "wechat_unionid": NC_("identity kind", "WeChat unionid"),
    "external_id": NC_("identity kind", "External system id"),
})


def identity_label(kind: str) -> str:
    """What an identity is (手机号, 企业微信外部联系人, 有赞 买家 ID…)."""
    if kind.endswith("_buyer"):
        shop = kind.removesuffix("_buyer")
        return _("%(shop)s buyer id") % {"shop": label(shop, "channel")}
    return label(kind, "identity_kind")


def plan_part(component: str) -> str:
    """Which part of a rate plan made a statement line (``flat``, ``composition / bonus``): the plan's types in
    words, the names people gave and the paths into a plan (``components[1]``) as they are."""
    types = LABELS["rate_plan_type"].entries
    return " / ".join(label(part, "rate_plan_type") if part in types else part for part in component.split(" / "))


# --- texts saved when they happened ----------------------------------------------------------------


def said(text: str | None) -> str:
    """A reason, an error, a refusal saved when it happened (a connector's last error, a quarantined delivery's
    reason, a journey's failure: ``wording.stored``), in the reader's language. Legacy English and words that are
    not ours show as they are; empty shows as nothing."""
    return translate(read_stored(text)) if text else ""


# --- templates -------------------------------------------------------------------------------------


def _at_render(function: Callable[..., str]) -> Callable[..., str]:
    """A filter Jinja must call when the page is drawn: without this, ``{{ "open"|label("ticket_status") }}``
    would be folded into the template when it is compiled, in the language of the first page ever drawn."""

    @pass_context
    def filter_(context: Context, value: Any, *args: Any, **kwargs: Any) -> str:
        return function(value, *args, **kwargs)

    return filter_


def install(env: Environment) -> None:
    """The display filters and globals on a template environment."""
    filters: dict[str, Callable[..., str]] = {
        "when": when, "day": day, "number": number, "money": money, "money_change": money_change, "yuan": yuan,
        "percent": percent, "label": label, "compact": compact, "iso": iso,
        "plan_part": plan_part, "said": said}
    env.filters.update({name: _at_render(function) for name, function in filters.items()})
    env.globals.update({"tz_name": tz_name, "label": label, "identity_label": identity_label})
