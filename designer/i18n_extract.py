"""What ``make i18n`` extracts besides ``_()`` calls: the help texts of the config schemas people fill in.

A node type's property form (and the flow settings form, and a connector's settings form) shows each
field's ``description`` from its pydantic model (``Field(description="give up after this long")``) — English
source text written where the model is, translated where the form is drawn (``designer.forms.field_help``).
:func:`schema_strings` walks the schemas exactly as the designer builds its forms, so what is extracted is
what is shown; ``babel.cfg`` runs :func:`extract_schemas` on ``designer/locale/schemas.cfg`` (a marker file).
Node *labels* are not here: a node type carries its palette label and description in both languages as
data (``NodeType.label``), because plugins ship their own (see ``docs/i18n.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import IO, Any

#: the distributions whose node types are ours (plugins translate their own texts)
BUILTIN_PACKAGES = ("engine.", "activities.")


def _walk(schema: Any, where: str, titles: bool, root: bool = True) -> Iterator[tuple[str, str]]:
    """Descriptions anywhere below the root (properties, items, nested models); property titles if ``titles``."""
    if isinstance(schema, Mapping):
        for key, value in schema.items():
            if key == "description" and not root and isinstance(value, str) and value.strip():
                yield value, where
            elif key == "properties" and isinstance(value, Mapping):
                for name, sub in value.items():
                    title = sub.get("title") if isinstance(sub, Mapping) else None
                    if titles and isinstance(title, str) and title.strip():
                        yield title, f"{where}.{name}"
                    yield from _walk(sub, f"{where}.{name}", titles, root=False)
            elif key == "$defs" and isinstance(value, Mapping) and not titles:
                for name, sub in value.items():
                    yield from _walk(sub, f"{where} ({name})", titles, root=False)
            elif key not in ("examples", "default", "title", "$defs"):
                yield from _walk(value, where, titles, root=root and key not in ("items", "anyOf", "allOf",
                                                                                  "additionalProperties"))
    elif isinstance(schema, list):
        for item in schema:
            yield from _walk(item, where, titles, root)


def node_schemas() -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(node type, config JSON Schema) of every built-in node type."""
    from engine.registry import default_registry

    for name, node_type in sorted(default_registry().types.items()):
        if node_type.__module__.startswith(BUILTIN_PACKAGES):
            yield name, node_type.schema()


def schema_strings() -> Iterator[tuple[str, str]]:
    """(English text, where it is shown) for every field description of the forms generated from schemas:
    built-in node configs, the flow's settings, connector settings (their field titles too: the connectors
    page labels fields by title)."""
    from designer.connectors.api import installed_kinds
    from designer.flows.editor import settings_schema

    for name, schema in node_schemas():
        yield from _walk(schema, f"node {name}", titles=False)
    yield from _walk(settings_schema(), "flow settings", titles=False)
    for kind, connector in sorted(installed_kinds().items()):
        if not connector.__module__.startswith("connectors."):
            continue
        yield from _walk(connector.Settings.model_json_schema(), f"connector {kind} settings", titles=True)
        yield from _walk(connector.Secrets.model_json_schema(), f"connector {kind} secrets", titles=True)


def extract_schemas(fileobj: IO[bytes], keywords: Any, comment_tags: Any,
                    options: Mapping[str, Any]) -> Iterator[tuple[int, str, str, list[str]]]:
    """A Babel extraction method (``[extractors] schemas = designer.i18n_extract:extract_schemas``)."""
    seen: set[str] = set()
    for text, where in schema_strings():
        if text not in seen:
            seen.add(text)
            yield 1, "", text, [where]
