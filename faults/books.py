"""The books: after a fault, what the database says happened, checked against what was sent in.

:func:`audit` looks at one scenario (its flow, the events its clients got acknowledged) and answers how many
events were processed, how many things happened twice and how many were lost. The global :data:`CHECKS`
(anything recorded twice anywhere: ledger entries, messages, coupons, payouts; tickets without an owner)
are a list: add a :class:`Check` for a new table; a check whose table does not exist (yet) is skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError


@dataclass
class Finding:
    """What a check found: ``count`` things wrong, with a few examples to look at."""

    check: str
    kind: str  # "duplicate" or "lost"
    count: int
    examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Check:
    """A global bookkeeping rule: ``sql`` returns one row per violation (first column: an example to show)."""

    name: str
    kind: str  # "duplicate" or "lost"
    tables: tuple[str, ...]
    sql: str


CHECKS: list[Check] = [
    Check("ledger entry recorded twice", "duplicate", ("ledger",),
          "SELECT key, COUNT(*) FROM ledger GROUP BY key HAVING COUNT(*) > 1"),
    Check("message recorded twice (same key)", "duplicate", ("messages",),
          "SELECT idempotency_key, COUNT(*) FROM messages GROUP BY idempotency_key HAVING COUNT(*) > 1"),
    Check("message sent twice by one journey node", "duplicate", ("messages",),
          "SELECT workflow_id || '/' || node_id, COUNT(*) FROM messages WHERE workflow_id IS NOT NULL "
          "AND idempotency_key NOT LIKE '%#deferred' GROUP BY workflow_id, node_id HAVING COUNT(*) > 1"),
    Check("coupon issued twice (same key)", "duplicate", ("coupons",),
          "SELECT idempotency_key, COUNT(*) FROM coupons GROUP BY idempotency_key HAVING COUNT(*) > 1"),
    Check("event stored twice", "duplicate", ("events",),
          "SELECT source || ':' || external_id, COUNT(*) FROM events GROUP BY source, external_id "
          "HAVING COUNT(*) > 1"),
    Check("payout recorded twice", "duplicate", ("payouts",),
          "SELECT idempotency_key, COUNT(*) FROM payouts GROUP BY idempotency_key HAVING COUNT(*) > 1"),
    Check("payout twice for one statement and party", "duplicate", ("payouts",),
          "SELECT CAST(statement_id AS TEXT) || '/' || party, COUNT(*) FROM payouts "
          "GROUP BY statement_id, party HAVING COUNT(*) > 1"),
    Check("ticket without an owner (no group)", "lost", ("tickets",),
          "SELECT CAST(id AS TEXT) FROM tickets WHERE group_key IS NULL "
          "OR group_key NOT IN (SELECT key FROM agent_groups)"),
]


def run_checks(engine: Engine, checks: Iterable[Check] = CHECKS) -> tuple[list[Finding], list[str]]:
    """Run the global checks: (findings, names of checks skipped because their tables do not exist)."""
    findings, skipped = [], []
    tables = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        for check in checks:
            if not set(check.tables) <= tables:
                skipped.append(check.name)
                continue
            try:
                rows = conn.execute(text(check.sql)).all()
            except DBAPIError as exc:  # a table changed shape: say so instead of passing silently
                conn.rollback()
                findings.append(Finding(check.name, check.kind, 1, [f"check failed: {type(exc).__name__}"]))
                continue
            if rows:
                findings.append(Finding(check.name, check.kind, len(rows), [str(r[0]) for r in rows[:5]]))
    return findings, skipped


@dataclass
class Tally:
    """One scenario's line of the table."""

    events_in: int = 0
    processed: int = 0
    duplicates: int = 0
    lost: int = 0
    findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        if finding.count:
            self.findings.append(finding)
            if finding.kind == "duplicate":
                self.duplicates += finding.count
            else:
                self.lost += finding.count


@dataclass(frozen=True)
class Expectation:
    """What one acknowledged event must have led to: a journey of ``flow_id`` that ended in ``status`` (or one
    of them), with one message from each node of ``message_nodes``, all ``sent``."""

    flow_id: str
    message_nodes: tuple[str, ...]
    statuses: tuple[str, ...] = ("completed",)


def audit(engine: Engine, source: str, acknowledged: Iterable[str], expect: Expectation,
          extra: Callable[[Connection, Tally], None] | None = None) -> Tally:
    """Check one scenario. ``acknowledged``: the event ids the clients got a 2xx for (each counted once).

    An event is *processed* when it is stored once and routed, and its customer's journey ended as
    expected with every expected message sent exactly once. Everything else acknowledged is *lost*.
    """
    ids = sorted(set(acknowledged))
    tally = Tally(events_in=len(ids))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT external_id, customer_id, status FROM events WHERE source = :s"),
                            {"s": source}).all()
        stored = Counter(r[0] for r in rows)
        by_id = {r[0]: (r[1], r[2]) for r in rows}
        journeys: dict[str, list[str]] = {}
        for customer_id, status in conn.execute(text("SELECT customer_id, status FROM journeys WHERE flow_id = :f"),
                                                {"f": expect.flow_id}):
            journeys.setdefault(str(customer_id), []).append(str(status))
        messages: dict[tuple[str, str], list[str]] = {}
        for customer_id, node_id, status in conn.execute(text(
                "SELECT customer_id, node_id, status FROM messages WHERE flow_id = :f "
                "AND idempotency_key NOT LIKE '%#deferred'"), {"f": expect.flow_id}):
            messages.setdefault((str(customer_id), str(node_id)), []).append(str(status))
        lost: list[str] = []
        for event_id in ids:
            found = by_id.get(event_id)
            if found is None:
                lost.append(f"{event_id}: not stored")
                continue
            customer_id, status = found
            runs = journeys.get(str(customer_id), [])
            sent = [messages.get((str(customer_id), node), []) for node in expect.message_nodes]
            if status != "routed":
                lost.append(f"{event_id}: stored but not routed ({status})")
            elif len(runs) != 1 or runs[0] not in expect.statuses:
                lost.append(f"{event_id}: journey {runs or 'missing'}")
            elif any(s != ["sent"] for s in sent):
                lost.append(f"{event_id}: messages {sent}")
            else:
                tally.processed += 1
        tally.add(Finding("acknowledged event not processed", "lost", len(lost), lost[:5]))
        twice = [f"{k}×{n}" for k, n in stored.items() if n > 1]
        tally.add(Finding("event stored twice", "duplicate", len(twice), twice[:5]))
        many = [f"{c}: {s}" for c, s in journeys.items() if len(s) > 1]
        tally.add(Finding("customer entered the journey twice", "duplicate", len(many), many[:5]))
        repeated = [f"{c}/{n}: {s}" for (c, n), s in messages.items() if len(s) > 1]
        tally.add(Finding("message recorded twice", "duplicate", len(repeated), repeated[:5]))
        if extra is not None:
            extra(conn, tally)
    return tally
