"""``python -m bench [NAME ...] [--markdown]``: run the benchmarks and print a table of numbers.

Names: compile, expressions, interpreter, latency, broadcast, settlement, decisions, workforce, loyalty (default: all,
in that order). Sizes scale with ``BENCH_SCALE`` (default 1; 10 runs the 100,000-customer broadcast of the
target) and can be set one by one: ``BENCH_JOURNEYS`` (100 per batch), ``BENCH_ROUNDS`` (3), ``BENCH_EVENTS`` (200),
``BENCH_CUSTOMERS`` (10,000), ``BENCH_COMPILE_RUNS`` (20), ``BENCH_SETTLE_ORDERS`` (200,000; the
target is for 1,000,000), ``BENCH_SETTLE_PARTIES`` (1,000, not scaled), ``BENCH_LOYALTY_ORDERS``
(1,000,000: the points ledger backfill); ``BENCH_TIMEOUT`` (300 s × scale) stops a benchmark that hangs.
Timing is reported, never asserted: the exit status is 0 whether or not a target is met, and non-zero only
when a benchmark could not run (or did not finish).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TextIO

from bench import (
    broadcast,
    compile_time,
    decisions,
    expression_cost,
    ingest,
    interpreter,
    latency,
    loyalty,
    parked,
    scaleout,
    settlement,
    workforce,
)
from bench.common import Report, Row, Stack, env_int, scale, table

log = logging.getLogger("bench")

Runner = Callable[[Stack], Awaitable[Report]]
BENCHMARKS: dict[str, Runner] = {
    "compile": compile_time.run,
    "expressions": expression_cost.run,
    "interpreter": interpreter.run,
    "latency": latency.run,
    "broadcast": broadcast.run,
    "settlement": settlement.run,
    "decisions": decisions.run,
    "workforce": workforce.run,
    "loyalty": loyalty.run,
    "ingest": ingest.run,
    "parked": parked.run,
    "scaleout": scaleout.run,
}
#: benchmarks that run several stacks of their own take this many times BENCH_TIMEOUT
SLOW = {"ingest": 5, "parked": 5, "scaleout": 5}
#: the benchmarks that need the Temporal dev server
NEEDS_SERVER = frozenset({"interpreter", "latency", "broadcast"})


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def main(names: list[str]) -> list[Report]:
    timeout = float(env_int("BENCH_TIMEOUT", round(300 * max(1.0, scale()))))
    reports: list[Report] = []
    async with Stack(server=bool(NEEDS_SERVER.intersection(names))) as stack:
        for name in names:
            _say(f"… {name}")
            started = time.perf_counter()
            stack.use_queue(name)
            try:
                report = await asyncio.wait_for(BENCHMARKS[name](stack), timeout * SLOW.get(name, 1))
            except TimeoutError:
                log.error("benchmark %s did not finish within %.0f s (BENCH_TIMEOUT)", name, timeout)
                report = Report(name, [Row(name, f"did not finish in {timeout:.0f} s")], failed=True)
            except Exception as exc:  # one benchmark that cannot run does not hide the others' numbers
                log.exception("benchmark %s could not run", name)
                report = Report(name, [Row(name, f"error: {type(exc).__name__}")], failed=True)
            report.seconds = time.perf_counter() - started
            _say(f"  {name}: {report.seconds:.1f} s")
            reports.append(report)
    return reports


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if "ingest" in names:
        from bench.ingest import check_targets

        check_targets()  # a target that does not exist is refused before any stack starts
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # only the table goes to stdout: the dev server (a child process) and Temporal's core write to file
    # descriptor 1 too, so that becomes stderr and the table is written to a copy of the real stdout
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    try:
        return _run(names, args.markdown, out)
    finally:
        out.close()


def _run(names: list[str], markdown: bool, out: TextIO) -> int:
    _say(f"Tideflow benchmarks, {date.today().isoformat()}, Python {platform.python_version()}, "
         f"{os.cpu_count()} cores, BENCH_SCALE={scale():g}, load average {_load()}")
    started = time.perf_counter()
    reports = asyncio.run(main(names))
    rows = [row for r in reports for row in r.rows]
    print(file=out)
    print(table(rows, markdown=markdown), file=out)
    notes = [n for r in reports for n in r.notes]
    if notes:
        print(file=out)
        for note in notes:
            print(f"- {note}" if markdown else f"* {note}", file=out)
    failed = [r.name for r in reports if r.failed]
    if failed:
        print(f"\ncould not run: {', '.join(failed)} (see the log on stderr)", file=out)
    print(f"\n({date.today().isoformat()}, {os.cpu_count()} cores, total {time.perf_counter() - started:.0f} s, "
          f"load average {_load()} at the end: other processes on the machine skew every number)", file=out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(cli())
