"""The connectors' protocol layer stays pure: stdlib + ``cryptography`` only (and ``wording``, the bottom layer
that gives its errors translatable English), never the engine.

DESIGN.md: dependencies point ``designer → engine ← activities → connectors``, so nothing under
``connectors/`` may import the engine, the designer, the activities or the CLI package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CONNECTORS = Path(__file__).resolve().parents[2] / "connectors"
FORBIDDEN = {"engine", "designer", "activities", "tideflow"}
ALLOWED_THIRD_PARTY = {"cryptography", "httpx", "pydantic", "pywecomarchive"}
SOURCES = sorted(CONNECTORS.rglob("*.py"))


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_there_are_sources() -> None:
    assert len(SOURCES) >= 10


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(CONNECTORS)))
def test_only_stdlib_cryptography_and_connectors(path: Path) -> None:
    roots = _imported_roots(path)
    assert not roots & FORBIDDEN
    outside = roots - set(sys.stdlib_module_names) - ALLOWED_THIRD_PARTY - {"connectors", "wording", "__future__"}
    assert not outside, f"{path.name} imports {sorted(outside)}"


def test_importing_every_connector_loads_no_engine_module() -> None:
    code = (
        "import sys\n"
        "import connectors.wecom, connectors.wechat_oa, connectors.taobao, connectors.jd\n"
        "import connectors.douyin, connectors.youzan, connectors.shopify, connectors.webhook\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r})\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=CONNECTORS.parent, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
