"""The ``logic.decision_table`` node: a DMN decision table on the canvas.

The node evaluates its table (:mod:`decisions.table`) against the journey's
context, writes the outputs into journey variables and picks its output port — purely, inside the
workflow, like ``logic.switch``. It lives here rather than in :mod:`engine.nodes` because it is a
thin shell around the ticket domain's pure decision-table code, and the engine knows activities only
through the plugin registry (entry point ``tideflow.activities`` → ``builtin-decisions``).

- **Inputs and cells** are FEEL (:mod:`decisions.feel`) over the flow's variables: ``customer``,
  ``event``, ``vars``, ``journey`` and ``ticket`` (``vars.ticket`` if the flow keeps it there, else
  the triggering event's payload). An input column's ``expression`` is e.g. ``event.payload.amount``,
  ``customer.vip_level`` or ``vars.score``; a cell may compare with another variable
  (``< vars.limit``) or compute an output (``event.payload.amount * 0.1``). A missing value is null.
  Values are coerced to the column's ``type_ref`` as in the pure evaluator. ``now()``/``today()``
  read the journey's clock (workflow time), so replays decide the same.
- **Outputs → variables**: single-hit policies (UNIQUE, ANY, PRIORITY, FIRST) set
  ``vars.<output name>`` to the matched rule's value, or null when no rule matched; multiple-hit
  policies (RULE ORDER, OUTPUT ORDER, COLLECT) set it to the list of values in result order;
  COLLECT with an aggregation sets it to the number (COUNT: how many rules matched). With
  ``result_variable`` the outputs go under ``vars.<result_variable>.<output name>`` instead.
  Numbers that are not whole become decimal strings (``"0.15"``) — money is never a float —
  and dates ISO strings.
- **Ports**: with ``port_output`` (single-hit only) the node leaves by the port named after that
  output's value (one port per allowed value, else per value the rules give); without it, by
  ``out``. No match (or a null value) leaves by ``default_port`` (``default``). Multiple-hit tables
  always leave by ``out``.
- **Errors**: a UNIQUE violation, disagreeing ANY matches or an input of the wrong type fail the
  journey at that node with a message naming the rules / the input.
- **Validation** (publish time): every input expression compiles; the static analysis
  (:mod:`decisions.analysis`) finds no overlapping rules under UNIQUE (or
  disagreeing ones under ANY), no rule that can never match, and — unless ``allow_gaps`` is set —
  no inputs that no rule matches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field, model_validator

from decisions.analysis import Finding, analyse
from decisions.feel import FeelLimitError, FeelSyntaxError, FeelValue, compile_expression
from decisions.feel.limits import Budget
from decisions.table import (
    FLOW_NAMES,
    SINGLE_HIT_POLICIES,
    DecisionTable,
    DecisionTableError,
    evaluate,
    json_value,
    literal_or_none,
    resolve_path,
)
from engine import expressions
from engine.flow import ID_PATTERN
from engine.nodes.base import Context, NodeConfig, NodeType, Problem
from engine.text import Msg, message_of

VARIABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,79}$"
_PORT = re.compile(ID_PATTERN)
_TICKET_PATH = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
#: inputs starting with this read the ticket (see :func:`ticket_of`)
TICKET = "ticket"
#: at most this many findings of one kind become validation problems (the rest are counted)
MAX_PROBLEMS_PER_KIND = 5


class DecisionTableConfig(NodeConfig):
    table: DecisionTable = Field(
        json_schema_extra={"format": "decision-table"},
        description="the DMN decision table: inputs (flow expressions), outputs, rules, hit policy")
    port_output: str | None = Field(
        default=None, description="name of the output whose value picks the port (single-hit tables); "
                                  "empty: leave by 'out'")
    default_port: str = Field(default="default", pattern=ID_PATTERN,
                              description="port taken when no rule matches")
    result_variable: str | None = Field(
        default=None, pattern=VARIABLE_PATTERN,
        description="put the outputs under vars.<this>.<output>; empty: vars.<output>")
    allow_gaps: bool = Field(default=False,
                             description="publish even if some inputs match no rule (they take the default port)")

    @model_validator(mode="before")
    @classmethod
    def _empty_is_none(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {**data, **{k: None for k in ("port_output", "result_variable") if data.get(k) == ""}}
        return data


def port_values(config: DecisionTableConfig) -> list[str]:
    """The ports named after ``port_output``'s values: its allowed values, else the rules' values."""
    table = config.table
    clause = next((o for o in table.outputs if o.name == config.port_output), None)
    if clause is None:
        return []
    index = table.outputs.index(clause)
    values: list[FeelValue] = list(clause.allowed_values) if clause.allowed_values else \
        [literal_or_none(rule.output_entries[index])[1] for rule in table.rules]
    ports: list[str] = []
    for value in values:
        name = port_name(value)
        if name is not None and name not in ports:
            ports.append(name)
    return ports


def port_name(value: FeelValue) -> str | None:
    """The port a value leaves by: its plain text (``"vip"`` → ``vip``, ``true`` → ``true``); null → None."""
    if value is None:
        return None
    plain = to_variable(value)
    return plain if isinstance(plain, str) else str(plain).lower() if isinstance(plain, bool) else str(plain)


def to_variable(value: Any) -> Any:
    """A FEEL value as a JSON-safe journey variable: whole numbers int, other decimals strings, dates ISO."""
    return json_value(value)


def variables_of(table: DecisionTable, value: Any) -> dict[str, Any]:
    """The ``{output name: value}`` a result sets (see the module docstring)."""
    names = [o.name for o in table.outputs]
    if table.hit_policy in SINGLE_HIT_POLICIES:
        found = value if isinstance(value, dict) else {}
        return {name: to_variable(found.get(name)) for name in names}
    if isinstance(value, list):
        return {name: [to_variable(row.get(name)) for row in value] for name in names}
    return {names[0]: to_variable(value)}  # an aggregated COLLECT has exactly one output


def ticket_of(ctx: Context) -> Mapping[str, Any]:
    """What ``ticket.…`` inputs read: ``vars.ticket`` when the flow keeps the ticket there, else the
    triggering event's payload (a ``ticket.created`` event carries the ticket)."""
    kept = ctx.vars.get(TICKET)
    if isinstance(kept, Mapping):
        return kept
    payload = ctx.event.get("payload")
    return payload if isinstance(payload, Mapping) else {}


