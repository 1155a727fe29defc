"""``python -m faults --one-process``: the faults against a stack whose worker runs inside the web process
(``TIDEFLOW_WORKER_IN_WEB``, ``tideflow up --one-process``). The whole mode runs with ``python -m faults
--one-process``; here the two faults it changes, in a small size: the worker kill (which kills the web process:
the callers are refused a connection and send again) and the second worker (a worker process beside the one
process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from faults.__main__ import main
from faults.scenarios import ONE_PROCESS, Harness, engine_for, run_suite, sqlite_faults, table
from tests.e2e.stack import E2EStack

SIZE = 12


def test_every_fault_applies_in_one_process_and_the_changed_ones_say_so() -> None:
    two, one = sqlite_faults(4), sqlite_faults(4, one_process=True)
    assert one.keys() == two.keys()  # none left out
    assert {key for key in one if one[key][0] != two[key][0]} == set(ONE_PROCESS) == {"kill", "race"}
    assert all("process" in one[key][0] for key in ONE_PROCESS)


def test_an_unknown_fault_is_refused_not_passed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--one-process", "--only", "kill,kil"])
    assert exit_.value.code == 2
    assert "no such fault: kil" in capsys.readouterr().err


def test_the_books_wait_for_an_event_whose_journey_ended_before_it_was_routed(db_url: str, tmp_path: Path) -> None:
    """The one-process kill's first find: the process died after starting a journey and before marking its
    event routed. The journey ended (its task went to the new process), the event waited for the re-router
    until the dead process's claim lapsed — and the audit, which had waited for the journeys only, counted it
    lost. The wait is for both now."""
    engine = engine_for(db_url)
    try:
        with engine.begin() as c:
            c.exec_driver_sql("INSERT INTO events (source, external_id, type, customer_id, identities, payload, "
                              "occurred_at, received_at, status) VALUES ('t', 'e1', 'custom.x', 'c1', '{}', '{}', "
                              "'2026-01-01', '2026-01-01', 'received')")
            c.exec_driver_sql("INSERT INTO journeys (workflow_id, flow_id, version, customer_id, status, started_at, "
                              "updated_at, checkpoint) VALUES ('journey/f/c1', 'f', 1, 'c1', 'completed', "
                              "'2026-01-01', '2026-01-01', 1)")
        said: list[str] = []
        h = Harness(E2EStack(tmp_path), engine, 1, said.append, stall=0.3)  # a stack never started
        h.wait_done("f", 1, source="t")
        assert said == ["  events of t routed: 0 of 1, no progress for 0 s"]  # it waited, then gave up
        with engine.begin() as c:
            c.exec_driver_sql("UPDATE events SET status = 'routed', routed_at = '2026-01-01' WHERE external_id = 'e1'")
        said.clear()
        h.wait_done("f", 1, source="t")
        assert said == []
    finally:
        engine.dispose()


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_one_process_killed_and_beside_a_worker_loses_nothing(tmp_path: Path) -> None:
    rows, findings, _ = run_suite(tmp_path, SIZE, 4, postgres=False, only={"kill", "race"}, one_process=True)
    print("\n" + table(rows))
    assert [r.fault for r in rows] == [ONE_PROCESS["kill"], ONE_PROCESS["race"]]
    bad = [(r.fault, r.error, [(f.check, f.count, f.examples) for f in r.tally.findings]) for r in rows if not r.ok]
    assert not bad, bad
    assert all(r.tally.events_in == SIZE and r.tally.processed == SIZE for r in rows), table(rows)
    assert findings == []
    # the callers met the dead process (the scenario fails without), and sent again
    assert "no connection" in rows[0].notes, rows[0].notes
    logs = tmp_path / "sqlite" / "logs"
    assert not (logs / "worker.log").exists()  # no worker process: the web process ran it, twice (killed, started)
    assert (logs / "web.log").read_text(errors="replace").count("worker on task queue") == 2
    assert (logs / "worker-2.log").exists()
