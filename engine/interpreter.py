"""The journey interpreter: one small workflow class that walks a compiled flow.

Workflow code is deterministic: no I/O, no wall clock, no randomness. Waits are
Temporal timers and ``wait_condition``; events arrive as the ``event`` signal;
exit and goal events are honoured at any point; statistics are batched into one
local activity when the journey blocks or ends; long journeys continue-as-new.

Any change here that alters the commands a running journey issues must be
guarded with ``workflow.patched`` and covered by the replay test
(tests/engine/test_replay.py) over the histories in tests/histories/.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

#: the activity id of the retries of a short action's first try (see ``_local_then_activity``)
RETRIES_PREFIX = "retries-"

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from engine import expressions
    from engine.durations import parse_duration
    from engine.event_match import event_matches as _matches
    from engine.nodes.base import Context, NodeType
    from engine.registry import default_registry
    from engine.runtime import JOURNEY_WORKFLOW, ActionRequest, Checkpoint, JourneyInput
    from wording import Msg, message_of, verbatim
    from wording.stored import MAX_REASON, stored, stored_english, stored_msg

#: journeys started before expressions were metered op by op replay with the old, looser bound (about the
#: deadlock detector's 2 s), so a condition that passed then passes on replay too
COST_PATCH = "expression-cost-v2"
LEGACY_EXPRESSION_STEPS = 20 * expressions.MAX_STEPS
#: journeys continue-as-new once their history is this long (or when Temporal suggests it)
HISTORY_LIMIT = 4000
#: the event a staff handover sends each moved customer's journeys (activities/workforce/handovers.py)
OWNER_CHANGED = "wecom.owner_changed"
#: at most this many event ids are remembered for de-duplication
SEEN_LIMIT = 500
#: journeys started from here on end an action's deferral early when the ``wake`` signal names its key
WAKE_PATCH = "action-wake-v1"
#: journeys started from here on without a start signal (eager start) take their entry event as the signal
#: would have delivered it; journeys signalled-with-start had it before ``run`` and never ask
ENTRY_EVENT_PATCH = "entry-event-without-signal-v1"
#: journeys failing from here on keep why as a stored ``Msg`` (``wording.stored``: shown in the reader's language);
#: a run that failed before replays with the English text it had
REASON_PATCH = "journey-reason-msg-v1"
#: journeys whose action fails from here on keep the activity's own ``Msg`` (the stored form in its failure's
#: details: ``engine.actions.failure_of``) in their reason instead of its English words; a run that failed before
#: replays with the words
ACTIVITY_REASON_PATCH = "activity-reason-msg-v1"
#: journeys reaching a node whose type this worker does not have from here on end like any failed journey: their
#: last checkpoint says ``failed`` (before, the workflow failed with no checkpoint and the journey stayed running)
MISSING_TYPE_PATCH = "missing-node-type-checkpoint-v1"
#: at most this many woken keys are remembered (a journey defers one action at a time)
WOKEN_LIMIT = 50
TIMELINE_LIMIT = 200


def carried_reason(failure: BaseException | None) -> Msg | None:
    """The :class:`Msg` a failure carries in the stored form as its first detail — an action's
    (``engine.actions.failure_of``), a journey's own (``REASON_PATCH``); None for any other failure (a timeout, a
    plugin's own ``ApplicationError``, one from before). Deterministic: read in the workflow too."""
    details = failure.details if isinstance(failure, ApplicationError) else ()
    return stored_msg(details[0]) if details and isinstance(details[0], str) else None


