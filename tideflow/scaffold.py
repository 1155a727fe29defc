"""``tideflow plugin new NAME``: a new plugin package with one working node type, ready to install.

``NAME`` is kebab-case (``acme-points``). It becomes the directory, the distribution
``tideflow-acme-points``, the import package ``tideflow_acme_points`` and the node type
name space ``acme_points`` (the sample node is ``acme_points.greet``). See docs/plugins.md.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from engine.sdk import RESERVED_PREFIXES, TYPE_NAME
from engine.text import Msg

NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
MAX_NAME = 40


class ScaffoldError(ValueError):
    """The plugin cannot be created as asked (bad name, directory exists); the message (a :class:`Msg`, printed in
    the CLI's language) says why."""

    def __init__(self, message: Msg) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PluginNames:
    """Every name the new plugin uses, derived from the one the developer typed."""

    name: str
    distribution: str
    package: str
    namespace: str
    node_type: str
    node_class: str = "Greet"
    config_class: str = "GreetConfig"
    module: str = "greet"

    @property
    def entry_point(self) -> str:
        return f"{self.package}:{self.node_class}"


def names_for(name: str) -> PluginNames:
    """Derive the plugin's names from ``NAME``; :class:`ScaffoldError` when it cannot be one."""
    if not NAME.fullmatch(name or ""):
        raise ScaffoldError(Msg("plugin name %(name)s is not valid: use lower-case kebab-case, e.g. 'acme-points'",
                                name=repr(name)))
    if len(name) > MAX_NAME:
        raise ScaffoldError(Msg("plugin name %(name)s is %(length)s characters; keep it to %(most)s", name=repr(name),
                                length=len(name), most=MAX_NAME))
    bare = name.removeprefix("tideflow-")  # 'tideflow-acme' and 'acme' make the same plugin
    snake = bare.replace("-", "_")
    if keyword.iskeyword(snake):
        snake = f"{snake}_plugin"
    node_type = f"{snake}.greet"
    if not TYPE_NAME.fullmatch(node_type) or node_type.startswith(RESERVED_PREFIXES):
        raise ScaffoldError(Msg("plugin name %(name)s would give node types under a reserved prefix (%(prefixes)s); "
                                "choose another name", name=repr(name), prefixes=", ".join(RESERVED_PREFIXES)))
    return PluginNames(name=name, distribution=f"tideflow-{bare}", package=f"tideflow_{snake}", namespace=snake,
                       node_type=node_type)


def create(name: str, parent: Path | str = ".") -> tuple[Path, PluginNames]:
    """Write the new plugin into ``parent/NAME``; never overwrites anything."""
    names = names_for(name)
    root = Path(parent) / name
    if root.exists():
        raise ScaffoldError(Msg("%(path)s already exists; choose another name or --dir (nothing was overwritten)",
                                path=str(root)))
    if not Path(parent).is_dir():
        raise ScaffoldError(Msg("%(path)s is not a directory", path=str(parent)))
    values = {
        "name": names.name, "distribution": names.distribution, "package": names.package,
        "namespace": names.namespace, "node_type": names.node_type, "node_class": names.node_class,
        "config_class": names.config_class, "module": names.module, "entry_point": names.entry_point,
    }
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        ".gitignore": GITIGNORE,
        f"{names.package}/__init__.py": INIT,
        f"{names.package}/{names.module}.py": ACTION,
        f"{names.package}/py.typed": "",
        f"tests/test_{names.module}.py": TEST,
    }
    try:
        root.mkdir(parents=False)
        for relative, template in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(template).substitute(values), encoding="utf-8")
    except OSError as exc:
        raise ScaffoldError(Msg("cannot create %(path)s: %(reason)s", path=str(root),
                                reason=exc.strerror or str(exc))) from None
    return root, names


def next_steps(root: Path, names: PluginNames) -> str:
    return "\n".join([
        f"created {root}/ — distribution {names.distribution}, node type {names.node_type}",
        "next:",
        f"  1. edit {root / names.package / (names.module + '.py')} (config model, ports, run function)",
        f"  2. pip install -e {root}   (into the environment Tideflow runs in)",
        f"  3. pytest {root / 'tests'}",
        "  4. restart the worker and the web app (tideflow up, or tideflow worker + tideflow web)",
        f"  5. the node '{names.node_type}' appears in the designer's palette with a form from its config",
        "guide: docs/plugins.md",
    ])


PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "A Tideflow plugin: node type $node_type"
readme = "README.md"
requires-python = ">=3.11"
license = "Apache-2.0"
# engine.sdk is stable within a major version of Tideflow
dependencies = ["tideflow>=0.1,<1"]

[project.optional-dependencies]
test = ["pytest>=8", "pytest-asyncio>=0.24"]

# Tideflow finds node types through this entry point group: one line per node type
# (or one line naming a module with a NODE_TYPES list)
[project.entry-points."tideflow.activities"]
$module = "$entry_point"

[tool.setuptools.packages.find]
include = ["$package*"]

[tool.setuptools.package-data]
$package = ["py.typed"]

[tool.pytest.ini_options]
testpaths = ["tests"]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"

[tool.ruff]
line-length = 120

