"""``python -m bench.hotspots compile|broadcast|broadcast-one [N]``: where the time goes, with cProfile.

The two CPU-bound paths whose targets are far off are profiled without Temporal in the way, so the
numbers point at engine code:

* ``compile`` — ``engine.compiler.compile_flow`` on N (5) generated 200-node flows with new expression
  texts each (the cold case of ``python -m bench compile``);
* ``broadcast`` — what ``broadcast.deliver`` runs for one page: ``engine.broadcast.run_page`` (the bulk
  path) for N (1,000) customers of a segment flow, dry-run channel, on a fresh SQLite database;
  ``broadcast-one`` — the same customers one at a time (``engine.broadcast.run_instant`` each), the
  path every page took before the bulk path.

It prints the engine's (and the built-in activities') functions by cumulative time, as a share of the
whole. cProfile slows Python code down unevenly; read the shares, not the absolute times. For the whole
process including Temporal, use a sampling profiler instead, e.g.
``py-spy record -f raw -o bench.txt -- python -m bench broadcast``.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the project's own code (not the libraries in the virtualenv, whose paths may also contain "/engine/")
OURS = tuple(f"{ROOT / name}/" for name in ("engine", "activities", "designer"))


def _profile(work: Callable[[], None]) -> tuple[pstats.Stats, float]:
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    work()
    profiler.disable()
    return pstats.Stats(profiler), time.perf_counter() - started


def _print(stats: pstats.Stats, wall: float, extra: tuple[str, ...] = (), limit: int = 30) -> None:
    raw = stats.stats  # type: ignore[attr-defined]
    total = max(sum(tt for _, _, tt, _, _ in raw.values()), 1e-9)
    rows = []
    for (path, line, func), (_, calls, _tt, cumulative, _) in raw.items():
        if path.startswith(OURS) or any(part in f"{path}:{func}" for part in extra):
            short = path.removeprefix(f"{ROOT}/").split("site-packages/")[-1]
            rows.append((cumulative, calls, f"{short}:{line}:{func}"))
    print(f"{'cum %':>6} {'cum s':>7} {'calls':>8}  function   (profiled wall time {wall:.2f} s)")
    for cumulative, calls, name in sorted(rows, reverse=True)[:limit]:
        print(f"{cumulative / total * 100:6.1f} {cumulative:7.3f} {calls:8d}  {name}")


def profile_compile(count: int) -> None:
    from bench.compile_time import generate
    from engine.compiler import compile_flow
    from engine.registry import default_registry

    default_registry()
    compile_flow(generate(salt="warm-up"))  # imports and first-use caches are not what we look for
    documents = [generate(salt=f"profile-{i}") for i in range(count)]

    def work() -> None:
        for document in documents:
            compile_flow(document)

    stats, wall = _profile(work)
    print(f"compile_flow × {count} (200 nodes, new expression texts each)\n")
    _print(stats, wall, extra=("jinja2/environment.py:compile", "jinja2/meta.py", "jinja2/environment.py:_parse",
                               "jinja2/environment.py:_generate", "jinja2/environment.py:_compile"))


def profile_broadcast_page(count: int) -> None:
    from bench.broadcast import flow
    from bench.common import bulk_customers, publish
    from engine.actions import Services
    from engine.broadcast import run_page
    from engine.db.session import upgrade

    with tempfile.TemporaryDirectory(prefix="tideflow-profile-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'profile.db'}"
        upgrade(url)
        ids = bulk_customers(url, 3 * count, "p")
        compiled = publish(url, flow())
        services = Services(database_url=url)
        stats_rows: list[list[object]] = []
        run_page(compiled, ids[:count], "warm-up", stats_rows, services)  # connections, statement caches
        started = time.perf_counter()
        run_page(compiled, ids[count:2 * count], "unprofiled", stats_rows, services)
        per_customer = (time.perf_counter() - started) / count

        def work() -> None:
            run_page(compiled, ids[2 * count:], "profile", stats_rows, services)

        stats, wall = _profile(work)
    print(f"run_page, a page of {count} (segment → send_message, dry-run); unprofiled {per_customer * 1000:.3f} ms "
          f"per customer ≈ {1 / per_customer:.0f} msg/s on one thread\n")
    _print(stats, wall, extra=("sqlalchemy/orm/session.py:commit", "sqlalchemy/engine/default.py:do_execute",
                               "sqlalchemy/engine/default.py:do_executemany"))


def profile_broadcast(count: int) -> None:
    from bench.broadcast import flow
    from bench.common import bulk_customers, publish
    from engine.actions import Services
    from engine.broadcast import run_instant
    from engine.db.session import upgrade

    with tempfile.TemporaryDirectory(prefix="tideflow-profile-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'profile.db'}"
        upgrade(url)
        ids = bulk_customers(url, count + 20, "p")
        compiled = publish(url, flow())
        services = Services(database_url=url)
        stats_rows: list[list[object]] = []
        for cid in ids[:20]:  # warm-up: connections, statement caches
            run_instant(compiled, cid, "warm-up", stats_rows, services)

        def work() -> None:
            for cid in ids[20:]:
                run_instant(compiled, cid, "profile", stats_rows, services)

        started = time.perf_counter()
        for cid in ids[:20]:
            run_instant(compiled, cid, "unprofiled", stats_rows, services)
        per_customer = (time.perf_counter() - started) / 20
        stats, wall = _profile(work)
    print(f"run_instant × {count} (segment → send_message, dry-run); unprofiled {per_customer * 1000:.2f} ms per "
          f"customer ≈ {1 / per_customer:.0f} msg/s on one thread\n")
    _print(stats, wall, extra=("sqlalchemy/orm/session.py:commit", "sqlalchemy/orm/session.py:flush",
                               "sqlalchemy/engine/default.py:do_execute", "sqlalchemy/engine/default.py:do_commit"))


def main(argv: list[str]) -> int:
    runs = {"compile": profile_compile, "broadcast": profile_broadcast_page, "broadcast-one": profile_broadcast}
    if not argv or argv[0] not in runs:
        print(__doc__, file=sys.stderr)
        return 2
    count = int(argv[1]) if len(argv) > 1 else (5 if argv[0] == "compile" else 1000)
    runs[argv[0]](count)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
