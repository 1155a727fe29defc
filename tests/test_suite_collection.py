"""The browser run (``pytest -m browser``, make test) reads only the modules that can hold a browser test
(tests/conftest.py): a module without ``mark.browser`` in its text is not imported, and a browser test in such a
module stops every run that collects it, so the browser run cannot miss one silently."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests import conftest


def _config(markexpr: str) -> Any:
    return SimpleNamespace(option=SimpleNamespace(markexpr=markexpr))


def test_the_browser_run_skips_only_the_modules_without_a_browser_mark(tmp_path: Path) -> None:
    plain = tmp_path / "test_plain.py"
    plain.write_text("def test_x() -> None:\n    pass\n", "utf-8")
    marked = tmp_path / "test_marked.py"
    marked.write_text("import pytest\npytestmark = pytest.mark.browser\n", "utf-8")
    helper = tmp_path / "kit.py"
    helper.write_text("X = 1\n", "utf-8")
    assert conftest.pytest_ignore_collect(plain, _config("browser")) is True
    assert conftest.pytest_ignore_collect(marked, _config("browser")) is None
    assert conftest.pytest_ignore_collect(helper, _config("browser")) is None  # not a test module
    for other in ("", "not browser", "browser and e2e"):  # any other run collects everything it did before
        assert conftest.pytest_ignore_collect(plain, _config(other)) is None


def test_a_browser_test_the_browser_run_would_not_read_is_refused(tmp_path: Path) -> None:
    hidden = tmp_path / "test_hidden.py"
    hidden.write_text('import pytest\npytestmark = getattr(pytest.mark, "brow" + "ser")\n', "utf-8")
    marked = tmp_path / "test_marked.py"
    marked.write_text("import pytest\npytestmark = pytest.mark.browser\n", "utf-8")

    def item(path: Path) -> Any:
        return SimpleNamespace(path=path, get_closest_marker=lambda name: object() if name == "browser" else None)

    conftest._check_browser_marks([item(marked)])
    with pytest.raises(pytest.UsageError, match=r"test_hidden\.py"):
        conftest._check_browser_marks([item(marked), item(hidden)])
