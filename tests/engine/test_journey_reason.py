"""A journey that fails at a node keeps why as a stored ``Msg`` (``wording.stored``): the node, its type and the
exception's own words as values, so each reader sees it in their language — while the English stays what it
was for Temporal, the ``state`` query's ``error`` and the JSON API. A run that failed before replays with the
English text it had (``workflow.patched``). On Temporal's time-skipping server."""

from __future__ import annotations

import html
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    Replayer,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from designer.i18n import translate
from engine import journey_failures
from engine.db import models
from engine.db.failure_models import JourneyFailure
from engine.db.session import session_factory
from engine.runtime import JOURNEY_WORKFLOW, JourneyInput
from engine.worker import PASSTHROUGH, build_worker, workflows
from tests.designer.pages_kit import Browser, add_users, build_app
from tests.engine.flowkit import customer, flow, publish
from tests.engine.historykit import HISTORIES, record
from wording.stored import PREFIX, read_stored, stored_english

#: a condition a customer's own data can break: a division by their bag count
SPLIT_CHECK = flow("split-check", [
    ("start", "trigger.event", {"event": "custom.bill"}),
    ("check", "logic.condition", {"expr": "100 // customer.bags > 10"}),
    ("tag", "action.tag", {"add": ["big"]})],
    [("start", "out", "check"), ("check", "yes", "tag")])

#: a message whose template the same data breaks: the action is refused for good
SPLIT_SEND = flow("split-send", [
    ("start", "trigger.event", {"event": "custom.bill"}),
    ("hello", "action.send_message", {"template": "每袋 {{ 100 // customer.bags }} 元"}),
    ("done", "logic.exit", {})],
    [("start", "out", "hello"), ("hello", "out", "done")])

ENGLISH = "node 'check': cannot evaluate '100 // customer.bags > 10': integer division or modulo by zero"
CHINESE = "节点「check」：无法计算「100 // customer.bags > 10」：integer division or modulo by zero"


@pytest.fixture
def queue() -> str:
    return f"q-{uuid.uuid4().hex[:8]}"


async def _start(env: Any, queue: str, compiled: dict[str, Any], cid: str) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        JOURNEY_WORKFLOW, JourneyInput(flow=compiled, customer_id=cid,
                                       entry_event={"id": f"e-{cid}", "type": "custom.bill", "payload": {}}),
        id=f"journey/{compiled['flow_id']}/{cid}", task_queue=queue)


def _journey(db_url: str, wid: str) -> models.Journey:
    with session_factory(db_url)() as db:
        found = db.get(models.Journey, wid)
        assert found is not None
        return found


async def test_a_condition_that_cannot_be_evaluated_keeps_the_reason_as_a_msg(
        time_env: Any, db_url: str, queue: str) -> None:
    compiled = publish(db_url, SPLIT_CHECK)
    cid = customer(db_url, "王五", bags=0)
    async with build_worker(time_env.client, queue, db_url):
        handle = await _start(time_env, queue, compiled, cid)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        state = await handle.query("state")
        await record(handle, "logic_failed_reason_msg")
        failure = await journey_failures.read_failure(time_env.client, handle.id)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and str(cause) == ENGLISH  # Temporal's own text: as before
    assert state["error"] == ENGLISH and state["reason"].startswith(PREFIX)
    saved = _journey(db_url, handle.id).error
    assert saved is not None and saved.startswith(PREFIX) and stored_english(saved) == ENGLISH
    reason = read_stored(saved)
    assert reason.template == "node '%(node)s': %(detail)s"
    assert (reason.values["node"], reason.values["type"]) == ("check", "logic.condition")
    assert reason.values["detail"].template == "%(what)s: %(reason)s"  # the ExpressionError's own Msg, kept
    assert translate(reason, "zh-CN") == CHINESE and translate(reason, "en") == ENGLISH
    # what the failure list keeps: the Msg, with the node and its type from its values (not parsed out of text)
    assert failure is not None and str(failure.error) == ENGLISH and failure.error.template == reason.template
    assert (failure.node_id, failure.node_type, failure.kind) == ("check", "logic.condition", "logic")


async def test_an_action_refused_for_good_keeps_the_reason_as_a_msg(time_env: Any, db_url: str, queue: str) -> None:
    compiled = publish(db_url, SPLIT_SEND)
    cid = customer(db_url, "赵六", bags=0)
    async with build_worker(time_env.client, queue, db_url):
        handle = await _start(time_env, queue, compiled, cid)
        result = await handle.result()
        state = await handle.query("state")
        await record(handle, "action_failed_reason_msg")
    assert result["status"] == "failed" and result["reason"] == state["reason"]
    english = state["error"]
    assert english.startswith("node 'hello': ") and "division or modulo by zero" in english
    reason = read_stored(_journey(db_url, handle.id).error)
    assert str(reason) == english and (reason.values["node"], reason.values["type"]) == ("hello", "action.send_message")
    assert translate(reason, "zh-CN").startswith("节点「hello」：")  # the activity's words after it, as they are


