"""The public DMN TCK at compliance levels 2 and 3 (tests/decisions/tck/, scope in scope.toml).

One pytest item per TCK test file keeps the run short (~150 items for ~3,400 TCK tests). Each item
fails when an in-scope TCK test fails that is not a listed known failure, and when a listed known
failure passes (so the list and the figures in docs/decisions.md stay true).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.decisions import tck_runner as tck

SCOPE = tck.load_scope()
FILES = [(level, path) for level in tck.LEVELS for path in tck.test_files(level)]


def test_the_tck_files_are_here() -> None:
    assert len(FILES) > 140
    assert (tck.TCK / "LICENSE-ASL-2.0.txt").exists()


def test_scope_names_real_tests() -> None:
    folders = {path.parent.name for _, path in FILES}
    keys = {case.key for level, path in FILES for case in tck.read_cases(path, level)}
    assert set(SCOPE.excluded) <= folders | keys
    assert set(SCOPE.known_failures) <= keys
    assert all(reason.strip() for reason in [*SCOPE.excluded.values(), *SCOPE.known_failures.values()])


@pytest.mark.parametrize(("level", "path"), FILES, ids=[f"{level[-1]}/{path.parent.name}" for level, path in FILES])
def test_tck(level: str, path: Path) -> None:
    outcomes = [outcome for outcome in tck.run_file(path, level) if not SCOPE.reason_excluded(outcome.case)]
    unexpected = [f"{o.case.key}: {o.detail}" for o in outcomes
                  if not o.passed and o.case.key not in SCOPE.known_failures]
    fixed = [o.case.key for o in outcomes if o.passed and o.case.key in SCOPE.known_failures]
    assert not unexpected, "\n".join(unexpected)
    assert not fixed, f"now passing, remove from known_failures in scope.toml: {fixed}"
    if level == "compliance-level-2":
        assert all(o.passed for o in outcomes)
