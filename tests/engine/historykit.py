"""Workflow histories for the replay test (tests/engine/test_replay.py): with TIDEFLOW_RECORD_HISTORIES=1 a test
keeps its run's history in tests/histories, which the replay test then replays against the current workflow code."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowHistory

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
RECORD = os.environ.get("TIDEFLOW_RECORD_HISTORIES") == "1"


def keep(history: WorkflowHistory, name: str) -> None:
    """With TIDEFLOW_RECORD_HISTORIES=1, write ``history`` to tests/histories/<name>.json."""
    if RECORD:
        (HISTORIES / f"{name}.json").write_text(json.dumps(json.loads(history.to_json()), indent=1))


async def record(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """With TIDEFLOW_RECORD_HISTORIES=1, keep this run's history for the replay test."""
    if RECORD:
        keep(await handle.fetch_history(), name)
