"""Money never touches a float: the settlement source is scanned with ``ast``.

The package uses no true division at all (percentages go through ``Decimal.scaleb``, splits through
integer floors and the largest remainder), so any ``/`` is flagged, as are float literals, ``float(...)``
calls, ``float`` anywhere but an ``isinstance`` check that refuses it, the builtin ``round(...)`` (rounding
happens in ``money.round_fen`` with an explicit mode) and ``import math``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[3] / "activities" / "settlement"


def _isinstance_type_arguments(tree: ast.AST) -> set[int]:
    """ids of the nodes that form the type argument of an ``isinstance(x, ...)`` call."""
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "isinstance"
            and len(node.args) == 2
        ):
            allowed.update(id(part) for part in ast.walk(node.args[1]))
    return allowed


def float_problems(source: str, filename: str = "<source>") -> list[str]:
    tree = ast.parse(source, filename=filename)
    refusals = _isinstance_type_arguments(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, float | complex):
            found.append(f"{where}: float literal {node.value!r}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("float", "round")
        ):
            found.append(f"{where}: call to {node.func.id}()")
        elif isinstance(node, ast.Name) and node.id == "float" and id(node) not in refusals:
            found.append(f"{where}: float used outside an isinstance refusal")
        elif isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, ast.Div):
            found.append(f"{where}: true division '/'")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
            if "math" in modules:
                found.append(f"{where}: import math")
    return found


def test_the_scanner_catches_each_kind_of_float() -> None:
    source = "\n".join(
        [
            "x = 0.1",
            "y = float('1.5')",
            "z = a / b",
            "z /= 2",
            "w: float = 1",
            "v = round(z, 2)",
            "import math",
            "ok = isinstance(x, float) or isinstance(x, bool | float)",
            "fine = a // b + Decimal('0.1')",
        ]
    )
    problems = float_problems(source)
    flagged_lines = {int(problem.split(":")[1]) for problem in problems}
    assert flagged_lines == {1, 2, 3, 4, 5, 6, 7}, problems


def test_settlement_source_has_no_floats() -> None:
    files = sorted(SOURCE.glob("*.py"))
    assert {path.name for path in files} >= {"__init__.py", "money.py", "plans.py", "compute.py"}
    problems = [
        problem
        for path in files
        for problem in float_problems(path.read_text(encoding="utf-8"), str(path.relative_to(SOURCE.parent)))
    ]
    assert problems == []