@workflow.defn(name=JOURNEY_WORKFLOW)
class JourneyWorkflow:
    @workflow.init
    def __init__(self, inp: JourneyInput) -> None:
        self.input = inp
        self.inbox: list[dict[str, Any]] = []
        self.seen: list[str] = []
        self.end_reason: str | None = None
        self.ctx = Context()
        self.settings: dict[str, Any] = inp.flow.get("settings") or {}
        self.started_at: str | None = None
        self.status = "running"
        self.node: str | None = None
        self.timeline: list[dict[str, Any]] = []
        self.stats: list[list[Any]] = []
        self.checkpoints = 0
        #: keys of deferred actions whose outside outcome is in (the ``wake`` signal)
        self.woken: list[str] = []
        #: why the journey failed, as saved: a stored ``Msg`` (``wording.stored``), or the English text of a run
        #: that failed before ``REASON_PATCH``
        self.error: str | None = None
        #: whether ``error`` is a stored Msg (journeys failing since ``REASON_PATCH``)
        self.reason_kept = False
        #: regular activities started to retry a short action's failed first try (their activity ids)
        self.retry_activities = 0
        #: what logic nodes run between two waits (or actions) may cost together: one bound per workflow task
        self.expression_steps = expressions.MAX_STEPS
        self.logic_budget = expressions.Budget(self.expression_steps)
        #: the status the last action already wrote as the journey's last checkpoint (see ``_act``)
        self.folded: str | None = None
        #: when the event that leads to the next action was received (event → action latency, worker side)
        self.measure_from: str | None = None

    # -- signals and queries -------------------------------------------------------------------
    @workflow.signal
    def event(self, evt: dict[str, Any]) -> None:
        evt_id = str(evt.get("id", ""))
        if evt_id and evt_id in self.seen:
            return
        if evt_id:
            self.seen.append(evt_id)
            del self.seen[:-SEEN_LIMIT]
        self.inbox.append(evt)
        if self.end_reason is not None:
            return
        if evt.get("type") == OWNER_CHANGED and workflow.patched("owner-changed-context-v1"):
            # a handover moved the customer to another staff member: a wait whose filter names the owner
            # (customer.wecom_follow_user) now waits on the new one, without waiting for the next step
            new_owner = (evt.get("payload") or {}).get("to")
            if isinstance(new_owner, str) and new_owner:
                self.ctx.customer = {**(self.ctx.customer or {}), "wecom_follow_user": new_owner}
        for index, match in enumerate(self.settings.get("exit_on") or []):
            if self._matches(match, evt, Msg("settings.exit_on.%(index)s.filter", index=index)):
                self.end_reason = "exited"
                self._note("exit", {"event": evt.get("type")})
                return
            if self.end_reason is not None:
                return
        goal = self.settings.get("goal")
        if goal and self._matches(goal, evt, Msg("settings.goal.filter")) and self._within_goal(goal):
            self.end_reason = "converted"
            self._note("goal", {"event": evt.get("type")})

    @workflow.signal
    def wake(self, key: str) -> None:
        """The outside outcome an action waits for (``ActionResult.awaiting``) is in: run it again now instead
        of at its ``defer_until``. A key the journey is not waiting on is remembered and harmless."""
        if key not in self.woken:
            self.woken.append(key)
            del self.woken[:-WOKEN_LIMIT]

    @workflow.signal
    def cancel(self, reason: str = "cancelled") -> None:
        if self.end_reason is None:
            self.end_reason = "cancelled"
            self._note("cancel", {"reason": reason})

    @workflow.query
    def state(self) -> dict[str, Any]:
        timeline = self.timeline if self.input.simulate else self.timeline[-50:]
        # "error" stays the English sentence it always was; "reason" is what is saved (wording.stored)
        return {"status": self.status, "node": self.node, "variables": self.ctx.vars, "timeline": timeline,
                "error": stored_english(self.error), "reason": self.error}

    # -- helpers --------------------------------------------------------------------------------
    def _matches(self, match: Any, evt: dict[str, Any], where: Msg) -> bool:
        """Whether ``evt`` is what ``match`` waits for; a filter past its bound fails the journey (with the
        reason) instead of silently never matching."""
        try:
            with expressions.shared_budget(expressions.Budget(self.expression_steps)):
                return _matches(match, evt, self.ctx, raise_too_costly=True)
        except expressions.ExpressionTooCostly as exc:
            if self.end_reason is None:
                self.end_reason = "failed"
                self._fail(Msg("%(where)s: %(detail)s", where=where, detail=message_of(exc)))
                self._note("failed", {"error": str(exc), "where": str(where)})
            return False

    def _fail(self, reason: Msg) -> None:
        """Keep why the journey failed: a stored ``Msg`` (its template and values — the node, the node type, the
        exception's own words — so each reader sees it in their language); replaying a run that failed before
        ``REASON_PATCH``, the English text it had."""
        if workflow.patched(REASON_PATCH):
            self.error, self.reason_kept = stored(reason, MAX_REASON), True
        else:
            self.error = str(reason)

    def _failure(self) -> ApplicationError:
        """The workflow's failure for the reason kept: the English as its message (Temporal's UI, logs, clients: as
        before) and, since ``REASON_PATCH``, the stored Msg as its only detail (``engine.journey_failures`` reads it
        back)."""
        english = stored_english(self.error) or ""
        if self.reason_kept:
            return ApplicationError(english, self.error, non_retryable=True)
        return ApplicationError(english, non_retryable=True)

    def _within_goal(self, goal: dict[str, Any]) -> bool:
        within = goal.get("within")
        if not within or not self.started_at:
            return True
        from datetime import datetime

        started = datetime.fromisoformat(self.started_at)
        return workflow.now() - started <= parse_duration(within)

    def _note(self, what: str, detail: dict[str, Any], node: str | None = None) -> None:
        entry = {"at": workflow.now().isoformat(), "what": what, "node": node or self.node, **detail}
        if what == "failed" and self.reason_kept:
            # beside the English "error": the reason as saved (a stored Msg), for the preview's reader
            entry["stored_error"] = self.error
        self.timeline.append(entry)
        if not self.input.simulate:
            del self.timeline[:-TIMELINE_LIMIT]

    def _count(self, node: str, metric: str, port: str = "", delta: int = 1) -> None:
        self.stats.append([node, metric, port, delta])

    async def _checkpoint(self, status: str) -> None:
        self.status = status
        self.checkpoints += 1
        flow = self.input.flow
        cp = Checkpoint(
            key=f"ckpt/{workflow.info().run_id}/{self.checkpoints}",
            workflow_id=workflow.info().workflow_id, flow_id=flow["flow_id"], version=flow["version"],
            customer_id=self.input.customer_id, status=status, node=self.node, stats=self.stats,
            simulate=self.input.simulate, error=self.error if status == "failed" else None,
        )
        await workflow.execute_local_activity(
            "journey.checkpoint", cp, start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
        )
        self.stats = []

    async def _refresh_context(self) -> None:
        if self.input.customer_id is None:
            return
        self.ctx.customer = await workflow.execute_local_activity(
            "journey.customer", self.input.customer_id, start_to_close_timeout=timedelta(seconds=30),
        )

    async def _node_type(self, node_id: str, name: str) -> type[NodeType]:
        """The node type ``name`` from this worker's registry. Missing (a plugin not installed here), the journey
        fails at the node as any failed journey does — its reason kept, its last checkpoint ``failed``, so the
        failure list shows it (docs/plugins.md: install a plugin on every worker before publishing flows that
        use it); a run that failed here before ``MISSING_TYPE_PATCH`` replays without that checkpoint."""
        node_type = default_registry().get(name)
        if node_type is not None:
            return node_type
        reason = Msg("node type '%(type)s' is not installed on this worker", type=name)
        if workflow.patched(MISSING_TYPE_PATCH):
            self._count(node_id, "entered")
            self._count(node_id, "failed")
            self._fail(reason)
            self._note("failed", {"error": str(reason)}, node_id)
            await self._checkpoint("failed")
            raise self._failure()
        if workflow.patched(REASON_PATCH):
            raise ApplicationError(str(reason), stored(reason, MAX_REASON), non_retryable=True)
        raise ApplicationError(str(reason), non_retryable=True)

    # -- the walk -------------------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: JourneyInput) -> dict[str, Any]:
        flow = inp.flow
        nodes: dict[str, dict[str, Any]] = flow["nodes"]
        info = workflow.info()
        resume = inp.resume or {}
        visits: dict[str, int] = dict(resume.get("visits") or {})
        self.seen = [*list(resume.get("seen") or []), *self.seen]
        self.started_at = resume.get("started_at") or workflow.now().isoformat()
        self.ctx = Context(event=inp.entry_event or {}, vars=dict(inp.variables),
                           journey={"id": info.workflow_id, "flow": flow["flow_id"], "version": flow["version"],
                                    "started_at": self.started_at})
        entry_id = str((inp.entry_event or {}).get("id") or "")
        if entry_id and not resume and entry_id not in self.seen and workflow.patched(ENTRY_EVENT_PATCH):
            # started without the start signal (eager start cannot carry one): the entry event goes through
            # what the signal does — de-duplication, exit and goal — as for a journey signalled-with-start
            self.event(dict(inp.entry_event or {}))
        if entry_id:
            self.seen.append(entry_id)
        if inp.entry_event and not resume:
            self.measure_from = inp.entry_event.get("received_at")
        stale = True
        node_id: str | None = resume.get("node") or flow["trigger"]
        if not workflow.patched(COST_PATCH):
            self.expression_steps = LEGACY_EXPRESSION_STEPS
        self.logic_budget = expressions.Budget(self.expression_steps)

        while node_id is not None:
            self.node = node_id
            node = nodes[node_id]
            node_type = await self._node_type(node_id, node["type"])
            if self.end_reason is not None:
                break
            visits[node_id] = visits.get(node_id, 0) + 1
            self._count(node_id, "entered")
            visit = visits[node_id]
            try:
                config = node_type.Config.model_validate(node["config"])
            except ValidationError as exc:  # e.g. a plugin upgrade that no longer accepts this config
                self._count(node_id, "failed")
                self._fail(Msg("node '%(node)s': config no longer valid for %(type)s", node=node_id,
                               type=node["type"]))
                self._note("failed", {"error": f"config no longer valid: {exc.error_count()} error(s)"}, node_id)
                await self._checkpoint("failed")
                raise self._failure() from None
            category = node["category"]
            port: str | None

            if category == "trigger":
                port = "out"
            elif category == "end":
                self.end_reason = getattr(node_type, "outcome", "completed")
                self._note(self.end_reason, {}, node_id)
                break
            elif category == "logic":
                if stale:
                    await self._refresh_context()
                    stale = False
                self.ctx.now = workflow.now()
                try:
                    # logic nodes run back to back share one bound, so no chain of them can hold the workflow
                    # task near the deadlock detector's limit
                    with expressions.shared_budget(self.logic_budget):
                        port = node_type.decide(config, self.ctx, info.workflow_id, node_id)
                except expressions.ExpressionError as exc:
                    self._count(node_id, "failed")
                    self._fail(Msg("node '%(node)s': %(detail)s", node=node_id, type=node["type"],
                                   detail=message_of(exc)))
                    self._note("failed", {"error": str(exc)}, node_id)
                    await self._checkpoint("failed")
                    raise self._failure() from None
            elif category == "wait":
                if stale:
                    await self._refresh_context()
                    stale = False
                port = await self._wait(node_id, node_type, config)
                stale = True
                self.logic_budget = expressions.Budget(self.expression_steps)
                if port is None:  # ended while waiting
                    break
            else:
                port = await self._act(node_id, node, node_type, visit)
                stale = True
                self.logic_budget = expressions.Budget(self.expression_steps)
                if port is None:
                    if self.end_reason is not None:  # exit or goal while the action was deferred
                        break
                    return await self._finish("failed")

            if self.folded is None:  # else the action wrote it with the journey's last checkpoint
                self._count(node_id, "left", port)
            self._note("step", {"port": port, "type": node["type"]}, node_id)
            node_id = node["next"].get(port)
            if node_id is not None and self._should_continue_as_new():
                await self._checkpoint("running")
                workflow.continue_as_new(JourneyInput(
                    flow=flow, customer_id=inp.customer_id, entry_event=inp.entry_event, variables=self.ctx.vars,
                    simulate=inp.simulate,
                    resume={"node": node_id, "visits": visits, "seen": self.seen, "started_at": self.started_at},
                ))
        if self.end_reason == "converted":
            self._count("__flow__", "converted")
        return await self._finish(self.end_reason or "completed")

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_LIMIT

    async def _finish(self, status: str) -> dict[str, Any]:
        if self.folded == status and not self.stats:
            self.status = status  # the last action wrote this checkpoint in its own transaction
        else:
            await self._checkpoint(status)
        result = {"status": status, "node": self.node, "variables": self.ctx.vars, "timeline": self.timeline}
        if status == "failed" and self.reason_kept:
            result["reason"] = self.error  # the stored Msg, for engine.journey_failures
        return result

    async def _wait(self, node_id: str, node_type: type[NodeType], config: Any) -> str | None:
        plan = node_type.wait_plan(config, self.ctx, workflow.now(), self.settings.get("timezone", "UTC"))
        cursor = len(self.inbox)
        found: dict[str, Any] = {}
        where = Msg("node '%(node)s': filter", node=node_id, type=self.input.flow["nodes"][node_id]["type"])

        def ready() -> bool:
            if self.end_reason is not None:
                return True
            for evt in self.inbox[cursor:]:
                for want in plan.events:
                    if self._matches(want, evt, where):
                        found["event"], found["port"] = evt, want.port
                        return True
                if self.end_reason is not None:
                    return True
            return False

        self._count(node_id, "waiting", "", 1)
        await self._checkpoint("waiting")
        timeout = plan.timeout
        try:
            if timeout is not None and timeout <= timedelta(0):
                if not ready():
                    raise TimeoutError
            else:
                await workflow.wait_condition(ready, timeout=timeout)
            port = found.get("port")
            if port is not None:
                self.ctx.event = found["event"]
                self.measure_from = found["event"].get("received_at")
            else:
                self.measure_from = None
        except TimeoutError:
            port = plan.timeout_port
            self.measure_from = None
        self._count(node_id, "waiting", "", -1)
        self.status = "running"
        if self.end_reason is not None:
            return None
        return str(port) if port is not None else plan.timeout_port

    async def _local_then_activity(self, node_type: type[NodeType], request: ActionRequest,
                                   retry: RetryPolicy) -> dict[str, Any]:
        """A short action's first try runs inside the workflow task (no activity task round trip); when it
        fails and may be retried, its retries run as a regular activity (the node's retry policy, one attempt
        fewer: the first try counts) — so
        an outside system that is down shows as a pending activity with its attempts and error (the journey
        page's "retrying", Temporal's own UI) instead of retries hidden inside the workflow task. The
        idempotency key is the same for every try."""
        try:
            return dict(await workflow.execute_local_activity(
                node_type.activity_name(), request, start_to_close_timeout=node_type.timeout,
                retry_policy=RetryPolicy(maximum_attempts=1)))
        except (ActivityError, ApplicationError) as exc:
            cause = exc.cause if isinstance(exc, ActivityError) else exc
            if isinstance(cause, ApplicationError) and (
                    cause.non_retryable or cause.type in (retry.non_retryable_error_types or ())):
                raise
            if retry.maximum_attempts == 1:
                raise
        # the node's attempts in all: this first try and the activity's; the id says which activities are the
        # retries of a first try (engine/journey_failures.py counts that try with them)
        self.retry_activities += 1
        rest = replace(retry, maximum_attempts=max(1, retry.maximum_attempts - 1)) if retry.maximum_attempts \
            else retry
        return dict(await workflow.execute_activity(
            node_type.activity_name(), request, start_to_close_timeout=node_type.timeout, retry_policy=rest,
            activity_id=f"{RETRIES_PREFIX}{self.retry_activities}"))

    async def _act(self, node_id: str, node: dict[str, Any], node_type: type[NodeType], visit: int) -> str | None:
        info = workflow.info()
        flow = self.input.flow
        # the journey's last checkpoint goes with its last action (one transaction, no local activity after it)
        fold = workflow.patched("final-checkpoint-with-action-v1")
        while True:
            plan = {"continues": sorted(node["next"]), "status": "completed", "stats": self.stats} if fold else None
            request = ActionRequest(
                key=f"{info.workflow_id}/{node_id}/{visit}", workflow_id=info.workflow_id,
                flow_id=flow["flow_id"], version=flow["version"], node_id=node_id, node_type=node["type"],
                config=node["config"], customer_id=self.input.customer_id, variables=self.ctx.vars,
                event=self.ctx.event, settings=self.settings, simulate=self.input.simulate,
                now=workflow.now().isoformat(), checkpoint=plan, measure_from=self.measure_from,
            )
            retry = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                                maximum_interval=timedelta(minutes=5), maximum_attempts=node_type.max_attempts)
            try:
                result: dict[str, Any]
                # short steps idempotent by their key run inside the workflow task: no activity task round trip
                if node_type.runs_locally() and workflow.patched("local-actions-v1"):
                    if workflow.patched("local-action-then-activity-v1"):
                        result = await self._local_then_activity(node_type, request, retry)
                    else:
                        result = await workflow.execute_local_activity(
                            node_type.activity_name(), request, start_to_close_timeout=node_type.timeout,
                            retry_policy=retry)
                else:
                    result = await workflow.execute_activity(
                        node_type.activity_name(), request, start_to_close_timeout=node_type.timeout,
                        retry_policy=retry)
            except (ActivityError, ApplicationError) as exc:  # a local activity's failure may come unwrapped
                cause = exc.cause
                failure = cause if cause is not None and isinstance(exc, ActivityError) else exc
                message = str(failure)
                # the activity's own Msg when it sent one (our actions do); else its words, shown as they are
                said = carried_reason(failure)
                detail = said if said is not None and workflow.patched(ACTIVITY_REASON_PATCH) else verbatim(message)
                self._fail(Msg("node '%(node)s': %(detail)s", node=node_id, type=node["type"], detail=detail))
                self._count(node_id, "failed")
                self._note("failed", {"error": message}, node_id)
                return node_type.failure_port
            self.measure_from = None
            if result.get("defer_until") and workflow.patched("action-deferral-v1"):
                # quiet hours and the like: wait durably, then run the same node (same key) again
                if not await self._defer(node_id, result):
                    return None
                continue
            break
        if result.get("checkpointed"):
            self.folded = str(result["checkpointed"])
            self.stats = []  # written with it
        self.ctx.vars = {**self.ctx.vars, **(result.get("variables") or {})}
        if result.get("detail"):
            self._note("action", {"detail": result["detail"]}, node_id)
        return str(result.get("port") or "out")

    async def _defer(self, node_id: str, result: dict[str, Any]) -> bool:
        """Wait until ``result['defer_until']`` — or, for an outcome from outside (``result['awaiting']``), until
        the ``wake`` signal names it; False when the journey ended meanwhile."""
        from datetime import datetime

        until = datetime.fromisoformat(result["defer_until"])
        self._note("deferred", {"until": result["defer_until"], "detail": result.get("detail") or {}}, node_id)
        self._count(node_id, "waiting", "", 1)
        await self._checkpoint("waiting")
        delay = until - workflow.now()
        # an outcome from outside (a staff member confirming a WeCom mass send) ends the wait when it is in
        awaiting = str(result.get("awaiting") or "")
        wakeable = bool(awaiting) and workflow.patched(WAKE_PATCH)
        if delay > timedelta(0) and not (wakeable and awaiting in self.woken):
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self.end_reason is not None or (wakeable and awaiting in self.woken), timeout=delay)
        if wakeable and awaiting in self.woken:
            self.woken.remove(awaiting)  # used: a run that is still waiting waits for the next wake
        self._count(node_id, "waiting", "", -1)
        self.status = "running"
        return self.end_reason is None