#: what a reader of each language sees of SPLIT_SEND's failure: the activity's own words (the template's error)
SEND_ENGLISH = "template of node 'hello': cannot render template: integer division or modulo by zero"
SEND_CHINESE = "节点「hello」的模板：无法渲染模板：integer division or modulo by zero"


async def test_an_actions_refusal_crosses_temporal_as_its_msg(time_env: Any, db_url: str, queue: str) -> None:
    """The activity's failure keeps Temporal's English message and carries its Msg as the stored detail: the
    failure list and the journey's own reason say it in the reader's language."""
    compiled = publish(db_url, SPLIT_SEND)
    async with build_worker(time_env.client, queue, db_url):
        handle = await _start(time_env, queue, compiled, customer(db_url, "赵六", bags=0))
        assert (await handle.result())["status"] == "failed"
        state = await handle.query("state")
        await record(handle, "action_failed_activity_msg")
        failure = await journey_failures.read_failure(time_env.client, handle.id)
        history = await handle.fetch_history()
    # Temporal's own text (its UI, logs, clients): the English, as before
    markers = [e.marker_recorded_event_attributes for e in history.events if e.HasField(
        "marker_recorded_event_attributes") and e.marker_recorded_event_attributes.HasField("failure")]
    assert [m.failure.cause.message or m.failure.message for m in markers] == [SEND_ENGLISH]
    assert failure is not None and (failure.node_id, failure.node_type) == ("hello", "action.send_message")
    assert str(failure.error) == SEND_ENGLISH and failure.error.template == "template of node '%(node)s': %(detail)s"
    assert translate(failure.error, "zh-CN") == SEND_CHINESE and translate(failure.error, "en") == SEND_ENGLISH
    assert failure.retryable is False  # refused for good, as before
    # the journey's own reason (Journey.error, the state query): the node, then the activity's Msg — not its words
    assert state["error"] == f"node 'hello': {SEND_ENGLISH}"
    reason = read_stored(_journey(db_url, handle.id).error)
    assert reason.values["detail"].template == "template of node '%(node)s': %(detail)s"
    assert translate(reason, "zh-CN") == f"节点「hello」：{SEND_CHINESE}"
    assert translate(reason, "en") == state["error"]


@pytest.mark.parametrize(("change", "english", "chinese", "node", "kind"), [
    ({"config": {"expr": 5}}, "node 'check': config no longer valid for logic.condition",
     "节点「check」：设置已不适用于 logic.condition", "check", "logic"),
    ({"type": "plugin.gone"}, "node type 'plugin.gone' is not installed on this worker",
     "此 worker 上未安装节点类型「plugin.gone」", None, "engine"),
], ids=["config-no-longer-valid", "node-type-not-installed"])
async def test_a_node_the_worker_cannot_run_fails_with_a_msg(time_env: Any, db_url: str, queue: str,
                                                             change: dict[str, Any], english: str, chinese: str,
                                                             node: str | None, kind: str) -> None:
    compiled = publish(db_url, SPLIT_CHECK)
    compiled["nodes"]["check"].update(change)  # a plugin upgraded or removed since the flow was published
    async with build_worker(time_env.client, queue, db_url):
        handle = await _start(time_env, queue, compiled, customer(db_url, "王五", bags=0))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        if "type" in change:
            await record(handle, "node_type_missing_failed")
        failure = await journey_failures.read_failure(time_env.client, handle.id)
        assert await journey_failures.record_new_failures(time_env.client, db_url) == 1
    assert str(failed.value.cause) == english
    assert failure is not None and str(failure.error) == english and translate(failure.error, "zh-CN") == chinese
    assert (failure.node_id, failure.node_type, failure.kind) == (node, compiled["nodes"]["check"]["type"], kind)
    # like any failed journey: its last checkpoint says failed at the node, so the failure list keeps it
    journey = _journey(db_url, handle.id)
    assert (journey.status, journey.current_node, stored_english(journey.error)) == ("failed", "check", english)
    with session_factory(db_url)() as db:
        kept = db.get(JourneyFailure, handle.id)
        assert kept is not None and kept.node_id == "check" and translate(read_stored(kept.error), "zh-CN") == chinese