def flow_variables(ctx: Context) -> dict[str, Any]:
    """What a table's FEEL reads in a flow: customer, event, vars, journey and ticket."""
    return {"customer": ctx.customer, "event": ctx.event, "vars": ctx.vars, "journey": ctx.journey,
            TICKET: dict(ticket_of(ctx))}


def read_input(expression: str, ctx: Context, scope: Mapping[str, Any]) -> Any:
    """An input column's value in a flow (FEEL over :func:`flow_variables`); missing values are None."""
    root, _, rest = expression.partition(".")
    if root == TICKET and _TICKET_PATH.match(rest or "x"):
        ticket = ticket_of(ctx)
        return resolve_path(ticket, rest) if rest else dict(ticket)
    return compile_expression(expression, FLOW_NAMES).evaluate(flow_variables(ctx), now=ctx.now)


def check_input(expression: str) -> Msg | None:
    """Why an input expression cannot be read in a flow, or None."""
    if not expression.strip():
        return Msg("no expression yet: say what the column reads, e.g. event.payload.amount")
    try:
        compile_expression(expression, FLOW_NAMES)
    except FeelSyntaxError as exc:
        return Msg("expression %(error)s", error=message_of(exc))
    return None


@lru_cache(maxsize=256)
def _findings(table_json: str) -> tuple[Finding, ...]:
    return tuple(analyse(DecisionTable.model_validate_json(table_json)))


def findings(table: DecisionTable) -> list[Finding]:
    """The static analysis of a table (cached by content: validation runs on every edit)."""
    return list(_findings(table.model_dump_json()))


def _capped(problems: list[Problem], what: str) -> list[Problem]:
    if len(problems) <= MAX_PROBLEMS_PER_KIND:
        return problems
    first = problems[0]
    more = Problem(first.node, first.field, Msg("… and %(n)s more %(what)s", n=len(problems) - MAX_PROBLEMS_PER_KIND,
                                                what=what), first.fix, first.code)
    return [*problems[:MAX_PROBLEMS_PER_KIND], more]


def analysis_problems(table: DecisionTable, allow_gaps: bool) -> list[Problem]:
    """Overlaps, unreachable rules and (unless allowed) gaps as validation problems."""
    overlaps, unreachable, gaps = [], [], []
    for finding in findings(table):
        if finding.kind == "overlap":
            overlaps.append(Problem(
                None, "table.rules", finding.message,
                Msg("narrow rule '%(second)s' or '%(first)s' so they cannot both match, or use hit policy FIRST "
                    "or PRIORITY", second=finding.rule_ids[1], first=finding.rule_ids[0]), "decision_overlap"))
        elif finding.kind == "unreachable":
            unreachable.append(Problem(
                None, "table.rules", finding.message,
                Msg("delete rule '%(rule)s' or change its conditions", rule=finding.rule_ids[0]),
                "decision_unreachable"))
        elif finding.kind == "gap" and not allow_gaps:
            gaps.append(Problem(
                None, "table.rules", finding.message,
                Msg("add a rule for these inputs (or a catch-all rule with '-' in every input under FIRST), "
                    "or tick allow_gaps and connect the default port"), "decision_gap"))
    return [*_capped(overlaps, "overlaps"), *_capped(unreachable, "unreachable rules"),
            *_capped(gaps, "gaps")]


