"""Segment and date triggers: page through an audience and enrol it in batches.

When the flow has no waits (a pure broadcast: segment → conditions → messages),
customers do not each get a workflow: a bulk activity walks the flow for a whole
page of customers, with the same node types and the same idempotent actions
(key ``broadcast/<flow>/<run>/<customer>/<node>``). When the flow has waits, each
customer gets a journey, started by the bulk activity with a derived id.

An action whose outcome comes later from outside (``ActionResult.awaiting``: a WeCom mass send waits for
staff to confirm it) parks its customers at that node — journey row ``waiting`` — and the page goes on; the
action's domain calls :func:`resume_page` when their outcomes are in, which walks the rest of the flow for
them from that node, as the page would have.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

from engine.text import Msg
from engine.zones import zone_or

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

with workflow.unsafe.imports_passed_through():
    from engine.actions import Services
    from engine.runtime import BROADCAST_WORKFLOW, BroadcastInput

PAGE_TIMEOUT = timedelta(minutes=10)


def customer_page(flow: dict[str, Any], cursor: str | None, size: int,
                  database_url: str | None) -> tuple[list[str], str | None]:
    """The next page of customers who enter: (ids, cursor for the next page or None at the end)."""
    from sqlalchemy import select

    from engine import expressions
    from engine.db import models
    from engine.db.session import session_factory

    trigger = flow["nodes"][flow["trigger"]]
    config = trigger["config"]
    # the audience "everyone" (the literal true) needs no evaluation per customer
    everyone = trigger["type"] == "trigger.segment" and str(config.get("audience", "")).strip() in ("true", "True")
    chosen: list[str] = []
    last: str | None = cursor
    c = models.Customer
    with session_factory(database_url)() as db:
        while len(chosen) < size:
            # columns, not ORM objects: a page is a thousand rows
            query = select(c.id, c.name, c.timezone, c.attributes).where(c.merged_into.is_(None))
            if last:
                query = query.where(c.id > last)
            rows = db.execute(query.order_by(c.id).limit(size)).all()
            if not rows:
                return chosen, None
            tag_rows = db.execute(select(models.CustomerTag.customer_id, models.CustomerTag.tag)
                                  .where(models.CustomerTag.customer_id.in_([r.id for r in rows]))).all()
            tags: dict[str, list[str]] = defaultdict(list)
            for cid, tag in tag_rows:
                tags[cid].append(tag)
            for row in rows:
                last = row.id
                view = {**(row.attributes or {}), "id": row.id, "name": row.name or "", "timezone": row.timezone,
                        "tags": sorted(tags[row.id])}
                if trigger["type"] == "trigger.segment":
                    wanted = config.get("tags_any") or []
                    if wanted and not set(wanted) & set(view["tags"]):
                        continue
                    try:
                        if not everyone and not expressions.test(
                                config["audience"], {"customer": view, "event": {}, "vars": {}, "journey": {},
                                                     "now": None}):
                            continue
                    except expressions.ExpressionError:
                        continue
                elif trigger["type"] == "trigger.date" and not date_matches(view, config, flow):
                    continue
                chosen.append(row.id)
                if len(chosen) >= size:
                    break
    return chosen, last


def date_matches(customer: dict[str, Any], config: dict[str, Any], flow: dict[str, Any],
                 today: date | None = None) -> bool:
    """Whether a customer's date attribute, shifted by the offset, falls on ``today`` (local)."""
    raw = customer.get(config["attribute"])
    try:
        when = date.fromisoformat(str(raw)[:10]) if raw else None
    except ValueError:
        return False
    if when is None:
        return False
    tz = ZoneInfo(zone_or(customer.get("timezone"), str(flow["settings"].get("timezone") or "UTC")))
    local_today = today or datetime.now(tz).date()
    target = local_today - timedelta(days=int(config.get("offset_days", 0)))
    if config.get("yearly", True):
        if when.month == 2 and when.day == 29 and not _leap(target.year):
            return (target.month, target.day) == (2, 28)
        return (when.month, when.day) == (target.month, target.day)
    return when == target


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def instance_id(flow_id: str, run_key: str, customer_id: str) -> str:
    """The id a broadcast customer's walk goes by (a journey row, the prefix of its actions' keys)."""
    return f"broadcast/{flow_id}/{run_key}/{customer_id}"


def parse_instance(workflow_id: str, flow_id: str) -> tuple[str, str] | None:
    """(run key, customer id) of a broadcast walk's id (:func:`instance_id`); None for a journey's."""
    prefix = f"broadcast/{flow_id}/"
    if not workflow_id.startswith(prefix) or "/" not in workflow_id[len(prefix):]:
        return None
    run_key, customer_id = workflow_id[len(prefix):].rsplit("/", 1)
    return run_key, customer_id


