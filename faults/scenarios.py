"""The faults, one function each, run against the real stack (Temporal dev server, worker, web as processes).

Each scenario publishes its own flow, sends its own events (ids prefixed by the scenario), breaks something
while they are in flight, waits until the journeys are done and audits the books (:mod:`faults.books`).

In one process (``python -m faults --one-process``: the worker inside the web process, ``TIDEFLOW_WORKER_IN_WEB``,
as ``tideflow up --one-process`` runs it) every fault applies, two of them changed to fit (:data:`ONE_PROCESS`):
killing the worker kills the web process with it, so the callers meet a refused connection and send again; the
second worker on the task queue is a ``tideflow worker`` beside the one process.
"""

from __future__ import annotations

import itertools
import random
import signal
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text

from engine.events import CLAIM
from faults import pg
from faults.books import Expectation, Finding, Tally, audit, run_checks
from faults.clients import EventSender, FlakyGateway, HookSender
from tests.e2e.stack import E2EStack
from tests.pg import PostgresCluster

HOOK_SECRET = "whsec-faults-0123456789abcdef"  # noqa: S105 — a throwaway secret of the throwaway stack


@dataclass
class Row:
    """One line of the table."""

    fault: str
    load: str
    tally: Tally
    notes: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and not self.tally.duplicates and not self.tally.lost


@dataclass
class Harness:
    """One running stack and a database engine on its database."""

    stack: E2EStack
    engine: Engine
    size: int
    log: Callable[[str], None] = print
    #: give up waiting when nothing moved for this long (a worker that died mid-action is noticed by Temporal
    #: after the action's 30 s timeout; retries back off): a slow machine is waited for, a stuck run is not
    stall: float = 180
    #: the worker runs inside the web process (``TIDEFLOW_WORKER_IN_WEB``): there is no worker process
    one_process: bool = False
    rows: list[Row] = field(default_factory=list)
    senders: list[EventSender] = field(default_factory=list)

    # -- flows and events ------------------------------------------------------------------------------------
    def publish(self, flow_id: str, event_type: str, steps: list[tuple[str, str, dict[str, Any]]]) -> None:
        nodes = [("start", "trigger.event", {"event": event_type}), *steps]
        document = {"schema": "tideflow/flow@1", "id": flow_id, "name": f"fault: {flow_id}", "kind": "journey",
                    "nodes": [{"id": i, "type": t, "config": c} for i, t, c in nodes],
                    "edges": [{"from": a[0], "port": "out", "to": b[0]} for a, b in itertools.pairwise(nodes)]}
        self.stack.api("POST", "/api/flows", expect=201, json=document)
        self.stack.api("POST", f"/api/flows/{flow_id}/publish", expect=201)

    def sender(self) -> EventSender:
        assert self.stack.token
        sender = EventSender(self.stack.base_url, self.stack.token)
        self.senders.append(sender)
        return sender

    # -- the books -------------------------------------------------------------------------------------------
    def count(self, sql: str, **params: Any) -> int:
        with self.engine.connect() as c:
            return int(c.execute(text(sql), params).scalar() or 0)

    def messages(self, flow_id: str) -> int:
        return self.count("SELECT COUNT(*) FROM messages WHERE flow_id = :f AND status = 'sent'", f=flow_id)

    def wait_done(self, flow_id: str, journeys: int, statuses: tuple[str, ...] = ("completed",),
                  source: str | None = None) -> None:
        """Until ``journeys`` journeys of the flow ended and, with ``source``, as many of its events are no longer
        waiting to be routed (as the books audit afterwards, whatever this says). A journey can end long before
        its event is marked routed: when the process routing it dies after the start, the event waits for the
        re-router until the dead process's claim lapses (engine.events.CLAIM)."""
        placeholders = ", ".join(f"'{s}'" for s in statuses)
        try:
            self.wait_progress(lambda: self.count(f"SELECT COUNT(*) FROM journeys WHERE flow_id = :f "
                                                  f"AND status IN ({placeholders})", f=flow_id),
                               journeys, f"finished journeys of {flow_id}", every=1)
            if source is not None:
                self.wait_progress(lambda: self.count("SELECT COUNT(*) FROM events WHERE source = :s "
                                                      "AND status <> 'received'", s=source),
                                   journeys, f"events of {source} routed", every=1)
        except AssertionError as exc:
            self.log(f"  {exc}")

    def wait_messages(self, flow_id: str, at_least: int) -> None:
        self.wait_progress(lambda: self.messages(flow_id), at_least, f"messages of {flow_id}", every=0.1)

    def wait_progress(self, count: Callable[[], int], target: int, what: str, every: float) -> None:
        """Until ``count()`` reaches ``target``; fail when it has not moved for :attr:`stall` seconds."""
        last, moved = -1, time.monotonic()
        while True:
            now = count()
            if now >= target:
                return
            if now != last:
                last, moved = now, time.monotonic()
            elif time.monotonic() - moved > self.stall:
                raise AssertionError(f"{what}: {now} of {target}, no progress for {self.stall:.0f} s")
            time.sleep(every)

    def run(self, fault: str, scenario: Callable[[Harness], Row]) -> Row:
        self.log(f"fault: {fault} …")
        started = time.monotonic()
        try:
            row = scenario(self)
        except Exception as exc:
            self.log(traceback.format_exc())
            self.log(self.stack.logs_tail(3000))
            row = Row(fault, f"{self.size} events", Tally(), error=f"{type(exc).__name__}: {exc}"[:300])
        finally:
            for sender in self.senders:
                sender.close()
            self.senders.clear()
        row.fault = fault
        row.notes = (row.notes + "; " if row.notes else "") + f"{time.monotonic() - started:.0f} s"
        self.rows.append(row)
        self.log(f"  {row.tally.events_in} in, {row.tally.processed} processed, {row.tally.duplicates} duplicates, "
                 f"{row.tally.lost} lost — {row.notes}{' — ERROR ' + row.error if row.error else ''}")
        for finding in row.tally.findings:
            self.log(f"  ! {finding.check}: {finding.count} (e.g. {', '.join(finding.examples[:3])})")
        return row


