"""The shipped flow templates: the JSON documents in ``flows/`` (one flow per file) that a new flow can be
copied from, and the blank draft a new flow of each kind starts as.

The designer's new-flow page lists them; ``tideflow up`` publishes them as demo data
(:mod:`tideflow.demo`). Reading them is a matter of flows, so it lives with the flows and both call it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

#: the shipped templates: ``flows/`` next to the packages
FLOWS_DIR = Path(__file__).resolve().parent.parent / "flows"
#: the trigger a blank flow of each kind starts with (its config is finished on the canvas)
BLANK_TRIGGER: dict[str, tuple[str, dict[str, Any]]] = {
    "journey": ("trigger.event", {}),
    "ticket": ("trigger.event", {}),
    "settlement": ("trigger.schedule", {"cron": "0 2 * * *"}),
}


def flow_files(directory: Path = FLOWS_DIR) -> list[Path]:
    """The flow documents of ``directory``, by file name."""
    return sorted(p for p in directory.glob("*.json") if p.is_file())


@dataclass(frozen=True)
class FlowTemplate:
    """A shipped flow from ``flows/`` that a new flow can be copied from."""

    key: str  # file stem, e.g. "welcome-new-contact"
    id: str
    name: str
    kind: str
    description: str
    trigger: str
    nodes: int
    document: dict[str, Any] = field(repr=False, compare=False, hash=False)


def _load_templates(directory: Path) -> tuple[FlowTemplate, ...]:
    found = []
    for path in flow_files(directory):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list):
            continue
        trigger = next((str(n.get("type")) for n in doc["nodes"] if str(n.get("type", "")).startswith("trigger.")),
                       "")
        found.append(FlowTemplate(key=path.stem, id=str(doc.get("id") or path.stem),
                                  name=str(doc.get("name") or path.stem), kind=str(doc.get("kind") or "journey"),
                                  description=str(doc.get("description") or ""), trigger=trigger,
                                  nodes=len(doc["nodes"]), document=doc))
    return tuple(found)


@lru_cache(maxsize=4)
def _cached_templates(directory: Path, stamp: tuple[tuple[str, float], ...]) -> tuple[FlowTemplate, ...]:
    return _load_templates(directory)


def flow_templates(directory: Path = FLOWS_DIR) -> tuple[FlowTemplate, ...]:
    """The shipped templates (re-read when a file in ``flows/`` changes)."""
    stamp = tuple((p.name, p.stat().st_mtime) for p in flow_files(directory))
    return _cached_templates(directory, stamp)


def blank_flow(flow_id: str, name: str, kind: str) -> dict[str, Any]:
    """A new draft with just the trigger that suits ``kind``."""
    trigger, config = BLANK_TRIGGER[kind]
    return {"schema": "tideflow/flow@1", "id": flow_id, "name": name, "kind": kind,
            "settings": {"timezone": "Asia/Shanghai"},
            "nodes": [{"id": "start", "type": trigger, "config": dict(config), "ui": {"x": 80, "y": 200}}],
            "edges": []}
