"""The workforce's event hook (entry point ``40-workforce``): runs inside the transaction that stores each
event, so what it records happens once per event.

* ``wecom.transfer_failed`` (WeCom's ``transfer_fail`` push): the handover item becomes refused or
  limit_reached at once, without waiting for the next transfer_result poll;
* ``wecom.contact_deleted`` with ``del_external_contact`` (the *staff member* deleted the customer,
  not a transfer): the sensitive behaviour "deleted a customer" (activities/workforce/compliance.py).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from engine.db import models


def workforce_hook(db: Session, event: models.EventRecord) -> None:
    if event.type == "wecom.transfer_failed":
        from activities.workforce.handovers import on_transfer_failed

        payload = event.payload or {}
        external = str((event.identities or {}).get("wecom_external_userid") or "")
        if external:
            on_transfer_failed(db, event.source, external, str(payload.get("user_id") or ""),
                               str(payload.get("fail_reason") or ""), event.occurred_at)
    elif event.type == "wecom.contact_deleted":
        payload = event.payload or {}
        if payload.get("change_type") == "del_external_contact" and payload.get("source") != "DELETE_BY_TRANSFER":
            from activities.workforce.compliance import record_deleted_customer

            record_deleted_customer(db, event)
