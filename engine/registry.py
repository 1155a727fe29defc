"""The node registry: every node type, built-in or plugin, found through one entry point group.

Built-ins are declared in Tideflow's own ``pyproject.toml`` under
``[project.entry-points."tideflow.activities"]`` exactly like a plugin's are, so
there is one discovery path. An entry point may name a module (its
``NODE_TYPES`` list is used) or a single :class:`NodeType` subclass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

from engine.nodes.base import NodeType

GROUP = "tideflow.activities"
log = logging.getLogger(__name__)


class RegistryError(RuntimeError):
    """Two node types with one name, or an entry point that names no node type."""


@dataclass
class Registry:
    types: dict[str, type[NodeType]] = field(default_factory=dict)
    #: entry points that failed to load: name → error (a broken plugin never stops the engine)
    broken: dict[str, str] = field(default_factory=dict)

    def add(self, node_type: type[NodeType], origin: str = "builtin") -> None:
        name = getattr(node_type, "type", None)
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{node_type!r} has no 'type' name")
        existing = self.types.get(name)
        if existing is not None and existing is not node_type:
            raise RegistryError(
                f"node type {name!r} is declared twice: by {existing.origin} ({existing.__module__}) "
                f"and by {origin} ({node_type.__module__}); rename one of them"
            )
        node_type.origin = origin
        self.types[name] = node_type

    def get(self, name: str) -> type[NodeType] | None:
        return self.types.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.types

    def __iter__(self) -> Any:
        return iter(self.types.values())

    def actions(self) -> list[type[NodeType]]:
        return [t for t in self.types.values() if t.is_action()]

    def describe(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [t.describe() for t in sorted(self.types.values(), key=lambda t: (t.category, t.type))
                if kind is None or kind in t.kinds]


def _node_types_of(obj: Any) -> Iterable[type[NodeType]]:
    if isinstance(obj, type) and issubclass(obj, NodeType):
        return [obj]
    if isinstance(obj, ModuleType):
        found = getattr(obj, "NODE_TYPES", None)
        if found is None:
            raise RegistryError(f"module {obj.__name__} has no NODE_TYPES list")
        return list(found)
    if isinstance(obj, list | tuple):
        return list(obj)
    raise RegistryError(f"{obj!r} is neither a NodeType subclass nor a module with NODE_TYPES")


def _origin(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return "builtin" if name in (None, "tideflow") else str(name)


def load_registry(extra: Iterable[type[NodeType]] = ()) -> Registry:
    """Discover every node type. A plugin that fails to import is recorded in ``broken``, not raised."""
    registry = Registry()
    eps = sorted(entry_points(group=GROUP), key=lambda e: (_origin(e) != "builtin", e.name))
    for ep in eps:
        origin = _origin(ep)
        try:
            for node_type in _node_types_of(ep.load()):
                registry.add(node_type, origin)
        except Exception as exc:  # a broken plugin must not take the engine down
            if origin == "builtin":
                raise
            log.error("plugin entry point %s (%s) failed to load: %s", ep.name, origin, exc)
            registry.broken[ep.name] = f"{type(exc).__name__}: {exc}"
    for node_type in extra:
        registry.add(node_type, "extra")
    return registry


_default: Registry | None = None


def default_registry() -> Registry:
    global _default
    if _default is None:
        _default = load_registry()
    return _default


def entry_event_of(node: dict[str, Any], registry: Registry | None = None) -> tuple[str, str | None] | None:
    """For a compiled trigger node (``{"type", "config"}``): the event type that starts its flow and the
    filter expression (:meth:`NodeType.entry_event`), or None for clock and API triggers."""
    node_type = (registry or default_registry()).get(str(node.get("type")))
    if node_type is None or not node_type.is_trigger():
        return None
    try:
        config = node_type.Config.model_validate(node.get("config") or {})
    except Exception:  # a flow compiled by an older version of the node type: treat as no event entry
        return None
    return node_type.entry_event(config)
