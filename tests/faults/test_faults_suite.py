"""The fault suite (``make faults``) in a reduced size: every fault, then the books — nothing duplicated,
nothing lost. The full size runs with ``make faults`` (200 events per fault, 10 s outages)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faults.books import CHECKS, Check, Expectation, audit, run_checks
from faults.scenarios import Row, engine_for, run_suite, table
from tests.pg import missing_binaries

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

SIZE = int(os.environ.get("TIDEFLOW_FAULTS_SIZE", "20"))
OUTAGE = float(os.environ.get("TIDEFLOW_FAULTS_OUTAGE", "4"))
FAULTS = {"worker SIGKILL + restart", "two workers, one task queue", "SMS gateway slow / 5xx / 429",
          "re-router racing concurrent batches",
          "webhooks duplicated + out of order", "customers merged while journeys wait"}


@pytest.mark.timeout(900)
def test_every_fault_leaves_the_books_straight(tmp_path: Path) -> None:
    if missing_binaries():
        pytest.fail("the PostgreSQL fault needs the PostgreSQL 15 server binaries (apt-get install postgresql-15)",
                    pytrace=False)
    rows, findings, skipped = run_suite(tmp_path, SIZE, OUTAGE)
    print("\n" + table(rows))
    names = {r.fault for r in rows}
    assert names >= FAULTS and any(n.startswith("Temporal stopped") for n in names) \
        and any(n.startswith("PostgreSQL down") for n in names), names
    bad: list[Row] = [r for r in rows if not r.ok]
    assert not bad, [(r.fault, r.error, [(f.check, f.count, f.examples) for f in r.tally.findings]) for r in bad]
    assert all(r.tally.events_in == SIZE and r.tally.processed == SIZE for r in rows), table(rows)
    assert findings == [], findings
    assert "ledger entry recorded twice" not in skipped


def test_the_books_see_a_duplicate_and_a_loss(db_url: str) -> None:
    """The auditor itself: a message recorded twice, a journey missing, a payout twice are all reported."""
    engine = engine_for(db_url)
    try:
        with engine.begin() as c:
            c.exec_driver_sql("INSERT INTO events (source, external_id, type, customer_id, identities, payload, "
                              "occurred_at, received_at, status) VALUES ('t', 'e1', 'custom.x', 'c1', '{}', '{}', "
                              "'2026-01-01', '2026-01-01', 'routed'), ('t', 'e2', 'custom.x', 'c2', '{}', '{}', "
                              "'2026-01-01', '2026-01-01', 'routed')")
            c.exec_driver_sql("INSERT INTO journeys (workflow_id, flow_id, version, customer_id, status, started_at, "
                              "updated_at, checkpoint) VALUES ('journey/f/c1', 'f', 1, 'c1', 'completed', "
                              "'2026-01-01', '2026-01-01', 1)")
            for key, node in (("k1", "hello"), ("k2", "hello")):  # one node, two keys: sent twice
                c.exec_driver_sql("INSERT INTO messages (idempotency_key, customer_id, channel, content, status, "
                                  "flow_id, node_id, workflow_id, direction, category, created_at) VALUES "
                                  f"('{key}', 'c1', 'dry-run', 'x', 'sent', 'f', '{node}', 'journey/f/c1', 'out', "
                                  "'transactional', '2026-01-01')")
        tally = audit(engine, "t", ["e1", "e2", "e3"], Expectation("f", ("hello",)))
        assert (tally.events_in, tally.processed) == (3, 0)
        assert tally.lost == 3  # e1: its message went twice; e2: no journey; e3: never stored
        assert tally.duplicates == 1
        found, skipped = run_checks(engine)
        assert [f.check for f in found] == ["message sent twice by one journey node"]
        extra = Check("everything is wrong", "lost", ("no_such_table",), "SELECT 1")
        assert run_checks(engine, [*CHECKS, extra])[1] == [*skipped, "everything is wrong"]
    finally:
        engine.dispose()
