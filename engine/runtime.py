"""Data that crosses the workflow ↔ activity boundary. Plain dataclasses: stable, JSON-encoded.

No ``from __future__ import annotations`` here: Temporal's payload converter calls ``typing.get_type_hints`` on
the dataclass each time it decodes one (a journey's input in every new workflow run, an action's request in
every activity), and string annotations are compiled and evaluated anew each time — 0.1 ms per ActionRequest
outside the workflow sandbox, more inside it (docs/performance.md, eighth round)."""

from dataclasses import dataclass, field
from typing import Any

JOURNEY_WORKFLOW = "Journey"
BROADCAST_WORKFLOW = "Broadcast"


@dataclass
class JourneyInput:
    """Start arguments of a journey: the compiled flow version travels with it (replay never
    depends on the database), plus who it is for and what started it."""

    flow: dict[str, Any]
    customer_id: str | None
    entry_event: dict[str, Any] | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    simulate: bool = False
    #: set when continuing as new: where to pick up
    resume: dict[str, Any] | None = None


@dataclass
class ActionRequest:
    """What an action activity gets. ``key`` is ``<workflow id>/<node id>/<visit>``."""

    key: str
    workflow_id: str
    flow_id: str
    version: int
    node_id: str
    node_type: str
    config: dict[str, Any]
    customer_id: str | None
    variables: dict[str, Any] = field(default_factory=dict)
    event: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    simulate: bool = False
    #: the journey's clock (workflow time) when it asked; previews run on simulated time
    now: str | None = None
    #: {"continues": [ports that lead to another node], "status": "completed", "stats": [pending node
    #: statistics]}: when the action leaves by another port the journey ends there, and the action writes
    #: the journey's last checkpoint in the transaction that records its own result (no extra local
    #: activity); its result says so with ``"checkpointed": <status>``
    checkpoint: dict[str, Any] | None = None
    #: when the event that led to this action was received (ISO): the worker observes event → action latency
    measure_from: str | None = None


@dataclass
class Checkpoint:
    """A batch of per-node statistics and the journey's status, written by one local activity
    when the journey blocks or ends — never one write per node."""

    key: str
    workflow_id: str
    flow_id: str
    version: int
    customer_id: str | None
    status: str
    node: str | None
    #: [node id, metric, port, delta]
    stats: list[list[Any]] = field(default_factory=list)
    simulate: bool = False
    #: why the journey failed (a node's error), for the journey API and page
    error: str | None = None


@dataclass
class BroadcastInput:
    flow: dict[str, Any]
    run_key: str
    page_size: int = 1000
    cursor: str | None = None
    sent: int = 0