class DecisionTableNode(NodeType):
    type = "logic.decision_table"
    category = "logic"
    label = {"zh-CN": "决策表", "en": "Decision table"}
    description = {"zh-CN": "DMN 决策表：按命中策略求出结果，写入变量，并按结果选择去向",
                   "en": "DMN decision table: the hit policy gives the result, stored in variables; "
                         "an output's value picks the port"}
    kinds = ("journey", "ticket", "settlement")
    Config = DecisionTableConfig
    ports = ("out", "default")

    @classmethod
    def output_ports(cls, config: BaseModel) -> list[str]:
        assert isinstance(config, DecisionTableConfig)
        if config.table.hit_policy not in SINGLE_HIT_POLICIES:
            return ["out"]
        values = port_values(config) if config.port_output else ["out"]
        return [*[v for v in values if v != config.default_port], config.default_port]

    @classmethod
    def check(cls, config: Any) -> list[Problem]:
        assert isinstance(config, DecisionTableConfig)
        table = config.table
        problems: list[Problem] = []
        for index, clause in enumerate(table.inputs):
            if error := check_input(clause.expression):
                problems.append(Problem(
                    None, f"table.inputs.{index}.expression",
                    Msg("input '%(input)s': %(error)s", input=clause.title, error=error),
                    Msg("write it over the flow's context, e.g. event.payload.amount, customer.vip_level, "
                        "vars.score or ticket.refund_amount"), "bad_expression"))
        for field, where, name in table.unknown_names():
            problems.append(Problem(
                None, field, Msg("%(where)s: unknown name '%(name)s'", where=where, name=name),
                Msg("to write text, quote it (\"%(name)s\"); to read a value, start from customer, event, vars, "
                    "journey or ticket (e.g. vars.%(name)s)", name=name), "bad_expression"))
        names = [o.name for o in table.outputs]
        if config.port_output is not None:
            if config.port_output not in names:
                problems.append(Problem(None, "port_output",
                                        Msg("'%(name)s' is not an output of the table", name=config.port_output),
                                        Msg("use one of: %(ports)s", ports=", ".join(names)), "bad_value"))
            elif table.hit_policy not in SINGLE_HIT_POLICIES:
                problems.append(Problem(
                    None, "port_output", Msg("hit policy %(policy)s gives several results, so no single value can "
                                             "pick the port", policy=table.hit_policy),
                    Msg("clear port_output (the node leaves by 'out'), or use a single-hit policy (UNIQUE, ANY, "
                        "PRIORITY, FIRST)"), "bad_value"))
            else:
                problems += cls._port_problems(config)
        problems += analysis_problems(table, config.allow_gaps)
        return problems

    @classmethod
    def _port_problems(cls, config: DecisionTableConfig) -> list[Problem]:
        problems = []
        for name in port_values(config):
            if not _PORT.match(name):
                problems.append(Problem(
                    None, "port_output", Msg("output value '%(name)s' cannot be a port name", name=name),
                    Msg("use values made of letters, digits, '_', '-' and '.' (keep Chinese text in labels), "
                        "or clear port_output and branch on the variable with logic.switch"), "bad_value"))
            elif name == config.default_port:
                problems.append(Problem(
                    None, "default_port", Msg("the default port '%(name)s' is also an output value", name=name),
                    Msg("give default_port another name, e.g. no_match"), "bad_value"))
        return problems

    @classmethod
    def decide(cls, config: Any, ctx: Context, instance_id: str, node_id: str) -> str:
        """Evaluate the table, record its outputs in ``ctx.vars`` (deterministic: a pure function of the
        config and the context) and return the port."""
        assert isinstance(config, DecisionTableConfig)
        table = config.table
        now = ctx.now if isinstance(ctx.now, datetime) else None
        try:
            result = evaluate(table, flow_variables(ctx), budget=Budget(now=now))
        except (DecisionTableError, FeelLimitError) as exc:
            raise expressions.ExpressionError(Msg("decision table: %(exc)s", exc=message_of(exc))) from None
        values = variables_of(table, result.value)
        if config.result_variable:
            ctx.vars = {**ctx.vars, config.result_variable: values}
        else:
            ctx.vars = {**ctx.vars, **values}
        if table.hit_policy not in SINGLE_HIT_POLICIES:
            return "out"
        if not isinstance(result.value, dict):
            return config.default_port
        if not config.port_output:
            return "out"
        port = port_name(result.value.get(config.port_output))
        return port if port is not None and port in cls.output_ports(config) else config.default_port


NODE_TYPES: list[type[NodeType]] = [DecisionTableNode]
