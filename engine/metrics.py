"""Prometheus metrics of the event pipeline, shared by the web and worker processes (each exposes its own:
the web app at ``/metrics``, a worker on ``TIDEFLOW_WORKER_METRICS_PORT``). docs/operations.md explains them."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from prometheus_client import Counter, Gauge, Histogram

#: seconds: fine below 100 ms (the paced target), coarse up to the overload bound and beyond
LATENCY_BUCKETS = (0.005, 0.01, 0.015, 0.025, 0.04, 0.06, 0.1, 0.15, 0.25, 0.5, 1, 2, 3, 5, 10, 30)

BACKLOG = Gauge("tideflow_routing_backlog", "Events stored and admitted by this web process, waiting for or in "
                "routing")
TEMPORAL_BACKLOG = Gauge("tideflow_temporal_backlog_tasks", "Tasks waiting in Temporal's workflow and activity "
                         "task queues (sampled by the web process every 250 ms)")
TEMPORAL_BACKLOG_AGE = Gauge("tideflow_temporal_backlog_age_seconds", "Age of the oldest task waiting in "
                             "Temporal's workflow or activity task queue")
ADMISSION = Counter("tideflow_admission_refused_total", "Ingestion requests refused with 429 because the backlog "
                    "would break the latency bound (latency), overflow (capacity) or exceed the rate the "
                    "workers complete events at while they are behind (rate)", ["reason"])
STAGE = Histogram("tideflow_stage_seconds", "Time per pipeline stage: store (request's events in one transaction), "
                  "queue (waiting for a routing lane), route (flows started, journeys signalled), commit (group "
                  "commit of routing outcomes), pickup (event received → its first action starts, worker), "
                  "action (the first action runs and commits, worker)", ["stage"], buckets=LATENCY_BUCKETS)
EVENT_TO_ACTION = Histogram("tideflow_event_to_action_seconds", "Event received by Tideflow → the first action it "
                            "caused has committed (worker clock; one observation per journey step an event "
                            "triggered)", buckets=LATENCY_BUCKETS)
COMMIT_SIZE = Histogram("tideflow_routing_commit_events", "Events whose routing outcome one group commit wrote",
                        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
for _reason in ("latency", "capacity", "rate"):
    ADMISSION.labels(_reason)


class LagTracker:
    """The worst event → action latency this worker saw lately: admission control's direct signal (a worker
    writes it to the database every second — engine.pipeline.report_lag — and web processes read it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._worst = 0.0
        self._seen = 0

    def observe(self, seconds: float) -> None:
        EVENT_TO_ACTION.observe(seconds)
        with self._lock:
            self._worst = max(self._worst, seconds)
            self._seen += 1

    def take(self) -> tuple[float, int]:
        """(worst latency, observations) since the last call."""
        with self._lock:
            worst, seen = self._worst, self._seen
            self._worst, self._seen = 0.0, 0
        return worst, seen


LAG = LagTracker()


class PickupTracker:
    """Journeys this process started eagerly whose first step has not started yet: in one process (the worker
    in the web process, ``TIDEFLOW_WORKER_IN_WEB``) what Temporal's task queue holds for workers elsewhere.
    Eager start hands a journey's first workflow task to the worker in the start's answer, so it never waits
    where Temporal counts it (engine.pipeline.task_queue_backlog); it waits here, and admission reads its age
    at once instead of the worker's latency reports a second or more later (engine.admission.worker_latency).

    The router notes a journey it started eagerly (:meth:`started`), the worker's activity interceptor its
    first step (:meth:`picked`: every journey's first workflow task runs a local activity — its action, its
    customer's profile, or a checkpoint). Both run on the event loop the web app and its worker share, so
    there is no lock; in a process without an embedded worker nothing is ever noted."""

    def __init__(self) -> None:
        #: workflow id → monotonic seconds it was started, oldest first
        self._started: OrderedDict[str, float] = OrderedDict()

    def started(self, workflow_id: str, at: float) -> None:
        self._started.pop(workflow_id, None)
        self._started[workflow_id] = at

    def picked(self, workflow_id: str) -> None:
        if self._started:
            self._started.pop(workflow_id, None)

    def oldest(self, now: float, horizon: float) -> float:
        """Seconds the oldest journey still waiting for its first step has waited at ``now`` (0: none). One
        waiting longer than ``horizon`` is forgotten (a first workflow task that keeps failing never runs a
        step; by then the worker's own latency reports show a real backlog)."""
        started = self._started
        while started:
            workflow_id, at = next(iter(started.items()))
            if now - at <= horizon:
                return max(0.0, now - at)
            del started[workflow_id]
        return 0.0

    def __len__(self) -> int:
        return len(self._started)


PICKUP = PickupTracker()
WORKER_LAG = Gauge("tideflow_worker_lag_seconds", "Worst event → action latency the workers reported in the last "
                   "second (as the web process reads it for admission control)")
ADMISSION_CAPACITY = Gauge("tideflow_admission_capacity_events_per_second", "The workers' capacity as admission "
                           "remembers it since their last saturation (0: never saturated, or forgotten)")
ADMISSION_MODELLED_WAIT = Gauge("tideflow_admission_modelled_wait_seconds", "Wait before the first action that "
                                "this web process's admitted events predict, queued at its share of that capacity")
_ = time