def run_instant(flow: dict[str, Any], customer_id: str, run_key: str, stats: list[list[Any]],
                services: Services) -> str:
    """Walk a wait-free flow for one customer inside an activity; returns how it ended."""
    from engine import expressions
    from engine.actions import perform
    from engine.customers import customer_view
    from engine.db.session import session_factory
    from engine.nodes.base import Context
    from engine.registry import default_registry
    from engine.runtime import ActionRequest

    registry = default_registry()
    node_id: str | None = flow["trigger"]
    ctx: Context | None = None
    variables: dict[str, Any] = {}  # journey variables: set by logic nodes (decision tables), passed to actions
    instance = instance_id(flow["flow_id"], run_key, customer_id)
    while node_id is not None:
        node = flow["nodes"][node_id]
        node_type = registry.get(node["type"])
        if node_type is None:
            stats.append([node_id, "failed", "", 1])
            return "failed"
        stats.append([node_id, "entered", "", 1])
        config = node_type.Config.model_validate(node["config"])
        category = node["category"]
        if category == "trigger":
            port = "out"
        elif category == "end":
            return str(getattr(node_type, "outcome", "completed"))
        elif category == "logic":
            if ctx is None:
                with session_factory(services.database_url)() as db:
                    ctx = Context(customer=customer_view(db, customer_id), vars=variables,
                                  journey={"id": instance, "flow": flow["flow_id"]})
            try:
                port = node_type.decide(config, ctx, instance, node_id)
                variables = ctx.vars
            except expressions.ExpressionError:
                stats.append([node_id, "failed", "", 1])
                return "failed"
        else:
            request = ActionRequest(key=f"{instance}/{node_id}/1", workflow_id=instance, flow_id=flow["flow_id"],
                                    version=flow["version"], node_id=node_id, node_type=node["type"],
                                    config=node["config"], customer_id=customer_id, settings=flow["settings"],
                                    variables=dict(variables))
            try:
                result = perform(node_type, request, services)
            except Exception:
                stats.append([node_id, "failed", "", 1])
                if node_type.failure_port:
                    port = node_type.failure_port
                else:
                    return "failed"
            else:
                if result.get("defer_until") and result.get("awaiting"):
                    stats.append([node_id, "waiting", "", 1])  # parked: resume_page continues from here
                    return "waiting"
                if result.get("defer_until"):
                    # a bulk run cannot wait per customer: the broadcast itself waits out the flow's
                    # quiet hours; a customer whose own timezone is still quiet is left for the next run
                    stats.append([node_id, "deferred", "", 1])
                    return "deferred"
                port = str(result.get("port") or "out")
                variables = {**variables, **(result.get("variables") or {})}  # as the interpreter does
                ctx = None  # the action may have changed the customer: read the view again
        stats.append([node_id, "left", port, 1])
        node_id = node["next"].get(port)
    return "completed"


def _node_order(flow: dict[str, Any]) -> list[str] | None:
    """The flow's nodes reachable from the trigger, each after every node with an edge to it; None
    when they form a loop (a wait-free flow cannot: the validator refuses a loop without a wait)."""
    reachable: list[str] = []
    seen: set[str] = set()
    stack = [flow["trigger"]]
    while stack:
        node_id = stack.pop()
        if node_id in seen or node_id not in flow["nodes"]:
            continue
        seen.add(node_id)
        reachable.append(node_id)
        stack.extend(str(n) for n in flow["nodes"][node_id]["next"].values() if n)
    incoming: dict[str, int] = {n: 0 for n in reachable}
    for node_id in reachable:
        for nxt in set(flow["nodes"][node_id]["next"].values()):
            if nxt in incoming:
                incoming[nxt] += 1
    ready = [n for n in reachable if incoming[n] == 0]
    order: list[str] = []
    while ready:
        node_id = ready.pop()
        order.append(node_id)
        for nxt in set(flow["nodes"][node_id]["next"].values()):
            if nxt in incoming:
                incoming[nxt] -= 1
                if incoming[nxt] == 0:
                    ready.append(nxt)
    return order if len(order) == len(reachable) else None


