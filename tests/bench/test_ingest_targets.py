"""``BENCH_INGEST_TARGETS`` picks the ingest bench's targets by key, in the plan's order, and refuses a key it
does not have, naming the ones it has."""

from __future__ import annotations

import pytest

from bench.ingest import selected, target_keys

PLAN = [(key, lambda: None) for key in ("tideflow-sqlite", "tideflow-one", "n8n", "raw", "raw-eager")]


def test_empty_keeps_every_target() -> None:
    assert selected(PLAN, "") == PLAN
    assert selected(PLAN, " , ") == PLAN


def test_the_named_targets_in_the_plans_order() -> None:
    assert [key for key, _ in selected(PLAN, "raw, tideflow-one")] == ["tideflow-one", "raw"]


def test_an_unknown_target_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(SystemExit) as refused:
        selected(PLAN, "tideflow-one,tideflow-pg")
    assert "no target tideflow-pg" in str(refused.value) and "tideflow-sqlite, tideflow-one, n8n" in str(refused.value)


def test_the_targets_of_each_database_choice() -> None:
    assert target_keys(["sqlite"]) == ["tideflow-sqlite", "tideflow-one", "n8n", "raw", "raw-eager"]
    assert target_keys(["postgres"]) == ["tideflow-postgres", "n8n", "raw", "raw-eager"]  # one process: SQLite


def test_python_m_bench_refuses_an_unknown_target_before_anything_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.__main__ import cli

    monkeypatch.setenv("BENCH_INGEST_DATABASES", "postgres")
    monkeypatch.setenv("BENCH_INGEST_TARGETS", "tideflow-one")
    with pytest.raises(SystemExit) as refused:
        cli(["ingest"])
    assert "no target tideflow-one" in str(refused.value)
