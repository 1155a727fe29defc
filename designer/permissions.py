"""Who may do what. One table, read by the API and the pages alike."""

from __future__ import annotations

from designer.errors import ApiError
from engine.db.models import User
from engine.text import Msg

#: roles that may edit and publish flows of each kind (admin may do everything)
KIND_EDITORS = {"journey": ("marketer",), "ticket": ("ops",), "settlement": ("finance",)}
#: roles that may edit flows of some kind (decision tables are edited in flows)
FLOW_EDITORS = tuple(sorted({role for roles in KIND_EDITORS.values() for role in roles}))
FLOW_READERS = ("marketer", "ops", "finance", "developer")
EVENT_SENDERS = ("marketer", "ops", "developer")
CUSTOMER_READERS = ("marketer", "ops", "agent")
#: every role: catalogues any logged-in user may read (the node and event types)
EVERY_ROLE = ("marketer", "ops", "agent", "finance", "developer")
#: who may issue a coupon to one customer by hand (the sidebar); stock and per-customer limits still hold
COUPON_ISSUERS = ("marketer", "ops", "agent")
#: tickets: who works them (agents, and ops as supervisors), who may open the console (staff, and approvers of
#: review chains such as finance, who only decide), who creates them (integrations too), who supervises
TICKET_STAFF = ("agent", "ops")
TICKET_REVIEWERS = ("agent", "ops", "finance")
TICKET_CREATORS = ("agent", "ops", "developer")
TICKET_SUPERVISORS = ("ops",)
#: growth: who makes channel codes and campaigns, who reviews risky invites (防羊毛)
GROWTH_EDITORS = ("marketer",)
GROWTH_REVIEWERS = ("marketer", "ops")
#: loyalty: who reads members' points (the customer page, shops' and mini-programs' API tokens), who redeems
LOYALTY_READERS = ("marketer", "ops", "agent", "developer")
LOYALTY_REDEEMERS = ("marketer", "developer")


def may_edit_kind(user: User, kind: str) -> bool:
    return user.role == "admin" or user.role in KIND_EDITORS.get(kind, ())


def check_may_edit(user: User, kind: str) -> None:
    """The JSON API's guard for changing a flow of ``kind`` (or its journeys): 403 naming the role."""
    if not may_edit_kind(user, kind):
        raise ApiError(403, Msg("your role '%(role)s' cannot change %(kind)s flows",
                                role=user.role, kind=kind),
                       Msg("ask an admin, or a user with the right role"), "kind")
#: workforce: who hands staff over and syncs groups (ops, as supervisors), who sends mass messages, who reads the
#: conversation archive and runs compliance (ops; the archive is personal data: agents and marketers do not see it)
WORKFORCE_ADMINS = ("ops",)
MASS_SENDERS = ("marketer", "ops")
COMPLIANCE_OFFICERS = ("ops",)