def run_page(flow: dict[str, Any], customer_ids: list[str], run_key: str, stats: list[list[Any]],
             services: Services, heartbeat: Callable[[Any], None] | None = None, *, start: str | None = None,
             variables: dict[str, dict[str, Any]] | None = None,
             parked: dict[str, str] | None = None) -> dict[str, str]:
    """Walk a wait-free flow for a page of customers at once; returns how each one ended.

    The outcomes, statistics, ledger keys and effects are those of :func:`run_instant` for each
    customer, but the work goes node by node instead of customer by customer: the page's customer
    views are read in a few queries (again after an action, which may have changed them), logic nodes
    decide in memory, and each action node runs once for all the customers who reached it
    (:func:`engine.actions.perform_many`: one ledger look-up, then the node's bulk ``run_many`` if it
    has one — ``action.send_message`` does — else one ``perform`` per customer).

    A customer whose action awaits an outside outcome (``ActionResult.awaiting``) ends the page ``waiting``,
    with the node in ``parked``; :func:`resume_page` walks on from there (``start``: the node the customers
    are at, counted as leaving its wait rather than entering it; ``variables``: their journey variables)."""
    from engine import expressions
    from engine.actions import customer_views, perform_many
    from engine.db.session import session_factory
    from engine.nodes.base import Context
    from engine.registry import default_registry
    from engine.runtime import ActionRequest

    order = _node_order(flow)
    if order is None and start is None:
        return {cid: run_instant(flow, cid, run_key, stats, services) for cid in customer_ids}
    if order is None or (start is not None and start not in order):
        raise ValueError(Msg("cannot resume flow %(flow_id)s at node '%(start)s'",
                             flow_id=flow['flow_id'], start=start))
    registry = default_registry()
    flow_id = flow["flow_id"]
    # customer → the node they are at
    at: dict[str, str] = {cid: start or flow["trigger"] for cid in customer_ids}
    ended: dict[str, str] = {}
    views: dict[str, dict[str, Any]] = {}
    stale: set[str] = set(customer_ids)  # views to read again before they are used
    # journey variables per customer (set by logic nodes, kept across actions and passed to them, as in a journey)
    variables = {cid: dict(found) for cid, found in (variables or {}).items()}

    def instance(cid: str) -> str:
        return instance_id(flow_id, run_key, cid)

    def fresh(group: list[str]) -> None:
        wanted = [cid for cid in group if cid in stale]
        if wanted:
            with session_factory(services.database_url)() as db:
                views.update(customer_views(db, wanted))
            stale.difference_update(wanted)

    for node_id in order:
        group = [cid for cid in customer_ids if at.get(cid) == node_id]
        if not group:
            continue
        node = flow["nodes"][node_id]
        node_type = registry.get(node["type"])
        if node_type is None:
            stats.append([node_id, "failed", "", len(group)])
            ended.update((cid, "failed") for cid in group)
            continue
        if node_id == start:  # resumed: they entered it on their page and have waited there since
            stats.append([node_id, "waiting", "", -len(group)])
        else:
            stats.append([node_id, "entered", "", len(group)])
        config = node_type.Config.model_validate(node["config"])
        category = node["category"]
        ports: dict[str, str] = {}
        if category == "trigger":
            ports = {cid: "out" for cid in group}
        elif category == "end":
            ended.update((cid, str(getattr(node_type, "outcome", "completed"))) for cid in group)
        elif category == "logic":
            fresh(group)
            for cid in group:
                ctx = Context(customer=views.get(cid, {}), vars=variables.get(cid, {}),
                              journey={"id": instance(cid), "flow": flow_id})
                try:
                    ports[cid] = node_type.decide(config, ctx, instance(cid), node_id)
                    variables[cid] = ctx.vars  # a logic node may set variables for the next logic nodes
                except expressions.ExpressionError:
                    stats.append([node_id, "failed", "", 1])
                    ended[cid] = "failed"
        else:
            if node_type.offers_bulk():
                fresh(group)
            requests = [ActionRequest(key=f"{instance(cid)}/{node_id}/1", workflow_id=instance(cid),
                                      flow_id=flow_id, version=flow["version"], node_id=node_id,
                                      node_type=node["type"], config=node["config"], customer_id=cid,
                                      settings=flow["settings"], variables=dict(variables.get(cid, {})))
                        for cid in group]
            given = {cid: views[cid] for cid in group if cid in views and cid not in stale}
            for cid, result in zip(group, perform_many(node_type, requests, services, given), strict=True):
                stale.add(cid)
                if isinstance(result, Exception):
                    stats.append([node_id, "failed", "", 1])
                    if node_type.failure_port:
                        ports[cid] = node_type.failure_port
                    else:
                        ended[cid] = "failed"
                elif result.get("defer_until") and result.get("awaiting"):
                    # the outcome comes later from outside: parked here until resume_page
                    stats.append([node_id, "waiting", "", 1])
                    ended[cid] = "waiting"
                    if parked is not None:
                        parked[cid] = node_id
                elif result.get("defer_until"):
                    # as in run_instant: a customer whose own timezone is still quiet waits for the next run
                    stats.append([node_id, "deferred", "", 1])
                    ended[cid] = "deferred"
                else:
                    ports[cid] = str(result.get("port") or "out")
                    if result.get("variables"):  # as the interpreter: an action's variables join the journey's
                        variables[cid] = {**variables.get(cid, {}), **result["variables"]}
        for cid in group:
            at.pop(cid, None)
        left: dict[str, int] = defaultdict(int)
        for cid, port in ports.items():
            left[port] += 1
            nxt = node["next"].get(port)
            if nxt is None:
                ended[cid] = "completed"
            else:
                at[cid] = nxt
        stats.extend([node_id, "left", port, count] for port, count in sorted(left.items()))
        if heartbeat is not None:
            heartbeat(node_id)
    for cid in at:  # not reached in topological order (a node outside the flow): as run_instant fails it
        ended.setdefault(cid, "failed")
    return {cid: ended[cid] for cid in customer_ids}


