"""The workforce's durable workflows (Temporal): handovers, mass sends and the archive pull.

Workflow code is deterministic: no I/O, no wall clock; everything that touches WeCom or the database is
an activity (activities/workforce/runtime.py) named here by string. They are registered with the
worker through the entry point group ``tideflow.worker_workflows``.

* :class:`HandoverWorkflow` — ``handover/<id>``: the planned calls day by day (a member's groups go at
  most 300 a day), then the 24 h takeovers are waited out on durable timers and ``transfer_result``
  is polled until every customer is final. A rate limit is an activity retry after WeCom's hint.
* :class:`MassSendWorkflow` — ``mass-send/<id>``: creates each sender's task, then polls the tasks
  (waiting for staff confirmation) and per-recipient results until all are final or the deadline
  passes; deferred recipients (at their allowance) are sent when their next window opens.
* :class:`SyncWorkflow` — ``workforce-sync/<connector>``: pulls the conversation archive now and then
  (the catch-up) and whenever ``archive_notify`` is signalled (the msgaudit_notify callback, at most
  every 15 s); syncs a group when ``group_changed`` is signalled and all groups now and then.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

HANDOVER_WORKFLOW = "WorkforceHandover"
MASS_SEND_WORKFLOW = "WorkforceMassSend"
SYNC_WORKFLOW = "WorkforceSync"

#: activities retry on busy / rate-limited WeCom for ever (a rate limit sets its own next delay)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=10), non_retryable_error_types=["WorkforceRejected"])
ACTIVITY_TIMEOUT = timedelta(minutes=30)
MIN_POLL = timedelta(minutes=1)
MAX_POLL = timedelta(hours=25)


def handover_workflow_id(handover_id: int) -> str:
    return f"handover/{handover_id}"


def mass_send_workflow_id(mass_send_id: int) -> str:
    return f"mass-send/{mass_send_id}"


def sync_workflow_id(connector_id: str) -> str:
    return f"workforce-sync/{connector_id}"


def _until(now: datetime, due: str | None, default: timedelta) -> timedelta:
    if not due:
        return default
    delay = datetime.fromisoformat(due) - now + timedelta(seconds=30)
    return min(MAX_POLL, max(MIN_POLL, delay))


@dataclass
class HandoverInput:
    handover_id: int
    connector_id: str
    days: int = 1


@workflow.defn(name=HANDOVER_WORKFLOW)
class HandoverWorkflow:
    def __init__(self) -> None:
        self.cancelled = False
        self.phase = "starting"
        self.waiting = 0

    @workflow.signal
    def cancel(self) -> None:
        """Send nothing more; takeovers already started are still followed to the end."""
        self.cancelled = True

    @workflow.query
    def state(self) -> dict[str, Any]:
        return {"phase": self.phase, "waiting": self.waiting, "cancelled": self.cancelled}

    async def _act(self, name: str, *args: Any) -> Any:
        return await workflow.execute_activity(name, args=list(args), start_to_close_timeout=ACTIVITY_TIMEOUT,
                                               heartbeat_timeout=timedelta(minutes=5), retry_policy=RETRY)

    @workflow.run
    async def run(self, inp: HandoverInput) -> dict[str, Any]:
        await self._act("workforce.handover_begin", inp.handover_id)
        for day in range(max(1, inp.days)):
            if day:
                self.phase = f"waiting for day {day + 1} (300 groups a day)"
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(lambda: self.cancelled, timeout=timedelta(days=1))
            if self.cancelled:
                break
            self.phase = f"sending day {day + 1}"
            await self._act("workforce.handover_send", inp.handover_id, day)
        while True:
            self.phase = "following takeovers"
            result = await self._act("workforce.handover_poll", inp.handover_id)
            self.waiting = int(result["waiting"])
            if not self.waiting:
                break
            self.phase = "waiting for takeovers (24 h)"
            await workflow.sleep(_until(workflow.now(), result.get("next_check"), timedelta(hours=1)))
        self.phase = "done"
        final: dict[str, Any] = await self._act("workforce.handover_finish", inp.handover_id, self.cancelled)
        return final


@dataclass
class MassSendInput:
    mass_send_id: int
    connector_id: str
    poll_seconds: int = 600


@workflow.defn(name=MASS_SEND_WORKFLOW)
class MassSendWorkflow:
    def __init__(self) -> None:
        self.cancelled = False
        self.phase = "starting"

    @workflow.signal
    def cancel(self) -> None:
        self.cancelled = True

    @workflow.query
    def state(self) -> dict[str, Any]:
        return {"phase": self.phase, "cancelled": self.cancelled}

    async def _act(self, name: str, *args: Any) -> Any:
        return await workflow.execute_activity(name, args=list(args), start_to_close_timeout=ACTIVITY_TIMEOUT,
                                               heartbeat_timeout=timedelta(minutes=5), retry_policy=RETRY)

    @workflow.run
    async def run(self, inp: MassSendInput) -> dict[str, Any]:
        poll = timedelta(seconds=max(30, inp.poll_seconds))
        while True:
            if self.cancelled:
                await self._act("workforce.mass_send_cancel", inp.mass_send_id)
                self.phase = "cancelled"
            else:
                self.phase = "creating tasks"
                await self._act("workforce.mass_send_dispatch", inp.mass_send_id, workflow.now().isoformat())
            self.phase = "waiting for staff confirmation"
            # the workflow's clock decides deadlines and deferrals (so they hold on a time-skipping server too)
            result = await self._act("workforce.mass_send_collect", inp.mass_send_id, workflow.now().isoformat())
            if result.get("final"):
                break
            wake = poll
            if result.get("next_deferred"):
                wake = min(poll, _until(workflow.now(), result["next_deferred"], poll))
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self.cancelled, timeout=wake)
        self.phase = "done"
        summary: dict[str, Any] = result
        return summary


@dataclass
class SyncInput:
    connector_id: str
    interval_seconds: int = 300
    #: a full group sync every this many rounds (the callbacks sync single groups in between)
    group_every: int = 12
    rounds: int = 0


@workflow.defn(name=SYNC_WORKFLOW)
class SyncWorkflow:
    """One per WeCom connector: pull the archive (catch-up every ``interval_seconds``, at once on a
    ``archive_notify`` signal — the msgaudit_notify callback), sync a group on ``group_changed`` (the
    change_external_chat callback) and all groups now and then; continue as new now and then."""

    def __init__(self) -> None:
        self.notified = False
        self.chats: list[str] = []
        self.stopped = False

    @workflow.signal
    def archive_notify(self) -> None:
        self.notified = True

    @workflow.signal
    def group_changed(self, chat_id: str) -> None:
        if chat_id not in self.chats:
            self.chats.append(chat_id)

    @workflow.signal
    def stop(self) -> None:
        self.stopped = True

    @workflow.run
    async def run(self, inp: SyncInput) -> str:
        for index in range(200):
            chats, self.chats, self.notified = list(self.chats), [], False
            full = (inp.rounds * 200 + index) % max(1, inp.group_every) == 0
            result = await workflow.execute_activity(
                "workforce.sync", args=[inp.connector_id, chats, full], start_to_close_timeout=ACTIVITY_TIMEOUT,
                heartbeat_timeout=timedelta(minutes=5), retry_policy=RETRY)
            if result.get("stopped") or self.stopped:
                return "stopped"
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self.notified or bool(self.chats) or self.stopped,
                                              timeout=timedelta(seconds=max(15, inp.interval_seconds)))
            if self.stopped:
                return "stopped"
        workflow.continue_as_new(SyncInput(inp.connector_id, inp.interval_seconds, inp.group_every, inp.rounds + 1))
