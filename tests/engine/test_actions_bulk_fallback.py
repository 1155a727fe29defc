"""A node type whose ``run_many`` falls back on :meth:`NodeType.run_many` (the one-by-one default): each
request runs once, through the ``perform_one`` the engine hands the bulk context, under its own ledger
row — so a retried page runs nothing twice. (The default used to import engine.actions inside the
function; the engine now passes it in, and engine.nodes no longer imports engine.actions.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import func, select

from engine.action_context import ActionContext, BulkActionContext
from engine.actions import Services, perform, perform_many
from engine.db import models
from engine.db.session import session_factory
from engine.nodes.base import ActionResult, NodeType
from engine.runtime import ActionRequest


class CountingNode(NodeType):
    """Counts its effects; its bulk path only notes the page size and then runs the default."""

    type = "test.counting"
    runs: ClassVar[list[str]] = []
    pages: ClassVar[list[int]] = []

    @classmethod
    def run(cls, ctx: ActionContext, config: Any) -> ActionResult:
        cls.runs.append(ctx.key)
        return ActionResult(port="out", detail={"key": ctx.key})

    @classmethod
    def run_many(cls, ctx: BulkActionContext, config: Any) -> Sequence[ActionResult | Exception]:
        cls.pages.append(len(ctx.requests))
        return super().run_many(ctx, config)


def _request(key: str) -> ActionRequest:
    return ActionRequest(key=key, workflow_id="broadcast/test", flow_id="test", version=1, node_id="n",
                         node_type=CountingNode.type, config={}, customer_id=None)


def test_the_default_run_many_runs_each_request_once_under_its_own_ledger_row(db_url: str) -> None:
    CountingNode.runs.clear()
    CountingNode.pages.clear()
    services = Services(database_url=db_url)
    perform(CountingNode, _request("k1"), services)  # already done before the page
    assert CountingNode.offers_bulk()
    results = perform_many(CountingNode, [_request(k) for k in ("k1", "k2", "k3")], services)
    assert [r["detail"]["key"] for r in results if isinstance(r, dict)] == ["k1", "k2", "k3"]
    assert CountingNode.pages == [2] and CountingNode.runs == ["k1", "k2", "k3"]
    again = perform_many(CountingNode, [_request(k) for k in ("k1", "k2", "k3")], services)
    assert again == results and CountingNode.runs == ["k1", "k2", "k3"]  # a retried page: nothing twice
    with session_factory(db_url)() as db:
        rows = db.scalar(select(func.count()).select_from(models.LedgerEntry)
                         .where(models.LedgerEntry.kind == CountingNode.type))
    assert rows == 3