[tool.ruff.lint]
select = ["E", "F", "W", "I", "B", "UP", "SIM", "RUF"]
ignore = ["RUF001", "RUF002", "RUF003"]

[tool.ruff.lint.isort]
known-first-party = ["$package"]
known-third-party = ["engine"]
"""

GITIGNORE = """\
*.egg-info/
build/
dist/
__pycache__/
.pytest_cache/
"""

INIT = '''\
"""Tideflow plugin $distribution. The entry point in pyproject.toml names $entry_point."""

from $package.$module import $node_class, $config_class

__all__ = ["$node_class", "$config_class"]
'''

ACTION = '''\
"""$node_type: greet the customer and keep the text in a journey variable.

A node type is one function plus its declaration: the config model (the designer's form and
the validator are generated from it), the ports, the palette label in Chinese and English.
"""

from __future__ import annotations

from engine.sdk import ActionContext, ActionResult, NodeConfig, Template, action, render
from pydantic import Field


class $config_class(NodeConfig):
    """NodeConfig forbids unknown fields, so a typo in a flow is an error on the canvas."""

    template: Template = Field(default="你好 {{ customer.name }}", max_length=500,
                               description="the greeting; sees customer, event, vars and journey")
    skip_anonymous: bool = Field(default=True, description="leave by 'skipped' when the customer has no name")


@action("$node_type", label={"zh-CN": "问候", "en": "Greet"},
        description={"zh-CN": "生成问候语并存入旅程变量 greeting", "en": "Render a greeting into vars.greeting"},
        config=$config_class, ports=("out", "skipped"), kinds=("journey",))
def $node_class(ctx: ActionContext, config: $config_class) -> ActionResult:
    """Runs inside an activity, in one database transaction (ctx.db) with the idempotency ledger:
    once it returns, a retry of the same ctx.key gets the recorded result and this does not run again.
    Raise ActionFailed for a permanent failure (no retry); any other exception is retried."""
    if config.skip_anonymous and not ctx.customer.get("name"):
        return ActionResult(port="skipped", detail={"skipped": "anonymous customer"})
    greeting = render(config.template, ctx)  # a broken template raises ActionFailed: no retry
    return ActionResult(port="out", variables={"greeting": greeting}, detail={"key": ctx.key})
'''

TEST = '''\
"""Tests of $node_type: the function on its own, and the node in a journey on Temporal's
time-skipping server (after ``pip install -e .``)."""

from __future__ import annotations

import pytest
from engine.registry import default_registry
from engine.sdk import ActionFailed, make_context
from engine.simulate import PreviewCustomer, preview
from pydantic import ValidationError

from $package import $node_class, $config_class


def test_greets_by_name() -> None:
    result = $node_class.run(make_context(customer={"name": "张三"}), $config_class())
    assert result.port == "out"
    assert result.variables == {"greeting": "你好 张三"}


def test_anonymous_customers_are_skipped() -> None:
    assert $node_class.run(make_context(customer={}), $config_class()).port == "skipped"


def test_a_broken_template_fails_without_retry() -> None:
    with pytest.raises(ActionFailed):
        $node_class.run(make_context(customer={"name": "张三"}), $config_class(template="{{ customer.name.nope() }}"))


def test_unknown_config_fields_are_errors() -> None:
    with pytest.raises(ValidationError):
        $config_class.model_validate({"templat": "hi"})


FLOW = {
    "schema": "tideflow/flow@1", "id": "$name-demo", "name": "$name demo",
    "kind": "journey", "settings": {},
    "nodes": [
        {"id": "start", "type": "trigger.api", "config": {}},
        {"id": "greet", "type": "$node_type", "config": {"template": "你好 {{ customer.name }}"}},
        {"id": "send", "type": "action.send_message", "config": {"template": "{{ vars.greeting }}!"}},
    ],
    "edges": [{"from": "start", "to": "greet"}, {"from": "greet", "port": "out", "to": "send"}],
}


async def test_in_a_journey() -> None:
    if "$node_type" not in default_registry():
        pytest.skip("install the plugin first: pip install -e .")
    result = await preview(FLOW, PreviewCustomer(name="张三"), days=1)
    assert result["status"] == "completed"
    assert [m["content"] for m in result["messages"]] == ["你好 张三!"]
'''

README = """\
# $distribution

A Tideflow plugin with one node type, `$node_type` (问候 / Greet): it renders a greeting
template for the customer into the journey variable `greeting` and leaves by `out`, or by
`skipped` for a customer without a name.

## Develop

```bash
pip install -e '.[test]'      # into the same environment as Tideflow
pytest                        # unit tests, and the node in a journey on the time-skipping server
```

Then restart Tideflow's worker and web app: the node appears in the designer's palette, with
a form generated from `$config_class`. `GET /api/node-types` lists it with
`"origin": "$distribution"`.

## Files

- `$package/$module.py` — the config model and the action function (`@action(...)`);
- `pyproject.toml` — the entry point `[project.entry-points."tideflow.activities"]`;
- `tests/test_$module.py` — tests.

Tideflow's guide for plugin authors: docs/plugins.md in the Tideflow repository.
"""
