"""``python -m faults`` (``make faults``): run every fault against the real stack and print the table.

Exits 1 when anything was duplicated or lost (or a scenario could not run). ``--size`` sets the events per
fault (CI runs a reduced size through tests/faults/test_faults_suite.py). ``--one-process`` runs every fault
against stacks whose worker runs inside the web process (``tideflow up --one-process``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from faults.scenarios import ONE_PROCESS, run_suite, sqlite_faults, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200, help="events per fault (default 200)")
    parser.add_argument("--outage", type=float, default=10.0,
                        help="seconds Temporal and PostgreSQL stay down (default 10)")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL fault")
    parser.add_argument("--only", default="", help="comma-separated faults to run: kill, race, reroute, "
                        "temporal, platform, hooks, merge, postgres (default: all)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the stacks' files and logs here")
    parser.add_argument("--one-process", action="store_true",
                        help="run the worker inside the web process, as `tideflow up --one-process` does "
                        "(TIDEFLOW_WORKER_IN_WEB=true): the worker kill kills the web process too, the second "
                        "worker is a worker process beside it")
    args = parser.parse_args(argv)
    if args.size < 3:
        parser.error("--size must be at least 3")
    root = args.keep or Path(tempfile.mkdtemp(prefix="tideflow-faults-"))
    root.mkdir(parents=True, exist_ok=True)
    only = {name.strip() for name in args.only.split(",") if name.strip()} or None
    unknown = sorted((only or set()) - {*sqlite_faults(args.outage), "postgres"})
    if unknown:
        parser.error(f"--only: no such fault: {', '.join(unknown)}")
    if args.one_process:
        print("one process: the worker runs inside the web process (TIDEFLOW_WORKER_IN_WEB=true); every fault "
              "applies, changed to fit: " + "; ".join(f"{key} → {label}" for key, label in ONE_PROCESS.items()))
    rows, findings, skipped = run_suite(root, args.size, args.outage, postgres=not args.no_postgres, only=only,
                                        one_process=args.one_process)
    print()
    print(table(rows))
    for finding in findings:
        print(f"! books: {finding.check}: {finding.count} (e.g. {', '.join(finding.examples[:3])})")
    if skipped:
        print(f"checks skipped (their tables do not exist): {', '.join(skipped)}")
    failed = [r.fault for r in rows if not r.ok] + [f.check for f in findings]
    print(f"\n{'FAILED: ' + ', '.join(failed) if failed else 'OK: nothing duplicated, nothing lost'}"
          + (f" (logs under {root})" if failed or args.keep else ""))
    if not failed and not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
