"""What the workforce does with WeCom's notices (engine/notices.py; entry point ``tideflow.notice_handlers``):

* ``member_changed`` — ``delete_user``, or ``update_user`` with status 5 (the member left): the member
  is marked departed and a handover is **planned** with the corp's default strategy; with
  ``auto_handover`` on it is also executed at once, else an admin reviews the plan (who cannot move,
  and why) and executes it;
* ``group_changed`` — the connector's sync workflow syncs that group (and emits its events);
* ``archive_notify`` — the sync workflow pulls the archive now (WeCom sends it at most every 15 s).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from activities.workforce import handovers
from activities.workforce.common import settings_of, wecom_client
from activities.workforce.runtime import signal_sync, start_handover
from engine.db.models import utcnow
from engine.db.session import session_factory
from engine.notices import NoticeContext

log = logging.getLogger(__name__)


def plan_departure(database_url: str | None, connector_id: str, userid: str) -> tuple[int, bool]:
    """Plan the handover of a member who left; (handover id, whether to execute it at once)."""
    with session_factory(database_url)() as db:
        auto = settings_of(db, connector_id).auto_handover
    client, _ = wecom_client(database_url, connector_id)
    handover_id = handovers.create_plan(database_url, connector_id, client, userid, strategy=None, now=utcnow(),
                                        created_by="wecom", trigger="callback", departed=True)
    return handover_id, auto


async def handle(context: NoticeContext, notice: dict[str, Any]) -> None:
    if context.connector_kind != "wecom":
        return
    kind = notice.get("kind")
    if kind == "member_changed":
        left = notice.get("change_type") == "delete_user" or (
            notice.get("change_type") == "update_user" and str(notice.get("status")) == "5")
        if not left:
            return
        handover_id, auto = await asyncio.to_thread(plan_departure, context.database_url, context.connector_id,
                                                    str(notice["userid"]))
        if auto and context.client is not None:
            await start_handover(context.client, context.database_url, context.task_queue, handover_id)
    elif kind == "group_changed" and context.client is not None:
        await signal_sync(context.client, context.connector_id, context.task_queue, "group_changed",
                          str(notice["chat_id"]))
    elif kind == "archive_notify" and context.client is not None:
        await signal_sync(context.client, context.connector_id, context.task_queue, "archive_notify")