def event(prefix: str, i: int, event_type: str, **identities: str) -> dict[str, Any]:
    return {"id": f"{prefix}-{i}", "type": event_type, "source": prefix,
            "customer": {"external_id": f"{prefix}-c{i}", **identities}, "profile": {"name": f"客户{i}"}}


def dry_run(template: str) -> dict[str, Any]:
    return {"channel": "dry-run", "template": template, "category": "transactional"}


def _load(n: int, parallel: int, batch: int) -> str:
    return f"{n} events, {parallel} clients × {batch}/request"


def _finish(h: Harness, sender: EventSender, pool: Any, fault: str, source: str, expect: Expectation,
            n: int, parallel: int, batch: int, notes: str,
            extra: Callable[[Connection, Tally], None] | None = None) -> Row:
    pool.shutdown(wait=True)
    sender.close()
    if sender.errors:
        raise RuntimeError(f"callers gave up: {sender.errors[0]}")
    h.wait_done(expect.flow_id, len(sender.acknowledged), expect.statuses, source)
    tally = audit(h.engine, source, sender.acknowledged, expect, extra)
    return Row(fault, _load(n, parallel, batch), tally, f"{notes}; answers {sender.stats.summary()}")


# -- the scenarios ----------------------------------------------------------------------------------------------
def worker_killed(h: Harness) -> Row:
    """kill -9 the worker once a third of the messages exist; start a new one; every journey still finishes
    with each message and each coupon exactly once."""
    n, parallel, batch = h.size, 4, max(5, h.size // 25)
    flow, prefix = "fault-kill", "fault-kill"
    h.stack.api("POST", "/api/coupon-campaigns", expect=201, json={
        "id": "fault-kill-coupon", "name": "fault suite", "value": 500, "per_customer_limit": 1})
    h.publish(flow, "custom.fault_kill", [
        ("first", "action.send_message", dry_run("第一条 {{ customer.name }}")),
        ("pause", "wait.delay", {"duration": "PT2S"}),
        ("second", "action.send_message", dry_run("第二条 {{ customer.name }}")),
        ("coupon", "action.issue_coupon", {"campaign": "fault-kill-coupon"})])
    sender = h.sender()
    events = [event(prefix, i, "custom.fault_kill") for i in range(n)]
    if h.one_process:
        return _web_and_worker_killed(h, sender, events, flow, prefix, batch, parallel)
    pool = sender.send(events, batch, parallel)
    h.wait_messages(flow, max(1, 2 * n // 3))
    h.stack.kill("worker")
    at_kill = h.messages(flow)
    h.stack.start_worker()

    return _finish(h, sender, pool, "", prefix, Expectation(flow, ("first", "second")), n, parallel, batch,
                   f"killed at {at_kill}/{2 * n} messages", _coupons_once(sender))


def _coupons_once(sender: EventSender) -> Callable[[Connection, Tally], None]:
    """The kill fault's own books: one coupon per acknowledged customer, none twice."""

    def coupons(conn: Connection, tally: Tally) -> None:
        rows = conn.execute(text("SELECT customer_id, COUNT(*) FROM coupons WHERE campaign_id = 'fault-kill-coupon' "
                                 "GROUP BY customer_id")).all()
        twice = [f"{c}×{k}" for c, k in rows if k > 1]
        tally.add(Finding("coupon issued twice to one customer", "duplicate", len(twice), twice[:5]))
        missing = len(sender.acknowledged) - len(rows)
        tally.add(Finding("coupon not issued", "lost", max(0, missing), []))

    return coupons


def _web_and_worker_killed(h: Harness, sender: EventSender, events: list[dict[str, Any]], flow: str, prefix: str,
                           batch: int, parallel: int) -> Row:
    """The kill fault in one process: the worker dies with the web process. Half the events are sent; once a
    third of their messages exist the process is killed (journeys at every step, requests in flight, events
    stored and not yet routed, journeys started eagerly whose first task this process held); the other half
    is sent while it is down — the callers are refused a connection and send again — and it is started again."""
    n = len(events)
    first = sender.send(events[:n // 2], batch, parallel)
    h.wait_messages(flow, max(1, n // 3))
    killed_at = datetime.now(UTC)
    h.stack.kill("web")
    at_kill = h.messages(flow)
    refused_before = sender.stats.transport_errors
    pool = sender.send(events[n // 2:], batch, parallel)
    offset = h.stack.log_size("web")
    # the callers find the port closed (nothing listens until the new process is up); the restart's own start-up
    # takes seconds more, every one of them retried
    h.stack.start_web(wait=False)
    h.stack.wait_log("web", "worker on task queue", 120, after=offset)
    h.stack.wait_healthy("web", 120)
    first.shutdown(wait=True)
    row = _finish(h, sender, pool, "", prefix, Expectation(flow, ("first", "second")), n, parallel, batch,
                  f"one process: web + worker killed at {at_kill}/{2 * n} messages", _coupons_once(sender))
    if sender.stats.transport_errors == refused_before:
        row.error = "no caller was refused a connection while the web process was down"
    # what the kill caught: events the dead process had stored but not answered (sent again: `duplicate`), and
    # stored but not routed (routed later by the re-router, once the dead process's claim lapsed)
    again = sum(1 for answer in sender.answers.values() if answer.get("status") == "duplicate")
    with h.engine.connect() as conn:
        times = conn.execute(text("SELECT received_at, routed_at FROM events WHERE source = :s"), {"s": prefix}).all()
    late = sum(1 for received, routed in times if routed is not None and _seconds(routed, received) >= CLAIM_SECONDS)
    row.notes += f"; {again} stored before the kill and answered duplicate when sent again, {late} routed " \
                 f"{CLAIM_SECONDS:.0f} s or more after they arrived"
    # the events the dead process held: stored before the kill, routed after it — how long the last one waited
    held = [_seconds(routed, killed_at) for received, routed in times
            if routed is not None and _seconds(received, killed_at) < 0 <= _seconds(routed, killed_at)]
    if held:
        row.notes += f"; {len(held)} stored before the kill were routed after it, the last {max(held):.1f} s after it"
    return row


#: how long the process that stores an event holds it for routing (engine.events.CLAIM): an event routed this
#: long after it arrived was routed by the re-router, its first router gone
CLAIM_SECONDS = CLAIM.total_seconds()


def _seconds(later: datetime | str, earlier: datetime | str) -> float:
    """Seconds between two stored times (SQLite hands them back as text)."""
    def read(value: datetime | str) -> datetime:
        found = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        return found if found.tzinfo is not None else found.replace(tzinfo=UTC)  # stored in UTC

    return (read(later) - read(earlier)).total_seconds()


def workers_racing(h: Harness) -> Row:
    """A second worker on the same task queue: the two take activities and timers from each other. In one
    process the second is a ``tideflow worker`` beside the web process's own (journeys start eagerly on the
    web process's worker; their later tasks go to either)."""
    n, parallel, batch = h.size, 4, max(5, h.size // 25)
    flow, prefix = "fault-race", "fault-race"
    h.publish(flow, "custom.fault_race", [
        ("first", "action.send_message", dry_run("一 {{ customer.name }}")),
        ("pause", "wait.delay", {"duration": "PT1S"}),
        ("second", "action.send_message", dry_run("二 {{ customer.name }}")),
        ("tagged", "action.tag", {"add": ["fault-race"]})])
    offset = h.stack.log_size("worker-2")
    h.stack.spawn("worker-2", [*h.stack.tideflow(), "worker"])
    h.stack.wait_log("worker-2", "worker on task queue", 120, after=offset)
    try:
        sender = h.sender()
        pool = sender.send([event(prefix, i, "custom.fault_race") for i in range(n)], batch, parallel)
        return _finish(h, sender, pool, "", prefix, Expectation(flow, ("first", "second")), n, parallel, batch,
                       "one process + 1 worker process, 1 task queue" if h.one_process else "2 workers, 1 task queue")
    finally:
        h.stack.stop("worker-2")


def temporal_restarted(h: Harness, outage: float) -> Row:
    """Stop the Temporal dev server mid-run and start it again on its SQLite file. A third of the events is
    sent before, a third while it is down (stored, acknowledged, routed later by the re-router), a third after;
    timers and activities in flight resume."""
    n, parallel, batch = h.size, 4, 5
    flow, prefix = "fault-temporal", "fault-temporal"
    h.publish(flow, "custom.fault_temporal", [
        ("first", "action.send_message", dry_run("一 {{ customer.name }}")),
        ("pause", "wait.delay", {"duration": "PT2S"}),
        ("second", "action.send_message", dry_run("二 {{ customer.name }}"))])
    events = [event(prefix, i, "custom.fault_temporal") for i in range(n)]
    thirds = (events[:n // 3], events[n // 3:2 * n // 3], events[2 * n // 3:])
    sender = h.sender()
    sender.send(thirds[0], batch, parallel).shutdown(wait=True)
    h.wait_messages(flow, max(1, n // 6))
    h.stack.stop("temporal", signal.SIGTERM)
    stopped_at = h.messages(flow)
    down = time.monotonic()
    sender.send(thirds[1], batch, parallel).shutdown(wait=True)
    time.sleep(max(0.0, outage - (time.monotonic() - down)))
    h.stack.start_temporal(persist=True, timeout=120)
    pool = sender.send(thirds[2], batch, parallel)
    return _finish(h, sender, pool, "", prefix, Expectation(flow, ("first", "second")), n, parallel, batch,
                   f"down {outage:.0f} s at {stopped_at}/{2 * n} messages, {len(thirds[1])} events sent meanwhile")


def database_down(h: Harness, cluster: PostgresCluster, outage: float) -> Row:
    """PostgreSQL stopped for ``outage`` seconds during ingestion: a third of the events is sent before, a third
    while it is down (503 + Retry-After; the callers retry until it is back), a third after. Nothing is stored
    half-way, the worker's activities retry, nothing is lost."""
    n, parallel, batch = h.size, 4, 5
    flow, prefix = "fault-db", "fault-db"
    h.publish(flow, "custom.fault_db", [
        ("first", "action.send_message", dry_run("一 {{ customer.name }}")),
        ("pause", "wait.delay", {"duration": "PT1S"}),
        ("second", "action.send_message", dry_run("二 {{ customer.name }}"))])
    events = [event(prefix, i, "custom.fault_db") for i in range(n)]
    thirds = (events[:n // 3], events[n // 3:2 * n // 3], events[2 * n // 3:])
    sender = h.sender()
    sender.send(thirds[0], batch, parallel).shutdown(wait=True)
    h.engine.dispose()
    with pg.paused(cluster):
        during = sender.send(thirds[1], batch, parallel)
        time.sleep(outage)
    during.shutdown(wait=True)
    pool = sender.send(thirds[2], batch, parallel)
    row = _finish(h, sender, pool, "", prefix, Expectation(flow, ("first", "second")), n, parallel, batch,
                  f"PostgreSQL down {outage:.0f} s, {len(thirds[1])} events sent meanwhile")
    if not sender.stats.answers[503]:
        row.error = "no caller was answered 503 while the database was down"
    return row


def platform_misbehaving(h: Harness) -> Row:
    """The SMS gateway answers slowly, with 5xx and with 429: the text of every journey reaches it, each key
    taken once (a retry after a too-slow answer carries the same key, which the gateway dedupes)."""
    n, parallel, batch = h.size, 4, max(5, h.size // 25)
    flow, prefix = "fault-platform", "fault-platform"
    with FlakyGateway() as gateway:
        h.stack.api("PUT", "/api/connectors/fault-sms", expect=201, json={
            "kind": "sms", "name": "fault suite gateway", "secrets": {"api_key": "fault-key"},
            "settings": {"url": gateway.url, "timeout_seconds": 1}})
        h.publish(flow, "custom.fault_platform", [
            ("text", "action.send_message", {"channel": "sms", "template": "{{ customer.name }}，您好",
                                             "category": "transactional"})])
        sender = h.sender()
        pool = sender.send([event(prefix, i, "custom.fault_platform", phone=f"139{i:08d}") for i in range(n)],
                           batch, parallel)

        def at_the_gateway(conn: Connection, tally: Tally) -> None:
            keys = {str(k) for (k,) in conn.execute(text(
                "SELECT idempotency_key FROM messages WHERE flow_id = :f AND status = 'sent'"), {"f": flow})}
            missing = sorted(keys - set(gateway.log.taken))
            tally.add(Finding("sent per the books, never reached the gateway", "lost", len(missing), missing[:5]))
            phones: dict[str, int] = {}
            for phone in gateway.log.taken.values():
                phones[phone] = phones.get(phone, 0) + 1
            twice = [f"{p[:3]}****×{k}" for p, k in phones.items() if k > 1]
            tally.add(Finding("one phone got the text under two keys", "duplicate", len(twice), twice[:5]))

        row = _finish(h, sender, pool, "", prefix, Expectation(flow, ("text",)), n, parallel, batch, "", at_the_gateway)
        faults = ", ".join(f"{k} {v}" for k, v in sorted(gateway.log.faults.items()))
        row.notes = f"gateway: {faults}; {gateway.log.resent} resent after a timeout (deduped by key)"
    return row


def unanswered_starts(sender: EventSender) -> list[str]:
    """Accepted events whose answer names no started journey (each fault event enters a new customer into a
    flow listening to it, so every accepted event must name exactly one)."""
    return sorted(f"{i}: {a.get('started')}" for i, a in sender.answers.items()
                  if a.get("status") == "accepted" and len(a.get("started") or []) != 1)


def rerouter_racing(h: Harness) -> Row:
    """The re-router set to take every stored event at once (age 0, every 50 ms) while big batches from
    several clients are routed concurrently across customers. Each event must be routed once and each answer
    must name the journey its event started. (Regression: the reverted concurrent-batch attempt answered
    ``started: []`` when the re-router routed a stored event before the request did.)"""
    n, parallel, batch = h.size, 4, max(10, h.size // 4)
    flow, prefix = "fault-reroute", "fault-reroute"
    restart_web(h, {"TIDEFLOW_REROUTE_AFTER_SECONDS": "0", "TIDEFLOW_REROUTE_EVERY_SECONDS": "0.05"})
    try:
        h.publish(flow, "custom.fault_reroute", [
            ("hello", "action.send_message", dry_run("你好 {{ customer.name }}")),
            ("tagged", "action.tag", {"add": ["fault-reroute"]})])
        sender = h.sender()
        pool = sender.send([event(prefix, i, "custom.fault_reroute") for i in range(n)], batch, parallel)
        row = _finish(h, sender, pool, "", prefix, Expectation(flow, ("hello",)), n, parallel, batch,
                      "re-router every 50 ms, no age")
        wrong = unanswered_starts(sender)
        if wrong:
            row.error = f"{len(wrong)} accepted events answered without their journey (e.g. {', '.join(wrong[:3])})"
        return row
    finally:
        restart_web(h, {"TIDEFLOW_REROUTE_AFTER_SECONDS": None, "TIDEFLOW_REROUTE_EVERY_SECONDS": None})


def restart_web(h: Harness, env: dict[str, str | None]) -> None:
    """Restart the web process with these environment changes (None removes a variable)."""
    h.stack.stop("web")
    for key, value in env.items():
        if value is None:
            h.stack.env.pop(key, None)
        else:
            h.stack.env[key] = value
    h.stack.start_web(timeout=120)


def webhooks_duplicated(h: Harness, copies: int = 3) -> Row:
    """Each event delivered ``copies`` times to /hooks/<id>, shuffled, newest first: stored once, one journey."""
    n, parallel = h.size, 4
    flow, connector = "fault-hooks", "fault-hook"
    h.stack.api("PUT", f"/api/connectors/{connector}", expect=201, json={
        "kind": "webhook", "name": "fault suite hook", "settings": {}, "secrets": {"secret": HOOK_SECRET}})
    h.publish(flow, "custom.fault_hook", [("hello", "action.send_message", dry_run("你好 {{ customer.name }}"))])
    base = datetime.now(UTC)
    bodies = []
    for i in range(n):
        body = {"id": f"hook-{i}", "type": "custom.fault_hook", "customer": {"external_id": f"hook-c{i}"},
                "profile": {"name": f"客户{i}"}, "occurred_at": (base - timedelta(seconds=i)).isoformat()}
        bodies += [body] * copies
    random.Random(8).shuffle(bodies)
    hooks = HookSender(h.stack.base_url, connector, HOOK_SECRET)
    try:
        hooks.deliver_all(bodies, parallel)
    finally:
        hooks.close()
    h.wait_done(flow, len(hooks.acknowledged), source=connector)
    tally = audit(h.engine, connector, hooks.acknowledged, Expectation(flow, ("hello",)))
    return Row("", f"{n} events × {copies} deliveries, shuffled, {parallel} clients", tally,
               f"answers {hooks.stats.summary()}")


def merge_while_waiting(h: Harness) -> Row:
    """Pairs of customers each in a journey waiting for an event; an event links the two of a pair (a merge);
    then the awaited event arrives under the *merged-away* customer's own identifier. Every journey — the
    survivor's and the merged customer's — receives it and finishes with its one message: none stuck."""
    n, flow, prefix = h.size, "fault-merge", "fault-merge"
    document = {"schema": "tideflow/flow@1", "id": flow, "name": "fault: merge while waiting", "kind": "journey",
                "nodes": [{"id": "start", "type": "trigger.event", "config": {"event": "custom.merge_start"}},
                          {"id": "await", "type": "wait.event", "config": {"event": "custom.merge_done",
                                                                         "timeout": "P1D"}},
                          {"id": "done", "type": "action.send_message", "config": dry_run("到了 {{ customer.name }}")}],
                "edges": [{"from": "start", "to": "await"}, {"from": "await", "port": "event", "to": "done"}]}
    h.stack.api("POST", "/api/flows", expect=201, json=document)
    h.stack.api("POST", f"/api/flows/{flow}/publish", expect=201)

    def who(i: int) -> dict[str, str]:  # even: known by an external id; odd: by a phone (its pair's other half)
        return {"external_id": f"{prefix}-c{i}"} if i % 2 == 0 else {"phone": f"+86139{i:08d}"}

    sender = h.sender()
    starts = [{"id": f"{prefix}-start-{i}", "type": "custom.merge_start", "source": prefix, "customer": who(i),
               "profile": {"name": f"客户{i}"}} for i in range(n)]
    for at in range(0, n, 50):
        sender.post(starts[at:at + 50])
    h.wait_progress(lambda: h.count("SELECT COUNT(*) FROM journeys WHERE flow_id = :f AND status = 'waiting'",
                                    f=flow), n, "journeys waiting", every=0.2)
    pairs = n // 2
    links = [{"id": f"{prefix}-link-{k}", "type": "custom.merge_link", "source": prefix,
              "customer": {**who(2 * k), **who(2 * k + 1)}} for k in range(pairs)]
    for at in range(0, len(links), 50):
        sender.post(links[at:at + 50])
    merged = h.count("SELECT COUNT(*) FROM customers WHERE merged_into IS NOT NULL")
    # the awaited event, addressed as the merged-away (odd) customer knew it — or the single one's own id
    dones = [{"id": f"{prefix}-done-{k}", "type": "custom.merge_done", "source": prefix,
              "customer": who(2 * k + 1) if 2 * k + 1 < n else who(2 * k)} for k in range((n + 1) // 2)]
    for at in range(0, len(dones), 50):
        sender.post(dones[at:at + 50])
    sender.close()
    if sender.errors:
        raise RuntimeError(f"callers gave up: {sender.errors[0]}")
    h.wait_done(flow, n)
    tally = Tally(events_in=n)
    with h.engine.connect() as conn:
        runs = conn.execute(text("SELECT workflow_id, status FROM journeys WHERE flow_id = :f"), {"f": flow}).all()
        sent = Counter(str(key).split("/done/")[0] for (key,) in conn.execute(text(
            "SELECT idempotency_key FROM messages WHERE flow_id = :f AND node_id = 'done' AND status = 'sent'"),
            {"f": flow}))
        stuck = [f"{wid}: {status}" for wid, status in runs if status != "completed" or sent[str(wid)] == 0]
        twice = [f"{wid}×{k}" for wid, k in sent.items() if k > 1]
        missing = max(0, n - len(runs))
        tally.processed = len(runs) - len(stuck) - len(twice)
        tally.add(Finding("journey stuck after the merge", "lost", len(stuck) + missing, stuck[:5]))
        tally.add(Finding("message recorded twice", "duplicate", len(twice), twice[:5]))
    return Row("", f"{n} journeys waiting, {pairs} merges", tally, f"{merged} customers merged")


# -- stacks -----------------------------------------------------------------------------------------------------
@contextmanager
def sqlite_stack(root: Path, persist: bool = True, one_process: bool = False) -> Iterator[E2EStack]:
    """Temporal (on its SQLite file, so it can be restarted; in memory without ``persist``), an admin token,
    worker and web — or, ``one_process``, web with the worker inside (``TIDEFLOW_WORKER_IN_WEB``)."""
    with E2EStack(root) as stack:
        stack.start_temporal(persist=persist, wait=False)
        stack.create_admin("faults-admin")
        stack.wait_temporal(120)
        if one_process:
            stack.env["TIDEFLOW_WORKER_IN_WEB"] = "true"
        else:
            stack.start_worker(wait=False)
        stack.start_web(wait=False)
        stack.wait_healthy("web", 120)
        if one_process:
            stack.wait_log("web", "worker on task queue", 120)
        else:
            stack.wait_worker(120)
        yield stack


@contextmanager
def postgres_stack(root: Path, one_process: bool = False) -> Iterator[tuple[E2EStack, PostgresCluster]]:
    with PostgresCluster() as cluster:
        url = cluster.create_database("tideflow_faults")
        with E2EStack(root) as stack:
            stack.database_url = url
            stack.env["TIDEFLOW_DATABASE_URL"] = url
            stack.start_pieces(timeout=120, worker=not one_process)
            yield stack, cluster


def engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"timeout": 30})
    return create_engine(url, pool_pre_ping=True)


#: how a fault reads in one process (``--one-process``), where it differs: every fault applies, none is left out
ONE_PROCESS = {
    "kill": "web + worker SIGKILL + restart (one process)",
    "race": "one process + a worker process, one task queue",
}


#: the SQLite faults by short name (``python -m faults --only NAME``)
def sqlite_faults(outage: float, one_process: bool = False) -> dict[str, tuple[str, Callable[[Harness], Row]]]:
    faults: dict[str, tuple[str, Callable[[Harness], Row]]] = {
        "kill": ("worker SIGKILL + restart", worker_killed),
        "race": ("two workers, one task queue", workers_racing),
        "reroute": ("re-router racing concurrent batches", rerouter_racing),
        "temporal": (f"Temporal stopped {outage:.0f} s + restarted", lambda x: temporal_restarted(x, outage)),
        "platform": ("SMS gateway slow / 5xx / 429", platform_misbehaving),
        "hooks": ("webhooks duplicated + out of order", webhooks_duplicated),
        "merge": ("customers merged while journeys wait", merge_while_waiting),
    }
    if one_process:
        faults.update((key, (ONE_PROCESS[key], faults[key][1])) for key in ONE_PROCESS)
    return faults


def run_suite(root: Path, size: int, outage: float, postgres: bool = True,
              log: Callable[[str], None] = print, only: set[str] | None = None, one_process: bool = False
              ) -> tuple[list[Row], list[Finding], list[str]]:
    """Every fault (or those named in ``only``), on stacks with a worker process or, ``one_process``, with the
    worker in the web process; returns the rows, the global findings and the global checks skipped."""
    rows: list[Row] = []
    findings: list[Finding] = []
    skipped: set[str] = set()
    chosen = {k: v for k, v in sqlite_faults(outage, one_process).items() if only is None or k in only}
    if chosen:
        with sqlite_stack(root / "sqlite", one_process=one_process) as stack:
            engine = engine_for(stack.database_url)
            h = Harness(stack, engine, size, log, one_process=one_process)
            for name, scenario in chosen.values():
                h.run(name, scenario)
            found, left = run_checks(engine)
            findings += found
            skipped.update(left)
            rows += h.rows
            engine.dispose()
    if postgres and (only is None or "postgres" in only):
        with postgres_stack(root / "pg", one_process) as (stack, cluster):
            engine = engine_for(stack.database_url)
            h = Harness(stack, engine, size, log, one_process=one_process)
            h.run(f"PostgreSQL down {outage:.0f} s during ingestion", lambda x: database_down(x, cluster, outage))
            found, left = run_checks(engine)
            findings += found
            skipped.update(left)
            rows += h.rows
            engine.dispose()
    return rows, findings, sorted(skipped)


def table(rows: list[Row]) -> str:
    head = ("fault", "load", "events in", "processed", "duplicates", "lost", "notes")
    lines = [[r.fault, r.load, str(r.tally.events_in), str(r.tally.processed), str(r.tally.duplicates),
              str(r.tally.lost), ("ERROR " + r.error + "; " if r.error else "") + r.notes] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *lines, strict=False)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=False)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) + " |" for line in lines]
    return "\n".join(out)