async def test_a_failed_journeys_reason_reads_in_each_language_and_the_api_stays_english(
        time_env: Any, db_url: str, queue: str, cheap_passwords: None) -> None:
    compiled = publish(db_url, SPLIT_CHECK)
    cid = customer(db_url, "王五", bags=0)
    async with build_worker(time_env.client, queue, db_url):
        handle = await _start(time_env, queue, compiled, cid)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        assert await journey_failures.record_new_failures(time_env.client, db_url) == 1
    add_users(db_url)
    app = build_app(db_url)
    chinese, english = Browser(app, "marketer"), Browser(app, "marketer", "en")
    for path in (f"/journeys/{handle.id}", "/journeys/failures"):
        zh = html.unescape(chinese.get(path + "?lang=zh-CN").text)
        en = html.unescape(english.get(path + "?lang=en").text)
        assert CHINESE in zh and "node 'check'" not in zh and PREFIX not in zh, path
        assert ENGLISH in en and PREFIX not in en, path

    # the JSON API answers the English sentence, in the same fields, as before
    one = english.get(f"/api/journeys/{handle.id}").json()
    assert one["failure"]["error"] == ENGLISH and one["failure"]["node"] == "check"
    listed = english.get("/api/journeys", params={"flow": "split-check"}).json()["journeys"]
    assert [j["error"] for j in listed] == [ENGLISH]

    # the words of the error match what the reader sees, never the saved form
    def found(browser: Browser, words: str, lang: str) -> int:
        return int(browser.get("/api/journeys/failed", params={"q": words, "lang": lang}).json()["total"])

    assert found(english, "DIVISION or modulo", "en") == 1
    assert found(chinese, "无法计算", "zh-CN") == 1 and found(chinese, "division", "zh-CN") == 1
    assert found(english, "无法计算", "en") == 0  # the reader's language and English: not every language
    assert found(english, PREFIX, "en") == found(english, "%(node)s", "en") == found(english, '"v"', "en") == 0
    page = html.unescape(chinese.get("/journeys/failures", params={"q": "节点「check」"}).text)
    assert "共 1 个失败的旅程" in page and CHINESE in page


# -- replaying runs that failed before the reason was a Msg ----------------------------------------------------

#: what each replayed run ended with (its result, or the failure it raised)
OUTCOMES: list[Any] = []


class _Outcome(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        try:
            result = await super().execute_workflow(input)
        except ApplicationError as exc:
            OUTCOMES.append(exc)
            raise
        OUTCOMES.append(result)
        return result


class _Watch(Interceptor):
    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _Outcome


async def _replayed(name: str) -> Any:
    """Replay tests/histories/<name>.json on today's interpreter (no nondeterminism) and say how it ended."""
    OUTCOMES.clear()
    replayer = Replayer(workflows=workflows(), interceptors=[_Watch()], workflow_runner=SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)))
    path: Path = HISTORIES / f"{name}.json"
    await replayer.replay_workflow(WorkflowHistory.from_json(name, path.read_text()))
    assert len(OUTCOMES) == 1
    return OUTCOMES[0]


async def test_runs_that_failed_before_replay_with_their_english_text() -> None:
    old_logic = await _replayed("logic_failed_before_reason_msg")
    assert isinstance(old_logic, ApplicationError) and str(old_logic) == ENGLISH and not old_logic.details
    old_action = await _replayed("action_failed_before_reason_msg")
    assert old_action["status"] == "failed" and "reason" not in old_action

    new_logic = await _replayed("logic_failed_reason_msg")
    assert isinstance(new_logic, ApplicationError) and str(new_logic) == ENGLISH
    assert len(new_logic.details) == 1 and stored_english(new_logic.details[0]) == ENGLISH
    assert new_logic.details[0].startswith(PREFIX)
    new_action = await _replayed("action_failed_reason_msg")
    assert new_action["status"] == "failed" and str(new_action["reason"]).startswith(PREFIX)


async def test_a_missing_node_type_replays_with_or_without_its_checkpoint() -> None:
    """A journey that failed at a node type not installed before ``missing-node-type-checkpoint-v1`` replays
    without the checkpoint it never wrote (no nondeterminism); one since, with it. Both fail with the same Msg."""
    english = "node type 'plugin.gone' is not installed on this worker"
    for name in ("node_type_missing_before_checkpoint", "node_type_missing_failed"):
        outcome = await _replayed(name)
        assert isinstance(outcome, ApplicationError) and str(outcome) == english, name
        assert stored_english(outcome.details[0]) == english and outcome.details[0].startswith(PREFIX), name


async def test_actions_that_failed_before_their_msg_was_read_replay_with_their_words() -> None:
    """A journey whose action failed on the interpreter before ``activity-reason-msg-v1`` replays with the
    activity's words as its reason's detail, even where the activity sent its Msg; one since, with the Msg."""
    before = await _replayed("action_failed_before_activity_msg")
    assert before["status"] == "failed"
    words = read_stored(before["reason"]).values["detail"]  # str() of the ApplicationError: its type first
    assert (words.template, str(words)) == ("%(detail)s", f"ActionFailed: {SEND_ENGLISH}")
    since = await _replayed("action_failed_activity_msg")
    assert since["status"] == "failed" and stored_english(since["reason"]) == f"node 'hello': {SEND_ENGLISH}"
    assert read_stored(since["reason"]).values["detail"].template == "template of node '%(node)s': %(detail)s"