def resume_page(flow: dict[str, Any], run_key: str, node_id: str, customer_ids: list[str], services: Services,
                variables: dict[str, dict[str, Any]] | None = None, heartbeat: Callable[[Any], None] | None = None,
                claim: Callable[[Session, list[str]], bool] | None = None) -> dict[str, str]:
    """Walk on for broadcast customers parked at ``node_id`` (an action that awaited an outside outcome):
    the node runs again for them under the same keys — now with the outcome — and the rest of the flow
    follows, in bulk, as on their page (:func:`run_page`). Their statistics and journey rows are written in
    one transaction with ``claim(db, done)``, which the caller uses to mark these customers resumed: when it
    answers False another attempt already resumed them and nothing is counted twice. Customers still waiting
    stay parked. Returns how each one ended (``waiting`` for those)."""
    from engine.db.models import utcnow
    from engine.db.session import transaction
    from engine.journeys import add_stats

    stats: list[list[Any]] = []
    parked: dict[str, str] = {}
    outcomes = run_page(flow, customer_ids, run_key, stats, services, heartbeat, start=node_id, variables=variables,
                        parked=parked)
    done = [cid for cid in customer_ids if cid not in parked]
    now = utcnow()
    with transaction(services.database_url) as db:
        if claim is not None and not claim(db, done):
            return outcomes
        add_stats(db, flow["flow_id"], flow["version"], stats)
        # upserted: an outcome may come in before the page that parked them has written its rows
        _journey_rows(db, flow, run_key, outcomes, parked, now, replace=True)
    return outcomes


def _journey_rows(db: Session, flow: dict[str, Any], run_key: str, outcomes: dict[str, str],
                  parked: dict[str, str], now: datetime, replace: bool) -> None:
    """A journey row per broadcast customer (no workflow): re-entry rules and the customer's history see it.
    ``replace`` overwrites a row that exists (a resume); otherwise an existing row wins (a page that a resume
    of its parked customers overtook)."""
    from sqlalchemy import Table
    from sqlalchemy.dialects import postgresql, sqlite

    from engine.db import models

    if not outcomes:
        return
    journeys = models.Journey.__table__
    assert isinstance(journeys, Table)
    rows = [{"workflow_id": instance_id(flow["flow_id"], run_key, cid), "flow_id": flow["flow_id"],
             "version": flow["version"], "customer_id": cid, "status": outcome, "current_node": parked.get(cid),
             "started_at": now, "updated_at": now, "ended_at": None if cid in parked else now, "checkpoint": 0}
            for cid, outcome in outcomes.items()]
    stmt = (postgresql.insert(journeys) if db.get_bind().dialect.name == "postgresql" else sqlite.insert(journeys))
    if replace:
        stmt = stmt.on_conflict_do_update(index_elements=["workflow_id"], set_={
            "status": stmt.excluded.status, "current_node": stmt.excluded.current_node,
            "updated_at": stmt.excluded.updated_at, "ended_at": stmt.excluded.ended_at})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=["workflow_id"])
    db.execute(stmt, rows)


