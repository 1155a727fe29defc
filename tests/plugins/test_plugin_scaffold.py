"""``tideflow plugin new NAME``: a package that imports, declares a valid node type, passes its own tests
and lints clean — without pip-installing it (the module is imported through sys.path)."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from engine import registry as registry_module
from engine.nodes.base import NodeType
from engine.registry import load_registry
from engine.validate import validate
from tideflow import scaffold
from tideflow.cli import main


@pytest.fixture
def clean_modules() -> Iterator[None]:
    """Forget the generated packages afterwards, so tests do not see each other's."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("tideflow_") or name.startswith("scaffold_test_"):
            del sys.modules[name]


def generate(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    assert main(["plugin", "new", name, "--dir", str(tmp_path)]) == 0
    return tmp_path / name, capsys.readouterr().out


def load(root: Path, package: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(root))
    return importlib.import_module(package)


def test_names_from_the_plugin_name() -> None:
    names = scaffold.names_for("acme-points")
    assert (names.distribution, names.package, names.node_type, names.entry_point) == (
        "tideflow-acme-points", "tideflow_acme_points", "acme_points.greet", "tideflow_acme_points:Greet")
    assert scaffold.names_for("tideflow-acme").package == "tideflow_acme"
    assert scaffold.names_for("tideflow-acme").distribution == "tideflow-acme"
    assert scaffold.names_for("class").node_type == "class_plugin.greet"


@pytest.mark.parametrize(("name", "message"), [
    ("Acme", "is not valid: use lower-case kebab-case"),
    ("acme_points", "is not valid"),
    ("acme--points", "is not valid"),
    ("acme-", "is not valid"),
    ("9lives", "is not valid"),
    ("wait", "reserved prefix"),
    ("logic", "reserved prefix"),
    ("a" * 41, "keep it to 40"),
])
def test_bad_names_are_one_clear_line(tmp_path: Path, name: str, message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugin", "new", name, "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tideflow: plugin name") and message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "acme-points").mkdir()
    (tmp_path / "acme-points" / "mine.py").write_text("keep me")
    assert main(["plugin", "new", "acme-points", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "nothing was overwritten" in err and err.count("\n") == 1
    assert [p.name for p in (tmp_path / "acme-points").iterdir()] == ["mine.py"]
    assert main(["plugin", "new", "acme-points", "--dir", str(tmp_path / "nowhere")]) == 1
    assert "is not a directory" in capsys.readouterr().err


def test_creates_a_complete_package_and_says_what_next(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, out = generate(tmp_path, "acme-points", capsys)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [".gitignore", "README.md", "pyproject.toml", "tests/test_greet.py",
                     "tideflow_acme_points/__init__.py", "tideflow_acme_points/greet.py",
                     "tideflow_acme_points/py.typed"]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == "tideflow-acme-points"
    assert any(dep.startswith("tideflow") for dep in project["project"]["dependencies"])
    assert project["project"]["entry-points"]["tideflow.activities"] == {"greet": "tideflow_acme_points:Greet"}
    assert f"pip install -e {root}" in out
    assert "restart the worker" in out and "palette" in out and "acme_points.greet" in out
    assert "acme_points.greet" in (root / "README.md").read_text()


def test_the_generated_node_type_imports_and_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch, clean_modules: None) -> None:
    root, _ = generate(tmp_path, "acme-points", capsys)
    package = load(root, "tideflow_acme_points", monkeypatch)
    greet: type[NodeType] = package.Greet
    assert issubclass(greet, NodeType) and greet.type == "acme_points.greet"
    assert greet.ports == ("out", "skipped") and greet.label == {"zh-CN": "问候", "en": "Greet"}
    schema = greet.describe()["config_schema"]
    assert schema["properties"]["template"]["format"] == "template" and schema["additionalProperties"] is False
    # the registry takes it the way it takes an installed plugin's entry point
    registry = load_registry(extra=[greet])
    assert registry.get("acme_points.greet") is greet and registry.broken == {}
    flow_module = importlib.util.spec_from_file_location("scaffold_test_greet", root / "tests" / "test_greet.py")
    assert flow_module is not None and flow_module.loader is not None
    tests = importlib.util.module_from_spec(flow_module)
    flow_module.loader.exec_module(tests)
    assert validate(tests.FLOW, registry).ok, validate(tests.FLOW, registry).problems
    bad = {**tests.FLOW, "nodes": [*tests.FLOW["nodes"][:1], {"id": "greet", "type": "acme_points.greet",
                                                              "config": {"template": "{{ customer.name"}}]}
    assert any(p.node == "greet" for p in validate(bad, registry).problems)


async def test_the_generated_tests_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch, clean_modules: None) -> None:
    """Its unit tests, and its journey test (a preview on the time-skipping server) as if installed."""
    root, _ = generate(tmp_path, "acme-points", capsys)
    package = load(root, "tideflow_acme_points", monkeypatch)
    spec = importlib.util.spec_from_file_location("scaffold_test_greet", root / "tests" / "test_greet.py")
    assert spec is not None and spec.loader is not None
    tests: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests)
    tests.test_greets_by_name()
    tests.test_anonymous_customers_are_skipped()
    tests.test_a_broken_template_fails_without_retry()
    tests.test_unknown_config_fields_are_errors()
    monkeypatch.setattr(registry_module, "_default", load_registry(extra=[package.Greet]))
    await tests.test_in_a_journey()


def test_the_generated_code_lints_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = generate(tmp_path, "acme-points", capsys)
    ruff = Path(sys.executable).parent / "ruff"
    assert ruff.exists(), "ruff comes with the dev extras: run make test"
    done = subprocess.run([str(ruff), "check", "--no-cache", str(root)], capture_output=True, text=True,
                          cwd=root, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
