"""Determinism guard: recorded journey histories must replay on today's interpreter.

A change to engine/interpreter.py that alters the commands a running journey issues
makes this fail. Guard such a change with ``workflow.patched(...)`` and record new
histories with ``TIDEFLOW_RECORD_HISTORIES=1 pytest tests/engine/test_journey_workflow.py``
(keeping the old ones: running journeys still have them).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from engine.worker import PASSTHROUGH, workflows

HISTORIES = sorted((Path(__file__).resolve().parent.parent / "histories").glob("*.json"))


def test_histories_are_kept() -> None:
    assert len(HISTORIES) >= 3, "tests/histories/ must hold recorded journey histories"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    replayer = Replayer(
        workflows=workflows(),
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)),
    )
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await replayer.replay_workflow(history)