class BroadcastActivities:
    """Paging and bulk delivery, bound to one worker's services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @activity.defn(name="broadcast.page")
    def page(self, flow: dict[str, Any], cursor: str | None, size: int) -> dict[str, Any]:
        ids, nxt = customer_page(flow, cursor, size, self.services.database_url)
        return {"ids": ids, "cursor": nxt}

    @activity.defn(name="broadcast.deliver")
    def deliver(self, flow: dict[str, Any], run_key: str, ids: list[str]) -> dict[str, Any]:
        """Run a page of customers through the flow: in bulk when it has no waits, else one journey each."""

        from engine.compiler import has_waits
        from engine.db.session import transaction
        from engine.journeys import add_stats

        services = self.services
        if has_waits(flow):
            if services.start_flow is None:
                raise RuntimeError("journey start is not available in this process")
            started = 0
            for cid in ids:
                if services.run_async(services.start_flow(flow, cid, run_key)):
                    started += 1
                activity.heartbeat(cid)
            return {"done": len(ids), "journeys": started}
        from engine.actions import recorded_result
        from engine.db import models
        from engine.db.session import session_factory

        # one ledger row per page: a retried or repeated page runs its (idempotent) actions again
        # but counts its statistics once
        page_key = f"page/{flow['flow_id']}/v{flow['version']}/{run_key}/{ids[0]}/{ids[-1]}/{len(ids)}"
        with session_factory(services.database_url)() as db:
            done = recorded_result(db, page_key)
        if done is not None:
            return done
        from engine.db.models import utcnow
        from engine.router import entry_history, may_enter

        with session_factory(services.database_url)() as db:
            history = entry_history(db, [flow["flow_id"]], ids)
        now = utcnow()
        entry = flow["settings"]["entry"]
        entering = [cid for cid in ids if may_enter(entry, history.of(flow["flow_id"], cid), now)[0]]
        stats: list[list[Any]] = []
        outcomes: dict[str, int] = defaultdict(int)
        ended: list[tuple[str, str]] = []
        parked: dict[str, str] = {}
        # node by node for the whole page (bulk actions where a node offers them), as run_instant per customer
        for cid, outcome in run_page(flow, entering, run_key, stats, services, activity.heartbeat,
                                     parked=parked).items():
            outcomes[outcome] += 1
            ended.append((cid, outcome))
        result = {"done": len(ids), "entered": len(entering), "outcomes": dict(outcomes)}
        with transaction(services.database_url) as db:
            if recorded_result(db, page_key) is None:
                db.add(models.LedgerEntry(key=page_key, kind="broadcast.page", result=result))
                add_stats(db, flow["flow_id"], flow["version"], stats)
                # Core insert: a thousand ORM objects cost more than the page's messages
                _journey_rows(db, flow, run_key, dict(ended), parked, now, replace=False)
        return result


@workflow.defn(name=BROADCAST_WORKFLOW)
class BroadcastWorkflow:
    """Pages an audience (segment or date trigger) and hands each page to ``broadcast.deliver``;
    continues-as-new every 50 pages."""

    @workflow.run
    async def run(self, inp: BroadcastInput) -> dict[str, Any]:
        cursor = inp.cursor
        done = inp.sent
        if not inp.run_key:  # scheduled run: one key per local day, so a re-run enters nobody twice
            tz = ZoneInfo(str(inp.flow["settings"].get("timezone") or "UTC"))
            inp.run_key = workflow.now().astimezone(tz).date().isoformat()
        size = int(inp.flow["nodes"][inp.flow["trigger"]]["config"].get("batch_size") or inp.page_size)
        retry = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=2))
        quiet = inp.flow["settings"].get("quiet_hours")
        if quiet and cursor is None and workflow.patched("broadcast-quiet-hours-v1"):
            from engine.policies import quiet_until

            until = quiet_until(workflow.now(), str(inp.flow["settings"].get("timezone") or "UTC"),
                                quiet["start"], quiet["end"])
            if until is not None:  # a broadcast starts when the flow's quiet hours end
                await workflow.sleep(until - workflow.now())
        for _ in range(50):
            page = await workflow.execute_activity(
                "broadcast.page", args=[inp.flow, cursor, size], start_to_close_timeout=PAGE_TIMEOUT,
                retry_policy=retry)
            if page["ids"]:
                result = await workflow.execute_activity(
                    "broadcast.deliver", args=[inp.flow, inp.run_key, page["ids"]],
                    start_to_close_timeout=PAGE_TIMEOUT, heartbeat_timeout=timedelta(minutes=2), retry_policy=retry)
                done += int(result["done"])
            cursor = page["cursor"]
            if cursor is None:
                return {"customers": done}
        workflow.continue_as_new(BroadcastInput(flow=inp.flow, run_key=inp.run_key, page_size=size,
                                                cursor=cursor, sent=done))
