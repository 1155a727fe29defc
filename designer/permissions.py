"""Who may do what. One table, read by the API and the pages alike."""

from __future__ import annotations

from engine.db.models import User

#: roles that may edit and publish flows of each kind (admin may do everything)
KIND_EDITORS = {"journey": ("marketer",), "ticket": ("ops",), "settlement": ("finance",)}
FLOW_READERS = ("marketer", "ops", "finance", "developer")
EVENT_SENDERS = ("marketer", "ops", "developer")
CUSTOMER_READERS = ("marketer", "ops", "agent")


def may_edit_kind(user: User, kind: str) -> bool:
    return user.role == "admin" or user.role in KIND_EDITORS.get(kind, ())
