"""For the WeCom mass-send tests: the loopback WeCom set up as a corp with staff and customers (``corp``; the
test module must also offer ``fake_wecom``), the send log per customer, a database that is SQLite or PostgreSQL
(``db_url`` parametrized ``indirect``), and a Temporal client whose workflow starts lose their reply
(:class:`LostReplies`)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from temporalio.client import Client, Interceptor, OutboundInterceptor, StartWorkflowInput, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.workforce import quota
from connectors.wecom.connector import WeComConnector
from engine import connectors as configured
from engine.db import models
from engine.db import workforce_models as wf
from engine.db.models import utcnow
from engine.db.session import session_factory, transaction
from engine.events import EventIn, store
from tests.connectors.fake_wecom import WECOM_CORP_ID, WECOM_KEY, WECOM_SECRET, WECOM_TOKEN, FakeWeCom
from tests.dbtemplate import migrated_sqlite

CONNECTOR = "wecom-main"


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite, or PostgreSQL for a test parametrized ``indirect`` with "postgres" (row locks, upserts and id
    sequences differ there)."""
    if getattr(request, "param", "sqlite") == "postgres":
        return str(request.getfixturevalue("pg_url"))
    url = f"sqlite:///{tmp_path / 'tideflow.db'}"
    migrated_sqlite(url)
    return url


@pytest.fixture
def corp(db_url: str, fake_wecom: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> FakeWeCom:
    monkeypatch.setattr(configured, "connector_classes", lambda: {"wecom": WeComConnector})
    with transaction(db_url) as db:  # images come from a host on 127.0.0.1, allowed for the tests
        configured.save(db, CONNECTOR, "wecom", "企业微信", {"corp_id": WECOM_CORP_ID, "api_base": fake_wecom.url,
                                                         "image_hosts": ["127.0.0.1"]},
                        {"token": WECOM_TOKEN, "encoding_aes_key": WECOM_KEY, "secret": WECOM_SECRET})
        db.add(wf.WorkforceSettings(connector_id=CONNECTOR, mass_quota_policy="day_1", at_limit="exclude"))
    fake_wecom.quota_policy = "day_1"
    for userid in ("zhangsan", "lisi"):
        fake_wecom.add_staff(userid)
    for external, owner in (("wmA", "zhangsan"), ("wmB", "zhangsan"), ("wmC", "zhangsan"), ("wmD", "lisi"),
                            ("wmE", "")):
        if owner:
            fake_wecom.add_contact(external, owner)
        attributes = {"wecom_follow_user": owner, "vip": external != "wmB"} if owner else {}
        store(EventIn(id=f"seed-{external}", type="customer.updated", customer={"wecom_external_userid": external},
                      profile={"name": external, "attributes": attributes}), db_url)
    return fake_wecom


def log(db_url: str) -> dict[str, str]:
    with session_factory(db_url)() as db:
        rows = db.execute(select(models.Identity.value, models.Message.status).join(
            models.Message, models.Message.customer_id == models.Identity.customer_id)).all()
    return dict(rows)


def stored(db_url: str) -> tuple[int, int, int]:
    """Mass sends, their recipients, and mass-send rows in the message log."""
    with session_factory(db_url)() as db:
        return (int(db.scalar(select(func.count()).select_from(wf.MassSend)) or 0),
                int(db.scalar(select(func.count()).select_from(wf.MassSendRecipient)) or 0),
                int(db.scalar(select(func.count()).select_from(models.Message)
                              .where(models.Message.idempotency_key.like("mass/%"))) or 0))


class LostReplies(Interceptor):
    """A Temporal client interceptor for mass-send workflow starts: the first ``lose`` starts reach the real server,
    which applies them, and then their reply is lost (``DEADLINE_EXCEEDED``, as when the connection drops after
    the request went out); the starts after those go through. With ``reach=False`` those starts never leave
    (``UNAVAILABLE``: Temporal is not reachable at all). ``before_loss`` runs between a start being applied and
    its reply being lost. ``ids``: the workflow ids asked for, one per start."""

    def __init__(self, lose: int, *, reach: bool = True,
                 before_loss: Callable[[], Awaitable[Any]] | None = None) -> None:
        self.lose, self.reach, self.before_loss = lose, reach, before_loss
        self.ids: list[str] = []

    @property
    def starts(self) -> int:
        return len(self.ids)

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _LosingOutbound(self, next)

    def client(self, client: Client) -> Client:
        """``client`` (its connection, namespace and interceptors) with this interceptor too."""
        config = client.config()
        return Client(**{**config, "interceptors": [*config["interceptors"], self]})


class _LosingOutbound(OutboundInterceptor):
    def __init__(self, owner: LostReplies, next: OutboundInterceptor) -> None:
        super().__init__(next)
        self.owner = owner

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        owner = self.owner
        if not input.id.startswith("mass-send/"):
            return await super().start_workflow(input)
        owner.ids.append(input.id)
        if owner.starts > owner.lose:
            return await super().start_workflow(input)
        if not owner.reach:
            raise RPCError("failed to connect: connection refused", RPCStatusCode.UNAVAILABLE, b"")
        with contextlib.suppress(WorkflowAlreadyStartedError):  # that answer is lost too
            await super().start_workflow(input)
        if owner.before_loss is not None:
            await owner.before_loss()
        raise RPCError("deadline exceeded: the reply did not come", RPCStatusCode.DEADLINE_EXCEEDED, b"")


def earlier_today(ago: timedelta) -> datetime:
    """``ago`` before now, but not before today began in China time (the allowance's day, quota.window): in the
    first hour after Chinese midnight (16:00 UTC) "an hour ago" is yesterday, and a test counting what a
    recipient already got today would count nothing."""
    now = utcnow()
    return max(now - ago, quota.window("day_1", now).start)
