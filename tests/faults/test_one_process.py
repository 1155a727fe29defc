"""``python -m faults --one-process``: the faults against a stack whose worker runs inside the web process
(``TIDEFLOW_WORKER_IN_WEB``, ``tideflow up --one-process``). The whole mode runs with ``python -m faults
--one-process``; here the two faults it changes, in a small size: the worker kill (which kills the web process:
the callers are refused a connection and send again) and the second worker (a worker process beside the one
process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from faults.__main__ import main
from faults.scenarios import ONE_PROCESS, run_suite, sqlite_faults, table

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
