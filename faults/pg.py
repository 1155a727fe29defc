"""Take the throwaway PostgreSQL cluster (tests/pg.py) away for a while and bring it back on the same port."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tests.pg import PostgresCluster


def stop(cluster: PostgresCluster) -> None:
    """Stop the server now (``-m fast``: open connections are cut and their transactions rolled back).

    Not ``-m immediate``: the throwaway cluster runs with durability off (``synchronous_commit = off``), so a
    crash there may lose commits that a real server would keep, which is not the fault under test."""
    cluster._run("pg_ctl", "stop", "-D", str(cluster.datadir), "-m", "fast", "-w", "-t", "30")


def start(cluster: PostgresCluster) -> None:
    """Start it again with its data and its port."""
    cluster._run("pg_ctl", "start", "-D", str(cluster.datadir), "-l", str(cluster.logfile), "-w", "-t", "60")


@contextlib.contextmanager
def paused(cluster: PostgresCluster) -> Iterator[None]:
    """The database is unreachable inside the block, and back (same data, same port) after it."""
    stop(cluster)
    try:
        yield
    finally:
        start(cluster)
