"""The flow document, ``tideflow/flow@1`` (DESIGN.md §3), as pydantic models.

These models check the *shape* of a document only. Whether the graph makes
sense (node types exist, configs are valid, edges connect, expressions compile)
is the validator's job (:mod:`engine.validate`), which reports every problem at
once, with node, field and fix.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA = "tideflow/flow@1"
FlowKind = Literal["journey", "ticket", "settlement"]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$"


class Reentry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reentry: Literal["never", "always", "after"] = "never"
    reentry_after: str | None = Field(default=None, description="ISO 8601 duration, with reentry = 'after'",
                                      json_schema_extra={"format": "duration"})


class EventMatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: str = Field(min_length=1)
    filter: str | None = Field(default=None, description="expression over event and customer")


class Goal(EventMatch):
    within: str | None = Field(default=None, description="ISO 8601 duration from entry",
                               json_schema_extra={"format": "duration"})


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class FlowSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: str = "Asia/Shanghai"
    entry: Reentry = Field(default_factory=Reentry)
    exit_on: list[EventMatch] = Field(default_factory=list)
    goal: Goal | None = None
    quiet_hours: QuietHours | None = None
    frequency_capped: bool = True


class UiPosition(BaseModel):
    model_config = ConfigDict(extra="allow")
    x: float = 0
    y: float = 0


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=ID_PATTERN)
    type: str = Field(min_length=1)
    name: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    ui: UiPosition | None = None


class Edge(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source: str = Field(alias="from")
    port: str = "out"
    target: str = Field(alias="to")

    def dump(self) -> dict[str, str]:
        return {"from": self.source, "port": self.port, "to": self.target}


class Flow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_: Literal["tideflow/flow@1"] = Field(default="tideflow/flow@1", alias="schema")
    id: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    kind: FlowKind = "journey"
    description: str | None = None
    settings: FlowSettings = Field(default_factory=FlowSettings)
    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        """The canonical JSON form (``from``/``to`` edges, ``schema`` key)."""
        data = self.model_dump(by_alias=True, exclude_none=True)
        data["edges"] = [e.dump() for e in self.edges]
        return data
